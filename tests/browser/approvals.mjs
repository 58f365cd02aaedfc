// Drives the approval page (`/approvals/{id}`) of a running keygated in headless Chromium:
// an agent's person-gated call waits for a person, who signs in with their own key, reads
// what the call does, types the target's exact name and approves; the agent's identical
// retry then runs, once.
//
// Environment:
//   KEYGATE_URL         base URL of keygated --demo, e.g. http://127.0.0.1:8080 (required)
//   KEYGATE_OWNER_KEY   the demo owner's user key (keys:admin and gates:approve) (required)
//   KEYGATE_SCREENSHOT  where to save a PNG of the approval page (default:
//                       keygate-approval-page.png in the system temporary directory)
//   KEYGATE_CHROMIUM    the Chromium binary (default: /usr/bin/chromium)
//
// Exits 0 when every check passed, 1 with a "FAIL: ..." line otherwise, 2 when a required
// variable is missing. The whole run is bounded (55 s); each step has a shorter timeout.

import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.mjs";
import { STEP_TIMEOUT_MS, env, expect, fail, log, reason, text } from "./harness.mjs";

const TOTAL_BUDGET_MS = 55_000;

const CANNOT_APPROVE =
  "This key cannot approve: it needs gates:approve and must not be the key that asked.";
// An agent's argument that would run script if the page ever rendered it as HTML.
const HOSTILE = '<img src=x onerror="window.__kgXss=1">';

const baseUrl = env("KEYGATE_URL").replace(/\/+$/, "");
const ownerKey = env("KEYGATE_OWNER_KEY");
const screenshotPath = env("KEYGATE_SCREENSHOT", join(tmpdir(), "keygate-approval-page.png"));
const chromiumPath = env("KEYGATE_CHROMIUM", "/usr/bin/chromium");

/** A call to the API from Node (not the page): `{status, headers, body}`. */
const call = (...args) => harness.call(baseUrl, ...args);

/** An MCP client without elicitation (stateful revision), as an agent would be. */
class Agent {
  constructor(key) {
    this.key = key;
    this.session = null;
    this.nextId = 1;
  }

  async rpc(method, params) {
    const headers = { Accept: "application/json, text/event-stream" };
    if (this.session) headers["Mcp-Session-Id"] = this.session;
    const id = this.nextId++;
    return call("POST", "/api/mcp", this.key, { jsonrpc: "2.0", id, method, params }, headers);
  }

  async initialize() {
    const a = await this.rpc("initialize", {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "keygate-browser-test-agent", version: "0" },
    });
    expect(a.status === 200, `initialize: expected 200, got ${a.status} ${JSON.stringify(a.body)}`);
    this.session = a.headers.get("mcp-session-id");
    expect(this.session, "initialize assigned no Mcp-Session-Id");
    const headers = { Accept: "application/json, text/event-stream", "Mcp-Session-Id": this.session };
    const n = await call("POST", "/api/mcp", this.key, { jsonrpc: "2.0", method: "notifications/initialized" }, headers);
    expect(n.status === 202, `notifications/initialized: expected 202, got ${n.status}`);
  }

  /** `tools/call`; returns the JSON-RPC result. */
  async tool(name, args) {
    const a = await this.rpc("tools/call", { name, arguments: args });
    expect(a.status === 200 && a.body && a.body.result,
      `${name}: expected a JSON-RPC result, got ${a.status} ${JSON.stringify(a.body)}`);
    return a.body.result;
  }
}

/** A gated call that must answer APPROVAL_REQUIRED; returns its structured content. */
async function mustNeedApproval(agent, args) {
  const result = await agent.tool("service.delete", args);
  const sc = result.structuredContent || {};
  expect(result.isError === true && sc.code === "APPROVAL_REQUIRED",
    `service.delete ${JSON.stringify(args)}: expected APPROVAL_REQUIRED, got ${JSON.stringify(result)}`);
  expect(typeof sc.approval_id === "string" && sc.approval_id.length > 0, `no approval_id in ${JSON.stringify(sc)}`);
  expect(typeof sc.approval_url === "string" && sc.approval_url.endsWith(`/approvals/${sc.approval_id}`),
    `approval_url ${JSON.stringify(sc.approval_url)} does not end in /approvals/${sc.approval_id}`);
  expect(typeof sc.expires_at === "string", `no expires_at in ${JSON.stringify(sc)}`);
  return sc;
}

async function serviceNames(agent) {
  const result = await agent.tool("service.list", {});
  expect(!result.isError, `service.list failed: ${JSON.stringify(result)}`);
  const services = (result.structuredContent && result.structuredContent.services) || [];
  return services.map((s) => s.name);
}

