#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30), one after the other, and prints the
# number of executions of each. Exits non-zero when any target finds a crash or a
# broken property (the input is left in fuzz/artifacts/<target>/).
#
# Only a stable toolchain is needed: cargo-fuzz passes nightly-only rustc flags
# (-Zsanitizer, coverage instrumentation), which RUSTC_BOOTSTRAP=1 unlocks on stable.
# The targets are built without a sanitizer (`-s none`): keygate's crates forbid
# unsafe code, and the cores go to executions instead.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

seconds="${1:-30}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(token_parse authorization_header policy_load mcp_request gateway_router)
fi

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

status=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$(mktemp)"
    echo "== $target: ${seconds}s" >&2
    set +e
    cargo fuzz run -s none -O -a "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1
    rc=$?
    set -e
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    if [ "$rc" -ne 0 ]; then
        status=1
        tail -n 40 "$log" >&2
        summary+=("$target: FINDING after ${execs:-?} executions (rc $rc, see artifacts/$target/)")
    else
        summary+=("$target: ${execs:-?} executions, no finding")
    fi
    rm -f "$log"
done

printf '%s\n' "${summary[@]}"
exit "$status"
