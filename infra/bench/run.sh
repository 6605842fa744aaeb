#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: HTTP throughput/latency of the local runtime beside a bare
# axum hello-world, and Lambda initialisation beside a hello-world lambda_http binary. All traffic is
# on loopback, bounded in time. Needs the test tools that ./infra/test.sh installs (moto, boto3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/.test-tools/venv"
[ -x "$venv/bin/python" ] || { echo "run ./infra/test.sh once first: it installs the emulator" >&2; exit 1; }
connections="${CONNECTIONS:-32}"
seconds="${SECONDS_PER_RUN:-10}"
runs="${INIT_RUNS:-20}"

cargo build --release --quiet -p amanar-local -p amanar-bench && cargo build --release --quiet -p amanar-functions --bin api-health
bin="$root/target/release"
tmp="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(rustc --version)"

local_port="$(free_port)"; hello_port="$(free_port)"
# The per-user limit is raised so the authenticated run measures throughput, not the 429s; the
# limiter still counts every request in the table.
AMANAR_RATE_LIMIT_PER_USER=1000000000 RUST_LOG=warn "$bin/amanar-local" --data-dir "$tmp/data" --addr "127.0.0.1:$local_port" > "$tmp/local.log" 2>&1 & pids+=($!)
"$bin/hello-axum" "127.0.0.1:$hello_port" > /dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$local_port/v1/health"; wait_http "http://127.0.0.1:$hello_port/"

for target in "http://127.0.0.1:$hello_port/" "http://127.0.0.1:$local_port/v1/health" "http://127.0.0.1:$local_port/v1/openapi.json"; do
    "$bin/load" "$target" "$connections" 2 > /dev/null   # warm-up
    "$bin/load" "$target" "$connections" "$seconds"
done

local="http://127.0.0.1:$local_port"

# A user for the authenticated calls (estimates, /v1/me), and the login figures.
email="bench@example.com"; password="Correct horse 7 battery"
curl -fsS -o /dev/null -H 'content-type: application/json' "$local/v1/auth/register" \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Bench\",\"accountType\":\"individual\"}"
code="$(curl -fsS "$local/_local/mailbox?to=$email" | "$venv/bin/python" -c 'import json,re,sys; print(re.search(r"\b\d{6}\b", json.load(sys.stdin)["items"][0]["text"]).group())')"
curl -fsS -o /dev/null -H 'content-type: application/json' "$local/v1/auth/verify-email" -d "{\"email\":\"$email\",\"code\":\"$code\"}"
printf '{"email":"%s","password":"%s"}' "$email" "$password" > "$tmp/login.json"
"$bin/load" "$local/v1/auth/login" 1 "$seconds" "$tmp/login.json"
"$bin/load" "$local/v1/auth/login" 2 "$seconds" "$tmp/login.json"
token="$(curl -fsS -H 'content-type: application/json' "$local/v1/auth/login" -d @"$tmp/login.json" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')"

# Carbon accounting: estimates in-process, then single and batch estimates over HTTP.
"$bin/estimates" 3
export LOAD_HEADER="authorization: Bearer $token"   # estimates need a caller
"$bin/load" "$local/v1/estimates" "$connections" 2 infra/bench/estimate-one.json > /dev/null
"$bin/load" "$local/v1/estimates" "$connections" "$seconds" infra/bench/estimate-one.json
"$bin/load" "$local/v1/estimates/batch" "$connections" "$seconds" infra/bench/estimates-batch-100.json
"$bin/load" "$local/v1/estimates/batch" 1 "$seconds" infra/bench/estimates-batch-100.json
unset LOAD_HEADER
"$bin/load" "$local/v1/emission-factors?q=natural+gas&region=GB" "$connections" "$seconds"

# Footprints: an activity file calculated in-process, then imported end to end (upload, check,
# queue, calculation, lines file, footprint) through the local runtime.
"$bin/imports" "${IMPORT_ROWS:-350000}" 5
"$bin/import-load" "$local" "${IMPORT_ROWS:-350000}" 5

# Accounts: token verification in-process; login (argon2id) and an authenticated read over HTTP.
"$bin/verify-tokens" 3
LOAD_HEADER="authorization: Bearer $token" "$bin/load" "$local/v1/me" "$connections" 2 > /dev/null
LOAD_HEADER="authorization: Bearer $token" "$bin/load" "$local/v1/me" "$connections" "$seconds"

# Lambda init: api-health in its AWS configuration, against DynamoDB on moto.
moto_port="$(free_port)"
"$venv/bin/python" infra/emulators/moto_server.py 127.0.0.1 "$moto_port" > "$tmp/moto.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$moto_port/moto-api/"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
"$venv/bin/python" - <<'PY'
import boto3
boto3.client("dynamodb").create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
PY
export AMANAR_USER_POOL_ID=eu-west-1_bench AMANAR_USER_POOL_CLIENT_ID=bench AMANAR_MAIL_FROM=no-reply@amanar.example
export AMANAR_TABLE_NAME=bench AMANAR_QUEUE_URL_JOBS="http://127.0.0.1:$moto_port/123456789012/jobs" \
    AMANAR_UPLOADS_BUCKET=bench-uploads AMANAR_EXPORTS_BUCKET=bench-exports RUST_LOG=warn
"$bin/lambda-init" "$bin/hello-lambda" "$runs" events/api-health.json
"$bin/lambda-init" "$bin/api-health" "$runs" events/api-health.json
