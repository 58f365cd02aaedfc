#!/usr/bin/env bash
# Instructions per request, counted by valgrind (callgrind): the demo platform served
# directly (the baseline), keygated --demo on SQLite, keygated in front of the demo
# platform over HTTP, and the bare proxy on keygated's stack (examples/proxy.rs) in front
# of it too (for the two proxies the demo server runs natively; only the proxy is
# counted), under the same wrk load.
#
#   bench/instructions.sh        # about 60 s once the release binaries are built
#
# Requests/s on a shared virtual machine swing with whatever else the host runs; the
# number of user-space instructions a request executes does not, so this is the figure
# to compare before and after a change to the request path. Kernel work (syscalls,
# loopback TCP) is not counted: see bench/load.sh for the whole cost.
#
# For each server: start it under callgrind, warm up with wrk for 3 s, zero the
# counters, run wrk for 6 s (1 thread, 8 connections), dump the counters, and divide
# the instructions by the requests wrk completed. Loopback only; every process started
# here is stopped on exit.
#
# Settings (environment): KG_BENCH_NO_BUILD=1 uses the release binaries as they are;
# CARGO_TARGET_DIR, where they are [./target]; KG_BENCH_KEEP=DIR keeps the callgrind
# files there (for callgrind_annotate).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$(cd "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null && pwd || echo "$ROOT/target")/release
LUA=$ROOT/bench/mcp.lua

die() { printf 'instructions.sh: %s\n' "$*" >&2; exit 1; }
for tool in valgrind callgrind_control wrk curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian packages valgrind, wrk, curl)"
done
if [ "${KG_BENCH_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --quiet -p keygated -p keygate -p keygate-examples --bin keygated \
        --bin keygate --example demo-platform --example proxy
fi

TMP=$(mktemp -d)
PID=""
DEMO_PID=""
cleanup() {
    for p in $PID $DEMO_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ -n "${KG_BENCH_KEEP:-}" ]; then mkdir -p "$KG_BENCH_KEEP" && cp "$TMP"/*.cg.1 "$KG_BENCH_KEEP"/ 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# count FILE LABEL URL KEY -> instructions per request of the server running as $PID,
# whose callgrind output file is $TMP/FILE.cg
count() {
    local file=$TMP/$1.cg name=$2 url=$3 key=$4 requests total
    KG_KEY=$key timeout 30 wrk -t1 -c8 -d3s -s "$LUA" "$url" >/dev/null
    callgrind_control -z "$PID" >/dev/null 2>&1
    requests=$(KG_KEY=$key timeout 30 wrk -t1 -c8 -d6s -s "$LUA" "$url" \
        | sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p')
    callgrind_control -d "$PID" >/dev/null 2>&1
    for _ in $(seq 50); do [ -s "$file.1" ] && break; sleep 0.1; done
    total=$(awk '/^summary:/ { print $2 }' "$file.1")
    [ -n "$total" ] && [ "${requests:-0}" -gt 0 ] || die "$name: no count"
    printf '%-28s %9d requests %10.0f instructions/request\n' "$name" "$requests" \
        "$(awk -v t="$total" -v r="$requests" 'BEGIN { print t / r }')"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

# wait_http URL: until something answers on URL.
wait_http() {
    for _ in $(seq 300); do
        curl -s -o /dev/null "$1" && return
        sleep 0.1
    done
    die "nothing answers at $1"
}

valgrind --tool=callgrind --callgrind-out-file="$TMP/demo.cg" \
    "$BIN/examples/demo-platform" --listen 127.0.0.1:18591 >/dev/null 2>"$TMP/demo.err" &
PID=$!
wait_http http://127.0.0.1:18591/mcp
count demo "demo platform (baseline)" http://127.0.0.1:18591/mcp ""

valgrind --tool=callgrind --callgrind-out-file="$TMP/keygated.cg" \
    "$BIN/keygated" --demo --database "sqlite://$TMP/keygate.db" --listen 127.0.0.1:18592 \
    --key-rate 1000000 --tenant-rate 1000000 >"$TMP/keygated.out" 2>"$TMP/keygated.err" &
PID=$!
key=""
for _ in $(seq 300); do
    key=$(grep -m1 -o '^[a-z0-9_]*_uk_[A-Za-z0-9]*' "$TMP/keygated.out" 2>/dev/null || true)
    [ -n "$key" ] && break
    sleep 0.1
done
[ -n "$key" ] || die "keygated printed no key: $(cat "$TMP/keygated.err")"
wait_http http://127.0.0.1:18592/healthz
count keygated "keygated SQLite" http://127.0.0.1:18592/api/mcp "$key"

# keygated in front of the demo platform over HTTP: only keygated runs under callgrind.
"$BIN/examples/demo-platform" --listen 127.0.0.1:18593 >/dev/null 2>"$TMP/demo2.err" &
DEMO_PID=$!
wait_http http://127.0.0.1:18593/mcp
key=$("$BIN/keygate" bootstrap --database "sqlite://$TMP/http.db" --tenant demo --owner bench \
    --demo 2>"$TMP/bootstrap.err") || die "keygate bootstrap failed: $(cat "$TMP/bootstrap.err")"
valgrind --tool=callgrind --callgrind-out-file="$TMP/http.cg" \
    "$BIN/keygated" --database "sqlite://$TMP/http.db" --listen 127.0.0.1:18594 \
    --upstream http://127.0.0.1:18593/mcp --policy "$ROOT/crates/keygate-demo/policy.toml" \
    --key-rate 1000000 --tenant-rate 1000000 >/dev/null 2>"$TMP/http.err" &
PID=$!
wait_http http://127.0.0.1:18594/healthz
count http "keygated HTTP upstream" http://127.0.0.1:18594/api/mcp "$key"

# The floor for the line above: the same stack forwarding to the same demo, and nothing else.
valgrind --tool=callgrind --callgrind-out-file="$TMP/proxy.cg" \
    "$BIN/examples/proxy" --listen 127.0.0.1:18595 --upstream http://127.0.0.1:18593/mcp \
    >/dev/null 2>"$TMP/proxy.err" &
PID=$!
wait_http http://127.0.0.1:18595/
count proxy "bare proxy, same stack" http://127.0.0.1:18595/mcp ""
