// The operator's view (admin token): every account with its IPs, family and live sessions;
// decisions per minute by reason and upstream latency from the audit log; store and upstream
// readiness; the instrument master's age; and the audit search across accounts.

import { call, explain } from "./api.js";
import { $, decisionRow, el, fill, onSubmit, say } from "./dom.js";

let ended = () => {};

async function guarded(action) {
  say("op-error", "");
  try {
    return await action();
  } catch (error) {
    if (error.status === 401) ended(explain(error));
    else say("op-error", explain(error));
    return undefined;
  }
}

async function loadReadiness() {
  // /readyz takes no credential; its 503 carries the problems.
  const response = await fetch("/readyz", { credentials: "omit", cache: "no-store" });
  const body = await response.json();
  say("op-ready-status", body.status === "ready" ? "Store and upstreams: ready" : "Not ready");
  fill($("op-ready-problems"), (body.problems || []).map((p) => el("li", {}, p)));
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "bundled sample (loaded at start)";
  const hours = seconds / 3600;
  return hours >= 1 ? `${hours.toFixed(1)} h old` : `${Math.round(seconds)} s old`;
}

async function loadOverview() {
  await guarded(async () => {
    const data = (await call("GET", "/admin/v1/overview")).data;
    fill($("op-accounts-rows"), data.accounts.map((a) => el("tr", { class: "account" },
      el("td", {}, a.user_id),
      el("td", {}, a.name),
      el("td", {}, a.primary_ip || ""),
      el("td", {}, a.secondary_ip || ""),
      el("td", {}, a.egress_ip || ""),
      el("td", {}, a.parent_id ? `member of ${a.parent_id}` : a.family_members ? `parent of ${a.family_members}` : ""),
      el("td", {}, a.sessions))));
    fill($("op-decisions-rows"), data.decisions_per_minute.map((d) => el("tr", {},
      el("td", {}, d.minute), el("td", {}, d.reason), el("td", {}, d.count))));
    const latency = data.upstream_latency_ms;
    say("op-latency", latency.count
      ? `p50 ${latency.p50} ms · p95 ${latency.p95} ms · max ${latency.max} ms over ${latency.count} orders`
      : "no orders sent");
    const instruments = data.instruments;
    say("op-instruments", `${instruments.count} instruments, ${age(instruments.age_s)}`);
  });
}

async function search(userId, limit) {
  await guarded(async () => {
    const query = new URLSearchParams({ limit });
    if (userId) query.set("user_id", userId);
    const { data } = await call("GET", `/admin/v1/audit?${query}`);
    fill($("op-audit-rows"), data.map((record) => decisionRow(record, true)));
  });
}

let wired = false;

export async function showOperator(onEnded) {
  ended = onEnded;
  if (!wired) {
    wired = true;
    onSubmit("op-audit-form", (data) => search(String(data.get("user_id")).trim(), String(data.get("limit")).trim()));
  }
  await Promise.all([loadReadiness(), loadOverview(), search("", "100")]);
}

// Validates an admin token before it is kept.
export async function checkAdmin(token) {
  await call("GET", "/admin/v1/overview", undefined, token);
}
