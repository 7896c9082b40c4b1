// The catalog: cards to search and filter by category, and the deploy form
// of one type.

import { $, el, api, seg, field, showFieldError, clearFieldErrors } from "./lib.js";
import { state, can, href, apiBase, nav, remember } from "./state.js";

let category = ""; // "" is every category

// logo is the type's picture, or its initial on a colour of its own when it
// has none or the picture does not load (offline, blocked).
function logo(t) {
  const box = el("span", { class: "logo", "aria-hidden": "true" });
  let h = 0;
  for (const ch of t.id) h = (h * 31 + ch.charCodeAt(0)) % 360;
  box.style.background = `hsl(${h} 55% 42%)`;
  box.textContent = (t.title || t.id).trim().charAt(0).toUpperCase();
  if (t.logo && /^(https:|data:image\/)/.test(t.logo)) {
    const img = el("img", { src: t.logo, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.remove());
    img.addEventListener("load", () => { box.textContent = ""; box.append(img); });
  }
  return box;
}

const words = (t) => [t.id, t.title, t.description || "", ...(t.categories || []), t.image].join(" ").toLowerCase();

export const list = {
  show() {
    document.title = "Catalog · moor";
    this.renderCategories();
    this.render();
  },
  renderCategories() {
    const counts = new Map();
    for (const t of state.types.values()) for (const c of t.categories || []) counts.set(c, (counts.get(c) || 0) + 1);
    const cats = [...counts.keys()].sort();
    if (category && !counts.has(category)) category = "";
    const chip = (value, label) => el("button", { type: "button", "aria-pressed": String(category === value), "data-category": value, text: label,
      onclick: () => { category = value; this.renderCategories(); this.render(); } });
    $("#catalog-categories").replaceChildren(chip("", `All (${state.types.size})`), ...cats.map((c) => chip(c, `${c} (${counts.get(c)})`)));
  },
  render() {
    const terms = $("#catalog-search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const types = [...state.types.values()]
      .filter((t) => !category || (t.categories || []).includes(category))
      .filter((t) => terms.every((w) => words(t).includes(w)))
      .sort((a, b) => a.title.localeCompare(b.title));
    $("#catalog").replaceChildren(...types.map(card));
    const q = $("#catalog-search").value.trim();
    $("#catalog-count").textContent = types.length ? `${types.length} of ${state.types.size} types` :
      `No type matches${q ? ` “${q}”` : ""}${category ? ` in ${category}` : ""}.`;
  },
};

$("#catalog-search").addEventListener("input", () => list.render());

function card(t) {
  const titleID = `type-${t.id}`;
  return el("li", { class: "card", "data-type": t.id, "aria-labelledby": titleID },
    el("div", { class: "card-head" }, logo(t), el("div", {}, el("h2", { id: titleID, text: t.title }), el("code", { class: "sub", text: t.id }))),
    t.description ? el("p", { class: "description", text: t.description }) : null,
    el("div", { class: "tags" }, ...(t.categories || []).map((c) => el("span", { class: "tag", text: c }))),
    el("a", { class: can("operator") ? "button primary" : "button", href: href(`/catalog/${seg(t.id)}`), "data-nav": true,
      "aria-label": `${can("operator") ? "Deploy" : "About"} ${t.title}`, text: can("operator") ? "Deploy" : "Details" }));
}

// --- deploy one type ------------------------------------------------------------

export const deploy = {
  show(id) {
    const t = state.types.get(id);
    const f = $("#deploy-form");
    clearFieldErrors(f);
    if (!t) {
      document.title = "No such type · moor";
      $("#deploy-title").textContent = `No type “${id}”`;
      $("#deploy-meta").textContent = "";
      $("#deploy-description").textContent = "The catalog has no such type; it may have been removed.";
      $("#deploy-logo").replaceChildren();
      f.hidden = true;
      $("#deploy-denied").hidden = true;
      return;
    }
    document.title = `Deploy ${t.title} · moor`;
    $("#deploy-logo").replaceWith(Object.assign(logo(t), { id: "deploy-logo" }));
    $("#deploy-title").textContent = t.title;
    const ports = (t.ports || []).map((p) => `${p.port}/${p.protocol}${p.http ? " (HTTP)" : ""}`).join(", ");
    $("#deploy-meta").textContent = [t.image, ports && `ports ${ports}`, ...(t.categories || [])].filter(Boolean).join(" · ");
    $("#deploy-description").textContent = t.description || "";
    f.hidden = !can("operator");
    $("#deploy-denied").hidden = can("operator");
    field(f, "type").value = t.id;
    $("#deploy-where").textContent = `Into project ${state.project}: pick another in the header's switcher.`;
    field(f, "name").value = "";
    field(f, "replicas").value = "1";
    fillEnv(t);
    fillRouting(t);
  },
};

function fillEnv(t) {
  const box = $("#env");
  box.replaceChildren(el("legend", { text: "Settings" }));
  for (const e of t.env || []) {
    const name = `env.${e.name}`;
    const required = e.required && !e.default && !e.generate;
    const hintID = `hint-${e.name}`.replace(/[^a-zA-Z0-9_-]/g, "_");
    let input;
    if (e.choices?.length) {
      input = el("select", { name, required },
        ...(e.required ? [] : [el("option", { value: "", text: e.default ? `default (${e.default})` : "—" })]),
        ...e.choices.map((c) => el("option", { value: c, text: c })));
    } else {
      const placeholder = e.generate ? "generated if empty" : e.default || "";
      input = el("input", { name, placeholder, type: e.secret ? "password" : "text", autocomplete: e.secret ? "new-password" : "off", required,
        "aria-describedby": e.description ? hintID : undefined });
    }
    box.append(el("label", {}, el("span", { class: required ? "req" : "", text: e.label || e.name }), input,
      e.description ? el("small", { id: hintID, class: "hint", text: e.description }) : null));
  }
}

function fillRouting(t) {
  const f = $("#deploy-form");
  field(f, "aliases").value = "";
  field(f, "path").value = "";
  field(f, "publish").value = "";
  const tcp = (t.ports || []).filter((p) => p.protocol === "tcp");
  const sel = field(f, "http_port");
  sel.replaceChildren(el("option", { value: "", text: tcp.find((p) => p.http) ? `the type's (${tcp.find((p) => p.http).port})` : "none" }),
    ...tcp.map((p) => el("option", { value: String(p.port), text: `${p.port} (${p.name})` })));
  sel.closest("label").hidden = tcp.length < 2;
  $("#deploy-routing").open = false;
  $("#deploy-routing").hidden = !(t.ports || []).length;
}

$("#deploy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  const env = {};
  for (const input of f.querySelectorAll("#env [name]")) {
    if (input.value !== "") env[input.name.slice(4)] = input.value;
  }
  const req = { name: field(f, "name").value.trim(), type: field(f, "type").value, replicas: Number(field(f, "replicas").value) || 1, env };
  const aliases = field(f, "aliases").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (aliases.length) req.aliases = aliases;
  if (field(f, "path").value.trim()) req.path = field(f, "path").value.trim();
  if (field(f, "http_port").value) req.http_port = Number(field(f, "http_port").value);
  const publish = parsePublish(field(f, "publish").value);
  if (publish.length) req.publish = publish;
  const submit = f.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const c = await api("POST", apiBase(), req);
    remember(c, "deploy");
    state.containers.set(c.name, c);
    nav.go(href(`/containers/${seg(c.name)}`));
  } catch (e) {
    showFieldError(f, e, $("#deploy-error"));
  } finally {
    submit.disabled = false;
  }
});

// parsePublish reads "15432:5432, 127.0.0.1:8081:http" (the CLI's -p); the
// server checks each part and names the one it refuses.
export function parsePublish(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((spec) => {
    const m = spec.match(/^(?:(\[[^\]]+\]|[^:]+):)?([^:]+):([^:]+)$/);
    if (!m) return { port: spec };
    const port = /^\d+$/.test(m[3]) ? Number(m[3]) : m[3];
    const out = { port, host_port: /^\d+$/.test(m[2]) ? Number(m[2]) : m[2] };
    if (m[1]) out.host_ip = m[1].replace(/^\[|\]$/g, "");
    return out;
  });
}
