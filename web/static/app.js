// moor dashboard: the API's own client, signed in with the session cookie,
// kept live by the websocket of events. Pages have paths of their own
// (/containers/NAME, /catalog, /admin/users, ...), served the same page by
// moor, so every view can be bookmarked, reloaded and shared.

import { $, $$, api, hooks, field, showFieldError, clearFieldErrors, seg } from "./lib.js";
import { state, can, nav, listeners, maxEvents } from "./state.js";
import * as containers from "./containers.js";
import * as catalog from "./catalog.js";
import * as admin from "./admin.js";

// --- theme ------------------------------------------------------------------

const themes = ["auto", "light", "dark"];
const themeNames = { auto: "automatic", light: "light", dark: "dark" };

function applyTheme(t) {
  if (!themes.includes(t)) t = "auto";
  if (t === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  $("#theme").setAttribute("aria-label", `Theme: ${themeNames[t]} (change)`);
  $("#theme").title = `Theme: ${themeNames[t]}`;
  $("#theme-select").value = t;
  try { localStorage.setItem("moor.theme", t); } catch { /* private mode */ }
}

applyTheme((() => { try { return localStorage.getItem("moor.theme"); } catch { return null; } })());
$("#theme").addEventListener("click", () => {
  const cur = document.documentElement.dataset.theme || "auto";
  applyTheme(themes[(themes.indexOf(cur) + 1) % themes.length]);
});
$("#theme-select").addEventListener("change", (ev) => applyTheme(ev.target.value));

// --- pages and paths ------------------------------------------------------------

const pages = [
  { re: /^\/$/, id: "containers", mod: containers.list },
  { re: /^\/containers\/([a-z0-9-]+)$/, id: "container", mod: containers.detail },
  { re: /^\/catalog$/, id: "catalog", mod: catalog.list },
  { re: /^\/catalog\/([^/]+)$/, id: "deploy", mod: catalog.deploy },
  { re: /^\/events$/, id: "events", mod: containers.events },
  { re: /^\/admin\/users$/, id: "users", mod: admin.users, role: "admin" },
  { re: /^\/admin\/keys$/, id: "keys", mod: admin.keys, role: "admin" },
  { re: /^\/admin\/webhooks$/, id: "webhooks", mod: admin.webhooks, role: "admin" },
  { re: /^\/account$/, id: "account", mod: admin.account },
];

let current = null;

function route() {
  if (!state.user) return;
  const path = location.pathname;
  let page = pages.find((p) => p.re.test(path) && (!p.role || can(p.role)));
  let params = [];
  if (page) params = path.match(page.re).slice(1).map(decodeURIComponent);
  if (current?.mod.hide) current.mod.hide();
  for (const s of $$(".page")) s.hidden = true;
  const section = $(`#page-${page ? page.id : "missing"}`);
  section.hidden = false;
  current = page || null;
  for (const a of $$("#nav a")) {
    const active = page && (a.dataset.page === page.id || (a.dataset.page === "containers" && page.id === "container") ||
      (a.dataset.page === "catalog" && page.id === "deploy"));
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (page) page.mod.show(...params);
  else document.title = "Not found · moor";
}

nav.go = (path, { replace = false } = {}) => {
  if (path !== location.pathname + location.search) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  route();
  // The new page's heading takes the focus, so keyboard and screen reader
  // users start at its top.
  const h = $(".page:not([hidden]) h1");
  if (h) h.focus({ preventScroll: true });
  window.scrollTo(0, 0);
};

window.addEventListener("popstate", route);
document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-nav]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  nav.go(a.getAttribute("href"));
});
// "/" jumps to the search of the page, as on most sites.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "/" || ev.target.closest("input, textarea, select, [contenteditable]")) return;
  const search = $(".page:not([hidden]) input[type=search]");
  if (search) { ev.preventDefault(); search.focus(); }
});

// --- sign-in ------------------------------------------------------------------

function showOnly(id) {
  for (const s of [...$$(".page"), $("#setup"), $("#login")]) s.hidden = s.id !== id;
}

function showLogin(message) {
  state.user = null;
  if (ws) { ws.onclose = null; ws.close(); ws = null; }
  if (current?.mod.hide) current.mod.hide();
  current = null;
  $("#live").hidden = true; // nothing to be live about before signing in
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#whoami").hidden = true;
  showOnly("login");
  $("#login-error").textContent = message || "";
  document.title = "Sign in · moor";
}
hooks.onUnauthorized = () => { if (state.user) showLogin("Your session ended: sign in again."); };

