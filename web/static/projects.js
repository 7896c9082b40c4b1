// Projects: the list with each one's use against its quotas, and one
// project's page (its quotas, stacks, members, deletion).

import { $, el, api, seg, field, keyed, confirmButton, showFieldError, clearFieldErrors, timeEl, ago, toast } from "./lib.js";
import { state, can, canInstance, href, nav, listeners, stacksBase, DEFAULT_PROJECT } from "./state.js";
import { stackItem } from "./stacks.js";

const projectPath = (name) => `/api/v1/projects/${seg(name)}`;
const cpus = (n) => String(Math.round(n * 100) / 100);

// usage is a use against a quota: the words, and a meter when there is a
// quota (fuller than 90 %: the meter's warning colour).
function usage(what, use, max, fmt = String, unit = "") {
  if (max === undefined || max === null) {
    return el("span", { class: "use" }, `${fmt(use)}${unit}`, el("span", { class: "hint", text: " · no limit" }));
  }
  const over = use > max;
  return el("span", { class: "use" },
    el("span", { class: over ? "over" : "", text: `${fmt(use)} of ${fmt(max)}${unit}${over ? " (over)" : ""}` }),
    el("meter", { min: "0", max: String(Math.max(max, use, 0.0001)), value: String(use), low: String(max * 0.75), high: String(max * 0.9),
      optimum: "0", "aria-label": `${what}: ${fmt(use)} of ${fmt(max)}${unit}` }));
}

const usages = (p) => [
  ["Containers", usage("Containers", p.containers, p.max_containers)],
  ["Memory", usage("Memory", p.memory_mb, p.max_memory_mb, String, " MB")],
  ["CPUs", usage("CPUs", p.cpus, p.max_cpus, cpus)],
];

// quotaBody reads a quota form: an empty field is null (no limit), so a
// PATCH clears it; a create leaves it out.
function quotaBody(f, forCreate) {
  const out = {};
  for (const name of ["max_containers", "max_memory_mb", "max_cpus"]) {
    const v = field(f, name).value.trim();
    if (v !== "") out[name] = Number(v);
    else if (!forCreate) out[name] = null;
  }
  return out;
}

async function readProjects() {
  const { projects } = await api("GET", "/api/v1/projects");
  state.projects = new Map(projects.map((p) => [p.name, p]));
}

// --- the list -------------------------------------------------------------------

export const list = {
  async show() {
    document.title = "Projects · moor";
    this.render();
    await this.load();
  },
  async load() {
    try {
      await readProjects();
      $("#projects-error").textContent = "";
    } catch (e) {
      $("#projects-error").textContent = e.message;
    }
    this.render();
  },
  render() {
    const ps = [...state.projects.values()].sort((a, b) => (b.name === DEFAULT_PROJECT) - (a.name === DEFAULT_PROJECT) || a.name.localeCompare(b.name));
    keyed($("#projects tbody"), ps, (p) => p.name, (p) => JSON.stringify([p, state.project]), row);
  },
};

function row(p) {
  const [count, memory, cpu] = usages(p).map(([, v]) => v);
  const current = p.name === state.project;
  return el("tr", { "data-project": p.name },
    el("td", { "data-label": "Project" }, el("a", { href: `/projects/${seg(p.name)}`, "data-nav": true, class: "name-link", text: p.name }),
      el("span", { class: "sub", text: [p.internal ? "internal" : "", current ? "current" : ""].filter(Boolean).join(" · ") })),
    el("td", { "data-label": "Containers", class: "use-cell" }, count),
    el("td", { "data-label": "Memory", class: "use-cell" }, memory),
    el("td", { "data-label": "CPUs", class: "use-cell" }, cpu),
    el("td", { "data-label": "Network" }, el("code", { text: p.network || "" })),
    el("td", { class: "actions" }, el("div", { class: "actions" }, el("a", { class: "button", href: href("/", p.name), "data-nav": true,
      "data-action": "open", "aria-label": `Containers of ${p.name}`, text: "Containers" }))));
}

