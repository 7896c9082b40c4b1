// Compose stacks (docs/stacks.md): a project's stacks with the deploy of a
// pasted compose file, and one stack's page (its services live, its
// compose file, update and delete). The services are ordinary containers
// of the project: their states come from the shared list, kept live.

import { $, el, api, seg, field, keyed, confirmButton, showFieldError, clearFieldErrors, readyCount, timeEl, ago, toast } from "./lib.js";
import { state, can, href, nav, listeners, stacksBase, DEFAULT_PROJECT } from "./state.js";
import { stateOf, statusPill, summaryPill } from "./containers.js";

const stackPath = (name, query = "") => `${stacksBase()}/${seg(name)}${query}`;

// containersOf are a stack's containers as the current project's list has
// them (live), or as the stack's answer had them before the list has any.
function containersOf(st) {
  const live = [...state.containers.values()].filter((c) => c.stack === st.name);
  const cs = live.length ? live : st.containers || [];
  return [...cs].sort((a, b) => (a.stack_service || a.name).localeCompare(b.stack_service || b.name));
}

// took puts the containers of a stack's answer (a deploy, an update) into
// the list at once: the events that follow refresh them.
function took(st) {
  for (const c of st.containers || []) state.containers.set(c.name, c);
}

// composeError puts the API's refusal next to what it is about, its
// message as it is: the name, or the compose file for every key in it
// (422 naming services.SERVICE.KEY) and for keys only admins may use (403).
function composeError(f, e, fallback) {
  const aboutFile = e.field ? e.field !== "name" : e.status === 403;
  showFieldError(f, aboutFile ? { field: "compose", message: e.message } : e, fallback);
}

const conditions = { service_started: "started", service_healthy: "healthy", service_completed_successfully: "completed" };
const dependsWords = (c) => (c.depends_on || []).map((d) => `${d.service} (${conditions[d.condition] || d.condition})`).join(", ");

// --- the list and the deploy ----------------------------------------------------

export const list = {
  stacks: [],
  project: null, // the project this.stacks are of

  async show() {
    document.title = "Stacks · moor";
    clearFieldErrors($("#stack-form"));
    this.render();
    await this.load();
  },

  async load() {
    const project = state.project;
    try {
      const { stacks } = await api("GET", stacksBase(project));
      if (project !== state.project) return;
      this.stacks = stacks;
      this.project = project;
      $("#stacks-error").textContent = "";
    } catch (e) {
      if (project === state.project) $("#stacks-error").textContent = e.message;
    }
    this.render();
  },

  render() {
    const sts = this.project === state.project ? this.stacks : [];
    keyed($("#stacks tbody"), sts, (st) => st.name,
      (st) => JSON.stringify([st.updated_at, st.removing, containersOf(st).map((c) => [c.name, stateOf(c)])]), stackRow);
    $("#stacks-empty").hidden = sts.length > 0 || this.project !== state.project;
    $("#stacks").hidden = sts.length === 0;
  },
};

function stackRow(st) {
  const cs = containersOf(st);
  return el("tr", { "data-stack": st.name },
    el("td", { "data-label": "Stack" }, el("a", { href: href(`/stacks/${seg(st.name)}`), "data-nav": true, class: "name-link", text: st.name }),
      st.removing ? el("span", { class: "sub", text: "being deleted" }) : null),
    el("td", { "data-label": "Services" }, el("ul", { class: "services" }, ...cs.map((c) => el("li", { "data-service": c.stack_service },
      el("a", { href: href(`/containers/${seg(c.name)}`), "data-nav": true, text: c.stack_service || c.name }), " ", statusPill(c))))),
    el("td", { "data-label": "Status" }, st.removing ? el("span", { class: "status removing", text: "removing" }) : summaryPill(cs)),
    el("td", { "data-label": "Updated" }, timeEl(st.updated_at, ago), el("span", { class: "sub", text: `deployed by ${st.created_by}` })));
}

$("#stacks-new").addEventListener("click", () => {
  const name = field($("#stack-form"), "name");
  name.scrollIntoView({ block: "center" });
  name.focus({ preventScroll: true });
});

// A compose file picked from the disk goes into the box, to be read and
// changed before the deploy.
field($("#stack-form"), "file").addEventListener("change", async (ev) => {
  const file = ev.target.files?.[0];
  if (!file) return;
  const f = $("#stack-form");
  try {
    field(f, "compose").value = await file.text();
    clearFieldErrors(f);
  } catch (e) {
    $("#stack-error").textContent = `${file.name}: ${e.message}`;
  }
});

$("#stack-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  const submit = f.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const st = await api("POST", stacksBase(), { name: field(f, "name").value.trim(), compose: field(f, "compose").value });
    took(st);
    f.reset();
    toast(`Stack ${st.name} deployed`);
    nav.go(href(`/stacks/${seg(st.name)}`));
  } catch (e) {
    composeError(f, e, $("#stack-error"));
  } finally {
    submit.disabled = false;
  }
});

// --- one stack -------------------------------------------------------------------

