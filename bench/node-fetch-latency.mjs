#!/usr/bin/env node
// Latency of one MCP tool call with Node's fetch: directly to the Python SDK test upstream
// (tests/peers/conformance_server.py) and through keygated in front of it, in one run.
//
//   node bench/node-fetch-latency.mjs        # after `cargo build --release -p keygated -p keygate`
//
// What it does: starts the upstream, bootstraps a tenant with
// tests/peers/conformance-policy.toml on a fresh SQLite file and starts keygated
// (--key-rate/--tenant-rate 1000000, so rate limiting never refuses a call: the limiter is
// still consulted on every one). On each target it opens one stateful session
// (initialize, 2025-11-25; the SDK answers calls as SSE), warms up, then times N
// `tools/call test_simple_text` requests, alternating direct and through so both see
// the same host. A call is timed from fetch() to the end of the answer's body, one at a
// time on a kept-alive connection (Node's default agent). Prints median, p90 and mean.
//
// Settings (environment):
//   KG_BENCH_CALLS    timed calls per target               [500]
//   KG_BENCH_WARMUP   untimed calls per target first        [50]
//   KG_BENCH_BIN_DIR  where keygated and keygate are        [target/release]
//   KG_BENCH_PYTHON   a Python with tests/peers/requirements.txt
//                     [$KEYGATE_TEST_PYTHON, else tests/peers/.venv/bin/python]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const peers = join(root, 'tests', 'peers');
const calls = Number(process.env.KG_BENCH_CALLS ?? 500);
const warmup = Number(process.env.KG_BENCH_WARMUP ?? 50);
const bin = resolve(process.env.KG_BENCH_BIN_DIR ?? join(root, 'target', 'release'));
const python =
  process.env.KG_BENCH_PYTHON ?? process.env.KEYGATE_TEST_PYTHON ?? join(peers, '.venv', 'bin', 'python');

const children = [];
const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** Spawns a process and resolves with the first match of `re` in its stdout or stderr. */
function start(cmd, args, re, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  children.push(child);
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
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}):\n${seen}`)));
  });
}

const upstream = await start(python, ['conformance_server.py', '0'], /listening on (\S+)\n/, { cwd: peers });
const database = `sqlite://${join(dir, 'keygate.db')}`;
const policy = join(peers, 'conformance-policy.toml');
const key = execFileSync(
  join(bin, 'keygate'),
  ['bootstrap', '--database', database, '--tenant', 'bench', '--owner', 'bench', '--policy', policy],
  { stdio: ['ignore', 'pipe', 'ignore'] },
)
  .toString()
  .trim();
const gatewayAddr = await start(
  join(bin, 'keygated'),
  ['--listen', '127.0.0.1:0', '--database', database, '--upstream', upstream, '--policy', policy,
    '--key-rate', '1000000', '--tenant-rate', '1000000'],
  /keygated: listening on (http:\/\/\S+)\n/,
  { cwd: dir, env: { PATH: process.env.PATH, KEYGATE_LOG: 'warn' } },
);

/** A stateful session on `url`; `call()` makes one timed tool call. */
async function session(url, auth) {
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
  const done = await fetch(url, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await done.text();
  let id = 1;
  return async function call() {
    const body = JSON.stringify({
      jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} },
    });
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    const t1 = process.hrtime.bigint();
    if (!res.ok || !text.includes('simple text response')) throw new Error(`call on ${url}: ${res.status} ${text}`);
    return Number(t1 - t0) / 1e6;
  };
}

const direct = await session(upstream);
const through = await session(`${gatewayAddr}/api/mcp`, key);
for (let i = 0; i < warmup; i++) {
  await direct();
  await through();
}
const times = { direct: [], through: [] };
for (let i = 0; i < calls; i++) {
  times.direct.push(await direct());
  times.through.push(await through());
}

const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(`one tools/call with Node ${process.version} fetch, ${calls} calls per target after ${warmup} warm-up calls`);
console.log('target     median ms    p90 ms   mean ms');
for (const [name, list] of Object.entries(times)) {
  const s = [...list].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  console.log(`${name.padEnd(8)} ${q(s, 0.5).toFixed(2).padStart(9)} ${q(s, 0.9).toFixed(2).padStart(9)} ${mean.toFixed(2).padStart(9)}`);
}
process.exit(0);
