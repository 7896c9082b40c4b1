// moor dashboard: the API's own client, signed in with the session cookie,
// kept live by the websocket of events. Data reaches the page only through
// textContent and attributes, never as HTML.

const $ = (sel, el = document) => el.querySelector(sel);
const ROLES = { viewer: 1, operator: 2, admin: 3 };

const state = {
  user: null,
  types: new Map(),
  containers: new Map(), // name -> container
  seq: null,             // last event seen, to resume the stream after a break
  ws: null,
  backoff: 500,
  selected: null,
  pending: new Map(),    // name -> timer of a refresh
};

class APIError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.field = body?.error?.field;
  }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 204) return null;
  const json = (r.headers.get("Content-Type") || "").includes("json");
  const data = json ? await r.json() : await r.text();
  if (r.status === 401 && path !== "/api/v1/session") {
    showLogin("Your session ended: sign in again.");
  }
  if (!r.ok) throw new APIError(r.status, json ? data : null);
  return data;
}

// A form's control by name (form.name would be the form's own attribute).
const field = (form, name) => form.elements.namedItem(name);

const can = (role) => state.user && ROLES[state.user.role] >= ROLES[role];

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children);
  return e;
}

// --- sign-in -------------------------------------------------------------

function showLogin(message) {
  state.user = null;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  $("#live").hidden = true; // nothing to be live about before signing in
  $("#setup").hidden = true;
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#whoami").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function start() {
  try {
    const { user } = await api("GET", "/api/v1/session");
    await enter(user);
  } catch (e) {
    if (e.status !== 401) $("#login-error").textContent = e.message;
    showLogin($("#login-error").textContent);
    try {
      const { needed } = await api("GET", "/api/v1/setup");
      if (needed) showSetup();
    } catch { /* sign-in stays */ }
  }
}

// First run: no user yet; the token comes from moor's output (?setup=).
function showSetup() {
  $("#login").hidden = true;
  $("#setup").hidden = false;
  const token = new URLSearchParams(location.search).get("setup");
  if (token) field($("#setup-form"), "token").value = token;
  field($("#setup-form"), "username").focus();
}

$("#setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  $("#setup-error").textContent = "";
  try {
    const { user } = await api("POST", "/api/v1/setup", {
      username: field(f, "username").value.trim(), password: field(f, "password").value, token: field(f, "token").value.trim(),
    });
    field(f, "password").value = "";
    history.replaceState(null, "", location.pathname); // the token is spent
    $("#setup").hidden = true;
    await enter(user);
  } catch (e) {
    $("#setup-error").textContent = e.message;
  }
});

async function enter(user) {
  state.user = user;
  $("#login").hidden = true;
  $("#live").hidden = false;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  $("#whoami").textContent = `${user.name} (${user.role})`;
  $("#deploy").hidden = !can("operator");
  connect(); // first, so nothing between the list and the stream is lost
  const [{ types }, { containers }] = await Promise.all([api("GET", "/api/v1/types"), api("GET", "/api/v1/containers")]);
  state.types = new Map(types.map((t) => [t.id, t]));
  fillTypes();
  state.containers = new Map(containers.map((c) => [c.name, c]));
  renderTable();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  $("#login-error").textContent = "";
  try {
    const { user } = await api("POST", "/api/v1/session", { username: field(f, "username").value.trim(), password: field(f, "password").value });
    field(f, "password").value = "";
    await enter(user);
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});

$("#logout").addEventListener("click", async () => {
  try { await api("DELETE", "/api/v1/session"); } finally { showLogin("Signed out."); }
});

// --- live updates --------------------------------------------------------

