// Settings → API & MCP: the owner's page for issuing, rotating and revoking API keys, and
// the approver's page for deciding person-gated tool calls (`/approvals/{id}` opens one).
//
// Served by keygated under a strict Content-Security-Policy (script-src 'self', no inline
// script or style), so everything here is plain DOM work: no frameworks, no innerHTML with
// data, no style attributes. The owner key is held in one module variable and nowhere else:
// not in localStorage, sessionStorage, cookies or the URL. A raw key returned by create or
// rotate lives in the reveal dialog only until that dialog closes.

const API = "/api/v1";

const EXPLAIN_401 = "This key is not valid (revoked, expired or unknown)";
const EXPLAIN_403 = "You need the owner role to manage API keys";
const APPROVE_SCOPE = "gates:approve";
/** Scopes only a person's (user) key may hold. */
const USER_ONLY_SCOPES = ["keys:admin", APPROVE_SCOPE];
const EXPLAIN_APPROVE_403 =
  "This key cannot approve: it needs gates:approve and must not be the key that asked.";
const EXPLAIN_APPROVE_404 =
  "No such approval for this key: the link may be wrong, or the call belongs to another person or tenant.";
const EXPLAIN_APPROVE_409 = "This approval is closed: it was already decided, used, or it expired.";
const EXPLAIN_APPROVE_422 = "The name does not match the target exactly. Type it as shown above.";
/** How often the pending list is fetched again while the page is visible. */
const APPROVALS_POLL_MS = 20_000;

/** The approval `/approvals/{id}` names, or `null` on the settings page. */
const focusId = (() => {
  const m = /^\/approvals\/([^/]+)\/?$/.exec(window.location.pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
})();

/** The owner key, in memory only. `null` when signed out. */
let ownerKey = null;
/** Introspection of the owner key (`GET /api/v1/token`). */
let me = null;
/** The scope catalogue, `[{name, description}]`. */
let catalogue = [];
/** Tenant projects, `[{id, name}]`. */
let projects = [];
/** Keys as last listed. */
let keys = [];
/** The raw key being revealed, or `null`. Cleared when the reveal dialog closes. */
let revealedKey = null;
/** The key a pending revoke/rotate confirmation is about. */
let pendingRevoke = null;
let pendingRotate = null;
/** The key being replaced, while a rotation's reveal dialog is open. */
let rotationOld = null;
/** Whether the signed-in key may manage keys (`GET /keys` answered). */
let isAdmin = false;
/** Approvals on screen by id: `{approval, node}`; pending ones from the list, plus the
 * one the URL names and those decided here (kept until the next sign-in). */
const shownApprovals = new Map();
/** The poll timer of the approvals list. */
let approvalsTimer = null;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
};

/** Build an element: `h("span", {class: "badge"}, "text", child, ...)`. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(el, message) {
  if (message !== undefined) el.textContent = message;
  el.hidden = false;
}

function hide(el) {
  el.hidden = true;
  el.textContent = "";
}

// ---------------------------------------------------------------------------------------
// API client

/** An API failure with the HTTP status and the parsed error body. */
class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Human text for a failed call; `context` picks the 401/403 wording. */
function describe(status, body) {
  const code = body && typeof body.error === "string" ? body.error : "";
  if (status === 401) return EXPLAIN_401;
  if (status === 403) return EXPLAIN_403;
  if (status === 429) {
    return "Too many requests. Wait a moment and try again.";
  }
  if (status === 400 || status === 422) {
    if (body && typeof body.message === "string" && body.message) return body.message;
    if (code === "invalid_request") return "The server rejected the request as invalid.";
  }
  if (status === 404) return "Not found. The key may have been removed; refresh the list.";
  if (status === 0) return "The server could not be reached. Check your connection and try again.";
  return `Something went wrong on the server (HTTP ${status}). Try again.`;
}

async function api(method, path, body, key = ownerKey) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, null, describe(0, null));
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, describe(res.status, data));
  return data;
}

// ---------------------------------------------------------------------------------------
// Formatting

const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

function when(value, none) {
  if (!value) return h("span", { class: "muted" }, none);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return h("time", { datetime: value, title: d.toISOString(), class: "when" },
    h("span", { class: "when-day" }, dayFmt.format(d)),
    h("span", { class: "when-time" }, timeFmt.format(d)));
}

