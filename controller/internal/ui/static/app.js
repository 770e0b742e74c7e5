// rsgo web UI: a hash-routed single page over /api.

import { api, token, enc, APIError } from "./api.js";
import { h, mount, table, status, when, errorBanner } from "./dom.js";
import { Live, newSessionId } from "./live.js";
import { variableForm, showFieldErrors, readForm } from "./forms.js";

let cleanup = [];

const routes = [
  [/^#\/signin/, signIn],
  [/^#\/environments$/, environments],
  [/^#\/catalog$/, catalog],
  [/^#\/deployments$/, allDeployments],
  [/^#\/environments\/([^/]+)\/deployments$/, deployments],
  [/^#\/environments\/([^/]+)\/deployments\/([^/]+)\/rollback$/, rollbackPage],
  [/^#\/environments\/([^/]+)\/deployments\/([^/]+)$/, deploymentDetail],
];

async function route() {
  cleanup.forEach((f) => f());
  cleanup = [];
  const hash = location.hash || "#/environments";
  document.getElementById("nav").hidden = !token.get();
  if (!token.get() && !hash.startsWith("#/signin")) {
    location.hash = "#/signin?next=" + enc(hash);
    return;
  }
  for (const [re, view] of routes) {
    const m = hash.match(re);
    if (m) {
      try {
        await view(...m.slice(1).map(decodeURIComponent));
      } catch (err) {
        if (!(err instanceof APIError && err.status === 401)) mount(errorBanner(err));
      }
      document.getElementById("main").focus({ preventScroll: true });
      return;
    }
  }
  mount(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/environments" }, "Go to environments")));
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", () => {
    token.clear();
    location.hash = "#/signin";
  });
  route();
});

// ---- sign in ----

function signIn() {
  const next = new URLSearchParams(location.hash.split("?")[1] || "").get("next") || "#/environments";
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const msg = h("div", { class: "field-error", role: "alert" });
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    try {
      await api("GET", "/api/environments");
      location.hash = next;
    } catch (err) {
      token.clear();
      location.hash = "#/signin?next=" + enc(next);
      msg.textContent = err.status === 401 ? "That token was not accepted." : err.message;
    }
  } },
  h("h1", {}, "Sign in"),
  h("label", { for: "token" }, "Admin token", h("span", { class: "hint" }, " (printed on the controller's first start, or in <data-dir>/admin-token)")),
  input, msg,
  h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Sign in")));
  mount(form);
  input.focus();
}

// ---- environments ----

async function environments() {
  const { environments } = await api("GET", "/api/environments");
  const joinOut = h("div");
  const nameIn = h("input", { id: "env-name", required: true, pattern: "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", placeholder: "prod-eu-1" });
  const nameErr = h("div", { class: "field-error", role: "alert" });
  const showJoin = (title, res) => joinOut.replaceChildren(h("div", { class: "card" },
    h("h2", {}, title),
    h("p", {}, "Run this on the Docker host within the hour (the token works once):"),
    copyRow(res.joinCommand), h("p", { class: "muted" }, `Expires ${when(res.expiresAt)}`)));
  const create = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    nameErr.textContent = "";
    try {
      const res = await api("POST", "/api/environments", { name: nameIn.value.trim() });
      await environments();
      document.querySelector("#join-out").replaceChildren();
      showJoinGlobal("Environment " + res.environment.name + " created", res);
    } catch (err) { nameErr.textContent = err.message; }
  } }, h("h2", {}, "Add an environment"),
  h("label", { for: "env-name" }, "Name", h("span", { class: "hint" }, " lowercase letters, digits and '-'")), nameIn, nameErr,
  h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Create and get join command")));

  const rows = environments.map((e) => h("tr", {},
    h("td", {}, h("a", { href: `#/environments/${enc(e.name)}/deployments` }, e.name), h("div", { class: "muted mono" }, e.id)),
    h("td", {}, status(e.status)),
    h("td", {}, e.hostname || "—"),
    h("td", {}, e.agentVersion || "—"),
    h("td", {}, e.dockerVersion || "—"),
    h("td", {}, when(e.lastSeenAt)),
    h("td", {}, h("div", { class: "actions" },
      h("button", { type: "button", onclick: async () => {
        const res = await api("POST", `/api/environments/${enc(e.id)}/join-token`);
        showJoinGlobal("Re-enroll " + e.name, res);
      } }, "Re-enroll"),
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete environment ${e.name}? Its agent certificate is revoked and its connection cut.`)) return;
        await api("DELETE", `/api/environments/${enc(e.id)}`);
        environments();
      } }, "Delete")))));
  const out = h("div", { id: "join-out" });
  mount(h("h1", {}, "Environments"), table(["Name", "Status", "Host", "Agent", "Docker", "Last seen", ""], rows), out, create);
  function showJoinGlobal(title, res) { showJoin(title, res); out.replaceChildren(joinOut); }
}

function copyRow(text) {
  const btn = h("button", { type: "button", onclick: async () => {
    try { await navigator.clipboard.writeText(text); btn.textContent = "Copied"; } catch { btn.textContent = "Select and copy"; }
  } }, "Copy");
  return h("div", { class: "copy-row" }, h("code", { id: "join-command" }, text), btn);
}

// ---- catalog ----

async function catalog() {
  const [{ stacks, errors }, { environments }] = await Promise.all([api("GET", "/api/stacks"), api("GET", "/api/environments")]);
  const dialog = h("dialog", { id: "deploy-dialog", "aria-labelledby": "deploy-title" });
  const cards = stacks.map((s) => h("div", { class: "card" },
    h("h2", {}, `${s.productName} `, h("span", { class: "muted" }, `(${s.stack})`)),
    s.description ? h("p", {}, s.description) : null,
    h("p", { class: "muted mono" }, s.id),
    h("p", {}, "Versions: ", s.versions.join(", "), " — latest ", h("strong", {}, s.latestVersion)),
    h("div", { class: "actions" }, s.versions.slice().reverse().map((v) =>
      h("button", { type: "button", class: v === s.latestVersion ? "primary" : "", onclick: () => openDeploy(dialog, `${s.id}@${v}`, environments) }, `Deploy ${v}`)))));
  const errs = errors.length ? h("div", { class: "card" }, h("h2", {}, "Manifest errors"),
    h("ul", {}, errors.map((e) => h("li", { class: "mono" }, `${e.file}${e.line ? ":" + e.line : ""}${e.service ? " service " + e.service : ""}${e.key ? " key " + e.key : ""}: ${e.message}`)))) : null;
  mount(h("h1", {}, "Catalog"),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: async () => { await api("POST", "/api/catalog/sync"); catalog(); } }, "Re-read catalog")),
    cards.length ? cards : h("p", { class: "muted" }, "No stacks. Start the controller with --catalog DIR."), errs, dialog);
}

async function openDeploy(dialog, stackId, environments) {
  const { version } = await api("GET", `/api/stacks/${enc(stackId)}`);
  const envSel = h("select", { id: "deploy-env", required: true }, environments.map((e) => h("option", { value: e.id }, `${e.name} (${e.status})`)));
  const nameIn = h("input", { id: "deploy-name", required: true, pattern: "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value: version.product.split(".").pop() });
  const fields = variableForm(version.variables);
  const msg = h("div", { class: "field-error", role: "alert" });
  const form = h("form", { method: "dialog", onsubmit: async (e) => {
    e.preventDefault();
    msg.textContent = "";
    if (!form.reportValidity()) return;
    const sessionId = newSessionId();
    try {
      const res = await api("POST", `/api/environments/${enc(envSel.value)}/deployments`,
        { name: nameIn.value.trim(), stackId, variables: readForm(version.variables, fields), sessionId });
      dialog.close();
      location.hash = `#/environments/${enc(envSel.value)}/deployments/${enc(res.deploymentId)}?session=${enc(res.sessionId)}`;
    } catch (err) {
      msg.textContent = err.message;
      showFieldErrors(fields, err.fields);
      if (err.fields && err.fields.some((f) => f.field === "name")) msg.textContent = err.message;
    }
  } },
  h("h2", { id: "deploy-title" }, `Deploy ${version.productName} ${version.version}`),
  h("label", { for: "deploy-env" }, "Environment"), envSel,
  h("label", { for: "deploy-name" }, "Deployment name"), nameIn,
  fields.node, msg,
  h("div", { class: "actions" },
    h("button", { type: "submit", class: "primary", id: "deploy-submit" }, "Deploy"),
    h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")));
  dialog.replaceChildren(form);
  dialog.showModal();
}

// ---- deployments ----

async function allDeployments() {
  const { environments } = await api("GET", "/api/environments");
  const lists = await Promise.all(environments.map((e) => api("GET", `/api/environments/${enc(e.id)}/deployments`).then((r) => [e, r.deployments])));
  const rows = lists.flatMap(([e, deps]) => deps.map((d) => deploymentRow(e, d)));
  mount(h("h1", {}, "Deployments"), table(["Name", "Environment", "Stack", "Version", "Status"], rows));
}

function deploymentRow(e, d) {
  return h("tr", {},
    h("td", {}, h("a", { href: `#/environments/${enc(e.name)}/deployments/${enc(d.name)}` }, d.name)),
    h("td", {}, e.name), h("td", { class: "mono" }, d.stackId.split("@")[0]), h("td", {}, d.version), h("td", {}, status(d.status)));
}

async function deployments(env) {
  const [{ environment }, { deployments }] = await Promise.all([api("GET", `/api/environments/${enc(env)}`), api("GET", `/api/environments/${enc(env)}/deployments`)]);
  mount(h("h1", {}, `Deployments in ${environment.name} `, status(environment.status)),
    table(["Name", "Environment", "Stack", "Version", "Status"], deployments.map((d) => deploymentRow(environment, d))),
    h("p", {}, h("a", { href: "#/catalog" }, "Deploy from the catalog")));
}

const busy = ["Pending", "Deploying", "Upgrading", "RollingBack", "Stopping", "Starting", "Removing"];

async function deploymentDetail(env, id) {
  const session = new URLSearchParams(location.hash.split("?")[1] || "").get("session");
  const base = `/api/environments/${enc(env)}/deployments/${enc(id.split("?")[0])}`;
  const { deployment: d } = await api("GET", base);
  const progress = h("div", { id: "progress" });
  const banners = h("div", { id: "banners" });
  const page = [h("h1", {}, `${d.name} `, status(d.status)), progress, banners];

  page.push(h("div", { class: "card" }, h("dl", { class: "kv" },
    h("dt", {}, "Stack"), h("dd", { class: "mono" }, d.stackId),
    h("dt", {}, "Version"), h("dd", { id: "version" }, d.version),
    h("dt", {}, "Status"), h("dd", { id: "status" }, d.status),
    d.error ? [h("dt", {}, "Error"), h("dd", { id: "error" }, d.error)] : null,
    h("dt", {}, "Updated"), h("dd", {}, when(d.updatedAt)))));

  const act = (label, method, path, cls, confirmText) => h("button", { type: "button", class: cls || "", disabled: busy.includes(d.status), onclick: async () => {
    if (confirmText && !confirm(confirmText)) return;
    const sessionId = newSessionId();
    const res = await api(method, base + path, method === "DELETE" ? undefined : { sessionId });
    if (method === "DELETE") location.hash = `#/environments/${enc(env)}/deployments`;
    else location.hash = `#/environments/${enc(env)}/deployments/${enc(d.id)}?session=${enc(res.sessionId)}`;
  } }, label);
  page.push(h("div", { class: "actions" },
    act("Stop", "POST", "/stop"), act("Start", "POST", "/start"),
    act("Remove", "DELETE", "", "danger", `Remove ${d.name}? Containers and networks are deleted; volumes are kept.`)));

  page.push(h("h2", {}, "Services"), table(["Service", "Image", "Digest", "State", "Health"], d.services.map((s) =>
    h("tr", {}, h("td", {}, s.name), h("td", { class: "mono" }, s.image || "—"), h("td", { class: "mono" }, s.digest || s.imageId || "—"),
      h("td", {}, s.state), h("td", {}, s.health || "—")))));
  page.push(h("h2", {}, "Variables"), table(["Name", "Value"], Object.entries(d.variables).sort().map(([k, v]) =>
    h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "mono" }, v)))));
  page.push(h("h2", {}, "History"), table(["When", "Operation", "From → to", "Outcome"], d.history.slice().reverse().map((e) =>
    h("tr", {}, h("td", {}, when(e.at)), h("td", {}, e.kind), h("td", {}, `${e.fromVersion ? e.fromVersion + " → " : ""}${e.toVersion || ""}`),
      h("td", {}, e.success ? "succeeded" : `failed: ${e.error || ""}`)))));
  mount(...page);

  const watch = session || (busy.includes(d.status) && d.operation ? d.operation.sessionId : null);
  if (watch) follow(progress, watch, () => deploymentDetailRefresh(env, id));
  await showBanners(banners, base, d, env);
}

