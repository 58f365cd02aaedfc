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
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bound, child, dir, keygated, peers, run, session } from './harness.mjs';

const everything = join(peers, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
bound('stdio-latency', 120);

/** The server on our own stdio; `call()` makes one timed echo call. */
async function direct() {
  const server = child('node', [everything, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const waiting = new Map();
  createInterface({ input: server.stdout }).on('line', (line) => {
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
      server.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  await rpc(0, 'initialize', {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'kg-bench', version: '0' },
  });
  server.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  let id = 1;
  return async function call() {
    const t0 = process.hrtime.bigint();
    const answer = await rpc(id++, 'tools/call', { name: 'echo', arguments: { message: 'bench' } });
    const t1 = process.hrtime.bigint();
    if (!JSON.stringify(answer).includes('Echo: bench')) throw new Error(`direct call: ${JSON.stringify(answer)}`);
    return Number(t1 - t0) / 1e6;
  };
}

/** keygated in front of the same server; `call()` makes one timed echo call. */
async function through() {
  const gateway = await keygated(`stdio:node ${everything} stdio`, join(peers, 'everything-policy.toml'), {
    HOME: process.env.HOME ?? dir,
  });
  return session(gateway.url, gateway.key, 'echo', { message: 'bench' }, 'Echo: bench');
}

await run(`one echo tools/call to server-everything, Node ${process.version}`, {
  direct: await direct(),
  through: await through(),
}, 3);
process.exit(0);