function kindLabel(kind) {
  if (kind === "user") return "User key";
  if (kind === "tenant") return "Tenant key";
  return String(kind);
}

/** Chips for a list, folding everything past `max` into a "+N more" chip. */
function chips(items, cls, max = Infinity) {
  const shown = items.length > max ? items.slice(0, max - 1) : items;
  const rest = items.slice(shown.length);
  return h("span", { class: "chips" },
    shown.map((t) => h("span", { class: `chip ${cls}` }, t)),
    rest.length ? h("span", { class: "chip chip-more", title: rest.join(", ") }, `+${rest.length} more`) : null);
}

/** A project as `{id, name}` or as a bare name. */
function projectName(p) {
  return typeof p === "string" ? p : p && p.name ? p.name : String(p && p.id);
}

function statusBadge(status) {
  const known = ["active", "expired", "revoked"].includes(status) ? status : "unknown";
  return h("span", { class: `badge badge-${known}`, "data-testid": "key-status" }, status);
}

// ---------------------------------------------------------------------------------------
// Sign-in / sign-out

function signedOutView(message) {
  ownerKey = null;
  me = null;
  keys = [];
  catalogue = [];
  projects = [];
  isAdmin = false;
  stopApprovals();
  $("approvals-card").hidden = true;
  $("approvals-link").hidden = true;
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  $("keys-body").replaceChildren();
  $("whoami").textContent = "";
  $("session").hidden = true;
  $("app").hidden = true;
  hide($("page-error"));
  $("signin-card").hidden = false;
  const input = $("owner-key");
  input.value = "";
  if (message) show($("signin-error"), message);
  else hide($("signin-error"));
  input.focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("owner-key");
  const candidate = input.value.trim();
  const error = $("signin-error");
  hide(error);
  if (!candidate) {
    show(error, focusId ? "Paste your API key." : "Paste an owner API key.");
    input.focus();
    return;
  }
  if (/\s/.test(candidate)) {
    show(error, "This does not look like an API key: it contains spaces.");
    return;
  }
  const button = $("signin-button");
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    const token = await api("GET", "/token", undefined, candidate);
    const canApprove = Array.isArray(token && token.scopes) && token.scopes.includes(APPROVE_SCOPE);
    // Introspection works for any valid key; the key list needs the owner role. An
    // approver without it still gets the approvals, and on an approval link any valid
    // key signs in so the page can say why it may not decide.
    let listed = null;
    try {
      listed = await api("GET", "/keys", undefined, candidate);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403 && (canApprove || focusId))) throw err;
    }
    ownerKey = candidate;
    me = token;
    isAdmin = listed !== null;
    keys = Array.isArray(listed && listed.keys) ? listed.keys : [];
    input.value = "";
    if (isAdmin) await loadCatalogue();
    enterApp(canApprove);
  } catch (err) {
    ownerKey = null;
    show(error, err instanceof ApiError ? err.message : String(err));
    input.select();
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
}

async function loadCatalogue() {
  const [scopes, projs] = await Promise.all([
    api("GET", "/scopes").catch(() => null),
    api("GET", "/projects").catch(() => null),
  ]);
  if (scopes && Array.isArray(scopes.scopes)) catalogue = scopes.scopes;
  if (projs && Array.isArray(projs.projects)) projects = projs.projects;
  // Without the catalogue, fall back to the owner key's own scopes (names only).
  if (!catalogue.length && me && Array.isArray(me.scopes)) {
    catalogue = me.scopes.map((name) => ({ name, description: "" }));
  }
  if (!projects.length && me && Array.isArray(me.projects)) projects = me.projects;
}

function enterApp(canApprove) {
  $("signin-card").hidden = true;
  hide($("signin-error"));
  const who = me && me.user ? me.user.name : "tenant key";
  const tenant = me && me.tenant ? me.tenant.name : "";
  $("whoami").replaceChildren(
    h("span", { class: "session-user" }, who),
    tenant ? h("span", { class: "session-tenant" }, tenant) : null,
  );
  $("session").hidden = false;
  $("app").hidden = false;
  $("keys-card").hidden = !isAdmin;
  renderKeys();
  const approvals = canApprove || focusId !== null;
  $("approvals-card").hidden = !approvals;
  $("approvals-link").hidden = !approvals;
  if (approvals) {
    startApprovals();
  } else {
    $("new-key-button").focus();
  }
}

