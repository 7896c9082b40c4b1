// Events in words, and the image pull rebuilt from its events (so a reload
// shows the same progress as the live page).

import { el, timeEl, bytes, ago } from "./lib.js";
import { href } from "./state.js";

const words = {
  "container.created": "deployed",
  "container.creating": "creating replicas",
  "container.running": "running",
  "container.failed": "failed",
  "container.retrying": "retrying",
  "container.stopped": "stopped",
  "container.stopped_outside": "stopped outside moor",
  "container.removed": "removed",
  "container.touched": "repaired",
  "container.replicas": "replicas changed",
  "container.start_requested": "start asked",
  "container.stop_requested": "stop asked",
  "container.restart_requested": "restart asked",
  "container.scale_requested": "scale asked",
  "container.remove_requested": "remove asked",
  "container.update_requested": "settings changed",
  "container.redeploy_requested": "redeploy asked",
  "container.redeployed": "redeployed",
  "image.pull": "pulling image",
  "apikey.created": "API key created",
  "apikey.revoked": "API key revoked",
  "user.created": "user added",
  "user.removed": "user removed",
  "user.password_changed": "password changed",
  "webhook.created": "webhook added",
  "webhook.deleted": "webhook removed",
  "stack.created": "stack deployed",
  "stack.updated": "stack updated",
  "stack.removing": "stack being deleted",
  "project.created": "project created",
  "project.updated": "quotas changed",
  "project.deleted": "project deleted",
  "project.member_set": "member set",
  "project.member_removed": "member removed",
};

export function eventWords(kind) {
  return words[kind] || kind.replace(/^container\./, "").replace(/_/g, " ");
}

// details is a short line from an event's data: what a user wants to know.
export function details(data) {
  if (!data || typeof data !== "object") return "";
  const parts = [];
  if (data.reason) parts.push(data.reason);
  if (data.status && data.image) parts.push(`${data.image}: ${data.status}`);
  else if (data.status) parts.push(data.status);
  if (Array.isArray(data.replicas)) {
    parts.push(data.replicas.map((r) => `#${r.index} ${r.status}${r.health ? ", " + r.health : ""}`).join("; "));
  } else if (data.replicas !== undefined) parts.push(`replicas ${data.replicas}`);
  if (data.image && !data.status) parts.push(data.image);
  if (data.env_names?.length) parts.push(`env ${data.env_names.join(", ")}`);
  if (Array.isArray(data.services)) parts.push(`services ${data.services.join(", ")}`);
  else if (data.services && typeof data.services === "object") {
    parts.push(Object.entries(data.services).map(([what, names]) => `${what} ${[].concat(names).join(", ")}`).join("; "));
  }
  if (data.username) parts.push(data.username);
  if (data.name && !data.image) parts.push(data.name);
  return parts.join(" · ");
}

// eventItem is one line of an event log (a list item).
export function eventItem(ev, { withContainer = true } = {}) {
  return el("li", { "data-kind": ev.kind, "data-seq": String(ev.seq) },
    timeEl(ev.time, ago),
    el("span", { class: "kind", title: ev.kind, text: eventWords(ev.kind) }),
    withContainer && ev.container ? el("span", {}, " ", el("a", { href: href(`/containers/${encodeURIComponent(ev.container)}`, ev.project), "data-nav": true, text: ev.container })) : null,
    withContainer && !ev.container ? stackLink(ev, " ") : null,
    el("span", { class: "sub", text: [details(ev.data), `by ${ev.actor}`].filter(Boolean).join(" · ") }));
}

// stackLink links the stack a stack event is about (null for others).
export function stackLink(ev, before = "") {
  const name = ev.kind.startsWith("stack.") && ev.data?.stack;
  return name ? el("span", {}, before, el("a", { href: href(`/stacks/${encodeURIComponent(name)}`, ev.project), "data-nav": true, text: name })) : null;
}

// Pull follows one image pull from its image.pull events.
export class Pull {
  constructor() { this.reset(); }

  reset() {
    this.image = "";
    this.layers = new Map(); // id -> {current, total, done}
    this.done = false;
    this.summary = "";
    this.started = null;
  }

  // add takes one image.pull event; a pull of another image, or one that
  // begins after a finished one, starts afresh.
  add(ev) {
    const d = ev.data || {};
    if (!d.image) return;
    if (d.image !== this.image || (this.done && /^Pulling from/.test(d.status || ""))) {
      this.reset();
      this.image = d.image;
      this.started = ev.time;
    }
    const status = d.status || "";
    if (d.local) { // a redeploy's pull of an image no registry has: not pulled
      this.done = true;
      this.summary = status;
      return;
    }
    if (/^Status:/.test(status)) {
      this.done = true;
      this.summary = status.replace(/^Status:\s*/, "");
      return;
    }
    if (!d.layer || /^Pulling from/.test(status) || /^Digest:/.test(status)) return;
    const l = this.layers.get(d.layer) || { current: 0, total: 0, done: false };
    if (/^Downloading/.test(status) && d.total > 0) {
      l.total = d.total;
      l.current = d.current;
    }
    if (/Download complete|Pull complete|Already exists|Extracting/.test(status)) {
      if (l.total) l.current = l.total;
      if (/Pull complete|Already exists/.test(status)) l.done = true;
    }
    this.layers.set(d.layer, l);
  }

  get active() { return this.image !== "" && !this.done; }

  // progress is the share of the bytes downloaded, from 0 to 1; before any
  // size is known, the share of the layers done.
  progress() {
    if (this.done) return 1;
    let cur = 0, tot = 0, finished = 0;
    for (const l of this.layers.values()) {
      if (l.done) finished++;
      if (l.total) { tot += l.total; cur += Math.min(l.current, l.total); }
    }
    if (tot) return Math.min(0.99, cur / tot);
    return this.layers.size ? Math.min(0.99, finished / this.layers.size) : 0;
  }

  label() {
    let cur = 0, tot = 0, finished = 0;
    for (const l of this.layers.values()) {
      if (l.total) { tot += l.total; cur += Math.min(l.current, l.total); }
      if (l.done) finished++;
    }
    const n = this.layers.size;
    if (this.done && /^Not pulled/.test(this.summary)) return this.summary;
    if (this.done) return `Pulled ${this.image}${tot ? ` (${bytes(tot)})` : ""}: ${this.summary}`;
    const size = tot ? `, ${bytes(cur)} of ${bytes(tot)}` : "";
    return `Pulling ${this.image}: ${finished} of ${n} layers${size}`;
  }
}
