// The trader's view: static IPs with the countdown to the next allowed change, sessions and
// their order slots, family, apps, API tokens, the analytics token, orders per second and
// recent decisions.  Every list shows the caller's own account only (the gateway decides
// that from the credential).  A token is shown once, when it is created, and never again.

import { call, explain } from "./api.js";
import { $, decisionRow, el, fill, lines, onSubmit, say, shortId } from "./dom.js";

let countdown = null;
let ended = () => {};

// A refusal is shown in its panel; a 401 means the console's own session ended.
async function guarded(errorId, action) {
  say(errorId, "");
  try {
    return await action();
  } catch (error) {
    if (error.status === 401) ended(explain(error));
    else say(errorId, explain(error));
    return undefined;
  }
}

function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${d} d ${h} h ${m} m ${s} s`;
}

async function loadIps() {
  await guarded("ip-error", async () => {
    const ip = (await call("GET", "/v2/user/ip")).data;
    const next = (await call("GET", "/gateway/v1/ip-change")).data;
    say("who", ip.user_id);
    say("ip-primary", ip.primary_ip || "not set");
    say("ip-secondary", ip.secondary_ip || "not set");
    say("ip-primary-at", ip.primary_ip_updated_at ? `updated ${ip.primary_ip_updated_at}` : "");
    say("ip-secondary-at", ip.secondary_ip_updated_at ? `updated ${ip.secondary_ip_updated_at}` : "");
    const form = $("ip-form");
    form.elements.primary_ip.value = ip.primary_ip || "";
    form.elements.secondary_ip.value = ip.secondary_ip || "";
    form.hidden = !next.may_change;
    clearInterval(countdown);
    if (!next.next_change_at) {
      say("ip-next", next.may_change ? "now" : "only the family's parent may change them");
      say("ip-countdown", "");
      return;
    }
    say("ip-next", next.next_change_at);
    // Counted from the server's clock, not the browser's: only elapsed time is local.
    const remaining = Date.parse(next.next_change_at) - Date.parse(next.now);
    const shownAt = performance.now();
    const tick = () => say("ip-countdown", `(in ${duration(remaining - (performance.now() - shownAt))})`);
    tick();
    countdown = setInterval(tick, 1000);
  });
}

function ipBody() {
  const form = $("ip-form");
  const body = { primary_ip: form.elements.primary_ip.value.trim() };
  const secondary = form.elements.secondary_ip.value.trim();
  if (secondary) body.secondary_ip = secondary;
  return body;
}

function wireIps() {
  onSubmit("ip-form", () => {
    say("ip-error", "");
    $("ip-confirm").hidden = false; // warn before anything is sent
  });
  $("ip-confirm-no").addEventListener("click", () => { $("ip-confirm").hidden = true; });
  $("ip-confirm-yes").addEventListener("click", async () => {
    $("ip-confirm").hidden = true;
    const answer = await guarded("ip-error", () => call("PUT", "/v2/user/ip", ipBody()));
    if (!answer) return;
    if (answer.data.access_tokens_invalidated) {
      ended("The IPs changed: every session and token of the account ended, this console's too. Log in again.");
    } else {
      await loadIps();
    }
  });
}

function slotText(s) {
  if (s.holds_slot) return `${s.holds_slot} (holds it)`;
  if (s.slot) return `${s.slot} (taken by a newer session)`;
  return "none";
}

async function loadSessions() {
  await guarded("sessions-error", async () => {
    const { sessions, broker_sessions: broker } = (await call("GET", "/gateway/v1/sessions")).data;
    const held = Object.entries(broker || {});
    fill($("broker-sessions-rows"), held.map(([dialect, b]) => el("tr", { class: "broker-session" },
      el("td", {}, dialect), el("td", {}, b.since), el("td", {}, b.expires_at))));
    $("broker-sessions-none").hidden = held.length > 0;
    fill($("sessions-rows"), sessions.map((s) => el("tr", { class: "session", "data-id": s.session_id },
      el("td", {}, shortId(s.session_id), s.current ? " (this console)" : ""),
      el("td", {}, s.created_ip),
      el("td", {}, s.created_at),
      el("td", {}, slotText(s)),
      el("td", {}, el("button", {
        type: "button",
        onclick: async () => {
          const done = await guarded("sessions-error", () => call("DELETE", `/gateway/v1/sessions/${s.session_id}`));
          if (done && s.current) ended("You logged out this console's session.");
          else if (done) await loadSessions();
        },
      }, "Log out")),
    )));
  });
}

async function loadFamily() {
  await guarded("family-error", async () => {
    const family = (await call("GET", "/gateway/v1/family")).data;
    const members = family.members || [];
    const invite = $("family-invite");
    if (family.role === "member") {
      say("family-role", `Member of ${family.parent_id}'s family: you trade from its IPs.`);
      fill($("family-members"), [el("li", {}, family.parent_id, " ",
        el("button", { type: "button", onclick: () => removeMember(family.user_id) }, "Leave"))]);
      invite.hidden = true;
    } else {
      say("family-role", family.role === "parent"
        ? `Parent of ${members.length} of ${family.max_members} members.`
        : `No family yet: invite up to ${family.max_members} accounts.`);
      fill($("family-members"), members.map((m) => el("li", { class: "member" }, `${m.user_id} ${m.name || ""} `,
        el("button", { type: "button", onclick: () => removeMember(m.user_id) }, `Remove ${m.user_id}`))));
      invite.hidden = false;
    }
    const { invitations } = (await call("GET", "/gateway/v1/family/invitations")).data;
    fill($("family-invitations"), invitations.map((i) => el("li", { class: "invitation" },
      `${i.parent_user_id} ${i.name || ""} (invited ${i.invited_at}) `,
      el("button", { type: "button", onclick: () => answerInvitation(i.parent_user_id, "accept") }, "Accept"),
      el("button", { type: "button", onclick: () => answerInvitation(i.parent_user_id, "decline") }, "Decline"))));
  });
}

