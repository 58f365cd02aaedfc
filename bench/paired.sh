#!/usr/bin/env bash
# Paired load: nginx, the bare proxy on keygated's stack (examples/proxy.rs) and keygated
# (HTTP upstream, key on SQLite) in front of ONE demo platform, all on CPU 0, loaded at
# the same time from CPU 1, so that whatever the host does to the core it does to all
# three alike.
#
#   bench/paired.sh              # about 40 s once the release binaries are built
#
# bench/load.sh measures each target alone, one after another: the issue's topology, but
# on a shared virtual machine the host's speed can change between two passes (the demo
# served directly answered 37-53 k req/s in three runs of one hour), and a ratio of two
# passes then measures the host. Here the three proxies share one core and one moment.
# For each round it prints each proxy's CPU time per request (user + system, from
# /proc/PID/stat) and the demo's, and the ratio a proxy would reach alone on the demo's
# core, where a request costs the proxy's CPU plus the demo's:
#
#   predicted keygated / nginx = (nginx µs + demo µs) / (keygated µs + demo µs)
#
# Loopback only; every process started here is stopped on exit.
#
# Settings (environment): KG_BENCH_ROUNDS [5], KG_BENCH_ROUND_SECONDS [4],
# KG_BENCH_CONNECTIONS per proxy [16], KG_BENCH_SERVER_CPU / KG_BENCH_LOAD_CPU [0 / 1],
# KG_BENCH_NGINX [/usr/sbin/nginx, else nginx on PATH], CARGO_TARGET_DIR [./target],
# KG_BENCH_KEYGATED: another keygated binary to measure (an older build, for a before and
# after in the same conditions) [the release build's].
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/nginx.sh
. "$ROOT/bench/nginx.sh"
ROUNDS=${KG_BENCH_ROUNDS:-5}
SECS=${KG_BENCH_ROUND_SECONDS:-4}
CONNS=${KG_BENCH_CONNECTIONS:-16}
SERVER_CPU=${KG_BENCH_SERVER_CPU:-0}
LOAD_CPU=${KG_BENCH_LOAD_CPU:-1}
BIN=$(cd "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null && pwd || echo "$ROOT/target")/release
LUA=$ROOT/bench/mcp.lua
NGINX=${KG_BENCH_NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || NGINX=$(command -v nginx || true)

die() { printf 'paired.sh: %s\n' "$*" >&2; exit 1; }
for tool in wrk curl taskset pgrep; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian packages wrk, curl, util-linux, procps)"
done
[ -n "$NGINX" ] || die "nginx is missing (Debian package nginx-light, or KG_BENCH_NGINX)"
for b in keygated keygate examples/demo-platform examples/proxy; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: cargo build --release -p keygated -p keygate -p keygate-examples --bins --examples"
done

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fixed ports below the ephemeral range, one set per run of this script.
BASE=$(( 20000 + RANDOM % 2500 * 4 ))
DEMO_PORT=$BASE NGINX_PORT=$((BASE + 1)) PROXY_PORT=$((BASE + 2)) KG_PORT=$((BASE + 3))

# start NAME PORT CMD... : CMD pinned to the server CPU, waiting until PORT accepts.
start() {
    local name=$1 port=$2
    shift 2
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is taken: run again"; fi
    taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=("$!")
    LAST_PID=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
        kill -0 "$LAST_PID" 2>/dev/null || die "$name exited at start: $(cat "$TMP/$name.err")"
        sleep 0.05
    done
    die "$name did not listen on $port"
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

RUST_LOG=warn start demo "$DEMO_PORT" "$BIN/examples/demo-platform" --listen "127.0.0.1:$DEMO_PORT"
demo=$LAST_PID

nginx_conf "$TMP/nginx" "$NGINX_PORT" "$DEMO_PORT"
start nginx "$NGINX_PORT" "$NGINX" -p "$TMP/nginx/" -c nginx.conf -e stderr
nginx=$(nginx_worker "$LAST_PID") || die "nginx started no worker"

start proxy "$PROXY_PORT" "$BIN/examples/proxy" --listen "127.0.0.1:$PROXY_PORT" \
    --upstream "http://127.0.0.1:$DEMO_PORT/mcp"
proxy=$LAST_PID

db="sqlite://$TMP/keygate.db"
key=$("$BIN/keygate" bootstrap --database "$db" --tenant demo --owner bench --demo 2>"$TMP/bootstrap.err") \
    || die "keygate bootstrap failed: $(cat "$TMP/bootstrap.err")"
start keygated "$KG_PORT" "${KG_BENCH_KEYGATED:-$BIN/keygated}" --database "$db" --listen "127.0.0.1:$KG_PORT" \
    --upstream "http://127.0.0.1:$DEMO_PORT/mcp" --policy "$ROOT/crates/keygate-demo/policy.toml" \
    --key-rate 1000000 --tenant-rate 1000000
kg=$LAST_PID

# load NAME URL KEY: wrk in the background, its output in $TMP/NAME.wrk
load() {
    KG_KEY=$3 taskset -c "$LOAD_CPU" timeout $((SECS + 30)) wrk -t1 -c"$CONNS" -d"${SECS}s" \
        --timeout 5s -s "$LUA" "$2" >"$TMP/$1.wrk" &
    WRK+=("$!")
}
# requests NAME: requests wrk completed (dies on errors: only successes are measured)
requests() {
    local line
    line=$(grep '^RESULT' "$TMP/$1.wrk") || die "$1: wrk printed no result"
    case $line in *" errors=0 non2xx=0"*) ;; *) die "$1: $line" ;; esac
    sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' <<<"$line"
}