function deploymentDetailRefresh(env, id) {
  const target = `#/environments/${enc(env)}/deployments/${enc(id.split("?")[0])}`;
  // Keep the finished progress visible: re-render the rest of the page.
  setTimeout(() => { if (location.hash.split("?")[0] === target) route(); }, 1500);
}

async function showBanners(into, base, d, env) {
  const nodes = [];
  if (d.status === "Running") {
    const check = await api("GET", base + "/upgrade/check");
    if (check.upgradeAvailable) {
      nodes.push(h("div", { class: "banner upgrade", id: "upgrade-banner", role: "status" },
        h("span", { class: "icon", "aria-hidden": "true" }, "⬆"),
        h("div", {},
          h("p", {}, h("strong", {}, `Upgrade available: ${check.currentVersion} → ${check.latestVersion}`)),
          check.newVariables.length ? h("p", {}, "New variables: ", h("span", { class: "mono", id: "new-vars" }, check.newVariables.join(", "))) : null,
          check.removedVariables.length ? h("p", {}, "Removed variables: ", h("span", { class: "mono", id: "removed-vars" }, check.removedVariables.join(", "))) : null,
          check.canUpgrade ? h("button", { type: "button", class: "primary", id: "upgrade-button", onclick: () => openUpgrade(base, d, check, env) }, "Upgrade")
            : h("p", {}, check.cannotUpgradeReason))));
    }
  }
  if (d.status === "Failed") {
    const rb = await api("GET", base + "/rollback");
    if (rb.canRollback) {
      nodes.push(h("div", { class: "banner rollback", id: "rollback-banner", role: "alert" },
        h("span", { class: "icon", "aria-hidden": "true" }, "↩"),
        h("div", {},
          h("p", {}, h("strong", {}, "Rollback available")),
          h("p", {}, `${rb.snapshotDescription}: return to ${rb.rollbackTargetVersion}.`),
          h("a", { class: "button", id: "rollback-link", href: `#/environments/${enc(env)}/deployments/${enc(d.id)}/rollback` }, "Roll back…"))));
    }
  }
  into.replaceChildren(...nodes);
}

