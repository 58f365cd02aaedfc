// What the Node latency benchmarks share: their child processes and scratch directory,
// keygated started on a fresh SQLite file, one stateful MCP session over fetch, and the
// alternating timed run with its report. Used by node-fetch-latency.mjs and
// stdio-latency.mjs.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const peers = join(root, 'tests', 'peers');
export const calls = Number(process.env.KG_BENCH_CALLS ?? 500);
export const warmup = Number(process.env.KG_BENCH_WARMUP ?? 50);
export const bin = resolve(process.env.KG_BENCH_BIN_DIR ?? join(root, 'target', 'release'));

const children = [];
/** A scratch directory, removed (and every child killed) when the process exits. */
export const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

/** Ends the run when no result came within `seconds`: a hung server must not hang it. */
export function bound(name, seconds) {
  setTimeout(() => {
    console.error(`${name}: no result within ${seconds} s`);
    process.exit(1);
  }, seconds * 1000).unref();
}

/** Spawns a child that is killed at exit, with `options` as `spawn` takes them. */
export function child(cmd, args, options) {
  const c = spawn(cmd, args, options);
  children.push(c);
  return c;
}

/** Spawns a process and resolves with the first match of `re` in its stdout or stderr. */
export function start(cmd, args, re, options = {}) {
  const c = child(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${seen}`)), 30000);
    const look = (chunk) => {
      seen += chunk;
      const m = re.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    c.stdout.on('data', look);
    c.stderr.on('data', look);
    c.on('exit', (code) => reject(new Error(`${cmd} exited (${code}):\n${seen}`)));
  });
}

/**
 * A tenant bootstrapped with `policy` on a fresh SQLite file, and keygated in front of
 * `upstream` (--key-rate/--tenant-rate 1000000: the limiter is consulted on every call
 * but never refuses). Resolves with the MCP URL and the owner key.
 */
export async function keygated(upstream, policy, env = {}) {
  const database = `sqlite://${join(dir, 'keygate.db')}`;
  const key = execFileSync(
    join(bin, 'keygate'),
    ['bootstrap', '--database', database, '--tenant', 'bench', '--owner', 'bench', '--policy', policy],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
    .toString()
    .trim();
  const addr = await start(
    join(bin, 'keygated'),
    ['--listen', '127.0.0.1:0', '--database', database, '--upstream', upstream, '--policy', policy,
      '--key-rate', '1000000', '--tenant-rate', '1000000'],
    /keygated: listening on (http:\/\/\S+)\n/,
    { cwd: dir, env: { PATH: process.env.PATH, KEYGATE_LOG: 'warn', ...env } },
  );
  return { url: `${addr}/api/mcp`, key };
}

/**
 * A stateful 2025-11-25 session on `url` (with `auth` as the bearer key, if any);
 * `call()` makes one `tools/call` of `tool`, timed from fetch() to the end of the
 * answer's body, and checks the answer holds `expect`.
 */
export async function session(url, auth, tool, args, expect) {
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (auth) base.authorization = `Bearer ${auth}`;
  const init = await fetch(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'kg-bench', version: '0' } },
    }),
  });
  await init.text();
  if (!init.ok) throw new Error(`initialize on ${url}: ${init.status}`);
  const headers = { ...base, 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(url, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  })).text();
  let id = 1;
  return async function call() {
    const body = JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: tool, arguments: args } });
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    const t1 = process.hrtime.bigint();
    if (!res.ok || !text.includes(expect)) throw new Error(`call on ${url}: ${res.status} ${text}`);
    return Number(t1 - t0) / 1e6;
  };
}

/**
 * Warms up, then times `calls` calls per target, alternating targets so that all see
 * the same host; prints median, p90 and mean per target (`digits` decimals) and the
 * through/direct ratio of the medians.
 */
export async function run(title, targets, digits = 2) {
  for (let i = 0; i < warmup; i++) {
    for (const call of Object.values(targets)) await call();
  }
  const times = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
  for (let i = 0; i < calls; i++) {
    for (const [name, call] of Object.entries(targets)) times[name].push(await call());
  }
  const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  console.log(`${title}, ${calls} calls per target after ${warmup} warm-up calls`);
  console.log('target     median ms    p90 ms   mean ms');
  const medians = {};
  for (const [name, list] of Object.entries(times)) {
    const s = [...list].sort((a, b) => a - b);
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    medians[name] = q(s, 0.5);
    console.log(`${name.padEnd(8)} ${q(s, 0.5).toFixed(digits).padStart(9)} ${q(s, 0.9).toFixed(digits).padStart(9)} ${mean.toFixed(digits).padStart(9)}`);
  }
  if (medians.direct && medians.through) {
    console.log(`through/direct (median): ${(medians.through / medians.direct).toFixed(2)}x, +${(medians.through - medians.direct).toFixed(3)} ms`);
  }
}