echo "paired load: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); demo,"
echo "nginx, bare proxy and keygated (HTTP upstream, SQLite) on CPU $SERVER_CPU; three wrk -t1 -c$CONNS on CPU $LOAD_CPU,"
echo "${SECS}s per round; CPU µs per request; predicted = the ratio alone on the demo's core"
printf '%-6s %9s %9s %9s %9s %18s %18s\n' round nginx proxy keygated demo 'keygated/nginx' 'proxy/nginx'
HZ=$(getconf CLK_TCK)
for round in $(seq 0 "$ROUNDS"); do
    WRK=()
    declare -A before=()
    for p in "$nginx" "$proxy" "$kg" "$demo"; do before[$p]=$(ticks "$p"); done
    load nginx "http://127.0.0.1:$NGINX_PORT/mcp" ""
    load proxy "http://127.0.0.1:$PROXY_PORT/mcp" ""
    load keygated "http://127.0.0.1:$KG_PORT/api/mcp" "$key"
    for w in "${WRK[@]}"; do wait "$w" || die "wrk failed"; done
    # Round 0 warms every connection and pool up; it is not reported.
    [ "$round" = 0 ] && continue
    rn=$(requests nginx) rp=$(requests proxy) rk=$(requests keygated)
    awk -v hz="$HZ" -v r="$round" \
        -v n=$(( $(ticks "$nginx") - before[$nginx] )) -v p=$(( $(ticks "$proxy") - before[$proxy] )) \
        -v k=$(( $(ticks "$kg") - before[$kg] )) -v d=$(( $(ticks "$demo") - before[$demo] )) \
        -v rn="$rn" -v rp="$rp" -v rk="$rk" 'BEGIN {
            us = 1e6 / hz; cn = n * us / rn; cp = p * us / rp; ck = k * us / rk; cd = d * us / (rn + rp + rk)
            printf "%-6s %9.1f %9.1f %9.1f %9.1f %18.2f %18.2f\n", r, cn, cp, ck, cd, (cn + cd) / (ck + cd), (cn + cd) / (cp + cd)
        }' | tee -a "$TMP/rounds"
done
sort -n -k6 "$TMP/rounds" | awk '{ v[NR] = $6 } END { printf "median predicted keygated / nginx: %.2f (target 0.80)\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
sort -n -k7 "$TMP/rounds" | awk '{ v[NR] = $7 } END { printf "median predicted bare proxy / nginx: %.2f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