async function openUpgrade(base, d, check, env) {
  let dialog = document.getElementById("upgrade-dialog");
  if (!dialog) { dialog = h("dialog", { id: "upgrade-dialog", "aria-labelledby": "upgrade-title" }); document.body.append(dialog); }
  const versions = check.availableVersions.slice().reverse();
  const picker = h("select", { id: "upgrade-version" }, versions.map((v) => h("option", { value: v }, v)));
  const stackBase = check.latestStackId.split("@")[0];
  const varsBox = h("div");
  const msg = h("div", { class: "field-error", role: "alert" });
  let fields = { node: h("div"), inputs: {} };
  let target;
  const loadVersion = async () => {
    const { version } = await api("GET", `/api/stacks/${enc(stackBase + "@" + picker.value)}`);
    target = version;
    const fresh = version.variables.filter((v) => !(v.name in d.variables));
    fields = variableForm(fresh);
    varsBox.replaceChildren(fresh.length ? h("p", {}, "Values for the variables this version adds:") : h("p", { class: "muted" }, "This version adds no variables."), fields.node);
  };
  picker.addEventListener("change", loadVersion);
  await loadVersion();
  const auto = h("input", { type: "checkbox", id: "auto-rollback" });
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    try {
      const fresh = target.variables.filter((v) => !(v.name in d.variables));
      const res = await api("POST", base + "/upgrade", { stackId: `${stackBase}@${picker.value}`, variables: readForm(fresh, fields), sessionId: newSessionId(), autoRollback: auto.checked });
      dialog.close();
      location.hash = `#/environments/${enc(env)}/deployments/${enc(d.id)}?session=${enc(res.sessionId)}`;
    } catch (err) { msg.textContent = err.message; showFieldErrors(fields, err.fields); }
  } },
  h("h2", { id: "upgrade-title" }, `Upgrade ${d.name} from ${check.currentVersion}`),
  h("label", { for: "upgrade-version" }, "Target version"), picker, varsBox,
  h("label", {}, auto, " Roll back by itself if the upgrade fails"),
  msg,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "upgrade-confirm" }, "Start upgrade"),
    h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")));
  dialog.replaceChildren(form);
  dialog.showModal();
}

