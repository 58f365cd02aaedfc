#!/usr/bin/env node
// Latency of one MCP tool call to a stdio server: directly over its stdin/stdout, and
// through keygated (`--upstream stdio:…`) over HTTP, in one run.
//
//   node bench/stdio-latency.mjs     # after `cargo build --release -p keygated -p keygate`
//
// The server is @modelcontextprotocol/server-everything (tests/peers/node_modules), its
// `echo` tool. Direct: this script spawns the server and writes newline-delimited
// JSON-RPC to it (initialize, then calls), a call timed from the write to the line that
// answers it. Through: keygated on a fresh SQLite file with
// tests/peers/everything-policy.toml (--key-rate/--tenant-rate 1000000: the limiter is
// consulted but never refuses) spawns its own child of the same server; the script opens
// one stateful 2025-11-25 session and times `fetch()` to the end of the answer's body,
// one call at a time on a kept-alive connection. Calls alternate direct and through, so
// both see the same host. Prints median, p90 and mean per target and the ratio.
//
// Settings (environment):
//   KG_BENCH_CALLS    timed calls per target               [500]
//   KG_BENCH_WARMUP   untimed calls per target first        [50]
//   KG_BENCH_BIN_DIR  where keygated and keygate are        [target/release]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const peers = join(root, 'tests', 'peers');
const everything = join(peers, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const calls = Number(process.env.KG_BENCH_CALLS ?? 500);
const warmup = Number(process.env.KG_BENCH_WARMUP ?? 50);
const bin = resolve(process.env.KG_BENCH_BIN_DIR ?? join(root, 'target', 'release'));

const children = [];
const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
// Bounded: a hung server ends the run.
setTimeout(() => {
  console.error('stdio-latency: no result within 120 s');
  process.exit(1);
}, 120000).unref();

/** The server on our own stdio; `call()` makes one timed echo call. */
async function direct() {
  const child = spawn('node', [everything, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(child);
  const waiting = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const done = waiting.get(msg.id);
    if (done && msg.method === undefined) {
      waiting.delete(msg.id);
      done(msg);
    }
  });
  const rpc = (id, method, params) =>
    new Promise((resolve) => {
      waiting.set(id, resolve);
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  await rpc(0, 'initialize', {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'kg-bench', version: '0' },
  });
  child.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  let id = 1;
  return async function call() {
    const t0 = process.hrtime.bigint();
    const answer = await rpc(id++, 'tools/call', { name: 'echo', arguments: { message: 'bench' } });
    const t1 = process.hrtime.bigint();
    if (!JSON.stringify(answer).includes('Echo: bench')) throw new Error(`direct call: ${JSON.stringify(answer)}`);
    return Number(t1 - t0) / 1e6;
  };
}

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

/** keygated in front of the same server; `call()` makes one timed echo call. */
async function through() {
  const database = `sqlite://${join(dir, 'keygate.db')}`;
  const policy = join(peers, 'everything-policy.toml');
  const key = execFileSync(
    join(bin, 'keygate'),
    ['bootstrap', '--database', database, '--tenant', 'bench', '--owner', 'bench', '--policy', policy],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
    .toString()
    .trim();
  const addr = await start(
    join(bin, 'keygated'),
    ['--listen', '127.0.0.1:0', '--database', database, '--upstream', `stdio:node ${everything} stdio`,
      '--policy', policy, '--key-rate', '1000000', '--tenant-rate', '1000000'],
    /keygated: listening on (http:\/\/\S+)\n/,
    { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME ?? dir, KEYGATE_LOG: 'warn' } },
  );
  const url = `${addr}/api/mcp`;
  const base = {
    'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${key}`,
  };
  const init = await fetch(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'kg-bench', version: '0' } },
    }),
  });
  await init.text();
  if (!init.ok) throw new Error(`initialize through keygated: ${init.status}`);
  const headers = { ...base, 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(url, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  })).text();
  let id = 1;
  return async function call() {
    const body = JSON.stringify({
      jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } },
    });
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    const t1 = process.hrtime.bigint();
    if (!res.ok || !text.includes('Echo: bench')) throw new Error(`call through keygated: ${res.status} ${text}`);
    return Number(t1 - t0) / 1e6;
  };
}

const targets = { direct: await direct(), through: await through() };
for (let i = 0; i < warmup; i++) {
  for (const call of Object.values(targets)) await call();
}
const times = { direct: [], through: [] };
for (let i = 0; i < calls; i++) {
  for (const [name, call] of Object.entries(targets)) times[name].push(await call());
}

const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(`one echo tools/call to server-everything, Node ${process.version}, ${calls} calls per target after ${warmup} warm-up calls`);
console.log('target     median ms    p90 ms   mean ms');
const medians = {};
for (const [name, list] of Object.entries(times)) {
  const s = [...list].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  medians[name] = q(s, 0.5);
  console.log(`${name.padEnd(8)} ${q(s, 0.5).toFixed(3).padStart(9)} ${q(s, 0.9).toFixed(3).padStart(9)} ${mean.toFixed(3).padStart(9)}`);
}
console.log(`through/direct (median): ${(medians.through / medians.direct).toFixed(2)}x, +${(medians.through - medians.direct).toFixed(3)} ms`);
process.exit(0);
