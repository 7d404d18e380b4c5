// The gateway's API as the console calls it: the credential travels as a bearer header
// (never a cookie, so there is no CSRF surface) and every error envelope becomes one
// GatewayError with the dialect's code and the gateway's own message.

const KEY = "order-gateway-console";

export class GatewayError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Words for the refusals a trader meets in the console; the gateway's message follows them.
const WORDS = {
  UDAPI1182: "The primary IP is missing",
  UDAPI1183: "That is not a valid IP address",
  UDAPI1184: "The primary and secondary IP must differ",
  UDAPI1185: "The IPs were changed too recently",
  UDAPI1186: "Another change won the race; nothing changed",
  UDAPI1179: "This account may not change the IPs",
  UDAPI9409: "That address is registered by another client (409)",
  IP_TAKEN: "That address is registered by another client (409)",
  CONFLICT: "It exists already (409)",
  UDAPI100050: "Your session has ended",
  INVALID_TOKEN: "Your session has ended",
  INVALID_CREDENTIALS: "Wrong API key or secret",
};

export function explain(error) {
  if (!(error instanceof GatewayError)) return `The gateway did not answer: ${error.message}`;
  const words = WORDS[error.code];
  return words ? `${words} [${error.code}]: ${error.message}` : `${error.message} [${error.code}]`;
}

export function sessionEnded(error) {
  return error instanceof GatewayError && error.status === 401;
}

// sessionStorage: the credential lives as long as this tab, and never in a cookie.
export function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

// ``owned``: the console created this session, so logging out of the console ends it; a
// pasted session token may be a strategy's, so the console only forgets it.
export function save(role, token, owned = false) {
  sessionStorage.setItem(KEY, JSON.stringify({ role, token, owned }));
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

function errorOf(status, data) {
  if (data && Array.isArray(data.errors) && data.errors.length) {
    return new GatewayError(status, data.errors[0].error_code, data.errors[0].message);
  }
  if (data && typeof data.error === "string") {
    return new GatewayError(status, data.error, data.message || data.error);
  }
  if (data && typeof data.errMsg === "string") {
    return new GatewayError(status, String(data.stCode), data.errMsg);
  }
  return new GatewayError(status, String(status), `HTTP ${status}`);
}

export async function call(method, path, body, token = saved()?.token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw errorOf(response.status, data);
  return data;
}
