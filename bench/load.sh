#!/usr/bin/env bash
# Load benchmark: the MCP gateway against its baselines, in one run, on loopback.
#
#   bench/load.sh                 # about 100 s once the release binaries are built
#
# Targets, each under the same load generator (wrk, one thread, fixed connections, fixed
# duration), one after another:
#   echo        a bare axum JSON echo (examples/echo.rs): the floor
#   demo        the demo platform served directly, no auth, no gateway
#               (examples/demo-platform.rs): THE BASELINE every ratio is relative to
#   nginx       nginx as a plain reverse proxy in front of that same demo server (no
#               auth; worker_processes 1, keepalive to the upstream): what a proxy does
#               on this core (skipped when nginx is not installed: apt-get install nginx-light)
#   proxy       a bare reverse proxy on keygated's stack (tokio, hyper, with hyper-util's
#               ordinary pooled client; examples/proxy.rs) in front of that same demo server, no
#               auth, no MCP: what the stack alone costs, so that keygated's gap to nginx
#               splits into the stack's share and keygate's own work
#   http        keygated --upstream http://… in front of that same demo server, the key
#               checked on a fresh SQLite file, the demo's policy: the deployment users run
#   sqlite      keygated --demo on a fresh SQLite file
#   postgres    keygated --demo on a fresh PostgreSQL schema
# Every request is the same JSON-RPC tools/call of the read tool service.list (the
# gateway checks the key, the policy, the rate limits and the gates, then calls the
# demo platform: over HTTP for `http`, in process for `sqlite` and `postgres`). keygated
# runs with --key-rate/--tenant-rate 1000000 so rate limiting never caps throughput: the
# limiter is still consulted on every call.
#
# Two passes per gateway: peak (as fast as the connections go) and a fixed rate at half
# of that gateway's peak, where the demo platform is measured at the same rate to give
# the p99 keygate adds. The fixed-rate pass uses `oha -q` with latency correction
# (installed when missing, see below), or with KG_BENCH_NO_OHA=1 wrk with a
# per-connection delay (see mcp.lua), which is not a fixed rate: it hides stalls.
#
# With 2 cores the generator competes with the server, so every server runs pinned to
# CPU 0 (taskset -c 0) and the generator to CPU 1, for every target alike; the three
# proxies (nginx, the bare proxy, keygated http) share CPU 0 with the demo server behind them. The
# PostgreSQL backends that serve keygated are pinned to CPU 1 too (the database stands
# for another machine; KG_BENCH_PIN_PG=0 leaves them where the kernel puts them).
#
# For PostgreSQL it also reports verifications per CPU-second of the database backends
# serving keygated (their user + system time during the peak pass; each request
# verifies its key once), the figure issue 19 asks for.
#
# Besides requests/s, each peak pass reports the server's CPU time per request (user +
# system, from /proc/PID/stat): 1 / (req/s) when the server saturates its core, and a
# figure that moves far less than req/s with whatever else the host runs. For the two
# proxies it is the proxy's own CPU time (the nginx worker's, keygated's), without the
# demo server's behind it.
#
# Settings (environment):
#   KG_BENCH_DURATION     seconds per measured pass            [8]
#   KG_BENCH_WARMUP       seconds of warm-up before a peak pass [2]
#   KG_BENCH_CONNECTIONS  connections for the peak passes       [32]
#   KG_BENCH_POSTGRES     PostgreSQL URL (a fresh schema is created in it and dropped)
#                         [$KEYGATE_TEST_POSTGRES, else postgres://postgres@127.0.0.1:5432/test]
#   KG_BENCH_SERVER_CPU / KG_BENCH_LOAD_CPU                     [0 / 1]
#   KG_BENCH_NGINX        the nginx binary          [/usr/sbin/nginx, else nginx on PATH]
#   CARGO_TARGET_DIR      where the release binaries are        [./target]
#   KG_BENCH_NO_BUILD=1   use the release binaries as they are
#   KG_BENCH_NO_OHA=1     the fixed-rate pass with wrk's pauses, never installing oha
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/nginx.sh
. "$ROOT/bench/nginx.sh"