async function signIn(page, key) {
  await page.waitForSelector("#signin-card:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  await page.fill("#owner-key", key);
  await page.click("#signin-button");
  await page.waitForSelector("#app:not([hidden])", { timeout: STEP_TIMEOUT_MS }).catch(async () => {
    const err = await page.locator("#signin-error").textContent().catch(() => "");
    fail(`signing in failed: "${(err || "").trim()}"`);
  });
}

async function signOut(page) {
  await page.click("#signout-button");
  await page.waitForSelector("#signin-card:not([hidden])", { timeout: STEP_TIMEOUT_MS });
}

function card(id) {
  return `#approvals-list article[data-approval-id="${id}"]`;
}

async function run(browser) {
  // The owner's key must be an approver's: the demo bootstrap grants gates:approve.
  const me = await call("GET", "/api/v1/token", ownerKey);
  expect(me.status === 200, `GET /api/v1/token with the owner key: ${me.status} ${JSON.stringify(me.body)}`);
  expect(Array.isArray(me.body.scopes) && me.body.scopes.includes("gates:approve"),
    `the demo owner key lacks gates:approve: ${JSON.stringify(me.body.scopes)}`);

  // The agent: a tenant key that can delete services, and no person behind it.
  const agentName = `browser-agent-${Date.now().toString(36)}`;
  const created = await call("POST", "/api/v1/keys", ownerKey, {
    name: agentName,
    kind: "tenant",
    scopes: ["services:read", "services:write"],
  });
  expect(created.status === 201, `POST /api/v1/keys: expected 201, got ${created.status} ${JSON.stringify(created.body)}`);
  const agentKey = created.body.key;
  const agent = new Agent(agentKey);
  await agent.initialize();
  expect((await serviceNames(agent)).includes("web"), "the demo has no service web to delete");

  const asked = await mustNeedApproval(agent, { service: "web" });
  expect(asked.target === "web" && asked.operation === "service.delete",
    `the gate names ${asked.operation} ${asked.target}, expected service.delete web`);
  const id = asked.approval_id;
  // A second pending call whose target is hostile markup (it is never approved).
  const hostile = await mustNeedApproval(agent, { service: HOSTILE });
  log(`the agent's service.delete web answered APPROVAL_REQUIRED (${id})`);

  // The agent's own key can read no approval: the API refuses it, and so does the page.
  const own = await call("POST", `/api/v1/approvals/${encodeURIComponent(id)}/approve`, agentKey, { target: "web" });
  expect(own.status === 403, `the calling key approving its own call: expected 403, got ${own.status}`);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const problems = harness.watchProblems(page);
  page.on("dialog", (d) => {
    problems.push(`the page opened a ${d.type()} dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });

  const pageRes = await page.goto(`${baseUrl}/approvals/${encodeURIComponent(id)}`, { waitUntil: "load" });
  expect(pageRes && pageRes.status() === 200, `GET /approvals/${id}: expected 200, got ${pageRes && pageRes.status()}`);
  const csp = (await pageRes.allHeaders())["content-security-policy"] || "";
  expect(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `weak CSP on the approval page: "${csp}"`);
  const title = await text(page, "h1");
  expect(title === "Approve a tool call", `approval page heading "${title}"`);
  log("the approval link serves the page under the strict CSP");

  // 1. The calling key signs in and is told it cannot decide.
  await signIn(page, agentKey);
  await page.waitForSelector("#approvals-error:not([hidden])");
  const refused = await text(page, "#approvals-error");
  expect(refused.includes(CANNOT_APPROVE), `signed in with the calling key: expected "${CANNOT_APPROVE}", got "${refused}"`);
  expect((await page.locator(`${card(id)} [data-testid="approve-button"]`).count()) === 0,
    "the calling key is offered an Approve button");
  await signOut(page);
  log("the agent's own key is told it cannot approve");

  // 2. The person signs in with their own key and sees what the call does.
  await signIn(page, ownerKey);
  await page.waitForSelector(`${card(id)}[data-status="pending"]`);
  expect(await page.locator(card(id)).evaluate((el) => el.classList.contains("is-focused")),
    "the approval the link names is not the focused one");
  const op = await text(page, `${card(id)} [data-testid="approval-operation"]`);
  const target = await text(page, `${card(id)} [data-testid="approval-target"]`);
  expect(op === "service.delete" && target === "web", `the card shows "${op}" "${target}"`);
  const args = JSON.parse(await page.locator(`${card(id)} [data-testid="approval-arguments"]`).textContent());
  expect(JSON.stringify(args) === JSON.stringify({ service: "web" }), `the card shows arguments ${JSON.stringify(args)}`);
  const askedBy = await text(page, `${card(id)} [data-testid="approval-asker"]`);
  expect(askedBy.includes(agentName) && askedBy.includes("tenant key, no person"),
    `"asked by" shows "${askedBy}", expected the agent key ${agentName} and no person`);
  expect((await text(page, `${card(id)} [data-testid="approval-expires"]`)).includes("in "),
    "the expiry is not shown as a time to come");
  await page.waitForSelector("#approvals-count:not([hidden])");
  const count = await text(page, "#approvals-count");
  expect(Number(count) >= 2, `the header badge counts ${count} pending approvals, expected at least 2`);
  log(`the person sees operation, target, arguments, who asked and expiry; the badge says ${count}`);

  // The hostile argument is text, not markup.
  const hostileCard = card(hostile.approval_id);
  await page.waitForSelector(hostileCard);
  const shown = await page.locator(`${hostileCard} [data-testid="approval-target"]`).textContent();
  expect(shown === HOSTILE, `the hostile target is shown as ${JSON.stringify(shown)}`);
  expect((await page.locator("#approvals-list img").count()) === 0, "the agent's markup became an element");
  expect((await page.evaluate(() => window.__kgXss)) === undefined, "the agent's markup ran script");
  log("an agent's markup in the arguments is shown as text and runs nothing");

  // 3. The button waits for the exact name.
  const input = `${card(id)} [data-testid="approval-confirm"]`;
  const approve = `${card(id)} [data-testid="approve-button"]`;
  expect(await page.locator(approve).isDisabled(), "Approve is enabled before the name is typed");
  for (const wrong of ["WEB", "web ", "we"]) {
    await page.fill(input, wrong);
    expect(await page.locator(approve).isDisabled(), `Approve is enabled for the name ${JSON.stringify(wrong)}`);
  }
  await page.fill(input, "web");
  expect(await page.locator(approve).isEnabled(), "Approve stays disabled with the exact name");
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  log(`screenshot saved to ${screenshotPath}`);

  await page.click(approve);
  await page.waitForSelector(`${card(id)}[data-status="approved"]`);
  const outcome = await text(page, `${card(id)} [data-testid="approval-outcome"]`);
  expect(outcome.includes("goes through, once"), `after approving, the card says "${outcome}"`);
  const after = Number((await page.locator("#approvals-count").textContent()) || "0");
  expect(after === Number(count) - 1, `the badge says ${after} after approving, expected ${Number(count) - 1}`);
  log("typed the exact name and approved; the badge went down by one");

  // Deny the hostile one from the page.
  await page.click(`${hostileCard} [data-testid="deny-button"]`);
  await page.waitForSelector(`${hostileCard}[data-status="denied"]`);
  const denied = await call("GET", `/api/v1/approvals/${encodeURIComponent(hostile.approval_id)}`, ownerKey);
  expect(denied.status === 200 && denied.body.status === "denied", `the denied approval reads ${JSON.stringify(denied.body)}`);
  log("denied the other call from the page");

  // A call that arrives while the page is open shows up on Refresh; decided elsewhere
  // (here: denied through the API) in the meantime, approving it says it is closed.
  const late = await mustNeedApproval(agent, { service: "worker" });
  await page.click("#approvals-refresh");
  const lateCard = card(late.approval_id);
  await page.waitForSelector(`${lateCard}[data-status="pending"]`);
  const elsewhere = await call("POST", `/api/v1/approvals/${encodeURIComponent(late.approval_id)}/deny`, ownerKey);
  expect(elsewhere.status === 200, `denying through the API: expected 200, got ${elsewhere.status}`);
  await page.fill(`${lateCard} [data-testid="approval-confirm"]`, "worker");
  await page.click(`${lateCard} [data-testid="approve-button"]`);
  await page.waitForSelector(`${lateCard} [data-testid="approval-error"]:not([hidden])`);
  const closed = await text(page, `${lateCard} [data-testid="approval-error"]`);
  expect(closed.startsWith("This approval is closed"), `approving a call denied elsewhere shows "${closed}"`);
  log("a call that arrived later appears on Refresh; approving it after it was denied elsewhere says it is closed");

  // 4. The agent's identical retry runs once.
  const retry = await agent.tool("service.delete", { service: "web" });
  expect(!retry.isError, `the identical retry after approval failed: ${JSON.stringify(retry)}`);
  const left = await serviceNames(agent);
  expect(!left.includes("web"), "web is still listed after the approved delete");
  expect(left.includes("worker"), "worker was deleted although its approval was denied");
  const used = await call("GET", `/api/v1/approvals/${encodeURIComponent(id)}`, ownerKey);
  expect(used.status === 200 && used.body.status === "used", `after the retry the approval reads ${JSON.stringify(used.body)}`);
  log("the agent's identical retry deleted web and spent the approval");

  // Deciding again is refused, and the page says the approval is closed.
  await page.reload({ waitUntil: "load" });
  await signIn(page, ownerKey);
  await page.waitForSelector(`${card(id)}[data-status="used"]`);
  log("the spent approval reopens as used");

  // At a phone's width the page does not scroll sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `at 390 px wide the approval page scrolls sideways by ${overflow} px`);
  log("the approval page fits a 390 px wide screen");

  const storage = await page.evaluate(() => window.localStorage.length + window.sessionStorage.length + document.cookie.length);
  expect(storage === 0, "the page stored something in the browser");
  expect(problems.length === 0, problems.join("; "));
  await context.close();
  await call("POST", `/api/v1/keys/${created.body.id}/revoke`, ownerKey);
}

harness.runInChromium("approval page", chromiumPath, TOTAL_BUDGET_MS, run);
