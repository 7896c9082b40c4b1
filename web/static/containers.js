// The containers: the overview, one page per container, and the event log.

import { $, el, api, seg, field, keyed, confirmButton, showFieldError, clearFieldErrors, copyText,
  displayState, progressive, readyCount, readyOf, timeEl, ago } from "./lib.js";
import { state, can, href, apiBase, inProject, listeners, remember, askedOf, DEFAULT_PROJECT } from "./state.js";
import { eventItem, eventWords, details, stackLink, Pull } from "./events.js";

const path = (name, action = "") => `${apiBase()}/${seg(name)}${action ? "/" + action : ""}`;
export const stateOf = (c) => displayState(c, progressive[askedOf(c)]);

// act asks for an action and shows the answer at once (the events follow);
// errors go next to the control that caused them (into errBox).
async function act(c, action, errBox, body) {
  errBox.textContent = "";
  const method = action === "remove" ? "DELETE" : action === "update" ? "PATCH" : "POST";
  try {
    const answer = await api(method, path(c.name, ["remove", "update"].includes(action) ? "" : action), body);
    if (answer?.name) {
      remember(answer, action);
      state.containers.set(answer.name, answer);
      changed(answer.name);
    }
    return answer;
  } catch (e) {
    errBox.textContent = e.message;
    throw e;
  }
}

// actionButtons are a container's controls; full adds the redeploys (the
// container's own page).
function actionButtons(c, errBox, full = false) {
  if (!can("operator") || c.desired_state === "removed") return [];
  const b = (label, action, body, key = action) => el("button", { type: "button", text: label, "data-action": key,
    onclick: () => act(c, action, errBox, body).catch(() => {}) });
  const out = [];
  if (c.desired_state === "running") out.push(b("Stop", "stop"), b("Restart", "restart"));
  else out.push(b("Start", "start"));
  if (full) out.push(b("Redeploy", "redeploy"), b("Pull and redeploy", "redeploy", { pull: true }, "pull-redeploy"));
  out.push(confirmButton("Remove", "Really remove?", () => act(c, "remove", errBox).catch(() => {}), { "data-action": "remove" }));
  return out;
}

export function statusPill(c) {
  const s = stateOf(c);
  return el("span", { class: `status ${s}`, text: s });
}

// reasonText is the status reason, only where it says something.
function reasonText(c) {
  if (!c.status_reason) return "";
  return c.status === "running" && c.observed_generation >= c.generation ? "" : c.status_reason;
}

// secretNames are the variables of c's type whose values are secret.
function secretNames(c) {
  return new Set((state.types.get(c.type)?.env || []).filter((e) => e.secret || e.generate).map((e) => e.name));
}

// --- overview -----------------------------------------------------------------

export const list = {
  collapsed: new Set(), // "PROJECT/STACK" of the groups folded away

  show() {
    document.title = "Containers · moor";
    this.render();
    renderRecent();
  },
  render() {
    const q = $("#containers-filter").value.trim().toLowerCase();
    const all = [...state.containers.values()].sort((a, b) => a.name.localeCompare(b.name));
    const hit = (c) => !q || [c.name, c.type, stateOf(c), c.stack || ""].some((s) => s.toLowerCase().includes(q));
    // A stack's containers are one group, in the list where its name
    // sorts; its services under it unless folded.
    const groups = new Map();
    for (const c of all) if (c.stack) groups.set(c.stack, [...(groups.get(c.stack) || []), c]);
    const items = [];
    for (const c of all) {
      if (!c.stack) {
        if (hit(c)) items.push({ c });
        continue;
      }
      if (groups.get(c.stack)[0] !== c) continue;
      const members = groups.get(c.stack);
      const shown = members.filter(hit);
      if (!shown.length) continue;
      const open = !this.collapsed.has(`${state.project}/${c.stack}`);
      items.push({ stack: c.stack, members, open });
      if (open) items.push(...shown.map((m) => ({ c: m, grouped: true })));
    }
    keyed($("#containers tbody"), items, (it) => (it.c ? it.c.name : `stack:${it.stack}`),
      (it) => JSON.stringify(it.c ? [it.c, stateOf(it.c), !!it.grouped] : [it.members, it.members.map(stateOf), it.open]),
      (it) => (it.c ? row(it.c, it.grouped) : groupRow(it)));
    $("#containers-empty").hidden = all.length > 0;
    $("#containers").hidden = all.length === 0;
  },
  toggle(stack) {
    const k = `${state.project}/${stack}`;
    if (this.collapsed.has(k)) this.collapsed.delete(k);
    else this.collapsed.add(k);
    this.render();
  },
};

