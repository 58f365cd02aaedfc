// What the browser tests share: failing with a message, the environment, API calls from
// Node, sign-in on the page, and running one test in a bounded headless Chromium.

import { chromium } from "playwright-core";

export const STEP_TIMEOUT_MS = 10_000;
export const HTTP_TIMEOUT_MS = 5_000;

/** A check that failed: reported as `FAIL: <message>` without a stack. */
export class Failure extends Error {}

export function fail(message) {
  throw new Failure(message);
}

export function expect(condition, message) {
  if (!condition) fail(message);
}

export function log(message) {
  process.stderr.write(`  ok: ${message}\n`);
}

/** An environment variable, or `fallback`; exits 2 when a required one is missing. */
export function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    if (fallback !== undefined) return fallback;
    process.stderr.write(`FAIL: environment variable ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

/** A fetch error with its cause (connection refused, timeout, ...). */
export function reason(err) {
  const cause = err && err.cause ? ` (${err.cause.code || err.cause.message})` : "";
  return `${err.message}${cause}`;
}

/** The JSON of a body: the last JSON-RPC message of an event stream, else the JSON. */
function parseBody(text, contentType) {
  if ((contentType || "").startsWith("text/event-stream")) {
    const messages = text
      .split("\n")
      .filter((l) => l.startsWith("data:"))
      .map((l) => {
        try {
          return JSON.parse(l.slice(5).trim());
        } catch {
          return null;
        }
      })
      .filter((m) => m !== null);
    return messages.length ? messages[messages.length - 1] : null;
  }
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

/** A call to the API at `baseUrl` from Node (not the page): `{status, headers, body}`. */
export async function call(baseUrl, method, path, key, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch (err) {
    fail(`${method} ${path}: request failed: ${reason(err)}`);
  }
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: parseBody(text, res.headers.get("content-type")) };
}

/** The problems `page` reports from now on (uncaught exceptions, CSP violations), as they come. */
export function watchProblems(page) {
  const problems = [];
  page.on("pageerror", (err) => problems.push(`uncaught exception in the page: ${err.message}`));
  page.on("console", (msg) => {
    const t = msg.text();
    if (msg.type() === "error" && /Content Security Policy|Refused to/i.test(t)) {
      problems.push(`CSP violation: ${t}`);
    }
  });
  return problems;
}

/** Text of an element, whitespace collapsed. */
export async function text(page, selector) {
  const raw = await page.locator(selector).first().textContent({ timeout: STEP_TIMEOUT_MS });
  return (raw || "").replace(/\s+/g, " ").trim();
}

/**
 * Runs `run(browser)` in a headless Chromium at `chromiumPath`, the whole of it within
 * `budgetMs`; prints `PASS: <name>` or `FAIL: …` and exits 0 or 1.
 */
export async function runInChromium(name, chromiumPath, budgetMs, run) {
  const deadline = setTimeout(() => {
    process.stderr.write(`FAIL: the ${name} test did not finish within ${budgetMs / 1000} s\n`);
    process.exit(1);
  }, budgetMs);
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      timeout: 20_000,
      // Without the background-networking flags Chromium keeps trying hosts that a
      // closed network refuses.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  } catch (err) {
    process.stderr.write(`FAIL: could not start Chromium at ${chromiumPath}: ${err.message}\n`);
    process.exit(1);
  }
  let code = 0;
  try {
    await run(browser);
    process.stderr.write(`PASS: ${name}\n`);
  } catch (err) {
    code = 1;
    const message = err instanceof Failure ? err.message : err.stack || String(err);
    process.stderr.write(`FAIL: ${message}\n`);
  } finally {
    await browser.close().catch(() => {});
    clearTimeout(deadline);
  }
  process.exit(code);
}
