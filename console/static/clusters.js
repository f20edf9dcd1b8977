// ---------- clusters ----------

const CLUSTER_FIELDS = [
  ["name", "Name", "text"],
  ["organization", "Organization", "text"],
  ["project", "Project", "text"],
  ["endpoint", "Milvus endpoint", "text", "host:port, e.g. milvus-prod:19530"],
  ["username", "User", "text", "when the cluster checks users"],
  ["password", "Password", "password", "sealed by zdm, never shown again"],
  ["proxy_listen", "Proxy address", "text", "host:port applications will use (optional)"],
  ["storage_path", "Storage path", "text", "Milvus localStorage.path (optional)"],
  ["spare", "Spare", "checkbox", "offered to the pool provisioner as a migration's target"],
];

// SECURE_PARTS are the parts of a registration most clusters need none
// of, each sent as one object: the API replaces such a part whole.
const SECURE_PARTS = {
  storage_s3: ["S3 storage (instead of a storage path)", [
    ["storage_s3.endpoint", "S3 endpoint", "text", "minio.address:port"],
    ["storage_s3.bucket", "Bucket", "text", "minio.bucketName"],
    ["storage_s3.root_path", "Root path", "text", "minio.rootPath, e.g. files"],
    ["storage_s3.region", "Region", "text", "optional"],
    ["storage_s3.use_ssl", "TLS", "checkbox", "the S3 endpoint speaks TLS (minio.useSSL)"],
    ["storage_s3.access_key", "Access key", "password", "sealed by zdm, never shown again"],
    ["storage_s3.secret_key", "Secret key", "password", "sealed by zdm, never shown again"],
  ]],
  tls: ["TLS from zdm to Milvus", [
    ["tls.mode", "Mode", "select"],
    ["tls.server_name", "Server name", "text", "the name in Milvus's certificate, if not the endpoint's host"],
    ["tls.ca_pem", "CA certificate", "pem", "PEM; default: this host's roots"],
    ["tls.client_cert_pem", "Client certificate", "pem", "PEM zdm presents (mutual)"],
    ["tls.client_key_pem", "Client key", "pem", "PEM (mutual); sealed by zdm, never shown again"],
  ]],
  proxy_tls: ["TLS of the proxy, for applications", [
    ["proxy_tls.mode", "Mode", "select"],
    ["proxy_tls.cert_pem", "Certificate", "pem", "PEM the applications trust"],
    ["proxy_tls.key_pem", "Key", "pem", "PEM; sealed by zdm, never shown again"],
    ["proxy_tls.client_ca_pem", "Client CA", "pem", "PEM of the CA of the applications' certificates (mutual)"],
  ]],
};
const TLS_MODES = [["", "none: plain text"], ["one_way", "one-way TLS"], ["mutual", "mutual TLS"]];
const SECURE_CHOICES = { "tls.mode": TLS_MODES, "proxy_tls.mode": TLS_MODES };
const SECURE_FIELDS = Object.values(SECURE_PARTS).flatMap(([, fields]) => fields);