/** Handle an error from an authenticated call; returns the message to show locally. */
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    // The owner key itself stopped working (revoked, expired): start over.
    signedOutView(EXPLAIN_401);
    return null;
  }
  return err instanceof ApiError ? err.message : String(err);
}

async function refresh() {
  if (!isAdmin) return;
  try {
    const listed = await api("GET", "/keys");
    keys = Array.isArray(listed && listed.keys) ? listed.keys : [];
    hide($("page-error"));
    renderKeys();
  } catch (err) {
    const msg = handleAuthError(err);
    if (msg) show($("page-error"), msg);
  }
}

// ---------------------------------------------------------------------------------------
// Key list

function renderKeys() {
  const body = $("keys-body");
  const sorted = [...keys].sort((a, b) => {
    const rank = (k) => (k.status === "active" ? 0 : k.status === "expired" ? 1 : 2);
    return rank(a) - rank(b) || String(b.created_at).localeCompare(String(a.created_at));
  });
  body.replaceChildren(...sorted.map(keyRow));
  $("keys-empty").hidden = sorted.length > 0;
  $("keys-table").classList.toggle("is-empty", sorted.length === 0);
}

function keyRow(key) {
  const isSelf = me && me.id === key.id;
  const projectCell = Array.isArray(key.projects)
    ? key.projects.length
      ? chips(key.projects.map(projectName), "chip-project")
      : h("span", { class: "muted" }, "No projects")
    : h("span", { class: "muted" }, "All projects");
  const scopes = Array.isArray(key.scopes) ? key.scopes : [];

  const actions = h("div", { class: "row-actions" });
  /** A small button `label` of the row (`label <name>` to a screen reader). */
  const action = (label, style, testid, onclick) =>
    h("button", {
      type: "button",
      class: `btn ${style} btn-small`,
      "data-testid": testid,
      "aria-label": `${label} ${key.name}`,
      onclick,
    }, label);
  if (key.status === "active") {
    actions.append(action("Rotate", "btn-secondary", "rotate-button", () => openRotate(key)));
  }
  if (key.status !== "revoked") {
    actions.append(action("Revoke", "btn-danger-outline", "revoke-button", () => openRevoke(key)));
  }

  return h("tr", {
    class: key.status === "active" ? "" : "is-inactive",
    "data-testid": "key-row",
    "data-key-id": key.id,
    "data-status": key.status,
  },
  h("td", { "data-label": "Name" },
    h("div", { class: "key-name", "data-testid": "key-name" }, key.name,
      isSelf ? h("span", { class: "tag-self" }, "this session") : null),
    h("div", { class: "key-id" }, h("code", {}, `${key.prefix || ""}${key.id}…`))),
  h("td", { "data-label": "Kind", class: "nowrap", "data-testid": "key-kind" }, kindLabel(key.kind)),
  h("td", { "data-label": "Scopes", "data-testid": "key-scopes" },
    scopes.length ? chips(scopes, "chip-scope", 4) : h("span", { class: "muted" }, "None")),
  h("td", { "data-label": "Projects", class: "nowrap", "data-testid": "key-projects" }, projectCell),
  h("td", { "data-label": "Created", class: "nowrap" }, when(key.created_at, "—")),
  h("td", { "data-label": "Expires", class: "nowrap", "data-testid": "key-expires" }, when(key.expires_at, "Never")),
  h("td", { "data-label": "Last used", class: "nowrap", "data-testid": "key-last-used" }, when(key.last_used_at, "Never")),
  h("td", { "data-label": "Status" }, statusBadge(key.status), usage(key), revokedReason(key)),
  h("td", { class: "cell-actions" }, actions));
}

const REFILL_WORDS = { daily: "daily", monthly: "monthly", "1h": "hourly" };

/** Under the status of a usage-limited key: requests left and its refill. */
function usage(key) {
  if (typeof key.remaining !== "number") return null;
  const left = `${key.remaining} ${key.remaining === 1 ? "request" : "requests"} left`;
  const every = key.refill ? REFILL_WORDS[key.refill.interval] || `every ${key.refill.interval}` : "";
  return h("div", { class: "key-usage", "data-testid": "key-usage" },
    h("div", {}, left),
    key.refill ? h("div", { class: "muted" }, `refills to ${key.refill.amount} ${every}`) : null);
}

