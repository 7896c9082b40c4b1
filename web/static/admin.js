// Admin pages (users, API keys, webhooks) and the signed-in user's own
// account page.

import { $, el, api, seg, field, keyed, confirmButton, showFieldError, clearFieldErrors, copyText, timeEl, ago } from "./lib.js";
import { state, DEFAULT_PROJECT } from "./state.js";

for (const b of document.querySelectorAll("[data-copy]")) {
  b.addEventListener("click", () => copyText($(`#${b.dataset.copy}`).textContent));
}

// A page of one kind of record: list, add, remove.
function listPage({ title, load, render, errBox }) {
  return {
    errBox,
    show() {
      document.title = `${title} · moor`;
      this.load();
    },
    async load() {
      try {
        render(await load());
      } catch (e) {
        $(errBox).textContent = e.message;
      }
    },
  };
}

// removeAndReload deletes a record, then lists page's records again; an
// error goes to the page's error line.
async function removeAndReload(path, page) {
  try {
    await api("DELETE", path);
    page.load();
  } catch (e) {
    $(page.errBox).textContent = e.message;
  }
}

// --- users ---------------------------------------------------------------------

export const users = listPage({
  title: "Users",
  errBox: "#users-error",
  load: async () => (await api("GET", "/api/v1/users")).users,
  render(list) {
    $("#users-error").textContent = "";
    keyed($("#users tbody"), list, (u) => u.username, (u) => JSON.stringify(u), (u) => {
      const me = u.username === state.user.name;
      return el("tr", { "data-user": u.username },
        el("td", { "data-label": "User" }, el("strong", { text: u.username }), me ? el("span", { class: "sub", text: "you" }) : null),
        el("td", { "data-label": "Role", text: u.role }),
        el("td", { "data-label": "Signed in", text: u.sessions ? `${u.sessions} session${u.sessions > 1 ? "s" : ""}` : "no" }),
        el("td", { "data-label": "Added" }, timeEl(u.created_at, ago)),
        el("td", { class: "actions" }, el("div", { class: "actions" },
          el("button", { type: "button", "data-action": "password", text: "Set password", onclick: () => openReset(u.username) }),
          me ? null : confirmButton("Remove", "Really remove?", () => removeAndReload(`/api/v1/users/${seg(u.username)}`, users), { "data-action": "remove", "aria-label": `Remove ${u.username}` }))));
    });
  },
});

$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  try {
    await api("POST", "/api/v1/users", { username: field(f, "username").value.trim(), role: field(f, "role").value, password: field(f, "password").value });
    f.reset();
    users.load();
  } catch (e) {
    showFieldError(f, e, $("#user-error"));
  }
});

function openReset(name) {
  const f = $("#reset-form");
  clearFieldErrors(f);
  f.reset();
  field(f, "username").value = name;
  $("#reset-title").textContent = `New password for ${name}`;
  f.hidden = false;
  field(f, "password").focus();
}
$("#reset-cancel").addEventListener("click", () => { $("#reset-form").hidden = true; });
$("#reset-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  try {
    await api("PUT", `/api/v1/users/${seg(field(f, "username").value)}/password`, { password: field(f, "password").value });
    f.hidden = true;
    users.load();
  } catch (e) {
    showFieldError(f, e, $("#reset-error"));
  }
});

// --- API keys -----------------------------------------------------------------

export const keys = listPage({
  title: "API keys",
  errBox: "#keys-error",
  load: async () => {
    const [{ apikeys }, { projects }] = await Promise.all([api("GET", "/api/v1/apikeys"), api("GET", "/api/v1/projects")]);
    projectChoices(projects.map((p) => p.name));
    return apikeys;
  },
  render(list) {
    $("#keys-error").textContent = "";
    // Revoked keys last.
    list.sort((a, b) => (!!a.revoked_at - !!b.revoked_at) || a.name.localeCompare(b.name));
    keyed($("#keys tbody"), list, (k) => k.name, (k) => JSON.stringify(k), (k) => el("tr", { "data-key-name": k.name, class: k.revoked_at ? "revoked" : "" },
      el("td", { "data-label": "Name" }, el("strong", { text: k.name }), k.revoked_at ? el("span", { class: "sub", text: "revoked" }) : null),
      el("td", { "data-label": "Role", text: k.role }),
      el("td", { "data-label": "Project" }, k.project ? el("a", { href: `/projects/${seg(k.project)}`, "data-nav": true, text: k.project }) : "every project"),
      el("td", { "data-label": "Created" }, timeEl(k.created_at, ago)),
      el("td", { "data-label": "Last used" }, k.last_used_at ? timeEl(k.last_used_at, ago) : "never"),
      el("td", { class: "actions" }, k.revoked_at ? "" : confirmButton("Revoke", "Really revoke?", () => removeAndReload(`/api/v1/apikeys/${seg(k.name)}`, keys),
        { "data-action": "revoke", "aria-label": `Revoke ${k.name}` }))));
  },
});

