// Small DOM helpers: text is always set as text (never parsed as HTML), and no element gets a
// style attribute (the Content-Security-Policy allows no inline styles).

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

export function fill(parent, nodes) {
  parent.replaceChildren(...nodes);
}

export function say(id, text) {
  $(id).textContent = text || "";
}

export function compact(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value) && value.length === 0) return "";
  return JSON.stringify(value);
}

export function shortId(id) {
  return id && id.length > 10 ? `${id.slice(0, 8)}…` : id || "";
}

export function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler(new FormData(event.target), event.target);
  });
}

export function lines(text) {
  return String(text || "")
    .split(/[\n,]/)
    .map((line) => line.trim())
    .filter(Boolean);
}

// An audit record's conversions, as the LTP and band columns show them.
export function conversionCells(record) {
  const conversions = record.conversions || [];
  return [
    conversions.map((c) => c.ltp || c.reference).join(", "),
    conversions.map((c) => c.band).join(", "),
  ];
}

export function decisionRow(record, withAccount, explainWith) {
  const [ltp, band] = conversionCells(record);
  const cells = [
    el("td", {}, record.at || ""),
    ...(withAccount ? [el("td", {}, record.user_id || "")] : []),
    el("td", {}, `${record.method || ""} ${record.path || ""}`),
    el("td", { class: record.decision === "admitted" ? "admitted" : "refused" }, record.decision || record.action || ""),
    el("td", {}, record.reason || ""),
    el("td", { class: "json" }, compact(record.original)),
    el("td", { class: "json" }, compact(record.rewritten)),
    el("td", {}, ltp),
    el("td", {}, band),
  ];
  if (explainWith && record.decision === "refused" && record.audit_id) {
    const said = el("span", { class: "explained" });
    cells.push(el("td", {}, el("button", {
      type: "button",
      class: "explain",
      onclick: async () => { said.textContent = await explainWith(record.audit_id); },
    }, "Why?"), said));
  }
  return el("tr", { class: "decision" }, ...cells);
}