/** Why a revoked key was revoked, when not by an owner: `leaked` names a leak report. */
function revokedReason(key) {
  if (key.status !== "revoked" || !key.revoked_reason) return null;
  const text = key.revoked_reason === "leaked"
    ? "Leaked: found in public, revoked automatically"
    : String(key.revoked_reason);
  return h("div", {
    class: "revoked-reason",
    "data-testid": "key-revoked-reason",
    title: "Reported by GitHub secret scanning; the audit log (GET /api/v1/audit) has where it was found",
  }, text);
}

// ---------------------------------------------------------------------------------------
// Create

function selectedKind() {
  const checked = document.querySelector('input[name="kind"]:checked');
  return checked ? checked.value : "user";
}

function renderCreateForm() {
  const scopeBox = $("create-scopes");
  scopeBox.replaceChildren(
    ...catalogue.map((s) =>
      h("label", { class: "check", "data-scope": s.name },
        h("input", { type: "checkbox", name: "scope", value: s.name, "data-testid": `scope-${s.name}` }),
        h("span", { class: "check-body" },
          h("code", { class: "check-title" }, s.name),
          USER_ONLY_SCOPES.includes(s.name) ? h("span", { class: "optional" }, "user keys only") : null,
          s.description ? h("span", { class: "check-text" }, s.description) : null))),
  );
  if (!catalogue.length) scopeBox.append(h("p", { class: "muted" }, "No scopes are defined by the policy."));

  const projBox = $("create-projects");
  projBox.replaceChildren(
    ...projects.map(projectName).map((name) =>
      h("label", { class: "check check-pill" },
        h("input", { type: "checkbox", name: "project", value: name, "data-testid": `project-${name}` }),
        h("span", {}, name))),
  );
  if (!projects.length) projBox.append(h("p", { class: "muted" }, "This tenant has no projects yet."));
  syncKind();
}

/**
 * Admin access and approving only work through a user key (a person), so a tenant key
 * cannot take keys:admin or gates:approve.
 */
function syncKind() {
  const tenant = selectedKind() === "tenant";
  const selector = USER_ONLY_SCOPES.map((s) => `#create-scopes input[value="${s}"]`).join(", ");
  for (const box of document.querySelectorAll(selector)) {
    box.disabled = tenant;
    if (tenant) box.checked = false;
    box.closest("label").classList.toggle("is-disabled", tenant);
  }
}

async function openCreate() {
  const form = $("create-form");
  form.reset();
  hide($("create-error"));
  // Projects may have been added since sign-in.
  try {
    const projs = await api("GET", "/projects");
    if (projs && Array.isArray(projs.projects)) projects = projs.projects;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      handleAuthError(err);
      return;
    }
  }
  renderCreateForm();
  $("create-dialog").showModal();
  $("create-name").focus();
}

async function submitCreate(event) {
  event.preventDefault();
  const error = $("create-error");
  hide(error);
  const name = $("create-name").value.trim();
  const kind = selectedKind();
  const scopes = [...document.querySelectorAll('#create-scopes input[name="scope"]:checked')].map((i) => i.value);
  const chosenProjects = [...document.querySelectorAll('#create-projects input[name="project"]:checked')].map((i) => i.value);
  const expiry = $("create-expiry").value;
  const remaining = $("create-remaining").value.trim();
  const refill = $("create-refill").value;
  const refillAmount = $("create-refill-amount").value.trim();

  if (!name) {
    show(error, "Give the key a name.");
    $("create-name").focus();
    return;
  }
  if (!scopes.length) {
    show(error, "Choose at least one scope.");
    return;
  }
  const whole = (text) => /^[0-9]+$/.test(text) && Number(text) > 0;
  if (remaining && !whole(remaining)) {
    show(error, "The usage limit is a whole number of requests above zero.");
    $("create-remaining").focus();
    return;
  }
  if (refill && !remaining) {
    show(error, "A refill needs a usage limit: set the number of requests.");
    $("create-remaining").focus();
    return;
  }
  if (refill && !whole(refillAmount)) {
    show(error, "Say how many requests each refill gives: a whole number above zero.");
    $("create-refill-amount").focus();
    return;
  }
  const body = { name, kind, scopes };
  if (chosenProjects.length) body.projects = chosenProjects;
  if (expiry) body.expires_in = Number(expiry);
  if (remaining) body.remaining = Number(remaining);
  if (refill) body.refill = { interval: refill, amount: Number(refillAmount) };

  await whileBusy($("create-submit"), "Creating…", "Create key", error, async () => {
    const created = await api("POST", "/keys", body);
    $("create-dialog").close();
    reveal({ name, kind, ...created }, null);
    refresh();
  });
}