$("#project-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  const body = { name: field(f, "name").value.trim(), internal: field(f, "internal").checked, ...quotaBody(f, true) };
  const submit = f.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const p = await api("POST", "/api/v1/projects", body);
    state.projects.set(p.name, p);
    f.reset();
    toast(`Project ${p.name} created`);
    list.render();
  } catch (e) {
    showFieldError(f, e, $("#project-error"));
  } finally {
    submit.disabled = false;
  }
});

// --- one project ------------------------------------------------------------------

export const detail = {
  name: null,
  project: null,
  quotasEdited: false, // the quota form holds what the user typed: reads do not overwrite it

  async show(name) {
    this.name = name;
    this.project = state.projects.get(name) || null;
    document.title = `Project ${name} · moor`;
    $("#p-name").textContent = name;
    $("#p-open").setAttribute("href", href("/", name));
    $("#p-open").setAttribute("aria-label", `Containers of ${name}`);
    for (const id of ["#p-error", "#members-error", "#member-error", "#quota-error", "#p-delete-error", "#p-stacks-error"]) $(id).textContent = "";
    $("#p-stacks-box").hidden = true;
    $("#p-stacks").replaceChildren();
    clearFieldErrors($("#quota-form"));
    this.quotasEdited = false;
    clearFieldErrors($("#member-form"));
    $("#member-form").reset();
    // Members are for the project's admins: instance-wide, or admins there.
    $("#p-members-box").hidden = !can("admin", name);
    $("#p-members tbody").replaceChildren();
    $("#p-delete-box").hidden = !canInstance("admin") || name === DEFAULT_PROJECT;
    $("#p-delete").replaceChildren(confirmButton("Delete project", "Really delete?", () => this.remove(), { "data-action": "delete",
      "aria-label": `Delete project ${name}` }));
    this.render();
    await Promise.all([this.load(), can("admin", name) ? this.loadMembers() : null]);
  },

  hide() { this.name = null; },

  async load() {
    this.loadStacks();
    const name = this.name;
    try {
      const p = await api("GET", projectPath(name));
      if (this.name !== name) return;
      this.project = p;
      state.projects.set(p.name, p);
    } catch (e) {
      if (this.name !== name) return;
      this.project = null;
      $("#p-error").textContent = e.message;
    }
    this.render();
  },

  render() {
    const p = this.project;
    $("#p-boxes").hidden = !p;
    $("#p-open").hidden = !p;
    if (!p) return;
    const facts = [
      ["Network", el("code", { text: p.network || "" })],
      ["Internal", p.internal ? "yes: no route beyond the host" : "no"],
      ["Your role", state.user.role && !state.user.projects?.[p.name] ? `${state.user.role} (instance-wide)` : (state.user.projects?.[p.name] || state.user.role || "none")],
      ["Created", el("span", {}, timeEl(p.created_at), p.created_by ? ` by ${p.created_by}` : "")],
    ];
    $("#p-overview").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    $("#p-use").replaceChildren(...usages(p).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    const f = $("#quota-form");
    if (!this.quotasEdited) {
      for (const q of ["max_containers", "max_memory_mb", "max_cpus"]) field(f, q).value = p[q] ?? "";
    }
  },

  // loadStacks lists the project's stacks, each a link to its page.
  async loadStacks() {
    const name = this.name;
    try {
      const { stacks } = await api("GET", stacksBase(name));
      if (this.name !== name) return;
      keyed($("#p-stacks"), stacks, (st) => st.name, (st) => JSON.stringify(st), (st) => stackItem(name, st));
      $("#p-stacks-empty").hidden = stacks.length > 0;
      const open = $("#p-stacks-open");
      open.setAttribute("href", href("/stacks", name));
      open.textContent = stacks.length ? "All stacks" : "Deploy a stack";
      open.hidden = !stacks.length && !can("operator", name);
      $("#p-stacks-error").textContent = "";
    } catch (e) {
      if (this.name === name) $("#p-stacks-error").textContent = e.message;
    }
    if (this.name === name) $("#p-stacks-box").hidden = false;
  },

  async remove() {
    const name = this.name;
    $("#p-delete-error").textContent = "";
    try {
      await api("DELETE", projectPath(name));
      state.projects.delete(name);
      toast(`Project ${name} deleted`);
      // A deleted current project: back to where one lands.
      if (state.project === name) state.project = "";
      nav.go("/projects");
    } catch (e) {
      // 409 names the containers still in it.
      $("#p-delete-error").textContent = e.message;
    }
  },

  async loadMembers() {
    const name = this.name;
    try {
      const { members } = await api("GET", `${projectPath(name)}/members`);
      if (this.name !== name) return;
      this.renderMembers(members);
    } catch (e) {
      if (this.name === name) $("#members-error").textContent = e.message;
    }
  },

  renderMembers(members) {
    members.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
    $("#p-members-empty").hidden = members.length > 0;
    $("#p-members").hidden = members.length === 0;
    keyed($("#p-members tbody"), members, (m) => `${m.kind}/${m.name}`, (m) => JSON.stringify(m), (m) => el("tr", { "data-member": `${m.kind}/${m.name}` },
      el("td", { "data-label": "Member" }, el("strong", { text: m.name })),
      el("td", { "data-label": "Kind", text: m.kind === "apikey" ? "API key" : "user" }),
      el("td", { "data-label": "Role", text: m.role }),
      el("td", { "data-label": "Added" }, timeEl(m.created_at, ago), m.created_by ? el("span", { class: "sub", text: `by ${m.created_by}` }) : null),
      el("td", { class: "actions" }, el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "change", "aria-label": `Change the role of ${m.name}`, text: "Change role",
          onclick: () => this.edit(m) }),
        confirmButton("Remove", "Really remove?", () => this.removeMember(m), { "data-action": "remove", "aria-label": `Remove ${m.name} from the project` })))));
  },

  // edit fills the member form with m, to give it another role.
  edit(m) {
    const f = $("#member-form");
    clearFieldErrors(f);
    field(f, "kind").value = m.kind;
    field(f, "name").value = m.name;
    field(f, "role").value = m.role;
    field(f, "role").focus();
  },

  async removeMember(m) {
    $("#members-error").textContent = "";
    try {
      await api("DELETE", `${projectPath(this.name)}/members/${seg(m.kind)}/${seg(m.name)}`);
      this.loadMembers();
    } catch (e) {
      $("#members-error").textContent = e.message;
    }
  },
};