DURATION=${KG_BENCH_DURATION:-8}
WARMUP=${KG_BENCH_WARMUP:-2}
CONNS=${KG_BENCH_CONNECTIONS:-32}
SERVER_CPU=${KG_BENCH_SERVER_CPU:-0}
LOAD_CPU=${KG_BENCH_LOAD_CPU:-1}
PG_URL=${KG_BENCH_POSTGRES:-${KEYGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}}
HIGH_RATE=1000000
BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}}}'
BIN=$(cd "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null && pwd || echo "$ROOT/target")/release
LUA=$ROOT/bench/mcp.lua
# The whole run is bounded: a watchdog ends it past this many seconds.
DEADLINE=${KG_BENCH_DEADLINE:-240}

log() { printf '%s\n' "$*" >&2; }
die() { log "load.sh: $*"; exit 1; }

# --- tools ------------------------------------------------------------------------------
# apt_install CMD PACKAGE: installs PACKAGE when CMD is missing, if run as root with apt-get.
apt_install() {
    command -v "$1" >/dev/null && return
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
    log "installing $2 (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; } \
        || true
}
apt_install wrk wrk
command -v wrk >/dev/null || die "wrk is missing: apt-get install wrk"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"
command -v curl >/dev/null || die "curl is missing"
# The fixed-rate pass needs oha (a real fixed-rate generator, latency-corrected) and jq;
# both are installed when missing (oha once, with cargo: a few minutes), unless
# KG_BENCH_NO_OHA=1, which falls back to wrk's per-connection pauses.
OHA_VERSION=1.16.0
OHA=""
if [ "${KG_BENCH_NO_OHA:-0}" != 1 ]; then
    apt_install jq jq
    if ! command -v oha >/dev/null && command -v cargo >/dev/null; then
        log "installing oha $OHA_VERSION (cargo install --locked; once, a few minutes)"
        cargo install --quiet --locked oha --version "$OHA_VERSION" >&2 \
            || log "cannot install oha: the fixed-rate pass uses wrk"
        export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    if command -v jq >/dev/null; then OHA=$(command -v oha || true); fi
fi
NGINX=${KG_BENCH_NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] && ! command -v pgrep >/dev/null && die "pgrep is missing (procps): it finds the nginx worker"

if [ "${KG_BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building release binaries (cargo build --release; not part of the timed run)"
    cargo build --release --quiet -p keygated -p keygate -p keygate-examples --bin keygated \
        --bin keygate --example demo-platform --example echo --example proxy
fi
for b in keygated keygate examples/demo-platform examples/echo examples/proxy; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: cargo build --release -p keygated -p keygate -p keygate-examples --bins --examples"
done

# --- processes and clean-up -------------------------------------------------------------
TMP=$(mktemp -d)
PIDS=()
PG_SCHEMA=""
WATCHDOG=""

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null || true; fi
    if [ -n "$PG_SCHEMA" ]; then
        psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Its output goes nowhere, so a pipe reading this script's output never waits for it.
( exec >/dev/null 2>&1; sleep "$DEADLINE"; kill -TERM $$ ) &
WATCHDOG=$!

# A port nobody listens on, drawn below the kernel's ephemeral range: a port in it can
# be taken (or held in TIME_WAIT) by an outgoing connection of an earlier pass between
# this check and the server's bind, which once failed a run with "Address already in use".
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$EPHEMERAL_LOW" -gt 12000 ] 2>/dev/null || EPHEMERAL_LOW=32768
free_port() {
    local p
    for _ in $(seq 50); do
        p=$(( 10000 + RANDOM % (EPHEMERAL_LOW - 10000) ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port"
}

# start NAME PORT CMD... : runs CMD pinned to the server CPU, waits until PORT accepts.
start() {
    local name=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            LAST_PID=$pid
            return
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.err" >&2; die "$name exited at start"; }
        sleep 0.05
    done
    die "$name did not listen on $port"
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# One request with curl first: a load run must measure the success path.
check() {
    local url=$1 key=$2 out
    local auth=()
    [ -n "$key" ] && auth=(-H "Authorization: Bearer $key")
    out=$(curl -sS -w '\n%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -d "$BODY" "$url")
    [ "${out##*$'\n'}" = 200 ] || die "check $url: HTTP ${out##*$'\n'}: ${out%$'\n'*}"
    case "${out%$'\n'*}" in
        *'"isError":true'* | *'"error"'*) die "check $url: ${out%$'\n'*}" ;;
    esac
}

# wrk_run URL KEY SECONDS CONNECTIONS [DELAY_MS] -> "rps p50_us p99_us non2xx errors requests"
wrk_run() {
    local url=$1 key=$2 secs=$3 conns=$4 delay=${5:-}
    local line
    line=$(KG_KEY=$key KG_BODY=$BODY KG_DELAY_MS=$delay \
        taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$LUA" "$url" \
        | grep '^RESULT') || die "wrk failed against $url"
    awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           print v["rps"], v["p50_us"], v["p99_us"], v["non2xx"], v["errors"], v["requests"] }' <<<"$line"
}

# fixed_run URL KEY RATE -> "rps p50_us p99_us non2xx errors" at a fixed request rate
fixed_run() {
    local url=$1 key=$2 rate=$3
    if [ -n "$OHA" ]; then
        local auth=()
        [ -n "$key" ] && auth=(-H "Authorization: Bearer $key")
        taskset -c "$LOAD_CPU" "$OHA" --no-tui --output-format json -z "${DURATION}s" \
            -q "$rate" --latency-correction -c "$CONNS" -m POST "${auth[@]}" \
            -H 'Content-Type: application/json' \
            -H 'Accept: application/json, text/event-stream' -d "$BODY" "$url" \
            >"$TMP/oha.json" 2>"$TMP/oha.err" || die "oha failed: $(cat "$TMP/oha.err")"
        jq -r '[.summary.requestsPerSec,
                (.latencyPercentiles.p50 * 1e6 | floor),
                (.latencyPercentiles.p99 * 1e6 | floor),
                ([.statusCodeDistribution | to_entries[] | select(.key != "200") | .value] | add // 0),
                ([.errorDistribution | to_entries[] | select(.key | test("deadline") | not) | .value] | add // 0)] | @tsv' \
            "$TMP/oha.json" | tr '\t' ' '
    else
        # wrk has no fixed-rate mode: each connection waits 10 ms between requests, so
        # RATE/100 connections send about RATE requests/s while the server keeps up.
        local conns=$(( (rate + 50) / 100 ))
        [ "$conns" -lt 1 ] && conns=1
        wrk_run "$url" "$key" "$DURATION" "$conns" 10
    fi
}

# CPU time (user + system) of process PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# CPU time of every process in PIDS (a space-separated list) so far, in clock ticks;
# a process that has gone counts nothing.
all_ticks() {
    local pid total=0 t
    for pid in $1; do
        t=$(cpu_ticks "$pid" 2>/dev/null || echo 0)
        total=$(( total + t ))
    done
    echo "$total"
}

# peak URL KEY PID [BACKEND_PIDS] -> "rps p50_us p99_us non2xx errors requests
# cpu_us_per_request backend_cpu_seconds preemptions_per_request": backend_cpu_seconds is
# the CPU time the processes in BACKEND_PIDS (the PostgreSQL backends serving keygated)
# spent during the pass.
peak() {
    local before after result backends=${4:-} b_before b_after p_before p_after
    wrk_run "$1" "$2" "$WARMUP" "$CONNS" >/dev/null
    before=$(cpu_ticks "$3")
    b_before=$(all_ticks "$backends")
    p_before=$(preemptions "$3")
    result=$(wrk_run "$1" "$2" "$DURATION" "$CONNS")
    after=$(cpu_ticks "$3")
    b_after=$(all_ticks "$backends")
    p_after=$(preemptions "$3")
    awk -v r="$result" -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" \
        -v ba="$b_before" -v bb="$b_after" -v pa="$p_before" -v pb="$p_after" \
        'BEGIN { split(r, f, " "); n = (f[6] > 0 ? f[6] : 1)
                 printf "%s %.1f %.2f %.2f\n", r, (b - a) * 1e6 / hz / n, (bb - ba) / hz, (pb - pa) / n }'
}

# Times the threads of process PID were preempted so far (nonvoluntary context switches:
# the scheduler took the CPU from a thread that could still run).
preemptions() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^nonvoluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# Waits for keygated --demo to print the owner key on stdout.
demo_key() {
    local name=$1 key=""
    for _ in $(seq 200); do
        key=$(grep -m1 -o '^[a-z0-9_]*_uk_[A-Za-z0-9]*' "$TMP/$name.out" 2>/dev/null || true)
        [ -n "$key" ] && { echo "$key"; return; }
        sleep 0.05
    done
    cat "$TMP/$name.err" >&2
    die "$name printed no key"
}

declare -A RES
record() { RES[$1]=$2; }
field() { local a; read -r -a a <<<"${RES[$1]}"; echo "${a[$2]}"; }

START=$SECONDS
log "servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s per peak pass"

# --- (a) floor and baseline ------------------------------------------------------------
port=$(free_port)
start echo "$port" "$BIN/examples/echo" --listen "127.0.0.1:$port"
echo_pid=$LAST_PID
log "echo (floor) ..."
record echo "$(peak "http://127.0.0.1:$port/mcp" "" "$echo_pid")"
stop "$echo_pid"

demo_port=$(free_port)
DEMO_URL="http://127.0.0.1:$demo_port/mcp"
RUST_LOG=warn start demo "$demo_port" "$BIN/examples/demo-platform" --listen "127.0.0.1:$demo_port"
demo_pid=$LAST_PID
check "$DEMO_URL" ""
log "demo platform (baseline) ..."
record demo "$(peak "$DEMO_URL" "" "$demo_pid")"

# --- (b) HTTP upstream: nginx and keygated as proxies in front of the same demo server ---
if [ -n "$NGINX" ]; then
    port=$(free_port)
    nginx_conf "$TMP/nginx" "$port" "$demo_port"
    start nginx "$port" "$NGINX" -p "$TMP/nginx/" -c nginx.conf -e stderr
    nginx_pid=$LAST_PID
    worker=$(nginx_worker "$nginx_pid") || die "nginx started no worker"
    check "http://127.0.0.1:$port/mcp" ""
    log "nginx in front of the demo platform ..."
    record nginx "$(peak "http://127.0.0.1:$port/mcp" "" "$worker")"
    RES[nginx.hwm]=$(hwm_kib "$worker")
    stop "$nginx_pid"
else
    log "nginx not found (apt-get install nginx-light, or KG_BENCH_NGINX): skipping it"
fi

port=$(free_port)
start proxy "$port" "$BIN/examples/proxy" --listen "127.0.0.1:$port" --upstream "$DEMO_URL"
proxy_pid=$LAST_PID
check "http://127.0.0.1:$port/mcp" ""
log "bare proxy on keygated's stack in front of the demo platform ..."
record proxy "$(peak "http://127.0.0.1:$port/mcp" "" "$proxy_pid")"
stop "$proxy_pid"

http_db="sqlite://$TMP/http.db"
http_key=$("$BIN/keygate" bootstrap --database "$http_db" --tenant demo --owner bench --demo \
    2>"$TMP/bootstrap.err") || { cat "$TMP/bootstrap.err" >&2; die "keygate bootstrap failed"; }
port=$(free_port)
start http "$port" "$BIN/keygated" --database "$http_db" --listen "127.0.0.1:$port" \
    --upstream "$DEMO_URL" --policy "$ROOT/crates/keygate-demo/policy.toml" \
    --key-rate "$HIGH_RATE" --tenant-rate "$HIGH_RATE"
http_pid=$LAST_PID
check "http://127.0.0.1:$port/api/mcp" "$http_key"
log "keygated in front of the demo platform (HTTP upstream, SQLite) ..."
record http "$(peak "http://127.0.0.1:$port/api/mcp" "$http_key" "$http_pid")"
RES[http.hwm]=$(hwm_kib "$http_pid")
stop "$http_pid"

# --- (c) and (d): the gateway with the demo platform in process ------------------------
# gateway NAME DATABASE_URL
gateway() {
    local name=$1 db=$2 port pid key url rate
    port=$(free_port)
    url="http://127.0.0.1:$port/api/mcp"
    start "$name" "$port" "$BIN/keygated" --demo --database "$db" \
        --listen "127.0.0.1:$port" --key-rate "$HIGH_RATE" --tenant-rate "$HIGH_RATE"
    pid=$LAST_PID
    key=$(demo_key "$name")
    check "$url" "$key"
    if [ "$name" = postgres ] && [ "${KG_BENCH_PIN_PG:-1}" = 1 ]; then
        # Fill the pool, then pin the PostgreSQL backends serving this keygated (and only
        # those) to the generator's CPU: the database stands for another machine, and
        # keygated keeps CPU $SERVER_CPU to itself, as the baseline does.
        wrk_run "$url" "$key" 1 "$CONNS" >/dev/null
        local backend
        for backend in $(psql -qAt "$PG_URL" -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$PG_SCHEMA'"); do
            taskset -p -c "$LOAD_CPU" "$backend" >/dev/null
        done
    fi
    # The backends serving this keygated (its pool is full after the check and the
    # warm-up), whose CPU time gives verifications per database CPU-second.
    local backends=""
    if [ "$name" = postgres ]; then
        wrk_run "$url" "$key" 1 "$CONNS" >/dev/null
        backends=$(psql -qAt "$PG_URL" -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$PG_SCHEMA'" | tr '\n' ' ')
        RES[postgres.backends]=$(wc -w <<<"$backends")
    fi
    log "keygated $name: peak ..."
    record "$name" "$(peak "$url" "$key" "$pid" "$backends")"
    rate=$(awk -v r="$(field "$name" 0)" 'BEGIN { printf "%d", r / 2 }')
    log "keygated $name and the baseline at $rate requests/s ..."
    record "$name@half" "$(fixed_run "$url" "$key" "$rate")"
    record "demo@$name" "$(fixed_run "$DEMO_URL" "" "$rate")"
    RES[$name.rate]=$rate
    RES[$name.hwm]=$(hwm_kib "$pid")
    stop "$pid"
}

gateway sqlite "sqlite://$TMP/keygate.db"

if command -v psql >/dev/null && psql -q "$PG_URL" -c 'SELECT 1' >/dev/null 2>&1; then
    PG_SCHEMA="kg_load_$$_$RANDOM"
    psql -q "$PG_URL" -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null
    sep='?'
    case "$PG_URL" in *\?*) sep='&' ;; esac
    gateway postgres "${PG_URL}${sep}options=-csearch_path%3D$PG_SCHEMA&application_name=$PG_SCHEMA"
else
    log "PostgreSQL not reachable at the configured URL (or no psql): skipping it"
fi
stop "$demo_pid"
ELAPSED=$(( SECONDS - START ))

# --- report -----------------------------------------------------------------------------
fixed_tool="oha -q (latency-corrected)"
[ -z "$OHA" ] && fixed_tool="wrk, RATE/100 connections each pausing 10 ms"
base_rps=$(field demo 0)
base_p50=$(field demo 1)
base_p99=$(field demo 2)

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo
echo "keygate load benchmark: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)),"
echo "servers pinned to CPU $SERVER_CPU, wrk to CPU $LOAD_CPU; tools/call service.list;"
echo "peak: wrk -t1 -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up; keygated --key-rate/--tenant-rate $HIGH_RATE"
echo
printf '%-28s %10s %7s %9s %7s %9s %7s %8s %11s %7s\n' target 'req/s' '×base' 'p50 ms' '×base' 'p99 ms' '×base' 'non-2xx' 'CPU µs/req' '×base'
for t in echo demo nginx proxy http sqlite postgres; do
    [ -n "${RES[$t]:-}" ] || continue
    case $t in
        echo) label="axum JSON echo (floor)" ;;
        demo) label="demo platform (baseline)" ;;
        nginx) label="nginx proxy (no auth)" ;;
        proxy) label="bare proxy, same stack" ;;
        http) label="keygated HTTP upstream" ;;
        sqlite) label="keygated SQLite" ;;
        postgres) label="keygated PostgreSQL" ;;
    esac
    printf '%-28s %10.0f %7s %9s %7s %9s %7s %8s %11s %7s\n' "$label" "$(field "$t" 0)" \
        "$(ratio "$(field "$t" 0)" "$base_rps")" \
        "$(ms "$(field "$t" 1)")" "$(ratio "$(field "$t" 1)" "$base_p50")" \
        "$(ms "$(field "$t" 2)")" "$(ratio "$(field "$t" 2)" "$base_p99")" \
        "$(( $(field "$t" 3) + $(field "$t" 4) ))" \
        "$(field "$t" 6)" "$(ratio "$(field "$t" 6)" "$(field demo 6)")"
