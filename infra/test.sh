#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the test tools (moto server, localstripe, cfn-lint, SAM CLI
# from PyPI into .test-tools/venv; the oidc-provider OpenID Provider from npm into .test-tools/oidc),
# starts moto, localstripe and the OpenID Provider on free loopback ports, lints template.yaml, checks formatting
# and clippy, runs every Rust test against both faces, and stops what it started, even on failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$root/.test-tools"
venv="$tools/venv"
requirements="$root/infra/emulators/requirements.txt"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\ninfra/test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is not installed (https://rustup.rs)"
command -v python3 >/dev/null || fail "python3 is needed for the AWS emulator and the template linters"
command -v npm >/dev/null || fail "node and npm are needed for the OpenID Provider of the social-login tests"
command -v make >/dev/null || fail "make is needed: the template tests read what sam build runs from the Makefile"

step "test tools (moto server, cfn-lint, SAM CLI)"
stamp="$tools/requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv" || fail "cannot create a Python virtualenv (install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
        || fail "cannot install the test tools from PyPI ($requirements)"
    echo "$wanted" > "$stamp"
fi

step "OpenID Provider (oidc-provider from npm)"
oidc="$tools/oidc"
oidc_package="$root/infra/emulators/oidc/package.json"
oidc_wanted="$(sha256sum "$oidc_package" | cut -d' ' -f1)"
if [ ! -d "$oidc/node_modules/oidc-provider" ] || [ "$(cat "$oidc/package.sha256" 2>/dev/null)" != "$oidc_wanted" ]; then
    rm -rf "$oidc"
    mkdir -p "$oidc"
    cp "$oidc_package" "$oidc/"
    (cd "$oidc" && npm install --no-audit --no-fund --silent) || fail "cannot install oidc-provider from npm"
    echo "$oidc_wanted" > "$oidc/package.sha256"
fi
cp "$root/infra/emulators/oidc/provider.mjs" "$oidc/"

step "moto server"
# Both ports are picked while both sockets are held, so they differ: picked one after the other,
# the second could be the first again while moto (a slow Python start) has not bound it yet, and
# the OpenID Provider would take it first.
read -r port oidc_port stripe_port < <("$venv/bin/python" -c 'import socket
a, b, c = socket.socket(), socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0)); c.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1], c.getsockname()[1])')
"$venv/bin/python" "$root/infra/emulators/moto_server.py" 127.0.0.1 "$port" > "$tools/moto.log" 2>&1 &
moto_pid=$!
node "$oidc/provider.mjs" "$oidc_port" > "$tools/oidc.log" 2>&1 &
oidc_pid=$!
# localstripe keeps its state in a pickle file of the working directory: start it in its own.
mkdir -p "$tools/localstripe"
(cd "$tools/localstripe" && exec "$venv/bin/localstripe" --port "$stripe_port" --from-scratch) > "$tools/localstripe.log" 2>&1 &
stripe_pid=$!
cleanup() {
    kill "$moto_pid" "$oidc_pid" "$stripe_pid" 2>/dev/null || true
    wait "$moto_pid" "$oidc_pid" "$stripe_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
    kill -0 "$moto_pid" 2>/dev/null || { cat "$tools/moto.log" >&2; fail "moto server exited at start"; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || fail "moto server did not become ready on port $port"
echo "moto server on 127.0.0.1:$port"
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" >/dev/null 2>&1; then break; fi
    kill -0 "$oidc_pid" 2>/dev/null || { cat "$tools/oidc.log" >&2; fail "the OpenID Provider exited at start"; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" >/dev/null \
    || fail "the OpenID Provider did not become ready on port $oidc_port"
echo "OpenID Provider on 127.0.0.1:$oidc_port"
for _ in $(seq 1 100); do
    # Any answer (401 without a key) means it listens.
    if curl -sS -o /dev/null "http://127.0.0.1:$stripe_port/v1/customers" 2>/dev/null; then break; fi
    kill -0 "$stripe_pid" 2>/dev/null || { cat "$tools/localstripe.log" >&2; fail "localstripe exited at start"; }
    sleep 0.2
done
curl -sS -o /dev/null "http://127.0.0.1:$stripe_port/v1/customers" || fail "localstripe did not become ready on port $stripe_port"
echo "localstripe on 127.0.0.1:$stripe_port"

step "template.yaml: cfn-lint and sam validate --lint"
"$venv/bin/cfn-lint" template.yaml
AWS_DEFAULT_REGION=eu-west-1 SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint -t template.yaml

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The Lambda functions alone, as sam build compiles them: without the `local` feature of amanar-app.
cargo clippy -p amanar-functions --bins --quiet -- -D warnings

step "cargo test (embedded face, AWS face on moto, Lambda events, local runtime journeys)"
AMANAR_TEST_AWS_ENDPOINT="http://127.0.0.1:$port" AMANAR_TEST_OIDC_ISSUER="http://127.0.0.1:$oidc_port" \
    AMANAR_TEST_STRIPE_API_BASE="http://127.0.0.1:$stripe_port/" \
    cargo test --workspace --no-fail-fast