$("#quota-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  try {
    detail.project = await api("PATCH", projectPath(detail.name), quotaBody(f, false));
    state.projects.set(detail.project.name, detail.project);
    toast("Quotas saved");
    detail.quotasEdited = false;
    detail.render();
  } catch (e) {
    showFieldError(f, e, $("#quota-error"));
  }
});

$("#quota-form").addEventListener("input", () => { detail.quotasEdited = true; });

$("#member-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  try {
    await api("POST", `${projectPath(detail.name)}/members`,
      { kind: field(f, "kind").value, name: field(f, "name").value.trim(), role: field(f, "role").value });
    f.reset();
    detail.loadMembers();
  } catch (e) {
    showFieldError(f, e, $("#member-error"));
  }
});

// changed is called when the projects were read again (app.js).
export function changed() {
  if (!$("#page-projects").hidden) list.render();
  if (!$("#page-project").hidden && detail.name) detail.load();
}

// Containers come and go, scale and change, stacks too: the use and the
// stacks shown follow, one read per burst.
let useTimer = null;
listeners.add((ev) => {
  if (!(ev.container || ev.kind.startsWith("stack.")) || ($("#page-projects").hidden && $("#page-project").hidden)) return;
  if (!$("#page-project").hidden && ev.project !== detail.name) return;
  clearTimeout(useTimer);
  useTimer = setTimeout(() => (!$("#page-projects").hidden ? list.load() : detail.load()), 300);
});
