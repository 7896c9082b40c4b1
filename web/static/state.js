// What every page shares: who is signed in, the current project and the
// projects one may read, the catalog, the current project's containers as
// last read, the recent events, and navigation.

const ROLES = { viewer: 1, operator: 2, admin: 3 };

export const DEFAULT_PROJECT = "default";

export const state = {
  user: null,
  project: DEFAULT_PROJECT, // the current project: its containers, deploys and events
  projects: new Map(),   // name -> project, those the user may read
  types: new Map(),      // id -> type
  containers: new Map(), // name -> container, of the current project
  events: [],            // newest last, at most maxEvents, of every readable project
  asked: new Map(),      // name -> {action, generation}: what this page asked and is not done yet
};

export const maxEvents = 300;

const rank = (r) => ROLES[r] || 0;

// roleIn is the user's role in a project: the higher of the instance-wide
// role and the project's (a membership, or a limited key's project).
export function roleIn(project = state.project) {
  if (!state.user) return "";
  const here = state.user.projects?.[project] || "";
  return rank(here) > rank(state.user.role) ? here : state.user.role || "";
}

// can: the user holds role in the current project (or the one named).
export const can = (role, project = state.project) => rank(roleIn(project)) >= rank(role) && rank(role) > 0;

// canInstance: the user holds role instance-wide (accounts, keys,
// webhooks, creating projects and their quotas).
export const canInstance = (role) => !!state.user && rank(state.user.role) >= rank(role) && rank(role) > 0;

// apiBase is where a project's containers are in the API; the default
// project keeps /api/v1/containers.
export const apiBase = (project = state.project) =>
  project === DEFAULT_PROJECT ? "/api/v1/containers" : `/api/v1/projects/${encodeURIComponent(project)}/containers`;

// stacksBase is where a project's stacks are in the API; the default
// project's also at /api/v1/stacks.
export const stacksBase = (project = state.project) =>
  project === DEFAULT_PROJECT ? "/api/v1/stacks" : `/api/v1/projects/${encodeURIComponent(project)}/stacks`;

// href is a page of a project: "/", "/containers/NAME", "/catalog",
// "/catalog/TYPE", "/events", "/stacks", "/stacks/NAME" as they are for
// the default project (old links keep working), under /projects/PROJECT/
// for the others.
export function href(path, project = state.project) {
  if (!project || project === DEFAULT_PROJECT) return path;
  return `/projects/${encodeURIComponent(project)}${path === "/" ? "/containers" : path}`;
}

// inProject tells whether an event belongs to the current project's views:
// events about its containers and the project itself, and those about no
// project (accounts, webhooks: for instance-wide roles only).
export const inProject = (ev, project = state.project) => !ev.project || ev.project === project;

// nav.go is set by app.js: show the page of a path (pushing it on history).
export const nav = { go: () => {} };

// listeners get every live event after the shared state took it in.
export const listeners = new Set();

// remember records what the user asked of a container, so its row shows
// "restarting" until the answer's generation is made real.
export function remember(c, action) {
  if (c?.name) state.asked.set(c.name, { action, generation: c.generation });
}

export function askedOf(c) {
  const a = state.asked.get(c.name);
  if (!a) return undefined;
  if (c.observed_generation >= a.generation) {
    state.asked.delete(c.name);
    return undefined;
  }
  return a.action;
}