$("#key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  $("#key-new").hidden = true;
  try {
    const req = { name: field(f, "name").value.trim(), role: field(f, "role").value };
    if (field(f, "project").value) req.project = field(f, "project").value;
    const k = await api("POST", "/api/v1/apikeys", req);
    f.reset();
    $("#key-new-name").textContent = k.name;
    $("#key-new-value").textContent = k.key;
    $("#key-new").hidden = false;
    keys.load();
  } catch (e) {
    showFieldError(f, e, $("#key-error"));
  }
});

// projectChoices fills the key form's projects: a key may be limited to one.
function projectChoices(names) {
  const sel = field($("#key-form"), "project");
  const keep = sel.value;
  names.sort((a, b) => (b === DEFAULT_PROJECT) - (a === DEFAULT_PROJECT) || a.localeCompare(b));
  sel.replaceChildren(el("option", { value: "", text: "every project (instance-wide)" }), ...names.map((n) => el("option", { value: n, text: n })));
  if (names.includes(keep)) sel.value = keep;
}

// --- webhooks -------------------------------------------------------------------

export const webhooks = listPage({
  title: "Webhooks",
  errBox: "#webhooks-error",
  load: async () => (await api("GET", "/api/v1/webhooks")).webhooks,
  render(list) {
    $("#webhooks-error").textContent = "";
    keyed($("#webhooks tbody"), list, (h) => h.name, (h) => JSON.stringify(h), (h) => el("tr", { "data-webhook": h.name },
      el("td", { "data-label": "Name" }, el("strong", { text: h.name })),
      el("td", { "data-label": "URL" }, el("code", { text: h.url })),
      el("td", { "data-label": "Events", text: (h.events || []).join(", ") }),
      el("td", { "data-label": "Delivery" }, h.failures ? el("span", { class: "error", text: `${h.failures} failed: ${h.last_error || ""}` }) :
        h.last_delivered_at ? el("span", {}, "delivered ", timeEl(h.last_delivered_at, ago)) : "nothing sent yet"),
      el("td", { class: "actions" }, confirmButton("Remove", "Really remove?", () => removeAndReload(`/api/v1/webhooks/${seg(h.name)}`, webhooks),
        { "data-action": "remove", "aria-label": `Remove webhook ${h.name}` }))));
  },
});

$("#webhook-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  $("#webhook-new").hidden = true;
  const events = field(f, "events").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const h = await api("POST", "/api/v1/webhooks", { name: field(f, "name").value.trim(), url: field(f, "url").value.trim(), events: events.length ? events : ["*"] });
    f.reset();
    $("#webhook-new-name").textContent = h.name;
    $("#webhook-new-value").textContent = h.secret;
    $("#webhook-new").hidden = false;
    webhooks.load();
  } catch (e) {
    // "events[2]" is reported on the events field.
    showFieldError(f, e, $("#webhook-error"));
  }
});

// who says who is signed in with which roles: instance-wide, and per project.
function who(u) {
  const roles = Object.entries(u.projects || {}).sort().map(([p, r]) => `${r} in ${p}`);
  return `Signed in as ${u.name}, ${u.role || "no instance-wide role"}${roles.length ? `; ${roles.join(", ")}` : ""}.`;
}

// --- your account ------------------------------------------------------------------

export const account = {
  show() {
    document.title = "Your account · moor";
    const u = state.user;
    $("#account-who").textContent = who(u);
    const f = $("#password-form");
    f.reset();
    clearFieldErrors(f);
    field(f, "username").value = u.name;
    f.hidden = u.kind !== "user";
  },
};

$("#password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  clearFieldErrors(f);
  if (field(f, "password").value !== field(f, "confirm").value) {
    showFieldError(f, { field: "confirm", message: "the two new passwords differ" }, $("#password-error"));
    return;
  }
  try {
    await api("PUT", `/api/v1/users/${seg(state.user.name)}/password`,
      { current_password: field(f, "current_password").value, password: field(f, "password").value });
    f.reset();
    field(f, "username").value = state.user.name;
    $("#password-error").textContent = "";
    $("#account-who").textContent = `${who(state.user)} Password changed; your other sign-ins ended.`;
  } catch (e) {
    showFieldError(f, e, $("#password-error"));
  }
});
