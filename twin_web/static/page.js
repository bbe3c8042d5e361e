// The page's small helpers: find an element, escape text for HTML, reach this server's API.

const ROOT = document.body.dataset.root || "/";

// the first element matching a CSS selector
export function $(sel, root = document) {
  return root.querySelector(sel);
}

// text made safe to put into HTML
export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// colours given as data-bg="#rrggbb" in HTML made from strings, set through the CSSOM: the page's
// Content-Security-Policy refuses inline style attributes (style-src 'self'), not element.style
export function paint(root) {
  for (const e of root.querySelectorAll("[data-bg]")) e.style.background = e.dataset.bg;
  return root;
}

// the absolute URL of a path of this server (relative to where the app is mounted), with a query
export function url(path, query = {}) {
  const u = new URL(ROOT + path.replace(/^\//, ""), window.location.href);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  return u.href;
}

// an answer of the API that is not 2xx: its message is the server's description (which names the parameter)
export class RequestError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export async function getJSON(href) {
  const resp = await fetch(href, { headers: { Accept: "application/json" } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new RequestError(body?.description || `HTTP ${resp.status}`, resp.status, body);
  return body;
}