function setLive(on) {
  const l = $("#live");
  l.textContent = on ? "live" : "reconnecting…";
  l.className = "live " + (on ? "on" : "off");
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const after = state.seq === null ? "" : `?after=${state.seq}`;
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws${after}`, ["moor.v1"]);
  state.ws = ws;
  ws.onopen = () => { setLive(true); state.backoff = 500; };
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    state.seq = ev.seq;
    logEvent(ev);
    if (ev.container) refreshSoon(ev.container);
  };
  ws.onclose = (ce) => {
    setLive(false);
    if (!state.user) return;
    // 4410: the events since state.seq were pruned; start afresh.
    if (ce.code === 4410) state.seq = null;
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
    // A stream that never delivered an event cannot resume: read all again.
    if (state.seq === null) reloadAll();
  };
}

// The newest events first, at most 50.
function logEvent(ev) {
  const log = $("#event-log");
  const who = ev.container ? ` ${ev.container}` : "";
  log.prepend(el("li", { "data-kind": ev.kind, text: `${new Date(ev.time).toLocaleTimeString()} ${ev.kind}${who} (${ev.actor})` }));
  while (log.children.length > 50) log.lastChild.remove();
}

// Events come in bursts (created, creating, running): one read per burst.
function refreshSoon(name) {
  if (state.pending.has(name)) return;
  state.pending.set(name, setTimeout(() => { state.pending.delete(name); refresh(name); }, 60));
}

async function refresh(name) {
  try {
    const c = await api("GET", `/api/v1/containers/${encodeURIComponent(name)}`);
    state.containers.set(name, c);
  } catch (e) {
    if (e.status !== 404) return;
    state.containers.delete(name);
  }
  renderTable();
  if (state.selected === name) showDetail(name);
}

async function reloadAll() {
  try {
    const { containers } = await api("GET", "/api/v1/containers");
    state.containers = new Map(containers.map((c) => [c.name, c]));
    renderTable();
  } catch { /* the next event or reconnect tries again */ }
}

// --- containers ----------------------------------------------------------

function renderTable() {
  const body = $("#containers tbody");
  const rows = [...state.containers.values()].sort((a, b) => a.name.localeCompare(b.name));
  body.replaceChildren(...rows.map(row));
  $("#empty").hidden = rows.length > 0;
}

function row(c) {
  const actions = el("td", { class: "actions" });
  if (can("operator")) {
    const act = (label, fn) => el("button", { text: label, "data-action": label.toLowerCase(), onclick: fn });
    if (c.desired_state === "running") {
      actions.append(act("Stop", () => op(c.name, "POST", "stop")), act("Restart", () => op(c.name, "POST", "restart")));
    } else {
      actions.append(act("Start", () => op(c.name, "POST", "start")));
    }
    const replicas = el("input", { type: "number", min: "0", max: "20", value: String(c.replicas), class: "replicas", "aria-label": "replicas" });
    actions.append(replicas, act("Scale", () => op(c.name, "POST", "scale", { replicas: Number(replicas.value) })));
    const rm = act("Remove", () => {
      if (rm.dataset.armed) return op(c.name, "DELETE");
      rm.dataset.armed = "1";
      rm.textContent = "Really remove?";
      setTimeout(() => { delete rm.dataset.armed; rm.textContent = "Remove"; }, 4000);
    });
    actions.append(rm);
  }
  const url = c.url ? el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: c.url }) : "";
  return el("tr", { "data-name": c.name },
    el("td", {}, el("button", { class: "name", text: c.name, onclick: () => showDetail(c.name) })),
    el("td", { text: c.type }),
    el("td", {}, el("span", { class: `status ${c.status}`, title: c.status_reason || "", text: c.status })),
    el("td", { text: String(c.replicas) }),
    el("td", { text: c.internal_ip || "" }),
    el("td", {}, url),
    actions);
}

async function op(name, method, action, body) {
  const path = `/api/v1/containers/${encodeURIComponent(name)}` + (action ? `/${action}` : "");
  try {
    const c = await api(method, path, body);
    if (c && c.name) { state.containers.set(c.name, c); renderTable(); }
  } catch (e) {
    alertLine(`${name}: ${e.message}`);
  }
}

function alertLine(msg) {
  $("#deploy-error").textContent = msg;
}

async function showDetail(name) {
  state.selected = name;
  const c = state.containers.get(name);
  $("#detail").hidden = false;
  $("#detail-name").textContent = name;
  $("#detail-reason").textContent = c?.status_reason || "";
  try {
    const { history } = await api("GET", `/api/v1/containers/${encodeURIComponent(name)}/history`);
    $("#detail-history").replaceChildren(...history.map((h) =>
      el("li", { text: `${new Date(h.time).toLocaleString()} ${h.action} by ${h.actor}` })));
  } catch (e) {
    $("#detail-history").replaceChildren(el("li", { text: e.message }));
  }
  $("#detail-logs-box").hidden = !can("operator") || !c;
  if (can("operator") && c) loadLogs(name);
}

async function loadLogs(name) {
  try {
    const text = await api("GET", `/api/v1/containers/${encodeURIComponent(name)}/logs?tail=200`);
    $("#detail-logs").textContent = typeof text === "string" ? text : JSON.stringify(text);
  } catch (e) {
    $("#detail-logs").textContent = e.message;
  }
}

$("#detail-logs-refresh").addEventListener("click", () => state.selected && loadLogs(state.selected));

// --- deploy --------------------------------------------------------------

function fillTypes() {
  const sel = field($("#deploy-form"), "type");
  const types = [...state.types.values()].sort((a, b) => a.title.localeCompare(b.title));
  sel.replaceChildren(...types.map((t) => el("option", { value: t.id, text: `${t.title} (${t.id})` })));
  fillEnv();
}

function fillEnv() {
  const t = state.types.get(field($("#deploy-form"), "type").value);
  const box = $("#env");
  box.replaceChildren(el("legend", { text: "Settings" }));
  for (const e of t?.env || []) {
    const name = `env.${e.name}`;
    let input;
    if (e.choices?.length) {
      input = el("select", { name }, ...(e.required ? [] : [el("option", { value: "", text: e.default ? `default (${e.default})` : "—" })]),
        ...e.choices.map((c) => el("option", { value: c, text: c })));
    } else {
      const placeholder = e.generate ? "generated" : e.default || "";
      input = el("input", { name, placeholder, type: e.secret ? "password" : "text", autocomplete: "off",
        required: e.required && !e.default && !e.generate });
    }
    box.append(el("label", { title: e.description || "" }, e.label || e.name, input));
  }
}

field($("#deploy-form"), "type").addEventListener("change", fillEnv);

$("#deploy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  for (const bad of f.querySelectorAll(".bad")) bad.classList.remove("bad");
  $("#deploy-error").textContent = "";
  const env = {};
  for (const input of f.querySelectorAll("#env [name]")) {
    if (input.value !== "") env[input.name.slice(4)] = input.value;
  }
  const req = { name: field(f, "name").value.trim(), type: field(f, "type").value, replicas: Number(field(f, "replicas").value) || 1, env };
  try {
    const c = await api("POST", "/api/v1/containers", req);
    state.containers.set(c.name, c);
    renderTable();
    field(f, "name").value = "";
  } catch (e) {
    $("#deploy-error").textContent = e.message;
    const input = e.field && f.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (input) { input.classList.add("bad"); input.focus(); }
  }
});

start();
