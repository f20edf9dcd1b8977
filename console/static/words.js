// How the console says numbers, durations and the steps of a migration's
// history, in words an operator reads at a glance.
"use strict";

const num = (n) => (n == null ? "—" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 }));

const MINUTE = 60, HOUR = 3600, DAY = 86400, YEAR = 365.25 * DAY;

// seconds reads a duration at any magnitude: "0.42 s", "12.3 s",
// "4 min 10 s", "3 h 5 min", "2 d 4 h", "31.7 years".
function seconds(s) {
  if (s == null || !Number.isFinite(Number(s))) return "—";
  s = Number(s);
  if (s < 0) return "—";
  if (s < 1) return s.toFixed(2) + " s";
  if (s < 90) return s.toFixed(1) + " s";
  // Two units, the second left out when it is nought: "7 d", "4 min 10 s".
  const two = (a, ua, b, ub) => (b ? `${a} ${ua} ${b} ${ub}` : `${a} ${ua}`);
  if (s < 90 * MINUTE) return two(Math.floor(s / MINUTE), "min", Math.round(s % MINUTE), "s");
  if (s < 2 * DAY) return two(Math.floor(s / HOUR), "h", Math.floor((s % HOUR) / MINUTE), "min");
  if (s < YEAR) return two(Math.floor(s / DAY), "d", Math.floor((s % DAY) / HOUR), "h");
  return `${num(Math.round((s / YEAR) * 10) / 10)} years`;
}

// short is a compact duration for chart axes.
function short(s) {
  if (s < 1) return (Math.round(s * 100) / 100) + " s";
  if (s < 90) return Math.round(s) + " s";
  if (s < 90 * MINUTE) return Math.round(s / MINUTE) + " min";
  if (s < 2 * DAY) return Math.round(s / HOUR) + " h";
  if (s < 2 * YEAR) return Math.round(s / DAY) + " d";
  return num(Math.round(s / YEAR)) + " y";
}

function millis(ms) {
  if (ms == null) return "—";
  return ms < 1000 ? `${num(Math.round(ms))} ms` : seconds(ms / 1000);
}

// STEP_WORDS says each step of the history in words.
const STEP_WORDS = {
  requested: "Migration requested",
  locked: "Source locked",
  provisioning_started: "Provisioning the target",
  target_provisioned: "Target ready",
  copy_started: "Copy started",
  bulk_copy_progressed: "Copy progressed",
  bulk_copied: "Copy finished",
  copy_rate_limit_changed: "Copy rate limit changed",
  lag_sampled: "Lag measured",
  lag_threshold_reached: "Lag under the threshold",
  verified: "Clusters compared",
  sync_stopped: "Sync stopped",
  switched_over: "Switched over to the target",
  failed: "Migration failed",
  cancelled: "Migration cancelled",
  notification_sent: "Notification sent",
  driver_changed: "Another zdmd drives the migration",
  noted: "Noted for the operator",
};

// stepName is the kind of an event type: "zdm.migration.copy_started.v1"
// is "copy_started".
const stepName = (type) => String(type || "").replace(/^zdm\.(migration|cluster)\./, "").replace(/\.v\d+$/, "");

function stepWords(type) {
  const k = stepName(type);
  if (STEP_WORDS[k]) return STEP_WORDS[k];
  const w = k.replace(/[._]/g, " ");
  return w.charAt(0).toUpperCase() + w.slice(1);
}

// bytes reads a byte count the way an operator says it.
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n || 0), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

const DETAIL_LIMIT = 14, LIST_LIMIT = 5;

// detailValue reads one value by what its key says it holds.
function detailValue(key, v) {
  if (v == null || v === "") return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (/_ms$/.test(key)) return millis(v);
    if (/(^|_)bytes$/.test(key)) return bytes(v);
    if (/(_seconds|^seconds|lag)$/.test(key)) return seconds(v);
    return num(v);
  }
  // A Go duration ("168h0m0s", "1m30s", "500ms") under a key that holds
  // one reads as a duration.
  const d = typeof v === "string" && /(limit|duration|interval|timeout|ttl)$/.test(key) && v.match(/^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/);
  if (d && v !== "") return seconds(3600 * (+d[1] || 0) + 60 * (+d[2] || 0) + (+d[3] || 0) + (+d[4] || 0) / 1000);
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) {
    const d = new Date(v);
    if (!isNaN(d)) return d.toLocaleString();
  }
  if (Array.isArray(v)) {
    if (!v.length) return "none";
    if (v.every((x) => x == null || typeof x !== "object")) {
      const shown = v.slice(0, LIST_LIMIT).map((x) => detailValue(key, x)).join(", ");
      return v.length > LIST_LIMIT ? `${shown} and ${num(v.length - LIST_LIMIT)} more` : shown;
    }
    return `${num(v.length)} ${v.length === 1 ? "entry" : "entries"}`;
  }
  return String(v);
}

// details lays an event's data out as label/value pairs; nested objects
// read as "parent › child".
function details(data) {
  const out = [];
  const walk = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj)) {
      // The value carries the unit: "write_pause_ms" reads "write pause".
      const label = (prefix ? prefix + " › " : "") + k.replace(/_(ms|seconds)$/, "").replace(/_/g, " ");
      if (v && typeof v === "object" && !Array.isArray(v)) walk(v, label);
      else out.push([label, detailValue(k, v)]);
    }
  };
  if (data && typeof data === "object") walk(data, "");
  if (!out.length) return "";
  const shown = out.slice(0, DETAIL_LIMIT).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  const more = out.length > DETAIL_LIMIT ? `<dt>…</dt><dd>${num(out.length - DETAIL_LIMIT)} more</dd>` : "";
  return `<dl class="kv details">${shown}${more}</dl>`;
}

// EMAIL_WORDS names each email zdm sends.
const EMAIL_WORDS = {
  lag_under_threshold: "Sync can be stopped",
  time_limit_warning: "Sync time limit near",
  failed: "Migration failed",
  switched_over: "Switched over",
};

// emailWords says whom an email reached and whom the mail server refused
// for good, with its reply.
function emailWords(n) {
  const to = (n.recipients || []).length ? "to " + n.recipients.join(", ") : "to no one";
  const refused = Object.entries(n.refused || {}).map(([a, why]) => `refused for ${a}: ${why}`);
  return [`${EMAIL_WORDS[n.kind] || n.kind}: sent ${to}`, ...refused].join("; ");
}

// verificationWords says what a comparison of the clusters means where
// it was made: after the copy, applications still write, and the sync
// replays what the copy missed.
function verificationWords(v) {
  if (v.equal) return `${v.phase === "copy" ? "after the copy" : v.phase === "switch" ? "at the switch" : esc(v.phase)}: equal`;
  if (v.phase === "copy") return "after the copy: not yet equal, as expected while applications write; the sync replays those writes";
  return `${v.phase === "switch" ? "at the switch" : esc(v.phase)}: DIFFERENT`;
}

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