$("#containers-filter").addEventListener("input", () => list.render());

function row(c, grouped = false) {
  const errBox = el("p", { class: "row-error", role: "alert" });
  const reason = reasonText(c);
  const url = c.url ? el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: c.url.replace(/^https?:\/\//, "") }) : "";
  return el("tr", { "data-name": c.name, "data-stack": c.stack, class: grouped ? "in-group" : null },
    el("td", { "data-label": "Name" }, el("a", { href: href(`/containers/${seg(c.name)}`), "data-nav": true, class: "name-link", text: c.name }),
      grouped ? el("span", { class: "sub", text: `service ${c.stack_service}` }) : null),
    el("td", { "data-label": "Type", text: state.types.get(c.type)?.title || c.type }),
    el("td", { "data-label": "Status" }, statusPill(c), reason ? el("span", { class: "sub reason-line", text: reason }) : null),
    el("td", { "data-label": "Replicas", class: "replicas", title: "ready / wanted", text: readyCount(c) }),
    el("td", { "data-label": "URL" }, url),
    el("td", { class: "actions" }, el("div", { class: "actions" }, ...actionButtons(c, errBox)), errBox));
}

// stackSummary words the states of a stack's containers: "2/3 running",
// and the others' states ("1 starting"); cls is the pill's colour.
export function stackSummary(cs) {
  const counts = new Map();
  for (const c of cs) counts.set(stateOf(c), (counts.get(stateOf(c)) || 0) + 1);
  const running = counts.get("running") || 0;
  const others = [...counts].filter(([s]) => s !== "running").map(([s, n]) => `${n} ${s}`);
  const cls = !cs.length ? "" : running === cs.length ? "running" : counts.has("failed") ? "failed"
    : (counts.get("stopped") || 0) === cs.length - running ? "stopped" : "pending";
  return { text: `${running}/${cs.length} running`, others: others.join(", "), cls };
}

export function summaryPill(cs) {
  const s = stackSummary(cs);
  return el("span", { class: `status ${s.cls}`, title: s.others || null, text: s.text });
}

// groupRow heads a stack's containers: folds them, names the stack (a
// link to its page) and sums their states up.
function groupRow({ stack, members, open }) {
  const s = stackSummary(members);
  const ready = members.reduce((n, c) => n + readyOf(c), 0);
  const wanted = members.reduce((n, c) => n + c.replicas, 0);
  return el("tr", { class: "group", "data-group": stack },
    el("td", { "data-label": "Stack" }, el("div", { class: "group-name" },
      el("button", { type: "button", class: "icon fold", "aria-expanded": String(open), "data-action": "fold",
        "aria-label": `${open ? "Fold" : "Unfold"} the services of stack ${stack}`, text: open ? "▾" : "▸", onclick: () => list.toggle(stack) }),
      el("a", { href: href(`/stacks/${seg(stack)}`), "data-nav": true, class: "name-link", text: stack })),
      el("span", { class: "sub", text: `stack of ${members.length} service${members.length === 1 ? "" : "s"}` })),
    el("td", { "data-label": "Type", text: "compose stack" }),
    el("td", { "data-label": "Status" }, el("span", { class: `status ${s.cls}`, text: s.text }), s.others ? el("span", { class: "sub", text: s.others }) : null),
    el("td", { "data-label": "Replicas", class: "replicas", title: "ready / wanted", text: `${ready}/${wanted}` }),
    el("td", { class: "blank" }),
    el("td", { class: "blank" }));
}

function renderRecent() {
  keyed($("#event-log"), state.events.filter((e) => inProject(e)).slice(-30).reverse(), (e) => String(e.seq), () => "", (e) => eventItem(e));
}

// changed is called when a container was read again (name) or all were.
export function changed(name) {
  if (!$("#page-containers").hidden) list.render();
  if (!$("#page-container").hidden && (name === null || name === detail.name)) detail.render();
}

listeners.add((ev) => {
  if (!$("#page-containers").hidden) renderRecent();
  if (!$("#page-events").hidden) events.render();
  if (!$("#page-container").hidden && ev.container === detail.name && (ev.project || DEFAULT_PROJECT) === state.project) detail.onEvent(ev);
});

// --- one container ------------------------------------------------------------------

export const detail = {
  name: null,
  history: [],
  pull: new Pull(),
  steps: [],      // the current change's steps, from its events
  logAbort: null,

  async show(name) {
    this.name = name;
    document.title = `${name} · moor`;
    this.history = [];
    this.pull = new Pull();
    this.steps = [];
    this.credsShown = false;
    $("#c-name").textContent = name;
    $("#c-creds").hidden = true;
    $("#c-creds").replaceChildren();
    $("#creds-reveal").textContent = "Reveal";
    $("#creds-reveal").setAttribute("aria-expanded", "false");
    $("#edit-form").hidden = true;
    $("#c-logs").textContent = "";
    $("#c-error").textContent = "";
    this.render();
    // A container not in the list may still exist (just created elsewhere).
    if (!state.containers.has(name)) {
      try { state.containers.set(name, await api("GET", path(name))); } catch { /* gone: history only */ }
      if (this.name !== name) return;
      this.render();
    }
    await Promise.all([this.loadHistory(), this.loadProgress()]);
    if (can("operator") && state.containers.has(name)) this.loadLogs();
  },

  hide() {
    this.stopFollow();
    this.name = null;
  },

  render() {
    const c = state.containers.get(this.name);
    const gone = !c;
    $("#c-gone").hidden = !gone;
    for (const id of ["#c-overview-box", "#c-replicas-box", "#c-settings-box", "#c-logs-box", "#c-creds-box"]) {
      $(id).hidden = gone || ($(id).dataset.role && !can($(id).dataset.role));
    }
    $("#c-actions").replaceChildren(...(c ? actionButtons(c, $("#c-error"), true) : []));
    if (gone) {
      $("#c-status").textContent = "";
      $("#c-status").className = "status";
      $("#c-reason").textContent = "";
      $("#c-progress").hidden = true;
      return;
    }
    const s = stateOf(c);
    $("#c-status").textContent = s;
    $("#c-status").className = `status ${s}`;
    $("#c-reason").textContent = reasonText(c);
    $("#c-reason").classList.toggle("bad", c.status === "failed");
    this.renderOverview(c);
    this.renderReplicas(c);
    this.renderEnv(c);
    this.renderProgress(c);
    const scale = field($("#scale-form"), "replicas");
    if (document.activeElement !== scale) scale.value = String(c.replicas);
  },

  renderOverview(c) {
    const t = state.types.get(c.type);
    const facts = [
      ["Type", el("a", { href: href(`/catalog/${seg(c.type)}`), "data-nav": true, text: t ? `${t.title} (${c.type})` : c.type })],
      ["Image", el("code", { text: c.image })],
      ["URL", c.url ? el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: c.url }) : "none (no HTTP port)"],
      ["DNS", el("span", {}, ...[c.dns?.host, c.dns?.container].filter(Boolean).map((n, i) => el("code", { class: i ? "sub" : "", text: n })))],
      ["Address", c.internal_ip || "not yet"],
      ["Ports", (c.ports || []).length ? el("span", {}, ...c.ports.map((p, i) =>
        el("span", { class: i ? "sub" : "" }, el("code", { text: `${p.port}/${p.protocol}` }), ` ${p.name}${p.http ? " (routed)" : ""}`))) : "none"],
    ];
    if (c.published?.length) {
      facts.push(["Published", el("span", {}, ...c.published.map((p, i) =>
        el("code", { class: i ? "sub" : "", text: `${p.host_ip ? p.host_ip + ":" : ""}${p.host_port} → ${p.port}/${p.protocol}` })))]);
    }
    facts.push(["Created", el("span", {}, timeEl(c.created_at), ` by ${c.created_by}`)]);
    $("#c-overview").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  },

  renderReplicas(c) {
    const rows = (c.instances || []).map((i) => el("tr", { "data-replica": String(i.index) },
      el("td", { "data-label": "Replica", text: String(i.index) }),
      el("td", { "data-label": "Status" }, el("span", { class: `status ${i.status}`, text: i.status })),
      el("td", { "data-label": "Health", text: i.health || "no check" }),
      el("td", { "data-label": "Address", text: i.internal_ip || "" }),
      el("td", { "data-label": "Docker" }, el("code", { title: i.docker_id || "", text: (i.docker_id || "").slice(0, 12) }), i.node ? ` on ${i.node}` : "")));
    $("#c-replicas tbody").replaceChildren(...rows);
    const sel = $("#logs-replica");
    const want = (c.instances || []).map((i) => String(i.index));
    if ([...sel.options].map((o) => o.value).join() !== want.join()) {
      const keep = sel.value;
      sel.replaceChildren(...want.map((v) => el("option", { value: v, text: v })));
      if (want.includes(keep)) sel.value = keep;
    }
  },

  renderEnv(c) {
    const secret = secretNames(c);
    const names = [...new Set([...(c.env_names || []), ...Object.keys(c.env || {})])].sort();
    const rows = names.map((n) => el("tr", {},
      el("td", { "data-label": "Variable" }, el("code", { text: n })),
      el("td", { "data-label": "Value" }, c.env && n in c.env ? el("code", { text: c.env[n] }) :
        el("span", { class: "hint", text: secret.has(n) ? "secret: see Credentials" : can("operator") ? "secret" : "hidden from viewers" }))));
    $("#c-env tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "2", class: "hint", text: "No settings." }))]));
  },

  // The deploy steps of the change in flight, from the container and its
  // events; with an image pull, a bar. Rebuilt from the events on load,
  // so a reload shows the same.
  renderProgress(c) {
    const busy = c.observed_generation < c.generation || ["pending", "creating"].includes(c.status) || this.pull.active;
    const box = $("#c-progress");
    if (!busy && !this.pull.active && !(this.pull.done && this.recentPull())) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const failed = c.status === "failed";
    const pulled = this.pull.done || (!this.pull.image && c.status !== "pending");
    const running = c.status === "running" && c.observed_generation >= c.generation;
    const steps = [
      ["Recorded", "done"],
      ["Image", this.pull.active ? "active" : pulled || running ? "done" : failed ? "failed" : "waiting"],
      ["Replicas", running ? "done" : failed ? (pulled ? "failed" : "waiting") : this.pull.active ? "waiting" : pulled || c.status === "creating" ? "active" : "waiting"],
      ["Ready", running ? "done" : "waiting"],
    ];
    $("#c-steps").replaceChildren(...steps.map(([label, st]) => el("li", { "data-state": st, text: label })));
    const pullBox = $("#c-pull");
    pullBox.hidden = !this.pull.image;
    if (this.pull.image) {
      $("#c-pull-label").textContent = this.pull.label();
      $("#c-pull-bar").value = this.pull.progress();
    }
  },

  recentPull() {
    return this.pull.started && Date.now() - new Date(this.pull.started).getTime() < 10 * 60 * 1000;
  },

  onEvent(ev) {
    const c = state.containers.get(this.name);
    if (ev.kind === "image.pull" && (!c || ev.container_id === c.id)) {
      this.pull.add(ev);
      if (c) this.renderProgress(c);
    }
    // History rows are written with the events; one read per burst.
    if (ev.kind.startsWith("container.") && (!c || ev.container_id === c.id)) {
      clearTimeout(this.historyTimer);
      this.historyTimer = setTimeout(() => this.loadHistory(), 150);
    }
    // Not following: a replica that (re)started or became ready has new
    // lines; read them again.
    if (["container.running", "container.replicas"].includes(ev.kind) && !this.logAbort && can("operator")) {
      clearTimeout(this.logTimer);
      this.logTimer = setTimeout(() => { if (!this.logAbort && this.name === ev.container) this.loadLogs(); }, 300);
    }
  },

  async loadHistory() {
    const name = this.name;
    try {
      const { history } = await api("GET", path(name, "history"));
      if (this.name !== name) return;
      this.history = history;
    } catch (e) {
      if (this.name !== name) return;
      this.history = [];
      if (e.status !== 404) $("#c-error").textContent = e.message;
    }
    this.renderHistory();
  },

  renderHistory() {
    const items = [...this.history].reverse().map((h) => el("li", {},
      timeEl(h.time),
      el("span", { class: "kind", text: eventWords("container." + h.action) }),
      el("span", { class: "sub", text: [details(h.details), `by ${h.actor}`].filter(Boolean).join(" · ") })));
    $("#c-history").replaceChildren(...(items.length ? items : [el("li", { class: "hint", text: "No history." })]));
  },

  async loadProgress() {
    const name = this.name;
    try {
      const { events } = await api("GET", `/api/v1/events?project=${seg(state.project)}&container=${seg(name)}&kind=image.pull&tail=500`);
      if (this.name !== name) return;
      const c = state.containers.get(name);
      for (const ev of events) if (!c || ev.container_id === c.id) this.pull.add(ev);
      if (c) this.renderProgress(c);
    } catch { /* the live events fill it in */ }
  },

  // --- logs ---
  async loadLogs() {
    this.stopFollow();
    const name = this.name;
    const replica = $("#logs-replica").value || "0";
    $("#logs-state").textContent = "";
    try {
      const text = await api("GET", `${path(name, "logs")}?tail=200&replica=${replica}`);
      if (this.name !== name) return;
      $("#c-logs").textContent = typeof text === "string" ? text : "";
      if (!$("#c-logs").textContent) $("#logs-state").textContent = "no log lines yet";
      $("#c-logs").scrollTop = $("#c-logs").scrollHeight;
    } catch (e) {
      // No replica yet (being deployed): nothing to show, not an error.
      $("#logs-state").textContent = e.status === 404 && state.containers.has(name) ? "no log lines yet: the replica has not started" : e.message;
    }
  },

  async startFollow() {
    this.stopFollow();
    const name = this.name;
    const abort = new AbortController();
    this.logAbort = abort;
    $("#logs-follow").setAttribute("aria-pressed", "true");
    $("#logs-state").textContent = "following…";
    const out = $("#c-logs");
    out.textContent = "";
    try {
      const r = await api("GET", `${path(name, "logs")}?tail=200&follow=true&replica=${$("#logs-replica").value || "0"}`, undefined, { raw: true, signal: abort.signal });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 40;
        out.append(value);
        // Bounded: a long follow keeps the newest 200 kB.
        if (out.textContent.length > 200000) out.textContent = out.textContent.slice(-150000);
        if (atEnd) out.scrollTop = out.scrollHeight;
      }
      if (this.logAbort === abort) $("#logs-state").textContent = "the replica stopped; follow ended";
    } catch (e) {
      if (e.name !== "AbortError" && this.logAbort === abort) $("#logs-state").textContent = e.message;
    } finally {
      if (this.logAbort === abort) {
        this.logAbort = null;
        $("#logs-follow").setAttribute("aria-pressed", "false");
      }
    }
  },

  stopFollow() {
    if (this.logAbort) this.logAbort.abort();
    this.logAbort = null;
    $("#logs-follow").setAttribute("aria-pressed", "false");
    $("#logs-state").textContent = "";
  },
};

