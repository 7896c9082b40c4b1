// moor dashboard: the API's own client, signed in with the session cookie,
// kept live by the websocket of events. Pages have paths of their own
// (/containers/NAME, /catalog, /admin/users, ...), served the same page by
// moor, so every view can be bookmarked, reloaded and shared.

import { $, $$, el, api, hooks, field, showFieldError, clearFieldErrors, seg } from "./lib.js";
import { state, can, canInstance, roleIn, href, inProject, apiBase, nav, listeners, maxEvents, DEFAULT_PROJECT } from "./state.js";
import * as containers from "./containers.js";
import * as catalog from "./catalog.js";
import * as admin from "./admin.js";
import * as projects from "./projects.js";
import * as stacks from "./stacks.js";

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

// Pages of a project: the default project's at the paths they always had,
// another project's under /projects/PROJECT/ (its list at
// /projects/PROJECT/containers), as the API nests them.
const pages = [
  { re: /^\/$/, id: "containers", mod: containers.list },
  { re: /^\/containers\/([a-z0-9-]+)$/, id: "container", mod: containers.detail },
  { re: /^\/catalog$/, id: "catalog", mod: catalog.list },
  { re: /^\/catalog\/([^/]+)$/, id: "deploy", mod: catalog.deploy },
  { re: /^\/events$/, id: "events", mod: containers.events },
  { re: /^\/stacks$/, id: "stacks", mod: stacks.list },
  { re: /^\/stacks\/([a-z0-9-]+)$/, id: "stack", mod: stacks.detail },
  // Pages of no one project: the current one stays what it was.
  { re: /^\/projects$/, id: "projects", mod: projects.list, global: true },
  { re: /^\/projects\/([a-z0-9-]+)$/, id: "project", mod: projects.detail, global: true },
  { re: /^\/admin\/users$/, id: "users", mod: admin.users, role: "admin", global: true },
  { re: /^\/admin\/keys$/, id: "keys", mod: admin.keys, role: "admin", global: true },
  { re: /^\/admin\/webhooks$/, id: "webhooks", mod: admin.webhooks, role: "admin", global: true },
  { re: /^\/account$/, id: "account", mod: admin.account, global: true },
];
const scopedPath = /^\/projects\/([a-z0-9-]+)(\/(?:containers|catalog|events|stacks)(?:\/[^/]+)?)$/;

// listOf is the list a page of one thing belongs to: where the switcher
// goes in another project, which has no such thing.
const listOf = { container: "/", stack: "/stacks" };

// resolve finds the page of a path and the project it is in (null for a
// page of no project).
function resolve(path) {
  const m = path.match(scopedPath);
  const rest = m ? (m[2] === "/containers" ? "/" : m[2]) : path;
  const page = pages.find((p) => p.re.test(rest) && !(m && p.global) && (!p.role || canInstance(p.role)));
  if (!page) return { page: null, params: [], project: null, rest };
  return { page, params: rest.match(page.re).slice(1).map(decodeURIComponent), project: page.global ? null : m ? m[1] : DEFAULT_PROJECT, rest };
}

// firstProject is where a user lands: the default project, or for one who
// cannot read it (a member of some projects only) the first of theirs.
function firstProject() {
  if (can("viewer", DEFAULT_PROJECT)) return DEFAULT_PROJECT;
  const mine = [...state.projects.keys()].filter((p) => can("viewer", p)).sort();
  return mine[0] || Object.keys(state.user?.projects || {}).sort()[0] || DEFAULT_PROJECT;
}

let current = null;
let routing = 0;

