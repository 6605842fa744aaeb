#!/usr/bin/env bash
# Cold start of every Lambda function beside a hello-world lambda_http binary built in the same run:
# each release binary starts INIT_RUNS times against a stand-in Lambda Runtime API and answers its
# sample event (events/<function>.json) in its AWS configuration, against moto on loopback. Prints
# one Markdown table: init p50 (spawn to first poll), first invocation p50, spawn to first response
# p50, peak RSS p50 and stripped x86_64 size, each with its ratio to hello-world.
# Needs the test tools that ./infra/test.sh installs (moto, boto3). FUNCTIONS_DIR=<dir> measures the
# function binaries in another directory (another commit's release build) against this run's
# hello-world instead of building this tree's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/.test-tools/venv"
[ -x "$venv/bin/python" ] || { echo "run ./infra/test.sh once first: it installs the emulator" >&2; exit 1; }
runs="${INIT_RUNS:-20}"

[ -n "${FUNCTIONS_DIR:-}" ] || cargo build --release --quiet -p amanar-functions --bins
cargo build --release --quiet -p amanar-bench --bin lambda-init --bin hello-lambda
bin="$root/target/release"
functions="${FUNCTIONS_DIR:-$bin}"
tmp="$(mktemp -d)"
moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(rustc --version)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" infra/emulators/moto_server.py 127.0.0.1 "$port" > "$tmp/moto.log" 2>&1 & moto_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 RUST_LOG=warn
# The resources every function's configuration names, as template.yaml would make them.
eval "$("$venv/bin/python" - <<'PY'
import boto3
keys = [("pk", "sk"), ("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk")]
boto3.client("dynamodb").create_table(
    TableName="bench", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for pair in keys for a in pair],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[{"IndexName": f"gsi{i}", "Projection": {"ProjectionType": "ALL"},
        "KeySchema": [{"AttributeName": p, "KeyType": "HASH"}, {"AttributeName": s, "KeyType": "RANGE"}]}
        for i, (p, s) in enumerate(keys[1:], start=1)])
sqs = boto3.client("sqs")
jobs = sqs.create_queue(QueueName="bench-jobs")["QueueUrl"]
dlq = sqs.create_queue(QueueName="bench-jobs-dlq")["QueueUrl"]
s3 = boto3.client("s3")
for bucket in ("bench-uploads", "bench-exports"):
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@amanar.example")
idp = boto3.client("cognito-idp")
pool = idp.create_user_pool(PoolName="bench", UsernameAttributes=["email"])["UserPool"]["Id"]
client = idp.create_user_pool_client(UserPoolId=pool, ClientName="bench",
    ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
print(f"export AMANAR_QUEUE_URL_JOBS={jobs} AMANAR_QUEUE_URL_JOBS_DLQ={dlq} AMANAR_USER_POOL_ID={pool} AMANAR_USER_POOL_CLIENT_ID={client}")
PY
)"
export AMANAR_TABLE_NAME=bench AMANAR_UPLOADS_BUCKET=bench-uploads AMANAR_EXPORTS_BUCKET=bench-exports \
    AMANAR_S3_FORCE_PATH_STYLE=true AMANAR_MAIL_FROM=no-reply@amanar.example

"$bin/lambda-init" "$bin/hello-lambda" "$runs" events/api-health.json > "$tmp/hello-world.json"
for source in functions/src/bin/*.rs; do
    function="$(basename "$source" .rs)"
    [ -x "$functions/$function" ] || continue
    "$bin/lambda-init" "$functions/$function" "$runs" "events/$function.json" > "$tmp/$function.json"
done
"$venv/bin/python" - "$tmp" <<'PY'
import json, pathlib, sys
tmp = pathlib.Path(sys.argv[1])
def load(name): return json.loads((tmp / f"{name}.json").read_text())
hello = load("hello-world")
def row(name, r, base):
    def cell(key, unit, scale):
        value = r[key] / scale
        ratio = r[key] / base[key] if base[key] else 0
        return f"{value:.2f} {unit} ({ratio:.1f}x)" if name != "hello-world lambda_http" else f"{value:.2f} {unit}"
    return (f"| {name} | {cell('init_p50_us', 'ms', 1000)} | {cell('first_invocation_p50_us', 'ms', 1000)} | "
            f"{cell('spawn_to_response_p50_us', 'ms', 1000)} | {cell('peak_rss_p50_kib', 'MiB', 1024)} | {cell('size_bytes', 'MiB', 1048576)} |")
print("| function | init p50 | first invocation p50 | spawn to first response p50 | peak RSS p50 | stripped size (x86_64) |")
print("|---|---|---|---|---|---|")
print(row("hello-world lambda_http", hello, hello))
for path in sorted(tmp.glob("*.json")):
    if path.stem != "hello-world":
        print(row(f"`{path.stem}`", load(path.stem), hello))
PY
