// Drives the "Settings → API & MCP" page of a running keygated in headless Chromium.
//
// Environment:
//   KEYGATE_URL         base URL of keygated, e.g. http://127.0.0.1:8080 (required)
//   KEYGATE_OWNER_KEY   an owner user key with keys:admin (required)
//   KEYGATE_SCREENSHOT  where to save a PNG of the key list (default: keygate-settings.png
//                       in the system temporary directory)
//   KEYGATE_CHROMIUM    the Chromium binary (default: /usr/bin/chromium)
//
// Exits 0 when every check passed, 1 with a "FAIL: ..." line otherwise. The whole run is
// bounded (55 s); each step has its own shorter timeout.

import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.mjs";
import { HTTP_TIMEOUT_MS, STEP_TIMEOUT_MS, env, expect, fail, log, reason, text } from "./harness.mjs";

const TOTAL_BUDGET_MS = 55_000;

const OWNER_ROLE_MESSAGE = "You need the owner role to manage API keys";
const INVALID_KEY_MESSAGE = "This key is not valid (revoked, expired or unknown)";
const REVEAL_WARNING = "Copy this key now. It cannot be shown again.";
// Scopes only user keys hold (a tenant key with them is refused).
const USER_ONLY = ["keys:admin", "gates:approve"];
const KEY_SHAPE = /^[A-Za-z0-9_]+_(uk|tk)_[A-Za-z0-9]{48}$/;

const baseUrl = env("KEYGATE_URL").replace(/\/+$/, "");
const ownerKey = env("KEYGATE_OWNER_KEY");
const screenshotPath = env("KEYGATE_SCREENSHOT", join(tmpdir(), "keygate-settings.png"));
const chromiumPath = env("KEYGATE_CHROMIUM", "/usr/bin/chromium");

/** A call to the API from Node (not the page): `{status, headers, body}`. */
const call = (...args) => harness.call(baseUrl, ...args);

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function waitOpen(page, id) {
  await page.waitForSelector(`dialog#${id}[open]`, { timeout: STEP_TIMEOUT_MS });
}

async function waitClosed(page, id) {
  await page.waitForSelector(`dialog#${id}:not([open])`, { state: "attached", timeout: STEP_TIMEOUT_MS });
}