async function route() {
  if (!state.user) return;
  const token = ++routing;
  let { page, params, project, rest } = resolve(location.pathname);
  // An old link to the default project's pages, for a user who cannot read
  // it: the same page of their first project.
  if (project === DEFAULT_PROJECT && !location.pathname.startsWith("/projects/") && !can("viewer", DEFAULT_PROJECT)) {
    const first = firstProject();
    if (first !== DEFAULT_PROJECT) {
      const to = listOf[page.id] || rest;
      history.replaceState(null, "", href(to, first));
      project = first;
      if (listOf[page.id]) ({ page, params } = resolve(to));
    }
  }
  if (project === DEFAULT_PROJECT && location.pathname.startsWith("/projects/")) history.replaceState(null, "", rest + location.search);
  const want = project || state.project || firstProject();
  if (want !== state.project) {
    if (current?.mod.hide) current.mod.hide();
    current = null;
    await useProject(want);
    if (token !== routing) return;
  }
  if (current?.mod.hide) current.mod.hide();
  for (const s of $$(".page")) s.hidden = true;
  const section = $(`#page-${page ? page.id : "missing"}`);
  section.hidden = false;
  current = page || null;
  const near = { container: "containers", deploy: "catalog", project: "projects", stack: "stacks" };
  for (const a of $$("#nav a")) {
    const active = page && (a.dataset.page === page.id || a.dataset.page === near[page.id]);
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (page) page.mod.show(...params);
  else document.title = "Not found · moor";
}

// useProject makes project the current one: its containers and events
// are read, the links and controls of the pages follow it.
async function useProject(project) {
  state.project = project;
  state.containers = new Map();
  state.asked.clear();
  for (const t of pending.values()) clearTimeout(t);
  pending.clear();
  showProject();
  await Promise.all([reloadAll(), backfill(project)]);
}

// showProject updates what shows the current project: the switcher, the
// links of the project's pages, the controls of its roles, who one is.
function showProject() {
  const sel = $("#project-select");
  const names = [...new Set([...state.projects.keys(), state.project])].sort((a, b) =>
    (b === DEFAULT_PROJECT) - (a === DEFAULT_PROJECT) || a.localeCompare(b));
  if ([...sel.options].map((o) => o.value).join() !== names.join()) {
    sel.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
  }
  sel.value = state.project;
  for (const a of $$("a[data-scoped]")) a.setAttribute("href", href(a.dataset.scoped));
  for (const e of $$("[data-current-project]")) e.textContent = state.project;
  for (const e of $$("[data-role]")) e.hidden = !can(e.dataset.role);
  for (const e of $$("[data-instance-role]")) e.hidden = !canInstance(e.dataset.instanceRole);
  const u = state.user;
  // One's role here: the instance-wide one, or for a member the role in
  // the current project.
  $("#whoami").textContent = `${u.name} (${u.role || roleIn() || "no role"})`;
  $("#whoami").title = u.role ? `${u.role} in every project` : `${roleIn() || "no role"} in ${state.project}; no instance-wide role`;
}

// Another project in the switcher: the same page there (a container's page:
// the list), or its containers from a page of no project.
$("#project-select").addEventListener("change", (ev) => {
  const to = ev.target.value;
  const { page, rest } = resolve(location.pathname);
  const same = page && !page.global ? listOf[page.id] || rest : "/";
  nav.go(href(same, to));
});

nav.go = async (path, { replace = false } = {}) => {
  if (path !== location.pathname + location.search) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  await route();
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
  $("#project-switch").hidden = true;
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
  state.project = ""; // route() reads the containers of the page's project
  $("#login").hidden = true;
  $("#setup").hidden = true;
  $("#live").hidden = false;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  $("#whoami").hidden = false;
  $("#project-switch").hidden = false;
  connect(); // first, so nothing between the reads and the stream is lost
  const [{ types }, { projects: ps }, { events }] = await Promise.all([
    api("GET", "/api/v1/types"), api("GET", "/api/v1/projects"), api("GET", "/api/v1/events?tail=100"),
  ]);
  state.types = new Map(types.map((t) => [t.id, t]));
  state.projects = new Map(ps.map((p) => [p.name, p]));
  mergeEvents(events);
  if (location.pathname === "/" && location.search.includes("setup=")) history.replaceState(null, "", "/");
  await route();
}

// mergeEvents takes events read from the API into the recent ones: the
// backfill and the stream may overlap, so each seq is kept once.
function mergeEvents(events) {
  const seen = new Set(state.events.map((e) => e.seq));
  state.events = [...events.filter((e) => !seen.has(e.seq)), ...state.events].sort((a, b) => a.seq - b.seq).slice(-maxEvents);
}

// backfill reads a project's recent events, which the newest of every
// project may have left out.
async function backfill(project) {
  try {
    const { events } = await api("GET", `/api/v1/events?tail=100&project=${seg(project)}`);
    mergeEvents(events);
  } catch { /* the stream fills in */ }
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
    // The stream carries every readable project's events; the pages show
    // the current project's.
    if (ev.container && (ev.project || DEFAULT_PROJECT) === state.project) refreshSoon(ev.container);
    if (ev.kind.startsWith("project.")) reloadProjectsSoon();
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
  const project = state.project;
  try {
    const c = await api("GET", `${apiBase(project)}/${seg(name)}`);
    if (project !== state.project) return;
    state.containers.set(name, c);
  } catch (e) {
    if (e.status !== 404 || project !== state.project) return;
    state.containers.delete(name);
  }
  containers.changed(name);
  stacks.changed(name);
}

async function reloadAll() {
  const project = state.project;
  try {
    const { containers: cs } = await api("GET", apiBase(project));
    if (project !== state.project) return;
    state.containers = new Map(cs.map((c) => [c.name, c]));
    $("#containers-error").textContent = "";
  } catch (e) {
    // The next event or reconnect tries again.
    if (project === state.project) $("#containers-error").textContent = e.message;
  }
  containers.changed(null);
  stacks.changed(null);
}

// Projects and one's own roles in them change with project events (a
// project created or deleted, a member added): one read per burst.
let projectsTimer = null;
function reloadProjectsSoon() {
  clearTimeout(projectsTimer);
  projectsTimer = setTimeout(async () => {
    try {
      const [{ projects: ps }, { user }] = await Promise.all([api("GET", "/api/v1/projects"), api("GET", "/api/v1/session")]);
      if (!state.user) return;
      state.user = user;
      state.projects = new Map(ps.map((p) => [p.name, p]));
      showProject();
      projects.changed();
    } catch { /* the next event tries again */ }
  }, 150);
}

start();