// follow renders live progress of one session into `into`.
function follow(into, sessionId, onDone) {
  const fill = h("div");
  fill.style.width = "0%";
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", id: "progress-bar" }, fill);
  const pct = h("span", { id: "progress-percent" }, "0%");
  const phase = h("span", { id: "progress-phase" }, "Waiting for the agent…");
  const svc = h("span", { id: "progress-services" });
  const liveEl = h("span", { class: "live down", id: "live-indicator" }, "Connecting…");
  const msg = h("div", { class: "muted", id: "progress-message" });
  const result = h("div", { id: "progress-result" });
  into.replaceChildren(h("div", { class: "card progress" }, bar, h("div", { class: "progress-meta" }, pct, phase, svc, liveEl), msg, result));
  const setWidth = (p) => { fill.style.width = `${p}%`; bar.setAttribute("aria-valuenow", String(p)); pct.textContent = `${p}%`; };
  const live = new Live(sessionId, {
    onState: (s) => {
      liveEl.className = s === "live" ? "live" : "live down";
      liveEl.textContent = s === "live" ? "Live" : "Reconnecting…";
    },
    onEvent: (ev) => {
      setWidth(ev.percent || 0);
      if (ev.phase) phase.textContent = ev.phase;
      if (ev.totalServices) svc.textContent = `services ${ev.completedServices} of ${ev.totalServices}`;
      if (ev.message) msg.textContent = ev.message;
      if (ev.type === "completed") {
        result.replaceChildren(h("div", { class: "banner success", role: "status", id: "result-success" }, h("span", { class: "icon", "aria-hidden": "true" }, "✔"),
          h("div", {}, `${ev.operation} completed`)));
        live.close();
        liveEl.textContent = "Done";
        onDone();
      }
      if (ev.type === "failed") {
        result.replaceChildren(h("div", { class: "banner error", role: "alert", id: "result-failed" }, h("span", { class: "icon", "aria-hidden": "true" }, "✖"),
          h("div", {}, h("strong", {}, `${ev.operation} failed in ${ev.phase || "?"}`), h("p", { class: "mono" }, ev.error || ""))));
        live.close();
        liveEl.textContent = "Done";
        onDone();
      }
    },
  });
  cleanup.push(() => live.close());
}