export const detail = {
  name: null,
  stack: null,
  gone: false,

  async show(name) {
    this.name = name;
    this.stack = null;
    this.gone = false;
    document.title = `Stack ${name} · moor`;
    $("#s-name").textContent = name;
    for (const id of ["#s-error", "#s-delete-error"]) $(id).textContent = "";
    $("#s-remove-volumes").checked = false;
    $("#s-delete").replaceChildren(confirmButton("Delete stack", "Really delete?", () => this.remove(), { "data-action": "delete" }));
    closeEdit(); // and shows the page as it is known so far
    await this.load();
  },

  hide() { this.name = null; },

  async load() {
    const name = this.name;
    const project = state.project;
    try {
      const st = await api("GET", stackPath(name));
      if (this.name !== name || project !== state.project) return;
      this.stack = st;
      this.gone = false;
    } catch (e) {
      if (this.name !== name) return;
      if (e.status === 404) {
        this.stack = null;
        this.gone = true;
      } else $("#s-error").textContent = e.message;
    }
    this.render();
  },

  render() {
    const st = this.stack;
    $("#s-gone").hidden = !this.gone;
    $("#s-boxes").hidden = !st;
    const pill = $("#s-status");
    if (!st) {
      pill.textContent = "";
      pill.className = "status";
      return;
    }
    const cs = containersOf(st);
    const sum = summaryPill(cs);
    pill.textContent = st.removing ? "removing" : sum.textContent;
    pill.className = st.removing ? "status removing" : sum.className;
    pill.title = st.removing ? "" : sum.title;
    keyed($("#s-services tbody"), cs, (c) => c.name, (c) => JSON.stringify([c, stateOf(c)]), (c) => el("tr", { "data-service": c.stack_service },
      el("td", { "data-label": "Service" }, el("strong", { text: c.stack_service })),
      el("td", { "data-label": "Container" }, el("a", { href: href(`/containers/${seg(c.name)}`), "data-nav": true, text: c.name })),
      el("td", { "data-label": "Status" }, statusPill(c), reasonLine(c)),
      el("td", { "data-label": "Replicas", title: "ready / wanted", text: readyCount(c) }),
      el("td", { "data-label": "Depends on", text: dependsWords(c) || "—" })));
    const facts = [
      ["Created", el("span", {}, timeEl(st.created_at), ` by ${st.created_by}`)],
      ["Updated", timeEl(st.updated_at)],
    ];
    $("#s-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    const operator = can("operator");
    const editing = !$("#s-edit-form").hidden;
    $("#s-compose").hidden = !operator || editing;
    $("#s-compose").textContent = st.compose || "";
    $("#s-compose-hidden").hidden = operator;
    $("#s-edit").hidden = !operator || st.removing || editing;
    $("#s-delete-box").hidden = !operator || st.removing;
  },

  async remove() {
    const name = this.name;
    $("#s-delete-error").textContent = "";
    try {
      const st = await api("DELETE", stackPath(name, $("#s-remove-volumes").checked ? "?remove_volumes=true" : ""));
      if (this.name !== name) return;
      this.stack = st;
      closeEdit();
      toast(`Stack ${name} is being deleted`);
    } catch (e) {
      $("#s-delete-error").textContent = e.message;
    }
  },
};

function reasonLine(c) {
  const r = c.status_reason && !(c.status === "running" && c.observed_generation >= c.generation) ? c.status_reason : "";
  return r ? el("span", { class: "sub", text: r }) : null;
}

function closeEdit() {
  const f = $("#s-edit-form");
  f.hidden = true;
  clearFieldErrors(f);
  detail.render();
}

$("#s-edit").addEventListener("click", () => {
  const st = detail.stack;
  if (!st) return;
  const f = $("#s-edit-form");
  clearFieldErrors(f);
  field(f, "compose").value = st.compose || "";
  field(f, "remove_volumes").checked = false;
  f.hidden = false;
  detail.render();
  field(f, "compose").focus();
});
$("#s-edit-cancel").addEventListener("click", closeEdit);
$("#s-edit-form").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeEdit(); });

$("#s-edit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const name = detail.name;
  clearFieldErrors(f);
  const submit = f.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const st = await api("PUT", stackPath(name, field(f, "remove_volumes").checked ? "?remove_volumes=true" : ""), { compose: field(f, "compose").value });
    if (detail.name !== name) return;
    took(st);
    detail.stack = st;
    closeEdit();
    toast(`Stack ${name} updated`);
  } catch (e) {
    composeError(f, e, $("#s-edit-error"));
  } finally {
    submit.disabled = false;
  }
});

// changed is called when a container of the current project was read
// again (name) or all were (app.js): the services' states follow.
export function changed() {
  if (!$("#page-stacks").hidden) list.render();
  if (!$("#page-stack").hidden && detail.stack) detail.render();
}

// A stack deployed, updated or being deleted, a service's container come
// or gone: the stacks are read again, one read per burst (the stack's
// row goes with its last container, which no stack event tells).
let loadTimer = null;
listeners.add((ev) => {
  if (!(ev.kind.startsWith("stack.") || ev.container) || (ev.project || DEFAULT_PROJECT) !== state.project) return;
  if ($("#page-stacks").hidden && $("#page-stack").hidden) return;
  clearTimeout(loadTimer);
  loadTimer = setTimeout(() => {
    if (!$("#page-stacks").hidden) list.load();
    if (!$("#page-stack").hidden && detail.name) detail.load();
  }, 300);
});

// --- a project's page: its stacks, compact ------------------------------------------

// stackItem is a stack of project as the project's page lists it.
export function stackItem(project, st) {
  return el("li", { "data-stack": st.name },
    el("a", { href: href(`/stacks/${seg(st.name)}`, project), "data-nav": true, class: "name-link", text: st.name }), " ",
    st.removing ? el("span", { class: "status removing", text: "removing" }) : summaryPill(st.containers || []),
    el("span", { class: "sub" }, `${(st.services || []).map((s) => s.name).join(", ") || "no services"} · updated `, timeEl(st.updated_at, ago)));
}
