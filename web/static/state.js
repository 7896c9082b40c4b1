// What every page shares: who is signed in, the catalog, the containers as
// last read, the recent events, and navigation.

const ROLES = { viewer: 1, operator: 2, admin: 3 };

export const state = {
  user: null,
  types: new Map(),      // id -> type
  containers: new Map(), // name -> container
  events: [],            // newest last, at most maxEvents
  asked: new Map(),      // name -> {action, generation}: what this page asked and is not done yet
};

export const maxEvents = 300;

export const can = (role) => !!state.user && ROLES[state.user.role] >= ROLES[role];

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