async function start() {
  try {
    const { user } = await api("GET", "/api/v1/session", undefined, { quiet401: true });
    await enter(user);
  } catch (e) {
    showLogin(e.status === 401 ? "" : e.message);
    try {
      const { needed } = await api("GET", "/api/v1/setup");
      if (needed) showSetup();
    } catch { /* sign-in stays */ }
  }
}

// First run: no user yet; the token comes from moor's output (?setup=).
function showSetup() {
  showOnly("setup");
  document.title = "Welcome · moor";
  const token = new URLSearchParams(location.search).get("setup");
  if (token) field($("#setup-form"), "token").value = token;
  field($("#setup-form"), "username").focus();
}

$("#setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  try {
    const { user } = await api("POST", "/api/v1/setup", {
      username: field(f, "username").value.trim(), password: field(f, "password").value, token: field(f, "token").value.trim(),
    });
    field(f, "password").value = "";
    history.replaceState(null, "", "/"); // the token is spent
    await enter(user);
  } catch (e) {
    showFieldError(f, e, $("#setup-error"));
  }
});

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  $("#login-error").textContent = "";
  try {
    const { user } = await api("POST", "/api/v1/session", { username: field(f, "username").value.trim(), password: field(f, "password").value },
      { quiet401: true });
    field(f, "password").value = "";
    await enter(user);
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});

$("#logout").addEventListener("click", async () => {
  try { await api("DELETE", "/api/v1/session"); } finally { showLogin("Signed out."); }
});

async function enter(user) {
  state.user = user;
  $("#login").hidden = true;
  $("#setup").hidden = true;
  $("#live").hidden = false;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  $("#whoami").hidden = false;
  $("#whoami").textContent = `${user.name} (${user.role})`;
  for (const e of $$("[data-role]")) e.hidden = !can(e.dataset.role);
  connect(); // first, so nothing between the reads and the stream is lost
  const [{ types }, { containers: cs }, { events }] = await Promise.all([
    api("GET", "/api/v1/types"), api("GET", "/api/v1/containers"), api("GET", "/api/v1/events?tail=100"),
  ]);
  state.types = new Map(types.map((t) => [t.id, t]));
  state.containers = new Map(cs.map((c) => [c.name, c]));
  // The backfill and the stream may overlap: keep each seq once.
  const seen = new Set(state.events.map((e) => e.seq));
  state.events = [...events.filter((e) => !seen.has(e.seq)), ...state.events].sort((a, b) => a.seq - b.seq).slice(-maxEvents);
  if (location.pathname === "/" && location.search.includes("setup=")) history.replaceState(null, "", "/");
  route();
}

// --- live updates -----------------------------------------------------------------

let ws = null;
let backoff = 500;
let lastSeq = null; // to resume the stream after a break
const pending = new Map(); // name -> timer of a refresh

function setLive(on) {
  const l = $("#live");
  l.textContent = on ? "live" : "reconnecting…";
  l.className = "live " + (on ? "on" : "off");
  l.title = on ? "changes appear as they happen" : "the live connection broke; trying again";
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const after = lastSeq === null ? "" : `?after=${lastSeq}`;
  const sock = new WebSocket(`${proto}://${location.host}/api/v1/ws${after}`, ["moor.v1"]);
  ws = sock;
  sock.onopen = () => { setLive(true); backoff = 500; };
  sock.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    lastSeq = ev.seq;
    if (!state.events.length || state.events[state.events.length - 1].seq < ev.seq) {
      state.events.push(ev);
      if (state.events.length > maxEvents) state.events.shift();
    }
    if (ev.container) refreshSoon(ev.container);
    for (const l of listeners) l(ev);
  };
  sock.onclose = (ce) => {
    setLive(false);
    if (!state.user || ws !== sock) return;
    // 4410: the events since lastSeq were pruned; start afresh.
    if (ce.code === 4410) lastSeq = null;
    setTimeout(() => { if (state.user && ws === sock) connect(); }, backoff);
    backoff = Math.min(backoff * 2, 10000);
    // A stream that cannot resume: read everything again.
    if (lastSeq === null) reloadAll();
  };
}

// Events come in bursts (created, creating, running): one read per burst.
function refreshSoon(name) {
  if (pending.has(name)) return;
  pending.set(name, setTimeout(() => { pending.delete(name); refresh(name); }, 60));
}

async function refresh(name) {
  try {
    state.containers.set(name, await api("GET", `/api/v1/containers/${seg(name)}`));
  } catch (e) {
    if (e.status !== 404) return;
    state.containers.delete(name);
  }
  containers.changed(name);
}

async function reloadAll() {
  try {
    const { containers: cs } = await api("GET", "/api/v1/containers");
    state.containers = new Map(cs.map((c) => [c.name, c]));
    containers.changed(null);
  } catch { /* the next event or reconnect tries again */ }
}

start();
