// Entry point: log in (an API app, an existing session token, or the admin token), then show
// the trader's or the operator's view.  The console logs in with "console": true, so its
// session never takes an order slot and a strategy trading from the same IP keeps trading.

import { call, explain, forget, save, saved } from "./api.js";
import { $, onSubmit, say } from "./dom.js";
import { checkAdmin, showOperator } from "./operator.js";
import { leaveTrader, showTrader } from "./trader.js";

function show(view) {
  for (const id of ["login", "trader", "operator"]) $(id).hidden = id !== view;
  $("logout").hidden = view === "login";
  document.body.dataset.view = view;
}

function notice(message) {
  const node = $("notice");
  node.textContent = message || "";
  node.hidden = !message;
}

function toLogin(message) {
  forget();
  leaveTrader();
  say("who", "");
  notice(message);
  show("login");
}

async function enter() {
  const credential = saved();
  if (!credential) return show("login");
  if (credential.role === "operator") {
    say("who", "operator");
    show("operator");
    await showOperator(toLogin);
  } else {
    show("trader");
    await showTrader(toLogin);
  }
  document.body.dataset.ready = "true";
}

async function attempt(action) {
  say("login-error", "");
  try {
    await action();
    notice("");
    await enter();
  } catch (error) {
    forget();
    say("login-error", explain(error));
  }
}

onSubmit("login-app", (data, form) => attempt(async () => {
  const answer = await call("POST", "/gateway/v1/session", {
    api_key: String(data.get("api_key")).trim(),
    api_secret: String(data.get("api_secret")),
    console: true,
  }, null);
  form.reset();
  save("trader", answer.data.access_token, true);
}));

onSubmit("login-token", (data, form) => attempt(async () => {
  const token = String(data.get("token")).trim();
  await call("GET", "/v2/user/ip", undefined, token);
  form.reset();
  save("trader", token);
}));

onSubmit("login-admin", (data, form) => attempt(async () => {
  const token = String(data.get("token")).trim();
  await checkAdmin(token);
  form.reset();
  save("operator", token);
}));

$("logout").addEventListener("click", async () => {
  const credential = saved();
  if (credential?.owned) {
    try {
      await call("DELETE", "/gateway/v1/session");
    } catch {
      // ended already: nothing left to log out
    }
  }
  toLogin("Logged out.");
});

enter().catch((error) => toLogin(explain(error)));