done
echo
echo "fixed rate (half of each gateway's peak), ${DURATION}s, $fixed_tool:"
printf '%-28s %10s %10s %9s %9s %12s\n' target 'rate' 'req/s' 'p50 ms' 'p99 ms' 'p99 added'
for t in sqlite postgres; do
    [ -n "${RES[$t@half]:-}" ] || continue
    printf '%-28s %10s %10.0f %9s %9s %12s\n' "demo platform (baseline)" "${RES[$t.rate]}" \
        "$(field "demo@$t" 0)" "$(ms "$(field "demo@$t" 1)")" "$(ms "$(field "demo@$t" 2)")" ""
    printf '%-28s %10s %10.0f %9s %9s %12s\n' "keygated $t" "${RES[$t.rate]}" \
        "$(field "$t@half" 0)" "$(ms "$(field "$t@half" 1)")" "$(ms "$(field "$t@half" 2)")" \
        "$(ms $(( $(field "$t@half" 2) - $(field "demo@$t" 2) ))) ms"
done
echo
verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; then echo met; else echo MISSED; fi; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
if [ -n "${RES[nginx]:-}" ]; then
    r=$(ratio "$(field http 0)" "$(field nginx 0)")
    echo "target: keygated HTTP upstream >= 0.80 x nginx req/s: $r ($(verdict "$r" 0.80))"
    echo "bare proxy on keygated's stack (no auth, no MCP): $(ratio "$(field proxy 0)" "$(field nginx 0)") x nginx req/s; keygated: $(ratio "$(field http 0)" "$(field proxy 0)") x the bare proxy"
    echo "nginx worker peak RSS (VmHWM): $(mib "${RES[nginx.hwm]}") MiB"
    # Both proxies share their core with the demo server: each upstream write wakes it,
    # and a proxy that uses more CPU than the demo is preempted by it (see BENCHMARKS.md).
    echo "preempted per request (nonvoluntary context switches; the proxies share CPU $SERVER_CPU with the demo): nginx $(field nginx 8), keygated $(field http 8)"