$("#logs-follow").addEventListener("click", () => (detail.logAbort ? detail.stopFollow() : detail.startFollow()));
$("#logs-reload").addEventListener("click", () => detail.loadLogs());
$("#logs-replica").addEventListener("change", () => (detail.logAbort ? detail.startFollow() : detail.loadLogs()));

$("#scale-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const c = state.containers.get(detail.name);
  if (!c) return;
  clearFieldErrors(ev.target);
  const replicas = Number(field(ev.target, "replicas").value);
  try {
    await act(c, "scale", $("#scale-error"), { replicas });
  } catch (e) {
    showFieldError(ev.target, e, $("#scale-error"));
  }
});

$("#creds-reveal").addEventListener("click", async () => {
  const box = $("#c-creds");
  const b = $("#creds-reveal");
  $("#creds-error").textContent = "";
  if (!box.hidden) {
    box.hidden = true;
    box.replaceChildren();
    b.textContent = "Reveal";
    b.setAttribute("aria-expanded", "false");
    return;
  }
  try {
    const { credentials } = await api("GET", path(detail.name, "credentials"));
    const names = Object.keys(credentials || {}).sort();
    box.replaceChildren(...(names.length ? names.flatMap((n) => {
      const id = `cred-${n}`.replace(/[^a-zA-Z0-9_-]/g, "_");
      return [el("dt", {}, el("code", { text: n })), el("dd", {}, el("code", { id, class: "cred-value", text: credentials[n] }),
        el("button", { type: "button", "aria-label": `Copy ${n}`, onclick: () => copyText(credentials[n]), text: "Copy" }))];
    }) : [el("dd", { class: "hint", text: "This container has no secret values." })]));
    box.hidden = false;
    b.textContent = "Hide";
    b.setAttribute("aria-expanded", "true");
  } catch (e) {
    $("#creds-error").textContent = e.message;
  }
});