/**
 * Runs `action` with `button` disabled and saying `busy`, then saying `label` again;
 * what goes wrong is shown in `error` (unless it signed the page out).
 */
async function whileBusy(button, busy, label, error, action) {
  button.disabled = true;
  button.textContent = busy;
  try {
    await action();
  } catch (err) {
    const msg = handleAuthError(err);
    if (msg) show(error, msg);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// ---------------------------------------------------------------------------------------
// Reveal a raw key once

function reveal(created, old) {
  revealedKey = created && typeof created.key === "string" ? created.key : null;
  rotationOld = old;
  $("reveal-title").textContent = old ? "Your replacement key" : "Your new API key";
  $("reveal-name").textContent = created.name || (old ? old.name : "");
  $("reveal-key-id").textContent = created.id || "";
  $("reveal-kind").textContent = kindLabel(created.kind);
  const field = $("reveal-key");
  field.value = revealedKey || "";
  $("copy-status").textContent = "";
  const panel = $("rotation-panel");
  panel.hidden = !old;
  $("rotation-status").textContent = "";
  if (old) {
    $("rotation-old-name").textContent = old.name;
    $("rotation-old-id").textContent = old.id;
    $("revoke-old-button").disabled = false;
    $("revoke-old-button").hidden = false;
  }
  $("reveal-dialog").showModal();
  field.focus();
  field.select();
}

/**
 * Forget the raw key: runs on Done (before closing) and again on every close event, which
 * also covers Escape.
 */
function forgetRevealed() {
  revealedKey = null;
  rotationOld = null;
  const field = $("reveal-key");
  field.value = "";
  field.removeAttribute("value");
  $("copy-status").textContent = "";
  $("reveal-key-id").textContent = "";
  $("reveal-name").textContent = "";
}

async function copyKey() {
  const field = $("reveal-key");
  const status = $("copy-status");
  if (!revealedKey) return;
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(revealedKey);
    status.textContent = "Copied to the clipboard.";
  } catch {
    // Fallback: select the text; the old copy command may still work here.
    field.focus();
    field.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    status.textContent = ok
      ? "Copied to the clipboard."
      : "The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
  }
}

// ---------------------------------------------------------------------------------------
// Revoke

function openRevoke(key) {
  pendingRevoke = key;
  $("revoke-message").textContent =
    `Revoke ${key.name} (${key.id})? Agents using it stop working on their next request.`;
  $("revoke-self-warning").hidden = !(me && me.id === key.id);
  hide($("revoke-error"));
  const confirm = $("revoke-confirm");
  confirm.disabled = false;
  confirm.textContent = "Revoke key";
  $("revoke-dialog").showModal();
  $("revoke-cancel").focus();
}

async function confirmRevoke() {
  const key = pendingRevoke;
  if (!key) return;
  await whileBusy($("revoke-confirm"), "Revoking…", "Revoke key", $("revoke-error"), async () => {
    await api("POST", `/keys/${encodeURIComponent(key.id)}/revoke`);
    pendingRevoke = null;
    $("revoke-dialog").close();
    if (me && me.id === key.id) {
      signedOutView("You revoked the key you were signed in with. Sign in with another owner key.");
      return;
    }
    if (rotationOld && rotationOld.id === key.id) {
      $("revoke-old-button").hidden = true;
      $("rotation-status").textContent = `Old key ${key.id} revoked.`;
    }
    await refresh();
  });
}

// ---------------------------------------------------------------------------------------
// Rotate

function openRotate(key) {
  pendingRotate = key;
  $("rotate-message").textContent =
    `Create a replacement for ${key.name} (${key.id}) with the same kind, scopes and projects? ` +
    "The old key keeps working until you revoke it.";
  hide($("rotate-error"));
  $("rotate-dialog").showModal();
  $("rotate-confirm").focus();
}

async function confirmRotate() {
  const key = pendingRotate;
  if (!key) return;
  const rotate = $("rotate-confirm");
  await whileBusy(rotate, "Creating…", "Create replacement", $("rotate-error"), async () => {
    const created = await api("POST", `/keys/${encodeURIComponent(key.id)}/rotate`);
    pendingRotate = null;
    $("rotate-dialog").close();
    reveal({ name: key.name, kind: key.kind, ...created }, key);
    refresh();
  });
}

// ---------------------------------------------------------------------------------------
// Approvals

/** Human text for a failed approvals call. */
function describeApproval(err) {
  if (!(err instanceof ApiError)) return String(err);
  const body = err.body || {};
  if (err.status === 403) return EXPLAIN_APPROVE_403;
  if (err.status === 404) return EXPLAIN_APPROVE_404;
  if (err.status === 409) {
    return typeof body.message === "string" && body.message
      ? `${EXPLAIN_APPROVE_409} (${body.message})`
      : EXPLAIN_APPROVE_409;
  }
  if (err.status === 422 && body.error === "target_mismatch") return EXPLAIN_APPROVE_422;
  return err.message;
}

/** "in 4 min", "2 min ago". */
function relative(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(secs);
  const text = abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return secs >= 0 ? `in ${text}` : `${text} ago`;
}

function asker(a) {
  const key = a && a.key ? a.key : {};
  return h("span", { class: "asker" },
    h("span", { class: "asker-key" }, "key ", h("strong", {}, String(key.name ?? "")),
      key.id ? h("code", { class: "asker-id" }, String(key.id)) : null),
    a && a.user && a.user.name
      ? h("span", { class: "asker-user" }, "for ", h("strong", {}, String(a.user.name)))
      : h("span", { class: "asker-user muted" }, "tenant key, no person"));
}

const OUTCOME = {
  approved: "Approved. The agent's identical call now goes through, once.",
  denied: "Denied. The agent's call will not run.",
  used: "Approved, and the agent's call has run.",
  expired: "Expired before it was used. The agent must ask again.",
};

function approvalBadge(status) {
  const known = ["pending", "approved", "denied", "used", "expired"].includes(status) ? status : "unknown";
  return h("span", { class: `badge badge-${known}`, "data-testid": "approval-status" }, String(status));
}

/** One approval as a card; every value from the API goes in as text. */
function approvalNode(a) {
  const status = String(a.status);
  const target = String(a.target ?? "");
  const operation = String(a.operation ?? a.tool ?? "");
  let args;
  try {
    args = JSON.stringify(a.arguments ?? {}, null, 2);
  } catch {
    args = String(a.arguments);
  }
  const node = h("article", {
    class: `approval${a.id === focusId ? " is-focused" : ""}`,
    "data-testid": "approval",
    "data-approval-id": String(a.id),
    "data-status": status,
  });
  node.append(
    h("header", { class: "approval-head" },
      h("div", { class: "approval-what" },
        h("code", { class: "approval-op", "data-testid": "approval-operation" }, operation),
        h("span", { class: "approval-target", "data-testid": "approval-target" }, target)),
      approvalBadge(status)),
    h("dl", { class: "kv kv-compact approval-facts" },
      h("dt", {}, "Asked by"), h("dd", { "data-testid": "approval-asker" }, asker(a)),
      h("dt", {}, "Tool"), h("dd", {}, h("code", {}, String(a.tool ?? ""))),
      h("dt", {}, "Asked"), h("dd", {}, when(a.created_at, "—")),
      h("dt", {}, "Expires"), h("dd", { "data-testid": "approval-expires" },
        when(a.expires_at, "—"), " ", h("span", { class: "muted" }, `(${relative(a.expires_at)})`)),
      a.decided_by && a.decided_by.name
        ? [h("dt", {}, "Decided by"), h("dd", { "data-testid": "approval-decided-by" }, String(a.decided_by.name))]
        : null),
    h("div", { class: "field" },
      h("span", { class: "field-label" }, "Arguments"),
      h("pre", { class: "code approval-args", "data-testid": "approval-arguments" }, args)));

  if (status === "pending") {
    node.append(approvalForm(a, node, target, operation));
  } else {
    node.append(h("p", { class: `approval-outcome outcome-${status}`, "data-testid": "approval-outcome", role: "status", tabindex: "-1" },
      OUTCOME[status] || `This approval is ${status}.`));
  }
  return node;
}

function approvalForm(a, node, target, operation) {
  const inputId = `approval-confirm-${String(a.id).replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const input = h("input", {
    type: "text",
    id: inputId,
    "data-testid": "approval-confirm",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    placeholder: target,
  });
  const approve = h("button", { type: "submit", class: "btn btn-danger", "data-testid": "approve-button", disabled: true },
    `Approve ${operation}`);
  const deny = h("button", { type: "button", class: "btn btn-secondary", "data-testid": "deny-button" }, "Deny");
  const error = h("p", { class: "form-error", "data-testid": "approval-error", role: "alert", hidden: true });
  const sync = () => {
    approve.disabled = input.value !== target;
  };
  input.addEventListener("input", sync);
  const form = h("form", { class: "approval-form stack", "data-testid": "approval-form", autocomplete: "off", novalidate: true },
    h("label", { class: "field", for: inputId },
      h("span", { class: "field-label" }, "Type ", h("code", { class: "approval-target-inline" }, target), " to approve"),
      input,
      h("span", { class: "hint" }, "The exact name, as shown. Approving lets this call, with these arguments, run once.")),
    error,
    h("div", { class: "actions actions-start" }, approve, deny));
  const busy = (on, which, label) => {
    input.disabled = on;
    deny.disabled = on;
    approve.disabled = on || input.value !== target;
    if (which) which.textContent = label;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value !== target) return;
    hide(error);
    busy(true, approve, "Approving…");
    try {
      const decided = await api("POST", `/approvals/${encodeURIComponent(a.id)}/approve`, { target: input.value });
      showDecided(a.id, decided || { ...a, status: "approved" });
    } catch (err) {
      busy(false, approve, `Approve ${operation}`);
      const msg = handleAuthError(err) === null ? null : describeApproval(err);
      if (msg) show(error, msg);
    }
  });
  deny.addEventListener("click", async () => {
    hide(error);
    busy(true, deny, "Denying…");
    try {
      const decided = await api("POST", `/approvals/${encodeURIComponent(a.id)}/deny`);
      showDecided(a.id, decided || { ...a, status: "denied" });
    } catch (err) {
      busy(false, deny, "Deny");
      const msg = handleAuthError(err) === null ? null : describeApproval(err);
      if (msg) show(error, msg);
    }
  });
  return form;
}

/** Replaces an approval's card with its decided state and keeps it on screen. */
function showDecided(id, approval) {
  const entry = shownApprovals.get(id);
  const node = approvalNode(approval);
  if (entry && entry.node.isConnected) entry.node.replaceWith(node);
  else $("approvals-list").prepend(node);
  shownApprovals.set(id, { approval, node, keep: true });
  updateApprovalCounts();
  const outcome = node.querySelector('[data-testid="approval-outcome"]');
  if (outcome) outcome.focus();
}

function updateApprovalCounts() {
  let pending = 0;
  for (const { approval } of shownApprovals.values()) if (approval.status === "pending") pending += 1;
  for (const id of ["approvals-count", "approvals-title-count"]) {
    const el = $(id);
    el.textContent = String(pending);
    el.hidden = pending === 0;
  }
  $("approvals-link").setAttribute("aria-label", `Approvals: ${pending} pending`);
  $("approvals-empty").hidden = shownApprovals.size > 0 || !$("approvals-error").hidden;
}

/**
 * Fetches the pending list (and, first time, the approval the URL names) and reconciles
 * the cards: a card already on screen is left alone, so a name being typed survives a poll.
 */
async function loadApprovals(first) {
  const banner = $("approvals-error");
  const canApprove = me && Array.isArray(me.scopes) && me.scopes.includes(APPROVE_SCOPE);
  let focused = null;
  let pending = [];
  const problems = [];
  if (first && focusId) {
    try {
      focused = await api("GET", `/approvals/${encodeURIComponent(focusId)}`);
    } catch (err) {
      if (handleAuthError(err) === null) return;
      problems.push(describeApproval(err));
    }
  }
  if (canApprove) {
    try {
      const listed = await api("GET", "/approvals");
      pending = Array.isArray(listed && listed.approvals) ? listed.approvals : [];
    } catch (err) {
      if (handleAuthError(err) === null) return;
      const msg = describeApproval(err);
      if (!problems.includes(msg)) problems.push(msg);
    }
  } else if (first && !focused && !problems.length) {
    problems.push(EXPLAIN_APPROVE_403);
  }
  if (!ownerKey) return;
  if (problems.length) show(banner, problems.join(" "));
  else hide(banner);

  const wanted = new Map();
  if (focused && focused.id !== undefined) wanted.set(String(focused.id), focused);
  for (const a of pending) if (a && a.id !== undefined && !wanted.has(String(a.id))) wanted.set(String(a.id), a);
  // Drop pending cards the server no longer lists (decided elsewhere, expired).
  for (const [id, entry] of shownApprovals) {
    if (!wanted.has(id) && !entry.keep) {
      entry.node.remove();
      shownApprovals.delete(id);
    }
  }
  const list = $("approvals-list");
  for (const [id, a] of wanted) {
    if (shownApprovals.has(id)) continue;
    const node = approvalNode(a);
    if (id === focusId) list.prepend(node);
    else list.append(node);
    shownApprovals.set(id, { approval: a, node, keep: id === focusId });
  }
  updateApprovalCounts();
  if (first && focusId && shownApprovals.has(focusId)) {
    const node = shownApprovals.get(focusId).node;
    node.scrollIntoView({ block: "start" });
    const input = node.querySelector('[data-testid="approval-confirm"]');
    if (input) input.focus();
  }
}

function startApprovals() {
  stopApprovals();
  loadApprovals(true);
  approvalsTimer = window.setInterval(() => {
    if (document.visibilityState === "visible" && ownerKey) loadApprovals(false);
  }, APPROVALS_POLL_MS);
}

function stopApprovals() {
  if (approvalsTimer !== null) window.clearInterval(approvalsTimer);
  approvalsTimer = null;
  shownApprovals.clear();
  $("approvals-list").replaceChildren();
  hide($("approvals-error"));
  $("approvals-empty").hidden = true;
  for (const id of ["approvals-count", "approvals-title-count"]) {
    const el = $(id);
    el.textContent = "";
    el.hidden = true;
  }
}

/** On `/approvals/{id}` the page introduces itself as the approval page. */
function renderApprovalMode() {
  if (!focusId) return;
  document.title = "Approve a tool call · keygate";
  $("page-title").textContent = "Approve a tool call";
  $("page-lead").textContent =
    "An agent's call needs a person's approval before it runs. Check what it does, then decide.";
  $("signin-title").textContent = "Sign in with your own key";
  $("signin-text").textContent =
    "Paste your own user key with the gates:approve scope: never the key the agent uses. " +
    "The key stays in this tab's memory only: it is never stored, and reloading the page forgets it.";
  $("owner-key-label").textContent = "Your API key";
}

// ---------------------------------------------------------------------------------------
// MCP card

function renderMcpCard() {
  const origin = window.location.origin;
  $("mcp-endpoint").textContent = `${origin}/api/mcp`;
  $("token-endpoint").textContent = `GET ${origin}${API}/token`;
  const config = {
    mcpServers: {
      keygate: {
        type: "http",
        url: `${origin}/api/mcp`,
        headers: { Authorization: "Bearer ${KEYGATE_API_KEY}" },
      },
    },
  };
  $("mcp-config").textContent = `// .mcp.json\n${JSON.stringify(config, null, 2)}`;
}

// ---------------------------------------------------------------------------------------
// Wiring

function init() {
  renderMcpCard();
  renderApprovalMode();
  $("approvals-refresh").addEventListener("click", () => {
    if (ownerKey) loadApprovals(false);
  });
  $("signin-form").addEventListener("submit", signIn);
  $("signout-button").addEventListener("click", () => signedOutView(null));
  $("new-key-button").addEventListener("click", openCreate);
  $("create-form").addEventListener("submit", submitCreate);
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", syncKind);
  }
  $("reveal-done").addEventListener("click", () => {
    forgetRevealed();
    $("reveal-dialog").close();
  });
  $("reveal-dialog").addEventListener("close", forgetRevealed);
  $("copy-button").addEventListener("click", copyKey);
  $("revoke-old-button").addEventListener("click", () => {
    if (rotationOld) openRevoke(rotationOld);
  });
  $("revoke-confirm").addEventListener("click", confirmRevoke);
  $("revoke-dialog").addEventListener("close", () => {
    pendingRevoke = null;
  });
  $("rotate-confirm").addEventListener("click", confirmRotate);
  $("rotate-dialog").addEventListener("close", () => {
    pendingRotate = null;
  });
  for (const btn of document.querySelectorAll("dialog [data-close]")) {
    btn.addEventListener("click", () => btn.closest("dialog").close());
  }
  // Forget everything when the page is hidden for good (tab closed, navigated away).
  window.addEventListener("pagehide", () => {
    ownerKey = null;
    revealedKey = null;
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) signedOutView(null);
  });
  $("owner-key").focus();
}

init();