fi
echo "target: keygated HTTP upstream peak RSS (VmHWM) <= 50 MiB: $(mib "${RES[http.hwm]}") MiB ($(verdict $((50 * 1024)) "${RES[http.hwm]}"))"
if [ -n "${RES[sqlite]:-}" ]; then
    r=$(ratio "$(field sqlite 0)" "$base_rps")
    echo "target: SQLite gateway >= 0.70 x baseline req/s: $r ($(verdict "$r" 0.70))"
fi
if [ -n "${RES[postgres]:-}" ]; then
    r=$(ratio "$(field postgres 0)" "$base_rps")
    echo "target: PostgreSQL gateway >= 0.50 x baseline req/s: $r ($(verdict "$r" 0.50))"
    # Every request verifies its key once: requests per CPU-second of the backends.
    awk -v n="$(field postgres 5)" -v s="$(field postgres 7)" -v b="${RES[postgres.backends]}" \
        'BEGIN { printf "PostgreSQL: %.0f verifications per backend CPU-second (%s backends, %.2f CPU-s for %d requests)\n", (s > 0 ? n / s : 0), b, s, n }'
fi
for t in sqlite postgres; do
    [ -n "${RES[$t@half]:-}" ] || continue
    added=$(( $(field "$t@half" 2) - $(field "demo@$t" 2) ))
    # Issue 19's bounds: 0.5 ms on SQLite, 2 ms on PostgreSQL (in µs).
    bound_us=500
    [ "$t" = postgres ] && bound_us=2000
    # keygated's p99 below the demo's own at the same rate is the host's noise, not a
    # gateway that adds negative latency: no verdict then.
    if [ "$added" -lt 0 ]; then
        v="UNDECIDED: the demo's own p99 at this rate, $(ms "$(field "demo@$t" 2)") ms, is above keygated's"
    else
        v=$(verdict "$bound_us" "$added")
    fi
    echo "target: $t p99 added at half peak <= $(ms "$bound_us") ms: $(ms "$added") ms ($v)"
    echo "target: keygated $t peak RSS (VmHWM) <= 50 MiB: $(mib "${RES[$t.hwm]}") MiB ($(verdict $((50 * 1024)) "${RES[$t.hwm]}"))"
done
echo "run took ${ELAPSED}s"