// --- settings edit -----------------------------------------------------------

$("#edit-open").addEventListener("click", () => {
  const c = state.containers.get(detail.name);
  if (!c) return;
  const f = $("#edit-form");
  clearFieldErrors(f);
  field(f, "image").value = c.image;
  const t = state.types.get(c.type);
  const secret = secretNames(c);
  const specs = new Map((t?.env || []).map((e) => [e.name, e]));
  const names = [...new Set([...(t?.env || []).map((e) => e.name), ...Object.keys(c.env || {})])];
  const box = $("#edit-env");
  box.replaceChildren(el("legend", { text: "Environment" }));
  for (const n of names) {
    const spec = specs.get(n) || {};
    const isSecret = secret.has(n) || (c.env_names?.includes(n) && !(n in (c.env || {})));
    const input = el("input", { name: `env.${n}`, autocomplete: "off", type: isSecret ? "password" : "text",
      value: isSecret ? "" : c.env?.[n] ?? "", placeholder: isSecret ? "unchanged" : spec.default || "", "data-was": isSecret ? "" : c.env?.[n] ?? "" });
    box.append(el("label", {}, spec.label || n, input, spec.description ? el("small", { class: "hint", text: spec.description }) : null));
  }
  f.hidden = false;
  $("#edit-open").hidden = true;
  field(f, "image").focus();
});

