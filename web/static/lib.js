// Shared pieces of the dashboard: the API client, DOM building (data goes
// in through textContent and attributes only, never as HTML), and the
// wording of states and times.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export class APIError extends Error {
  constructor(status, body) {
    super(body?.error?.message || (status ? `HTTP ${status}` : "moor cannot be reached"));
    this.status = status;
    this.field = body?.error?.field;
  }
}

// onUnauthorized is called when the session has ended (set by app.js).
export const hooks = { onUnauthorized: () => {} };

export async function api(method, path, body, opts = {}) {
  const init = { method, headers: {}, credentials: "same-origin", signal: opts.signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new APIError(0, null);
  }
  if (opts.raw && r.ok) return r;
  if (r.status === 204) return null;
  const isJSON = (r.headers.get("Content-Type") || "").includes("json");
  const data = isJSON ? await r.json() : await r.text();
  if (r.status === 401 && !opts.quiet401) hooks.onUnauthorized();
  if (!r.ok) throw new APIError(r.status, isJSON ? data : null);
  return data;
}

export const seg = encodeURIComponent;

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

// A form's control by name (form.name would be the form's own attribute).
export const field = (form, name) => form.elements.namedItem(name);

// --- words and times --------------------------------------------------------

export function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function ago(t) {
  if (!t) return "never";
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export function timeEl(t, fmt = when) {
  return el("time", { datetime: t, title: when(t), text: fmt(t) });
}

export function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "kB", "MB", "GB", "TB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log10(n) / 3));
  const v = n / 10 ** (3 * i);
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
}

// displayState is the word shown for a container: what it is doing, not
// only what was last observed. Transitions come from the desired state,
// the generation not yet made real, and what this page itself just asked.
export function displayState(c, asked) {
  if (!c) return "";
  if (c.desired_state === "removed" || c.status === "removing") return "removing";
  const busy = c.observed_generation < c.generation;
  if (c.desired_state === "stopped" && c.status !== "stopped" && c.status !== "failed") return "stopping";
  if (c.desired_state === "running" && c.status === "stopped") return "starting";
  if (c.status === "failed") return "failed";
  if (busy && asked) return asked;
  if (busy && c.status === "running") return "updating";
  if (c.status === "running" && c.instances?.some((i) => i.health === "unhealthy")) return "unhealthy";
  return c.status;
}

// The verb of an action while it is in progress.
export const progressive = { start: "starting", stop: "stopping", restart: "restarting", scale: "scaling", update: "updating",
  redeploy: "redeploying", remove: "removing" };

// readyOf is the number of c's replicas running and not (yet) unhealthy.
export const readyOf = (c) => (c.instances || []).filter((i) => i.status === "running" && i.health !== "unhealthy" && i.health !== "starting").length;

export const readyCount = (c) => `${readyOf(c)}/${c.replicas}`;

// --- forms ----------------------------------------------------------------

// showFieldError puts the server's message next to the control it names (by
// its name attribute, or env.NAME), or into the form's own error line.
export function showFieldError(form, err, fallback) {
  clearFieldErrors(form);
  const name = err.field;
  // "aliases[1]" or "publish[0].host_port" is reported on the field as a whole.
  const input = name && (form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector(`[name="${CSS.escape(name.replace(/\[\d+\].*$/, ""))}"]`));
  if (input) {
    const fold = input.closest("details");
    if (fold) fold.open = true;
    input.classList.add("bad");
    input.setAttribute("aria-invalid", "true");
    const id = `${form.id}-${input.name}-error`.replace(/[^a-zA-Z0-9_-]/g, "_");
    const msg = el("p", { class: "field-error", id, text: err.message });
    // Under the control, inside its label's block (a grid cell of its own).
    const label = input.closest("label");
    if (label) label.append(msg);
    else input.after(msg);
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
    input.focus();
    return;
  }
  fallback.textContent = err.message;
}

export function clearFieldErrors(form) {
  for (const bad of form.querySelectorAll(".bad")) {
    bad.classList.remove("bad");
    bad.removeAttribute("aria-invalid");
    const ids = (bad.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
    if (ids.length) bad.setAttribute("aria-describedby", ids.join(" "));
    else bad.removeAttribute("aria-describedby");
  }
  for (const m of form.querySelectorAll(".field-error")) m.remove();
  for (const m of form.querySelectorAll(".error")) m.textContent = "";
}

// confirmButton makes a button that acts on the second click within four
// seconds; the first turns it into the question.
export function confirmButton(label, question, action, props = {}) {
  const b = el("button", { type: "button", class: "danger", text: label, ...props });
  let timer;
  b.addEventListener("click", () => {
    if (b.dataset.armed) {
      clearTimeout(timer);
      delete b.dataset.armed;
      b.textContent = label;
      action();
      return;
    }
    b.dataset.armed = "1";
    b.textContent = question;
    timer = setTimeout(() => { delete b.dataset.armed; b.textContent = label; }, 4000);
  });
  b.addEventListener("blur", () => { clearTimeout(timer); delete b.dataset.armed; b.textContent = label; });
  return b;
}

export function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; }, 3000);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    toast("Copying is not allowed here: select the text and copy it by hand");
  }
}

// keyed replaces a list's children with one per item, reusing the nodes of
// items that did not change (same key and same version), so a live update
// neither flickers nor takes the keyboard focus from an untouched row.
export function keyed(parent, items, key, version, render) {
  const old = new Map();
  for (const n of parent.children) old.set(n.dataset.key, n);
  const focused = document.activeElement;
  const focusedKey = parent.contains(focused) ? focused.closest("[data-key]")?.dataset.key : null;
  const focusedAction = focused?.dataset?.action;
  const nodes = items.map((it) => {
    const k = key(it);
    const v = version(it);
    const n = old.get(k);
    if (n && n.dataset.version === v) return n;
    const fresh = render(it);
    fresh.dataset.key = k;
    fresh.dataset.version = v;
    return fresh;
  });
  parent.replaceChildren(...nodes);
  if (focusedKey && !parent.contains(focused) && focusedAction) {
    parent.querySelector(`[data-key="${CSS.escape(focusedKey)}"] [data-action="${CSS.escape(focusedAction)}"]`)?.focus();
  }
}
