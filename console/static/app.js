// zdm operator console. Plain browser JavaScript, no build step: it talks to
// the /v1 API with the token kept in this tab's session storage, renders by
// hash route (so the back button and a reload work) and refreshes the page
// it shows every second.
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "zdm.token";
const main = document.getElementById("main");
let me = null;        // the signed-in principal, from /v1/whoami
let page = null;      // {refresh()} of the page shown
let generation = 0;   // bumps on every navigation; stale answers are dropped

// ---------- API ----------

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "";
    this.field = e.field || "";
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  try { data = await resp.json(); } catch (_) { /* empty or not JSON */ }
  if (resp.status === 401 && path !== "/v1/whoami") {
    signOut("Your token is no longer accepted. Sign in again.");
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// ---------- helpers ----------

// Only these roles drive anything; a viewer or a scrape token reads.
const canDrive = () => me && ["admin", "org_admin", "project_admin"].includes(me.role);

// ended is a migration that stopped without switching over: it has no
// rate, ETA or lag any more.
const ended = (m) => m && (m.state === "failed" || m.state === "cancelled");

// newestFirst orders a list by a time field, the latest first.
const newestFirst = (list, field) => [...(list || [])].sort((a, b) => String(b[field] || "").localeCompare(String(a[field] || "")));

function when(t) {
  if (!t) return "—";
  const d = new Date(t);
  return isNaN(d) ? "—" : d.toLocaleString();
}

function span(a, b) {
  if (!a) return "";
  const ms = (b ? new Date(b) : new Date()) - new Date(a);
  return seconds(Math.max(0, ms / 1000));
}

function pct(done, total) {
  if (!total) return done ? 100 : 0;
  return Math.min(100, (100 * done) / total);
}

function bar(done, total) {
  const p = pct(done, total);
  return `<div class="bar" role="progressbar" aria-valuenow="${p.toFixed(0)}" aria-valuemin="0" aria-valuemax="100"><span style="width:${p.toFixed(1)}%"></span></div>`;
}

const badge = (s) => `<span class="badge ${esc(s)}">${esc(String(s || "").replace(/_/g, " "))}</span>`;

function setNav(active) {
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === active));
}

// ---------- routing ----------

