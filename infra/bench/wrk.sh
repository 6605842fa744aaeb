#!/usr/bin/env bash
# The request path measured by an external load generator: wrk (Debian's `wrk` package) against the
# release local runtime and a bare axum hello-world built in the same run. The in-process load
# generator of run.sh shares the process model of the server and caps the bare baseline; wrk does
# not. Prints one Markdown table: requests/s, p50 latency and the ratio to bare axum for a public
# static GET, the health read, an unrouted 404, and the bare route.
# LOG=info (the default, what a local runtime runs with) or LOG=warn; SECONDS_PER_RUN (default 10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
seconds="${SECONDS_PER_RUN:-10}"
log="${LOG:-info}"

cargo build --release --quiet -p amanar-local --bin amanar-local -p amanar-bench --bin hello-axum
bin="$root/target/release"
tmp="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -sS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); RUST_LOG=$log"
local_port="$(free_port)"; hello_port="$(free_port)"
RUST_LOG="$log" "$bin/amanar-local" --data-dir "$tmp/data" --addr "127.0.0.1:$local_port" > "$tmp/local.log" 2>&1 & pids+=($!)
"$bin/hello-axum" "127.0.0.1:$hello_port" > /dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$local_port/v1/health"; wait_http "http://127.0.0.1:$hello_port/"

run() { # name url -> "name|req/s|p50"
    wrk -t2 -c32 -d2s "$2" > /dev/null   # warm-up
    local out; out="$(wrk -t2 -c32 -d"${seconds}s" --latency "$2")"
    echo "$1|$(awk '/Requests\/sec/{print $2}' <<<"$out")|$(awk '$1=="50%"{print $2}' <<<"$out")"
}
{
    run "bare axum \`GET /\` (baseline)" "http://127.0.0.1:$hello_port/"
    run "\`GET /v1/units\` (public, static)" "http://127.0.0.1:$local_port/v1/units"
    run "\`GET /v1/health\` (one table read)" "http://127.0.0.1:$local_port/v1/health"
    run "unrouted \`GET /nope\` (404 problem)" "http://127.0.0.1:$local_port/nope"
} > "$tmp/rows"
echo "| endpoint (wrk -t2 -c32, ${seconds} s) | requests/s | p50 | vs bare axum |"
echo "|---|---|---|---|"
base="$(head -1 "$tmp/rows" | cut -d'|' -f2)"
while IFS='|' read -r name rps p50; do
    printf '| %s | %.0f | %s | %.2f |\n' "$name" "$rps" "$p50" "$(python3 -c "print($rps/$base)")"
done < "$tmp/rows"
