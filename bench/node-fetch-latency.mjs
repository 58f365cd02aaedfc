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
import { join } from 'node:path';
import { bound, keygated, peers, run, session, start } from './harness.mjs';

const python =
  process.env.KG_BENCH_PYTHON ?? process.env.KEYGATE_TEST_PYTHON ?? join(peers, '.venv', 'bin', 'python');
bound('node-fetch-latency', 120);

const upstream = await start(python, ['conformance_server.py', '0'], /listening on (\S+)\n/, { cwd: peers });
const gateway = await keygated(upstream, join(peers, 'conformance-policy.toml'));
const call = (url, key) => session(url, key, 'test_simple_text', {}, 'simple text response');
await run(`one tools/call with Node ${process.version} fetch`, {
  direct: await call(upstream),
  through: await call(gateway.url, gateway.key),
});
process.exit(0);