function route() {
  generation++;
  page = null;
  const hash = location.hash || "#/migrations";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (hash === "#/signout") return signOut("");
  if (!token || !me) {
    if (token && !me) return restore(hash);
    return showSignIn(hash === "#/signin" ? "" : hash);
  }
  let m;
  if (hash === "#/clusters") return show(clustersPage(), "clusters");
  if (hash === "#/migrations") return show(migrationsPage(), "migrations");
  if ((m = hash.match(/^#\/migrations\/([^/]+)$/))) return show(migrationPage(decodeURIComponent(m[1])), "migrations");
  main.innerHTML = `<div class="card"><h1>Not found</h1><p>There is no page at <code>${esc(hash)}</code>. <a href="#/migrations">Migrations</a></p></div>`;
}

function show(p, nav) {
  setNav(nav);
  page = p;
  refreshPage();
}

function tick() {
  if (page && !document.hidden) refreshPage();
}

// refreshPage shows what went wrong instead of a page that silently stops
// updating.
function refreshPage() {
  const p = page;
  Promise.resolve().then(() => p.refresh()).catch((e) => {
    if (p !== page) return;
    let el = document.getElementById("page-error");
    if (!el) {
      main.insertAdjacentHTML("afterbegin", '<div class="notice bad" id="page-error"></div>');
      el = document.getElementById("page-error");
    }
    el.textContent = "This page could not be updated: " + (e && e.message ? e.message : e);
  });
}

// restore signs in again with the stored token after a reload.
async function restore(hash) {
  try {
    me = await api("GET", "/v1/whoami");
    signedIn();
    route();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(hash, e.status === 401 ? "Your token is no longer accepted. Sign in again." : e.message);
  }
}

function signedIn() {
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  const scope = me.organization ? ` · ${me.organization}${me.projects && me.projects.length ? " / " + me.projects.join(", ") : ""}` : "";
  document.getElementById("who").textContent = `${me.user} (${me.role.replace("_", " ")})${scope}`;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  page = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  history.replaceState(null, "", "#/signin");
  showSignIn("", message);
}

function showSignIn(next, message) {
  setNav("");
  main.innerHTML = `
  <div class="card" style="max-width:30rem;margin:3rem auto">
    <h1>Sign in</h1>
    <p class="muted">Paste an API token of this zdm. It stays in this browser tab only.</p>
    <form id="signin">
      <div class="row"><label for="token">API token</label>
        <div><input id="token" name="token" type="password" autocomplete="off" spellcheck="false">
        <div class="field-error" data-error="token"></div></div></div>
      <button type="submit" id="signin-button">Sign in</button>
      <div class="notice bad" id="signin-message">${esc(message || "")}</div>
    </form>
  </div>`;
  document.getElementById("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = document.getElementById("token").value.trim();
    const err = main.querySelector('[data-error="token"]');
    err.textContent = "";
    if (!token) { err.textContent = "Enter a token."; return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      me = await api("GET", "/v1/whoami");
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      err.textContent = e.status === 401 ? "This token is not accepted." : e.message;
      return;
    }
    signedIn();
    const dest = next && next !== "#/signin" ? next : "#/migrations";
    if (location.hash === dest) route(); else location.hash = dest;
  });
  document.getElementById("token").focus();
}

// ---------- forms ----------

// formRows renders a form's fields, each with a place for its error. A
// "pem" field is a text area that a chosen file can fill.
function formRows(fields, disabled, choices = {}) {
  return fields.map(([name, label, kind, hint]) => {
    const id = fieldId(name);
    let input;
    if (kind === "pem") {
      input = `<textarea id="${id}" name="${esc(name)}" rows="3" spellcheck="false" autocomplete="off" placeholder="${esc(hint || "")}" ${disabled}></textarea>
        <label class="file">or from a file <input type="file" data-pem-for="${esc(name)}" accept=".pem,.crt,.cer,.key,text/plain" ${disabled}></label>`;
    } else if (kind === "select") {
      const opts = (choices[name] || []).map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`).join("");
      input = `<select id="${id}" name="${esc(name)}" ${disabled}>${opts}</select>`;
    } else if (kind === "checkbox") {
      input = `<label class="check"><input id="${id}" name="${esc(name)}" type="checkbox" ${disabled}> ${esc(hint || "")}</label>`;
    } else {
      input = `<input id="${id}" name="${esc(name)}" type="${kind}" ${kind === "number" ? 'step="any" min="0"' : ""} ${kind === "password" ? 'autocomplete="new-password"' : ""} placeholder="${esc(hint || "")}" ${disabled}>`;
    }
    return `<div class="row"><label for="${id}">${esc(label)}</label><div>${input}<div class="field-error" data-error="${esc(name)}"></div></div></div>`;
  }).join("");
}

// loadPEMFiles fills a "pem" field of form with the file chosen for it.
function loadPEMFiles(form) {
  form.addEventListener("change", async (ev) => {
    const name = ev.target.dataset && ev.target.dataset.pemFor;
    const file = name && ev.target.files[0];
    if (!file) return;
    form.elements[name].value = await file.text();
    ev.target.value = ""; // the same file can be chosen again after an edit
  });
}

// showApiError puts an API error next to the form's field it names, or in
// the form's message.
function showApiError(form, message, e) {
  const field = e.field && e.field.replace(/\[\d+\]$/, "");
  if (field && form.querySelector(`[data-error="${CSS.escape(field)}"]`)) showFieldError(field, e.message);
  else message.textContent = e.message;
}

function failed(gen, sel, e) {
  if (gen !== generation || e.status === 401) return;
  const el = document.querySelector(sel);
  if (el) el.innerHTML = `<p class="error">${esc(e.message)}</p>`;
}

// ---------- migrations ----------

const FORM_FIELDS = [
  ["source_cluster_id", "Source cluster", "select"],
  ["target.name", "Target name", "text"],
  ["target.project", "Target project", "text"],
  ["target.organization", "Target organization", "text", "default: the source's"],
  ["target.provisioner", "Provisioner", "select"],
  ["options.lag_threshold_seconds", "Lag threshold (s)", "number", "default 10"],
  ["options.sync_time_limit", "Sync time limit", "text", "e.g. 7d or 36h; default 7d"],
  ["options.on_forbidden_op", "On a forbidden operation", "select"],
  ["options.auto_id", "autoID collections", "select"],
  ["options.copy_mode", "Copy", "select"],
  ["options.copy_rate_limit", "Copy rate limit (rows/s)", "number", "default: none; changeable while the copy runs"],
  ["options.notify", "Notify", "text", "comma-separated email addresses"],
];

const CHOICES = {
  "options.on_forbidden_op": [["", "reject (default)"], ["reject", "reject"], ["fail", "fail"]],
  "options.auto_id": [["", "refuse (default)"], ["refuse", "refuse"], ["preserve_keys", "preserve_keys"]],
  "options.copy_mode": [["", "auto: segments where both clusters give their storage (default)"], ["segments", "segments"], ["rows", "rows"]],
};

const fieldId = (name) => "f-" + name.replace(/\./g, "-");

// MIGRATIONS_SHOWN is how many migrations the list shows, the newest.
const MIGRATIONS_SHOWN = 200;

function migrationsPage() {
  const disabled = canDrive() ? "" : "disabled";
  const rows = formRows(FORM_FIELDS, disabled, CHOICES);
  main.innerHTML = `
    <h1>Migrations</h1>
    <div class="card">
      <label class="inline">Show <select id="list-state"><option value="">all</option><option value="running">running</option><option value="ended">ended</option></select></label>
      <div class="scroll" id="migrations">Loading…</div>
      <p class="muted" id="list-more" hidden></p>
    </div>
    <div class="card">
      <h2>Start a migration</h2>
      ${canDrive() ? "" : '<p class="muted">Your role can view migrations but not start them.</p>'}
      <form id="start" novalidate>${rows}
        <button type="submit" id="start-button" ${disabled}>Start migration</button>
        <div class="notice bad" id="start-message"></div>
      </form>
    </div>`;
  const gen = generation;
  const form = document.getElementById("start");
  form.addEventListener("submit", (ev) => { ev.preventDefault(); startMigration(form); });
  // Only the provisioners this zdmd has are offered.
  api("GET", "/v1/provisioners").then((r) => {
    if (gen !== generation) return;
    const sel = document.getElementById(fieldId("target.provisioner"));
    sel.innerHTML = (r.provisioners || []).map((p) => `<option value="${esc(p)}">${esc(p)}</option>`).join("");
  }).catch(() => {});
  let sourcesShown = "";
  const shownState = document.getElementById("list-state");
  shownState.addEventListener("change", () => refreshPage());
  return {
    async refresh() {
      // Summaries, the newest first: a list of many large migrations
      // stays small at one refresh a second.
      let path = `/v1/migrations?view=summary&limit=${MIGRATIONS_SHOWN}`;
      if (shownState.value) path += "&state=" + encodeURIComponent(shownState.value);
      let list, clusters;
      try {
        [list, clusters] = await Promise.all([api("GET", path), api("GET", "/v1/clusters")]);
      } catch (e) { return failed(gen, "#migrations", e); }
      if (gen !== generation) return;
      const more = document.getElementById("list-more");
      more.hidden = !list.more;
      more.textContent = list.more ? `The newest ${MIGRATIONS_SHOWN} are shown; zdmd migration list --after ${list.next_after} lists the older ones.` : "";
      const sources = (clusters.clusters || []).filter((c) => c.status !== "Deleted");
      const key = sources.map((c) => c.id + c.status).join();
      if (key !== sourcesShown) { // only when it changed, so a choice in progress survives
        sourcesShown = key;
        const sel = document.getElementById(fieldId("source_cluster_id"));
        const chosen = sel.value;
        sel.innerHTML = `<option value="">— choose —</option>` + sources.map((c) =>
          `<option value="${esc(c.id)}">${esc(c.name)} (${esc(c.organization)}/${esc(c.project)}, ${esc(c.status)})</option>`).join("");
        sel.value = chosen;
      }
      const names = Object.fromEntries((clusters.clusters || []).map((c) => [c.id, c.name]));
      const rows = newestFirst(list.migrations, "created_at").map((m) => `<tr data-migration="${esc(m.id)}">
        <td><a href="#/migrations/${encodeURIComponent(m.id)}">${esc(m.id)}</a></td>
        <td>${esc((m.source && m.source.name) || names[m.source_cluster_id] || m.source_cluster_id)} → ${esc(m.target.name)}</td>
        <td>${badge(m.state)}</td><td>${esc(m.stage)}</td>
        <td>${bar(m.progress.rows_copied, m.progress.rows_total)}<div class="muted">${num(m.progress.rows_copied)} / ${num(m.progress.rows_total)}</div></td>
        <td class="num">${ended(m) ? "—" : seconds(m.lag_seconds)}</td>
        <td>${when(m.created_at)}</td></tr>`).join("");
      document.getElementById("migrations").innerHTML = rows
        ? `<table><thead><tr><th>ID</th><th>Source → target</th><th>State</th><th>Stage</th><th>Progress</th><th class="num">Lag</th><th>Started</th></tr></thead><tbody>${rows}</tbody></table>`
        : `<p class="muted">No migrations yet.</p>`;
    },
  };
}

async function startMigration(form) {
  form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
  const message = document.getElementById("start-message");
  message.textContent = "";
  const v = (name) => form.elements[name].value.trim();
  const body = {
    source_cluster_id: v("source_cluster_id"),
    target: { name: v("target.name"), project: v("target.project"), organization: v("target.organization"), provisioner: v("target.provisioner") },
    options: {},
  };
  const lag = v("options.lag_threshold_seconds");
  if (lag !== "") {
    const n = Number(lag);
    if (!Number.isFinite(n)) return showFieldError("options.lag_threshold_seconds", "must be a number of seconds");
    body.options.lag_threshold_seconds = n;
  }
  if (v("options.sync_time_limit")) body.options.sync_time_limit = v("options.sync_time_limit");
  if (v("options.on_forbidden_op")) body.options.on_forbidden_op = v("options.on_forbidden_op");
  if (v("options.auto_id")) body.options.auto_id = v("options.auto_id");
  if (v("options.copy_mode")) body.options.copy_mode = v("options.copy_mode");
  const rate = v("options.copy_rate_limit");
  if (rate !== "") {
    const n = Number(rate);
    if (!Number.isInteger(n) || n < 0) return showFieldError("options.copy_rate_limit", "must be a whole number of rows per second");
    body.options.copy_rate_limit = n;
  }
  if (v("options.notify")) body.options.notify = v("options.notify").split(",").map((s) => s.trim()).filter(Boolean);
  const button = document.getElementById("start-button");
  button.disabled = true;
  try {
    const m = await api("POST", "/v1/migrations", body);
    location.hash = "#/migrations/" + encodeURIComponent(m.id);
  } catch (e) {
    showApiError(form, message, e);
  } finally {
    button.disabled = !canDrive();
  }
}

function showFieldError(field, msg) {
  const el = document.querySelector(`[data-error="${CSS.escape(field)}"]`);
  // The API's message starts with the field's name; the label says it already.
  el.textContent = msg.startsWith(field + " ") ? msg.slice(field.length + 1) : msg;
  const input = document.getElementById(fieldId(field));
  if (input) input.focus();
}

// ---------- one migration ----------

function migrationPage(id) {
  const gen = generation;
  const drive = canDrive() ? "" : "disabled";
  main.innerHTML = `
    <h1>Migration <code>${esc(id)}</code> <span id="state"></span></h1>
    <div class="card" id="summary">Loading…</div>
    <div class="card"><h2>Stages</h2><div class="stages" id="stages"></div></div>
    <div class="grid2">
      <div class="card"><h2>Sync lag</h2><div class="big" id="lag">—</div><div class="muted" id="lag-note"></div>
        <svg class="chart" id="lag-chart" viewBox="0 0 600 200" preserveAspectRatio="none" role="img" aria-label="lag over time"></svg></div>
      <div class="card"><h2>Stop sync and switch</h2>
        <p class="muted" id="stop-hint"></p>
        <label class="confirm"><input type="checkbox" id="confirm-stopped" ${drive}> Writes to the source cluster have stopped</label>
        <label class="confirm"><input type="checkbox" id="force" ${drive}> Stop even if the lag is above the threshold</label>
        <button id="stop-sync" disabled>Stop data sync</button>
        <div class="notice" id="action-result"></div>
        <hr style="border:none;border-top:1px solid var(--line);margin:1rem 0">
        <button class="plain" id="cancel" ${drive}>Cancel migration</button>
        <button class="danger" id="cancel-confirm" hidden ${drive}>Yes, cancel it</button>
      </div>
    </div>
    <div class="card" id="connection-card" hidden><h2>Target connection</h2><div id="connection"></div></div>
    <div class="card scroll"><h2>Copy progress</h2><div id="progress"></div>
      <form id="rate" class="inline" hidden>
        <label for="rate-limit">Row copy's rate limit (rows/s, 0: none)</label>
        <input id="rate-limit" type="number" min="0" step="1" ${drive}>
        <button type="submit" id="rate-button" ${drive}>Set</button>
        <span class="field-error" id="rate-error"></span>
      </form></div>
    <div class="card scroll"><h2>History <span class="muted">(newest first)</span></h2><table class="history"><thead><tr><th class="num">Step</th><th>Time</th><th>By</th><th>What happened</th><th>Details</th></tr></thead><tbody id="events"></tbody></table></div>`;

  let view = null;
  let eventsAfter = 0;
  let steps = 0; // the history is read from its start: its steps are numbered in order
  const confirmBox = document.getElementById("confirm-stopped");
  const forceBox = document.getElementById("force");
  const stop = document.getElementById("stop-sync");
  const cancel = document.getElementById("cancel");
  const cancelConfirm = document.getElementById("cancel-confirm");
  const result = document.getElementById("action-result");

  const say = (ok, text) => { result.className = "notice " + (ok ? "ok" : "bad"); result.textContent = text; };
  const syncing = () => view && view.state === "syncing";
  const terminal = () => view && ["switched_over", "failed", "cancelled"].includes(view.state);
  const updateButtons = () => {
    stop.disabled = !(canDrive() && confirmBox.checked && syncing());
    cancel.disabled = !canDrive() || !view || terminal();
    cancelConfirm.disabled = cancel.disabled;
    confirmBox.disabled = forceBox.disabled = !canDrive() || !view || terminal();
  };
  confirmBox.addEventListener("change", updateButtons);

  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      const m = await api("POST", `/v1/migrations/${encodeURIComponent(id)}/stop-sync`, { confirm_writes_stopped: confirmBox.checked, force: forceBox.checked });
      say(true, `Sync stopped (${m.state.replace(/_/g, " ")}). The switch follows.`);
    } catch (e) {
      say(false, "Refused: " + e.message);
    }
    refresh();
  });
  const rateForm = document.getElementById("rate");
  rateForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("rate-error");
    err.textContent = "";
    const n = Number(document.getElementById("rate-limit").value);
    if (!Number.isInteger(n) || n < 0) { err.textContent = "a whole number of rows per second, 0 for none"; return; }
    try {
      await api("PATCH", `/v1/migrations/${encodeURIComponent(id)}`, { options: { copy_rate_limit: n } });
      say(true, n ? `The row copy now reads at most ${num(n)} rows/s.` : "The row copy now reads without a limit.");
    } catch (e) {
      err.textContent = e.message;
    }
    refresh();
  });
  cancel.addEventListener("click", () => { cancelConfirm.hidden = false; });
  cancelConfirm.addEventListener("click", async () => {
    cancelConfirm.hidden = true;
    try {
      await api("POST", `/v1/migrations/${encodeURIComponent(id)}/cancel`);
      say(true, "Migration cancelled.");
    } catch (e) {
      say(false, "Refused: " + e.message);
    }
    refresh();
  });

  async function refresh() {
    let m, evs;
    try {
      [m, evs] = await Promise.all([
        api("GET", `/v1/migrations/${encodeURIComponent(id)}`),
        api("GET", `/v1/migrations/${encodeURIComponent(id)}/events?after=${eventsAfter}&limit=500&steps=true`),
      ]);
    } catch (e) { return failed(gen, "#summary", e); }
    if (gen !== generation) return;
    view = m;
    render(m);
    appendEvents(evs);
    // A long history is read a page at a time until the list is current.
    for (let pages = 0; evs.more && pages < 20 && gen === generation; pages++) {
      try {
        evs = await api("GET", `/v1/migrations/${encodeURIComponent(id)}/events?after=${eventsAfter}&limit=500&steps=true`);
      } catch (e) { break; }
      if (gen !== generation) return;
      appendEvents(evs);
    }
    updateButtons();
  }

  function appendEvents(page) {
    const rows = (page.events || []).filter((e) => e.seq > eventsAfter).map((e) => ({ ...e, step: ++steps }));
    if (page.next_after > eventsAfter) eventsAfter = page.next_after;
    if (!rows.length) return;
    document.getElementById("events").insertAdjacentHTML("afterbegin", rows.reverse().map((e) => `<tr data-step="${esc(stepName(e.type))}">
      <td class="num" title="sequence ${esc(e.seq)}">${esc(e.step)}</td><td>${when(e.at)}</td><td>${esc(e.actor || "zdm")}</td>
      <td>${esc(stepWords(e.type))}</td><td>${details(e.data)}</td></tr>`).join(""));
  }

  // What the preflight decided and asks of the operator: the copy mode
  // and why, and its notes (autoID keys kept, users the target lacks).
  function copyMode(pf) {
    if (!pf || !pf.copy_mode) return "";
    const notes = (pf.notes || []).map((n) => `<li>${esc(n)}</li>`).join("");
    return `<dt>Copy</dt><dd id="copy-mode">by ${esc(pf.copy_mode)} <span class="muted">(${esc(pf.copy_mode_reason)})</span></dd>` +
      (notes ? `<dt>Preflight notes</dt><dd><ul id="preflight-notes">${notes}</ul></dd>` : "");
  }

  function render(m) {
    document.getElementById("state").innerHTML = badge(m.state);
    const t = m.target || {};
    // One banner, the one the state says.
    const failure = m.state === "failed" ? `<div class="notice bad" id="banner">Failed: <b>${esc(m.failure_reason || "unknown reason")}</b>${m.failure_detail ? " — " + esc(m.failure_detail) : ""}</div>` : "";
    const cancelled = m.state === "cancelled" ? `<div class="notice bad" id="banner">Cancelled${m.cancelled_by ? " by " + esc(m.cancelled_by) : ""}${m.ended_at ? " at " + when(m.ended_at) : ""}</div>` : "";
    document.getElementById("summary").innerHTML = `<dl class="kv">
      <dt>Source</dt><dd>${esc(m.source.name || m.source_cluster_id)} <span class="muted">(${esc(m.source.organization)}/${esc(m.source.project)}, <code>${esc(m.source.endpoint)}</code>)</span></dd>
      <dt>Target</dt><dd>${esc(t.name)} <span class="muted">(${esc(t.project)}, provisioner ${esc(t.provisioner)})</span></dd>
      <dt>Stage</dt><dd>${esc(m.stage || "—")}</dd>
      <dt>Requested by</dt><dd>${esc(m.requested_by)} at ${when(m.created_at)}</dd>
      <dt>Sync deadline</dt><dd>${ended(m) || m.state === "switched_over" ? "—" : when(m.sync_deadline)}</dd>
      ${copyMode(m.preflight)}
      ${(m.notes || []).length ? `<dt>Notes</dt><dd><ul id="notes">${m.notes.map((n) => `<li>${esc(n.note)} <span class="muted">(${when(n.at)})</span></li>`).join("")}</ul></dd>` : ""}
      ${(m.notifications || []).length ? `<dt>Emails</dt><dd><ul id="emails">${m.notifications.map((n) => `<li${Object.keys(n.refused || {}).length ? ' class="bad"' : ""}>${esc(emailWords(n))}</li>`).join("")}</ul></dd>` : ""}
      ${(m.verification || []).length ? `<dt>Verification</dt><dd id="verification">${m.verification.map(verificationWords).join("; ")}</dd>` : ""}
    </dl>${failure}${cancelled}`;

    document.getElementById("stages").innerHTML = (m.stages || []).map((s) => `<div class="stage" data-stage="${esc(s.name)}">
      <b>${esc(s.name)}</b>${badge(s.status)}
      <div class="muted">${s.started_at ? "started " + when(s.started_at) : "not started"}</div>
      <div class="muted">${s.started_at ? (s.ended_at ? "took " : "running for ") + span(s.started_at, s.ended_at) : ""}</div></div>`).join("");

    const th = m.options ? m.options.lag_threshold_seconds : null;
    document.getElementById("lag").textContent = ended(m) ? "—" : seconds(m.lag_seconds);
    document.getElementById("lag-note").textContent = ended(m) ? `The sync has ended (${m.state}).` : [
      th != null ? `threshold ${seconds(th)}` : "",
      m.max_lag_seconds ? `max ${seconds(m.max_lag_seconds)}` : "",
      m.lag_sampled_at ? `sampled ${when(m.lag_sampled_at)}` : "",
    ].filter(Boolean).join(" · ");
    drawChart(document.getElementById("lag-chart"), m.lag_history || [], th);

    const hint = document.getElementById("stop-hint");
    if (m.state === "syncing") hint.textContent = "Stop writing to the source, tick the box, then stop the sync. zdm drains the journal, verifies and switches the proxy to the target.";
    else if (terminal()) hint.textContent = "This migration has ended.";
    else hint.textContent = "Available once the migration is syncing.";

    // The rate limit changes while the copy runs; once it ends it is moot.
    const rateForm = document.getElementById("rate");
    const copying = m.state === "copying" || m.state === "target_provisioned";
    if (rateForm.hidden === copying) {
      rateForm.hidden = !copying;
      document.getElementById("rate-limit").value = (m.options && m.options.copy_rate_limit) || 0;
    }
    const p = m.progress || {};
    const cols = (p.collections || []).map((c) => `<tr data-collection="${esc(c.database)}.${esc(c.collection)}">
      <td>${esc(c.database)}.${esc(c.collection)}${c.skipped ? ` <span class="muted">(skipped: ${esc(c.skipped)})</span>` : ""}</td>
      <td>${bar(c.rows_copied, c.rows_total)}</td>
      <td class="num">${num(c.rows_copied)} / ${num(c.rows_total)}</td>
      <td class="num">${c.rows_per_second && !ended(m) ? num(Math.round(c.rows_per_second)) + "/s" : "—"}</td>
      <td class="num">${c.done ? "done" : ended(m) ? "—" : seconds(c.eta_seconds)}</td></tr>`).join("");
    document.getElementById("progress").innerHTML = `
      <table><thead><tr><th>Collection</th><th>Progress</th><th class="num">Rows</th><th class="num">Rate</th><th class="num">ETA</th></tr></thead>
      <tbody>${cols}</tbody>
      <tfoot><tr id="progress-total"><th>Total</th><th>${bar(p.rows_copied, p.rows_total)}</th><th class="num">${num(p.rows_copied)} / ${num(p.rows_total)}</th>
      <th class="num">${p.rows_per_second && !ended(m) ? num(Math.round(p.rows_per_second)) + "/s" : "—"}</th><th class="num">${ended(m) ? "—" : seconds(p.eta_seconds)}</th></tr></tfoot></table>
      ${p.segments_copied ? `<p class="muted" id="segments-copied">Segments staged on the target: ${num(p.segments_copied)} (${bytes(p.bytes_copied)})</p>` : ""}`;

    const conn = t.connection;
    document.getElementById("connection-card").hidden = !conn && !m.write_pause_ms;
    if (conn || m.write_pause_ms) {
      document.getElementById("connection").innerHTML = `<dl class="kv">
        <dt>Endpoint</dt><dd><code id="target-endpoint">${esc(conn ? conn.endpoint : t.endpoint)}</code></dd>
        <dt>Cluster ID</dt><dd><code>${esc(conn ? conn.cluster_id : t.cluster_id)}</code></dd>
        ${m.write_pause_ms != null ? `<dt>Write pause at the switch</dt><dd>${num(Math.round(m.write_pause_ms))} ms${m.write_pause ? ` (applying the journal ${num(Math.round(m.write_pause.drain_ms))} ms${m.write_pause.repair_ms && !m.write_pause.repair_in_check ? `, repairing writes of unknown outcome ${num(Math.round(m.write_pause.repair_ms))} ms` : ""}, checking ${num(Math.round(m.write_pause.check_ms))} ms${m.write_pause.repair_ms && m.write_pause.repair_in_check ? `, while writes of unknown outcome were repaired in ${num(Math.round(m.write_pause.repair_ms))} ms` : ""})` : ""}</dd>` : ""}
      </dl><p class="muted">Applications routed through the zdm proxy already write to the target. Clients that bypass the proxy switch to this endpoint.</p>`;
    }
  }

  return { refresh };
}

// drawChart draws the lag history as an SVG line with one point per sample
// and the threshold as a dashed line.
function drawChart(svg, points, threshold) {
  const W = 600, H = 200, L = 44, R = 8, T = 10, B = 22;
  if (!points.length) {
    svg.innerHTML = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no lag samples yet</text>`;
    return;
  }
  const ts = points.map((p) => new Date(p.at).getTime());
  const t0 = Math.min(...ts), t1 = Math.max(...ts, t0 + 1000);
  const peak = Math.max(1, threshold || 0, ...points.map((p) => p.lag_seconds));
  // A lag that spans many orders of magnitude (a sync that started far
  // behind) reads on a logarithmic axis; a linear one would flatten all
  // but the first points onto zero.
  const floor = 0.1, log = peak / Math.max(floor, threshold || 1) > 100;
  const top = log ? peak * 2 : peak * 1.1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = log
    ? (v) => T + (1 - Math.log10(Math.max(v, floor) / floor) / Math.log10(top / floor)) * (H - T - B)
    : (v) => T + (1 - v / top) * (H - T - B);
  const xy = points.map((p, i) => [x(ts[i]), y(p.lag_seconds)]);
  const line = xy.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ");
  const dots = xy.map(([a, b], i) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="2.5"><title>${esc(seconds(points[i].lag_seconds))} at ${esc(when(points[i].at))}</title></circle>`).join("");
  const thr = threshold ? `<line class="threshold" x1="${L}" x2="${W - R}" y1="${y(threshold).toFixed(1)}" y2="${y(threshold).toFixed(1)}"></line>` : "";
  const mid = log ? `<text x="${L - 4}" y="${(y(Math.sqrt(top * floor)) + 4).toFixed(1)}" text-anchor="end">${esc(short(Math.sqrt(top * floor)))}</text>` : "";
  svg.dataset.scale = log ? "log" : "linear";
  svg.innerHTML = `
    <line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#c6ccd6"></line>
    <line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#c6ccd6"></line>
    <text x="${L - 4}" y="${T + 8}" text-anchor="end">${esc(short(top))}</text>
    <text x="${L - 4}" y="${H - B}" text-anchor="end">${log ? esc(short(floor)) : "0"}</text>${mid}
    <text x="${L}" y="${H - 6}">${esc(new Date(t0).toLocaleTimeString())}</text>
    <text x="${W - R}" y="${H - 6}" text-anchor="end">${esc(new Date(t1).toLocaleTimeString())}</text>
    ${thr}<polyline class="line" points="${line}"></polyline>${dots}`;
}

window.addEventListener("hashchange", route);
setInterval(tick, POLL_MS);
route();