async function signIn(page, key) {
  await page.waitForSelector("#signin-card:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  await page.fill("#owner-key", key);
  await page.click("#signin-button");
}

async function signOut(page) {
  await page.click("#signout-button");
  await page.waitForSelector("#signin-card:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  expect((await page.inputValue("#owner-key")) === "", "the key field is not empty after signing out");
  expect(await page.locator("#app").isHidden(), "the key list is still shown after signing out");
}

async function expectSignInError(page, wanted, what) {
  await page.waitForSelector("#signin-error:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  const got = await text(page, "#signin-error");
  expect(got === wanted, `${what}: expected the message "${wanted}", got "${got}"`);
  expect(await page.locator("#app").isHidden(), `${what}: the key list is shown anyway`);
}

function row(page, id) {
  return page.locator(`#keys-body tr[data-key-id="${id}"]`);
}

async function rowStatus(page, id) {
  return (await row(page, id).locator('[data-testid="key-status"]').textContent({ timeout: STEP_TIMEOUT_MS }))?.trim();
}

async function waitRowStatus(page, id, status) {
  await page.waitForSelector(`#keys-body tr[data-key-id="${id}"][data-status="${status}"]`, {
    timeout: STEP_TIMEOUT_MS,
  });
}

/** Reads the revealed key, checks the reveal dialog, closes it and checks the key is gone. */
async function takeRevealedKey(page) {
  await waitOpen(page, "reveal-dialog");
  const warning = await text(page, "#reveal-warning");
  expect(warning === REVEAL_WARNING, `reveal dialog: expected the warning "${REVEAL_WARNING}", got "${warning}"`);
  const key = await page.inputValue("#reveal-key");
  expect(KEY_SHAPE.test(key), "reveal dialog: the field does not hold a well-formed key");
  const id = await text(page, "#reveal-key-id");
  expect(id.length > 0 && key.includes(id), "reveal dialog: the key id shown does not match the key");
  return { key, id };
}

/** Closes the reveal dialog with Done, or with Escape when `how` is "escape". */
async function closeReveal(page, key, how = "done") {
  if (how === "escape") await page.keyboard.press("Escape");
  else await page.click("#reveal-done");
  await waitClosed(page, "reveal-dialog");
  await page
    .waitForFunction(() => document.getElementById("reveal-key").value === "", null, { timeout: 2_000 })
    .catch(() => fail("the raw key is still in the reveal field after closing"));
  const html = await page.content();
  expect(!html.includes(key), "the raw key is still somewhere in the page after closing the dialog");
}

async function confirmRevoke(page, name, id) {
  await waitOpen(page, "revoke-dialog");
  const message = await text(page, "#revoke-message");
  const wanted = `Revoke ${name} (${id})? Agents using it stop working on their next request.`;
  expect(message === wanted, `revoke dialog: expected "${wanted}", got "${message}"`);
  await page.click("#revoke-confirm");
  await waitClosed(page, "revoke-dialog");
}

async function run(browser) {
  // The page itself and its security headers.
  const pageRes = await fetch(`${baseUrl}/settings/api`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) }).catch(
    (err) => fail(`GET /settings/api: request failed: ${reason(err)}`),
  );
  expect(pageRes.status === 200, `GET /settings/api: expected 200, got ${pageRes.status}`);
  const csp = pageRes.headers.get("content-security-policy") || "";
  expect(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"),
    `GET /settings/api: missing or weak Content-Security-Policy: "${csp}"`);
  expect((pageRes.headers.get("x-content-type-options") || "").toLowerCase() === "nosniff",
    "GET /settings/api: missing X-Content-Type-Options: nosniff");
  log("page served with a strict Content-Security-Policy");

  const context = await browser.newContext({
    viewport: { width: 1360, height: 900 },
    deviceScaleFactor: 1,
    permissions: ["clipboard-read", "clipboard-write"],
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const problems = harness.watchProblems(page);
  const checkProblems = () => expect(problems.length === 0, problems.join("; "));

  await page.goto(`${baseUrl}/settings/api`, { waitUntil: "load", timeout: STEP_TIMEOUT_MS });
  const title = await text(page, "h1");
  expect(title === "Settings → API & MCP", `unexpected page heading "${title}"`);

  // 1. Sign in as the owner.
  await signIn(page, ownerKey);
  await page.waitForSelector("#app:not([hidden])", { timeout: STEP_TIMEOUT_MS }).catch(async () => {
    const err = await page.locator("#signin-error").textContent().catch(() => "");
    fail(`signing in with the owner key failed: "${(err || "").trim()}"`);
  });
  expect((await page.inputValue("#owner-key").catch(() => "")) === "", "the owner key is left in the input");
  const storage = await page.evaluate(() => ({
    local: window.localStorage.length,
    session: window.sessionStorage.length,
    cookie: document.cookie,
  }));
  expect(storage.local === 0 && storage.session === 0 && storage.cookie === "",
    "the page stored something in localStorage, sessionStorage or a cookie");
  log("signed in as the owner; nothing stored in the browser");

  // 2. Create a tenant key with two scopes.
  await page.click("#new-key-button");
  await waitOpen(page, "create-dialog");
  await page.check("#kind-tenant");
  const enabled = await page.$$eval('#create-scopes input[name="scope"]:not([disabled])', (els) =>
    els.map((e) => e.value));
  const preselected = await page.$$eval('#create-scopes input[name="scope"]:checked', (els) => els.length);
  expect(preselected === 0, "the create dialog preselects scopes");
  const chosen = enabled.filter((s) => !USER_ONLY.includes(s)).slice(0, 2);
  expect(chosen.length === 2, `the scope catalogue offers fewer than two scopes for a tenant key: ${enabled}`);
  for (const scope of chosen) await page.check(`#create-scopes input[name="scope"][value="${scope}"]`);
  const name = `browser-test-${Date.now().toString(36)}`;
  await page.fill("#create-name", name);
  await page.click("#create-submit");
  const created = await takeRevealedKey(page);
  expect(/_tk_/.test(created.key), "the created key does not have the tenant-key prefix");
  log(`created tenant key ${created.id} with scopes ${chosen.join(", ")}`);

  // Copy button: the clipboard gets exactly the key.
  await page.click("#copy-button");
  await page.waitForFunction(() => document.getElementById("copy-status").textContent.length > 0);
  const clip = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (clip !== null) expect(clip === created.key, "the Copy button put something else on the clipboard");

  // 3. The new key works.
  const intro = await call("GET", "/api/v1/token", created.key);
  expect(intro.status === 200, `GET /api/v1/token with the new key: expected 200, got ${intro.status} ${JSON.stringify(intro.body)}`);
  expect(intro.body.kind === "tenant", `introspection says kind "${intro.body.kind}", expected "tenant"`);
  expect(sameJson([...intro.body.scopes].sort(), [...chosen].sort()),
    `introspection scopes ${JSON.stringify(intro.body.scopes)}, expected ${JSON.stringify(chosen)}`);
  log("the new key introspects with 200, kind tenant and the chosen scopes");

  await closeReveal(page, created.key);
  log("closing the dialog removed the key from the page");

  // 4. It is listed, then revoked through the confirmation dialog.
  await waitRowStatus(page, created.id, "active");
  const kindCell = await text(page, `#keys-body tr[data-key-id="${created.id}"] [data-testid="key-kind"]`);
  expect(kindCell === "Tenant key", `list: kind shows "${kindCell}", expected "Tenant key"`);
  const projCell = await text(page, `#keys-body tr[data-key-id="${created.id}"] [data-testid="key-projects"]`);
  expect(projCell === "All projects", `list: projects shows "${projCell}", expected "All projects"`);
  const expCell = await text(page, `#keys-body tr[data-key-id="${created.id}"] [data-testid="key-expires"]`);
  expect(expCell === "Never", `list: expires shows "${expCell}", expected "Never"`);
  await row(page, created.id).locator('[data-testid="revoke-button"]').click();
  await confirmRevoke(page, name, created.id);
  await waitRowStatus(page, created.id, "revoked");
  expect((await row(page, created.id).locator('[data-testid="revoke-button"]').count()) === 0,
    "a revoked key still offers a Revoke button");
  expect((await rowStatus(page, created.id)) === "revoked", "the status badge does not say revoked");
  log("revoked the key through the confirmation dialog");

  const after = await call("GET", "/api/v1/token", created.key);
  expect(after.status === 401, `GET /api/v1/token with the revoked key: expected 401, got ${after.status}`);
  expect(sameJson(after.body, { error: "invalid_token", reason: "key_revoked" }),
    `revoked key: expected {"error":"invalid_token","reason":"key_revoked"}, got ${JSON.stringify(after.body)}`);
  log("the revoked key gets 401 key_revoked on its next request");

  // 4b. A usage-limited key from the form: a refill needs a limit; the list shows both.
  await page.click("#new-key-button");
  await waitOpen(page, "create-dialog");
  await page.check("#kind-tenant");
  await page.check(`#create-scopes input[name="scope"][value="${chosen[0]}"]`);
  await page.fill("#create-name", `${name}-metered`);
  await page.selectOption("#create-refill", "daily");
  await page.fill("#create-refill-amount", "5");
  await page.click("#create-submit");
  await page.waitForSelector("#create-error:not([hidden])");
  const refillError = await text(page, "#create-error");
  expect(/needs a usage limit/.test(refillError), `a refill without a limit: the form says "${refillError}"`);
  await page.fill("#create-remaining", "2");
  await page.click("#create-submit");
  const metered = await takeRevealedKey(page);
  await closeReveal(page, metered.key);
  await waitRowStatus(page, metered.id, "active");
  const usageCell = `#keys-body tr[data-key-id="${metered.id}"] [data-testid="key-usage"]`;
  const shown = await text(page, usageCell);
  expect(/2 requests left/.test(shown) && /refills to 5 daily/.test(shown),
    `list: usage shows "${shown}", expected "2 requests left" and "refills to 5 daily"`);
  const unlimited = await row(page, created.id).locator('[data-testid="key-usage"]').count();
  expect(unlimited === 0, "list: a key without a usage limit shows one");
  for (const n of [1, 2]) {
    const ok = await call("GET", "/api/v1/token", metered.key);
    expect(ok.status === 200, `usage-limited key, request ${n}: expected 200, got ${ok.status}`);
  }
  const spent = await call("GET", "/api/v1/token", metered.key);
  expect(spent.status === 403 && sameJson(spent.body, { error: "usage_exceeded" }),
    `exhausted key: expected 403 {"error":"usage_exceeded"}, got ${spent.status} ${JSON.stringify(spent.body)}`);
  await page.reload({ waitUntil: "load" });
  await signIn(page, ownerKey);
  await page.waitForSelector("#app:not([hidden])");
  await waitRowStatus(page, metered.id, "active");
  const after0 = await text(page, usageCell);
  expect(/0 requests left/.test(after0), `list after two requests: usage shows "${after0}", expected "0 requests left"`);
  await call("POST", `/api/v1/keys/${metered.id}/revoke`, ownerKey);
  log("created a usage-limited key from the form; the list shows what is left and the refill");

  // 5. Rotation: replacement shown once, old key revoked from the reveal dialog.
  const scopes = (await call("GET", "/api/v1/scopes", ownerKey)).body?.scopes?.map((s) => s.name) ?? [];
  const rotScope = scopes.find((s) => !USER_ONLY.includes(s));
  expect(rotScope, "the scope catalogue has no scope besides keys:admin");
  const toRotate = await call("POST", "/api/v1/keys", ownerKey, {
    name: `${name}-rot`,
    kind: "tenant",
    scopes: [rotScope],
  });
  expect(toRotate.status === 201, `POST /api/v1/keys: expected 201, got ${toRotate.status} ${JSON.stringify(toRotate.body)}`);
  await page.reload({ waitUntil: "load" });
  await signIn(page, ownerKey);
  await page.waitForSelector("#app:not([hidden])");
  await row(page, toRotate.body.id).locator('[data-testid="rotate-button"]').click();
  await waitOpen(page, "rotate-dialog");
  await page.click("#rotate-confirm");
  const rotated = await takeRevealedKey(page);
  expect(rotated.id !== toRotate.body.id, "rotation returned the old key id");
  expect(await page.locator("#rotation-panel").isVisible(), "the reveal dialog offers no rotation steps");
  const viaNew = await call("GET", "/api/v1/token", rotated.key);
  expect(viaNew.status === 200, `the replacement key: expected 200, got ${viaNew.status}`);
  await page.click("#revoke-old-button");
  await confirmRevoke(page, `${name}-rot`, toRotate.body.id);
  await page.waitForSelector("#rotation-status:not(:empty)");
  await closeReveal(page, rotated.key, "escape");
  await waitRowStatus(page, toRotate.body.id, "revoked");
  await waitRowStatus(page, rotated.id, "active");
  const oldGone = await call("GET", "/api/v1/token", toRotate.body.key);
  expect(oldGone.status === 401, `the rotated-out key: expected 401 after revoking, got ${oldGone.status}`);
  log("rotated a key, the replacement works, the old key was revoked from the dialog, Escape forgot the key");

  // Screenshot of the list while signed in as the owner.
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  log(`screenshot saved to ${screenshotPath}`);

  // The list fits a phone's width: no sideways scrolling of the page.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `at 390 px wide the page scrolls sideways by ${overflow} px`);
  await page.setViewportSize({ width: 1360, height: 900 });
  log("the key list fits a 390 px wide screen");

  // 6. A key that is not an owner's admin key gets the owner-role message; a revoked one the 401 message.
  await signOut(page);
  await signIn(page, rotated.key);
  await expectSignInError(page, OWNER_ROLE_MESSAGE, "signing in with a tenant key");
  log("a non-owner key is told it needs the owner role");
  await signIn(page, created.key);
  await expectSignInError(page, INVALID_KEY_MESSAGE, "signing in with a revoked key");
  log("a revoked key is told it is not valid");

  await call("POST", `/api/v1/keys/${rotated.id}/revoke`, ownerKey);
  checkProblems();
  await context.close();
}

harness.runInChromium("settings page", chromiumPath, TOTAL_BUDGET_MS, run);