// ---- rollback ----

async function rollbackPage(env, id) {
  const base = `/api/environments/${enc(env)}/deployments/${enc(id)}`;
  const [{ deployment: d }, rb] = await Promise.all([api("GET", base), api("GET", base + "/rollback")]);
  const progress = h("div", { id: "progress" });
  const failedVersion = d.lastOperation && d.lastOperation.toVersion ? d.lastOperation.toVersion : d.version;
  const parts = [h("h1", {}, `Roll back ${d.name}`)];
  if (!rb.canRollback) {
    parts.push(h("div", { class: "banner error", role: "alert" }, h("span", { class: "icon", "aria-hidden": "true" }, "⚠"), h("div", {}, "Rollback is not available: ", rb.reason || "")),
      h("p", {}, h("a", { href: `#/environments/${enc(env)}/deployments/${enc(d.id)}` }, "Back to the deployment")));
    mount(...parts);
    return;
  }
  const confirmBtn = h("button", { type: "button", class: "primary", id: "rollback-confirm", onclick: async () => {
    confirmBtn.disabled = true;
    try {
      const res = await api("POST", base + "/rollback", { sessionId: newSessionId() });
      follow(progress, res.sessionId, () => {
        setTimeout(() => { location.hash = `#/environments/${enc(env)}/deployments/${enc(d.id)}`; }, 2500);
      });
    } catch (err) { progress.replaceChildren(errorBanner(err)); confirmBtn.disabled = false; }
  } }, `Roll back to ${rb.rollbackTargetVersion}`);
  parts.push(h("div", { class: "card" }, h("dl", { class: "kv" },
    h("dt", {}, "Current (failed)"), h("dd", { id: "rb-current" }, failedVersion),
    h("dt", {}, "Target"), h("dd", { id: "rb-target" }, rb.rollbackTargetVersion),
    h("dt", {}, "Snapshot"), h("dd", { id: "rb-snapshot" }, rb.snapshotDescription),
    h("dt", {}, "Taken"), h("dd", {}, when(rb.snapshotCreatedAt)),
    h("dt", {}, "Error"), h("dd", {}, d.error || "—"))),
  h("p", {}, "The failed version's containers are removed and the services re-created exactly as they ran before, from the snapshot. Data in volumes is not restored."),
  h("div", { class: "actions" }, confirmBtn, h("a", { class: "button", href: `#/environments/${enc(env)}/deployments/${enc(d.id)}` }, "Cancel")),
  progress);
  mount(...parts);
}