function closeEdit() {
  $("#edit-form").hidden = true;
  $("#edit-open").hidden = !can("operator");
}
$("#edit-cancel").addEventListener("click", closeEdit);
$("#edit-form").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeEdit(); });

$("#edit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const c = state.containers.get(detail.name);
  if (!c) return;
  clearFieldErrors(f);
  const patch = {};
  const image = field(f, "image").value.trim();
  if (image && image !== c.image) patch.image = image;
  const env = {};
  for (const input of f.querySelectorAll("#edit-env [name]")) {
    if (input.value !== input.dataset.was && !(input.type === "password" && input.value === "")) env[input.name.slice(4)] = input.value;
  }
  if (Object.keys(env).length) patch.env = env;
  if (!Object.keys(patch).length) { closeEdit(); return; }
  try {
    await act(c, "update", $("#edit-error"), patch);
    closeEdit();
  } catch (e) {
    showFieldError(f, e, $("#edit-error"));
  }
});

// --- the event log -----------------------------------------------------------

export const events = {
  show() {
    document.title = "Events · moor";
    this.render();
  },
  render() {
    const q = $("#events-filter").value.trim().toLowerCase();
    const evs = state.events.filter((e) => inProject(e)).filter((e) => !q || [e.kind, eventWords(e.kind), e.container || e.data?.stack || "", e.actor].some((s) => s.toLowerCase().includes(q)));
    keyed($("#events-table tbody"), evs.slice().reverse(), (e) => String(e.seq), () => "", (e) => el("tr", { "data-kind": e.kind },
      el("td", { "data-label": "Time" }, timeEl(e.time)),
      el("td", { "data-label": "Event" }, el("span", { class: "kind", title: e.kind, text: eventWords(e.kind) })),
      el("td", { "data-label": "Container" }, e.container ? el("a", { href: href(`/containers/${seg(e.container)}`, e.project), "data-nav": true, text: e.container }) : stackLink(e, "stack ") || ""),
      el("td", { "data-label": "By", text: e.actor }),
      el("td", { "data-label": "Details", text: details(e.data) })));
  },
};

$("#events-filter").addEventListener("input", () => events.render());

// Times like "2 min ago" move on by themselves.
setInterval(() => {
  for (const t of document.querySelectorAll(".events time")) {
    const v = t.getAttribute("datetime");
    if (v) t.textContent = ago(v);
  }
}, 15000);