async function removeMember(userId) {
  if (await guarded("family-error", () => call("DELETE", `/gateway/v1/family/members/${encodeURIComponent(userId)}`))) {
    await loadFamily();
  }
}

async function answerInvitation(parentId, verb) {
  const path = `/gateway/v1/family/invitations/${encodeURIComponent(parentId)}/${verb}`;
  if (!(await guarded("family-error", () => call("POST", path)))) return;
  // Joining a family ends the member's own sessions (SPEC §9), this console's included.
  if (verb === "accept") ended(`You joined ${parentId}'s family; your sessions ended. Log in again.`);
  else await loadFamily();
}

function wireFamily() {
  onSubmit("family-invite", async (data, form) => {
    const answer = await guarded("family-error", () => call("POST", "/gateway/v1/family/members", { user_id: String(data.get("user_id")).trim() }));
    if (answer) {
      form.reset();
      say("family-role", `Invited ${answer.data.user_id}: the invitation lasts until ${answer.data.expires_at}.`);
    }
  });
}

function showOnce(id, text) {
  const node = $(id);
  node.textContent = text;
  node.hidden = false;
}

function wireApps() {
  $("app-create").addEventListener("click", async () => {
    const answer = await guarded("apps-error", () => call("POST", "/gateway/v1/apps"));
    if (answer) {
      const app = answer.data || answer;
      showOnce("app-created", `api_key ${app.api_key} · api_secret ${app.api_secret} (copy the secret now: it is not shown again)`);
    }
  });
}

function nanos(ns) {
  return ns ? new Date(Number(ns) / 1e6).toISOString().replace(".000Z", "Z") : "";
}

async function loadTokens() {
  await guarded("tokens-error", async () => {
    const { results } = await call("GET", "/v1/account/tokens");
    fill($("tokens-rows"), results.map((t) => el("tr", { class: "token", "data-lookup": t.lookup_id },
      el("td", {}, t.name),
      el("td", {}, t.lookup_id),
      el("td", {}, t.kind),
      el("td", {}, (t.allowed_cidrs || []).join(", ") || "any address"),
      el("td", {}, nanos(t.expiry_at)),
      el("td", {},
        el("button", { type: "button", onclick: () => editCidrs(t) }, "Edit CIDRs"),
        el("button", { type: "button", onclick: () => revokeToken(t.lookup_id) }, "Revoke")),
    )));
  });
}