function clustersPage() {
  const disabled = canDrive() ? "" : "disabled";
  const parts = Object.entries(SECURE_PARTS).map(([part, [legend, fields]]) =>
    `<fieldset><legend>${esc(legend)}</legend><div class="field-error" data-error="${part}"></div>${formRows(fields, disabled, SECURE_CHOICES)}</fieldset>`).join("");
  // The removal's answer sits outside the list, which each refresh redraws.
  main.innerHTML = `<h1>Clusters</h1><div class="card">
    <label class="inline">Show <select id="clusters-shown">${CLUSTERS_SHOWN.map(([q, label]) => `<option value="${esc(q)}">${esc(label)}</option>`).join("")}</select></label>
    <div class="scroll" id="clusters">Loading…</div><div class="notice" id="remove-message"></div></div>
    <div class="card">
      <h2 id="form-title">Register a cluster</h2>
      ${canDrive() ? "" : '<p class="muted">Your role can view clusters but not register them.</p>'}
      <form id="register" novalidate>${formRows(CLUSTER_FIELDS, disabled)}
        <details id="secure"><summary>S3 storage and TLS</summary>${parts}</details>
        <button type="submit" id="register-button" ${disabled}>Register cluster</button>
        <button type="button" class="plain" id="edit-cancel" hidden>Cancel</button>
        <div class="notice" id="register-message"></div>
      </form>
    </div>`;
  const gen = generation;
  const form = document.getElementById("register");
  loadPEMFiles(form);
  if (me && me.organization) form.elements.organization.value = me.organization;
  if (me && me.projects && me.projects.length === 1) form.elements.project.value = me.projects[0];
  // The same form registers a cluster, or changes the one being edited.
  let shown = {}, editing = null;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!editing) return registerCluster(form);
    const saved = await updateCluster(form, editing);
    // The list is read again, but an Edit clicked before it comes back
    // shows the cluster as saved, not as the list had it before.
    if (!saved) return;
    shown[saved.id] = saved;
    editing = editForm(form, null);
  });
  document.getElementById("edit-cancel").addEventListener("click", () => { editing = editForm(form, null); });
  // Removing takes two clicks on the same button: no dialog to dismiss.
  document.getElementById("clusters").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-remove]");
    if (button) removeCluster(button);
    const edit = ev.target.closest("button[data-edit]");
    if (edit && shown[edit.dataset.edit]) editing = editForm(form, shown[edit.dataset.edit]);
  });
  const shownClusters = document.getElementById("clusters-shown");
  shownClusters.addEventListener("change", () => refreshPage());
  return {
    async refresh() {
      let data;
      const path = "/v1/clusters" + (shownClusters.value ? "?" + shownClusters.value : "");
      try { data = await api("GET", path); } catch (e) { return failed(gen, "#clusters", e); }
      if (gen !== generation) return;
      if (document.querySelector("#clusters button[data-confirming]")) return; // a removal waits for its second click
      shown = Object.fromEntries(data.clusters.map((c) => [c.id, c]));
      const rows = newestFirst(data.clusters, "created_at").map((c) => `<tr data-cluster="${esc(c.id)}">
        <td><b>${esc(c.name)}</b>${c.spare ? ' <span class="muted">spare</span>' : ""}<div class="muted"><code>${esc(c.id)}</code></div></td>
        <td>${esc(c.organization)} / ${esc(c.project)}</td>
        <td><code>${esc(c.endpoint)}</code>${c.tls ? ` <span class="muted">TLS ${esc(c.tls.replace("_", "-"))}</span>` : ""}${c.proxy_listen ? `<div class="muted">proxy <code>${esc(c.proxy_listen)}</code>${c.proxy_tls ? ` TLS ${esc(c.proxy_tls.replace("_", "-"))}` : ""}</div>` : ""}${storageLine(c)}${c.proxy_problem ? `<div class="error">${esc(c.proxy_problem)}</div>` : ""}</td>
        <td>${badge(c.status)}${c.migration_id ? `<div><a href="#/migrations/${encodeURIComponent(c.migration_id)}">${esc(c.migration_id)}</a></div>` : ""}</td>
        <td class="actions">${canDrive() ? `<button type="button" class="plain" data-edit="${esc(c.id)}">Edit</button> <button type="button" class="plain" data-remove="${esc(c.id)}" data-name="${esc(c.name)}">Remove</button>` : ""}</td>
      </tr>`).join("");
      document.getElementById("clusters").innerHTML = rows
        ? `<table><thead><tr><th>Name</th><th>Organization / project</th><th>Endpoint</th><th>Status</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
        : `<p class="muted">${shownClusters.value ? "No cluster is of this kind." : "No clusters are registered yet."}</p>`;
    },
  };
}

// CLUSTERS_SHOWN are the list's choices: the API's filters and their
// names.
const CLUSTERS_SHOWN = [["", "all"], ["status=Locked,Syncing", "in a migration"], ["spare=true", "spares"],
  ["status=Running", "running"], ["status=Migrated", "migrated"]];

// storageLine says where zdm reads a cluster's segments, if anywhere.
function storageLine(c) {
  if (c.storage_path) return `<div class="muted">storage <code>${esc(c.storage_path)}</code></div>`;
  const s = c.storage_s3;
  if (!s) return "";
  const where = `${s.use_ssl ? "https" : "http"}://${s.endpoint}/${s.bucket}${s.root_path ? "/" + s.root_path : ""}`;
  return `<div class="muted">storage <code>${esc(where)}</code></div>`;
}

// fieldValue is what field name of form holds, as the API takes it: a
// secret or a PEM as typed, other text trimmed.
function fieldValue(form, name, kind) {
  const el = form.elements[name];
  if (kind === "checkbox") return el.checked;
  return kind === "password" || kind === "pem" ? el.value : el.value.trim();
}

// typedPart is what the form holds of one of SECURE_PARTS (keyed as the
// API names them), or null when none of it is filled in.
function typedPart(form, part) {
  const out = {};
  for (const [name, , kind] of SECURE_PARTS[part][1]) {
    const value = fieldValue(form, name, kind);
    if (value !== "" && value !== false) out[name.slice(part.length + 1)] = value;
  }
  return Object.keys(out).length ? out : null;
}

async function registerCluster(form) {
  form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
  const message = document.getElementById("register-message");
  message.textContent = "";
  message.className = "notice";
  const body = {};
  for (const [name, , kind] of CLUSTER_FIELDS) {
    const value = fieldValue(form, name, kind);
    if (value !== "") body[name] = value;
  }
  for (const part of Object.keys(SECURE_PARTS)) {
    const value = typedPart(form, part);
    if (value) body[part] = value;
  }
  const button = document.getElementById("register-button");
  button.disabled = true;
  try {
    const c = await api("POST", "/v1/clusters", body);
    // The scope stays for the next cluster; the rest is cleared.
    for (const [name, , kind] of [...CLUSTER_FIELDS, ...SECURE_FIELDS]) {
      if (kind === "checkbox") form.elements[name].checked = false;
      else if (name !== "organization" && name !== "project") form.elements[name].value = "";
    }
    message.className = "notice ok";
    message.textContent = `Registered ${c.name} (${c.id}).`;
    refreshPage();
  } catch (e) {
    showClusterError(form, message, e);
  } finally {
    button.disabled = !canDrive();
  }
}

// showClusterError shows the API's refusal by its field, unfolding the S3
// storage and TLS when the field is theirs.
function showClusterError(form, message, e) {
  message.className = "notice bad";
  if (e.field && e.field.split(".")[0] in SECURE_PARTS) document.getElementById("secure").open = true;
  showApiError(form, message, e);
}

// EDITABLE are the fields of a registered cluster the form can change;
// its name and scope stay.
const EDITABLE = ["endpoint", "proxy_listen", "storage_path", "spare"];

// SECRET_HINT is what a secret field of a cluster being edited says: the
// API never answers one, and replaces a part whole.
const SECRET_HINT = {
  storage_s3: "type again to change the S3 storage",
  tls: "left empty: kept; changing TLS replaces all of it",
  proxy_tls: "left empty: kept; changing TLS replaces all of it",
};

// editForm turns the form to editing cluster c (null: back to
// registering), and returns it.
function editForm(form, c) {
  form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
  if (c) Object.assign(document.getElementById("register-message"), { textContent: "", className: "notice" });
  document.getElementById("form-title").textContent = c ? `Edit ${c.name}` : "Register a cluster";
  document.getElementById("register-button").textContent = c ? "Save changes" : "Register cluster";
  document.getElementById("edit-cancel").hidden = !c;
  for (const [name, , kind, hint] of CLUSTER_FIELDS) {
    const el = form.elements[name];
    if (kind === "checkbox") el.checked = !!(c && c[name]);
    else if (c || !["organization", "project"].includes(name)) el.value = c ? c[name] || "" : "";
    el.readOnly = !!c && !EDITABLE.includes(name) && !["username", "password"].includes(name);
    if (name === "username" || name === "password") el.placeholder = c ? (c.has_credentials ? "leave empty to keep the one set" : "none set") : hint || "";
  }
  // The S3 storage and the TLS modes are shown; keys and PEMs never are.
  for (const [name, , kind, hint] of SECURE_FIELDS) {
    const [part, key] = name.split(".");
    const el = form.elements[name];
    const known = c && (part === "storage_s3" ? (c.storage_s3 || {})[key] : key === "mode" ? c[part] : undefined);
    if (kind === "checkbox") el.checked = !!known;
    else el.value = known || "";
    if (kind === "password" || kind === "pem") el.placeholder = c ? SECRET_HINT[part] : hint || "";
  }
  document.getElementById("secure").open = !!c && !!(c.storage_s3 || c.tls || c.proxy_tls);
  if (c) form.elements.endpoint.focus();
  return c;
}

// s3Change is the storage_s3 of an update from the form, or null when
// the S3 storage shown was left as it was: {} removes it.
function s3Change(form, c) {
  const typed = typedPart(form, "storage_s3") || {};
  const was = c.storage_s3 || {};
  const same = ["endpoint", "bucket", "root_path", "region"].every((k) => (typed[k] || "") === (was[k] || "")) &&
    !!typed.use_ssl === !!was.use_ssl && !typed.access_key && !typed.secret_key;
  return same ? null : typed;
}

// tlsChange is the tls or proxy_tls of an update from the form, or null
// when its mode stays and nothing was typed: mode "none" removes it.
function tlsChange(form, c, part) {
  const typed = typedPart(form, part) || {};
  const mode = typed.mode || "";
  const more = Object.keys(typed).some((k) => k !== "mode");
  if (!more && mode === (c[part] || "")) return null;
  return !more && mode === "" ? { mode: "none" } : typed;
}

// updateCluster sends what the form changed of cluster c; it returns
// the cluster as saved, or null.
async function updateCluster(form, c) {
  form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
  const message = document.getElementById("register-message");
  message.className = "notice";
  message.textContent = "";
  const body = {};
  for (const name of EDITABLE) {
    const kind = form.elements[name].type;
    const value = fieldValue(form, name, kind);
    if (value !== (kind === "checkbox" ? !!c[name] : c[name] || "")) body[name] = value;
  }
  // Credentials change together, and only when typed.
  if (form.elements.username.value !== "" || form.elements.password.value !== "") {
    body.username = form.elements.username.value.trim();
    body.password = form.elements.password.value;
  }
  const s3 = s3Change(form, c);
  if (s3) body.storage_s3 = s3;
  for (const part of ["tls", "proxy_tls"]) {
    const v = tlsChange(form, c, part);
    if (v) body[part] = v;
  }
  if (!Object.keys(body).length) {
    message.textContent = "Nothing changed.";
    return null;
  }
  const button = document.getElementById("register-button");
  button.disabled = true;
  try {
    const saved = await api("PATCH", "/v1/clusters/" + encodeURIComponent(c.id), body);
    message.className = "notice ok";
    message.textContent = `Saved ${saved.name}: ${Object.keys(body).filter((k) => k !== "password").map((k) => (k === "username" ? "credentials" : k)).join(", ")} changed.`;
    refreshPage();
    return saved;
  } catch (e) {
    showClusterError(form, message, e);
    return null;
  } finally {
    button.disabled = !canDrive();
  }
}

// unask puts a Remove button back as it was before its question.
function unask(button) {
  delete button.dataset.confirming;
  button.className = "plain";
  button.textContent = "Remove";
}

async function removeCluster(button) {
  const message = document.getElementById("remove-message");
  if (!("confirming" in button.dataset)) {
    document.querySelectorAll("#clusters button[data-confirming]").forEach(unask);
    button.dataset.confirming = "";
    button.className = "danger";
    button.textContent = `Remove ${button.dataset.name}?`;
    // Unanswered, the question goes, and the list refreshes again.
    setTimeout(() => { if ("confirming" in button.dataset) unask(button); }, 10000);
    return;
  }
  button.disabled = true;
  try {
    await api("DELETE", "/v1/clusters/" + encodeURIComponent(button.dataset.remove));
    message.className = "notice ok";
    message.textContent = `Removed ${button.dataset.name} from the registry.`;
  } catch (e) {
    message.className = "notice bad";
    message.textContent = e.message;
  }
  delete button.dataset.confirming;
  refreshPage();
}

