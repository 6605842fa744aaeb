#!/usr/bin/env bash
# The catalogue at scale (BENCHMARKS.md, "Marketplace: catalogue search"): fills a data directory
# with PROJECTS approved projects from the demo distribution, measures the index in-process, then
# serves it from amanar-local beside a bare axum hello-world and loads both at CONNECTIONS
# connections. Also times a fresh runtime's first search over that catalogue (its cold start).
# All traffic is on loopback, bounded in time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
connections="${CONNECTIONS:-32}"
seconds="${SECONDS_PER_RUN:-10}"
projects="${PROJECTS:-100000}"
data="${CATALOGUE_DIR:-$root/target/bench-catalogue}"
refresh="${AMANAR_CATALOGUE_REFRESH_MS:-1000}"

cargo build --release --quiet -p amanar-local -p amanar-bench
bin="$root/target/release"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 600); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "not ready: $1" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(rustc --version)"
"$bin/catalogue" "$data" "$projects"

hello_port="$(free_port)"; local_port="$(free_port)"
"$bin/hello-axum" "127.0.0.1:$hello_port" > /dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$hello_port/"
three="/v1/projects?country=BR&category=forest&standard=VCS"
# Cold start: from spawn to the first search answered (the index loads on that request).
started="$(date +%s%N)"
AMANAR_CATALOGUE_REFRESH_MS="$refresh" RUST_LOG=warn \
    "$bin/amanar-local" --data-dir "$data" --addr "127.0.0.1:$local_port" > /dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$local_port$three"
echo "{\"cold_start_to_first_search_ms\": $(( ($(date +%s%N) - started) / 1000000 )), \"refresh_ms\": $refresh}"

for target in "http://127.0.0.1:$hello_port/" \
        "http://127.0.0.1:$local_port$three" \
        "http://127.0.0.1:$local_port/v1/projects?q=cookstove" \
        "http://127.0.0.1:$local_port/v1/projects?category=renewable-energy&facets=true"; do
    "$bin/load" "$target" "$connections" 2 > /dev/null   # warm-up
    echo "$target $("$bin/load" "$target" "$connections" "$seconds")"
done