async function revokeToken(lookupId) {
  if (await guarded("tokens-error", () => call("DELETE", `/v1/account/tokens/${encodeURIComponent(lookupId)}`))) {
    await loadTokens();
  }
}

function editCidrs(token) {
  const form = $("token-cidrs");
  form.dataset.lookup = token.lookup_id;
  say("token-cidrs-id", token.name);
  form.elements.allowed_cidrs.value = (token.allowed_cidrs || []).join("\n");
  form.hidden = false;
}

function wireTokens() {
  onSubmit("token-form", async (data) => {
    const body = { name: String(data.get("name")), allowed_cidrs: lines(data.get("allowed_cidrs")) };
    const answer = await guarded("tokens-error", () => call("POST", "/v1/account/tokens", body));
    if (answer) {
      showOnce("token-created", `New token ${answer.api_token.name}: ${answer.token} (copy it now: it is not shown again)`);
      await loadTokens();
    }
  });
  onSubmit("token-cidrs", async (data, form) => {
    const path = `/v1/account/tokens/${encodeURIComponent(form.dataset.lookup)}/allowed-cidrs`;
    if (await guarded("tokens-error", () => call("PUT", path, { allowed_cidrs: lines(data.get("allowed_cidrs")) }))) {
      form.hidden = true;
      await loadTokens();
    }
  });
}

function wireAnalytics() {
  $("analytics-create").addEventListener("click", async () => {
    const answer = await guarded("analytics-error", () => call("POST", "/gateway/v1/analytics-token"));
    if (answer) showOnce("analytics-created", `Analytics token (read-only, until ${answer.data.expires_at}): ${answer.data.access_token} (copy it now: it is not shown again)`);
  });
  $("analytics-revoke").addEventListener("click", async () => {
    if (await guarded("analytics-error", () => call("DELETE", "/gateway/v1/analytics-token"))) {
      $("analytics-created").hidden = true;
      say("analytics-error", "");
      say("analytics-created", "");
    }
  });
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

async function loadRate() {
  await guarded("decisions-error", async () => {
    const series = (await call("GET", "/gateway/v1/orders-per-second?minutes=5")).data;
    const peak = Math.max(0, ...series.orders);
    say("rate-summary", `Peak ${peak} orders/s in the last ${series.seconds / 60} minutes; the limit is ${series.limit} in any rolling second.`);
    const top = Math.max(series.limit, peak) * 1.1;
    const width = 600 / series.orders.length;
    const y = (v) => 120 - (v / top) * 120;
    const nodes = series.orders.map((v, i) => svg("rect", { class: "bar", x: i * width, y: y(v), width: Math.max(width, 1), height: 120 - y(v) }));
    nodes.push(svg("line", { class: "limit", x1: 0, x2: 600, y1: y(series.limit), y2: y(series.limit) }));
    fill($("rate-chart"), nodes);
  });
}

// A refused order explained again by the gateway (explain): the step that refuses, and why.
async function whyRefused(auditId) {
  try {
    const { data } = await call("GET", `/gateway/v1/decisions/${encodeURIComponent(auditId)}/explain`);
    const failed = (data.steps || []).find((step) => !step.ok);
    return failed ? `${failed.step}: ${failed.detail}` : `it would be ${data.decision} now`;
  } catch (error) {
    return explain(error);
  }
}

async function loadDecisions() {
  await guarded("decisions-error", async () => {
    const { decisions } = (await call("GET", "/gateway/v1/decisions?limit=50")).data;
    fill($("decisions-rows"), decisions.filter((d) => d.decision).map((d) => decisionRow(d, false, whyRefused)));
  });
}

let wired = false;

export async function showTrader(onEnded) {
  ended = (message) => { clearInterval(countdown); onEnded(message); };
  if (!wired) {
    wired = true;
    wireIps();
    wireFamily();
    wireApps();
    wireTokens();
    wireAnalytics();
    $("decisions-refresh").addEventListener("click", () => Promise.all([loadDecisions(), loadRate(), loadSessions()]));
  }
  for (const id of ["token-created", "analytics-created", "app-created"]) $(id).hidden = true;
  await Promise.all([loadIps(), loadSessions(), loadFamily(), loadTokens(), loadRate(), loadDecisions()]);
}

export function leaveTrader() {
  clearInterval(countdown);
}
