#!/usr/bin/env bash
# Maintainer command: checks Cargo.lock against the RustSec advisory database offline, from the
# handbook's snapshot in ../shared/data/security/rustsec-advisory-db (not shipped with the project,
# so the test command does not run this). Installs cargo-audit 0.22.2 into .test-tools/cargo the first
# time (a few minutes). Ignored advisories are listed, with why, in .cargo/audit.toml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
db="${RUSTSEC_DB:-$root/../shared/data/security/rustsec-advisory-db}"
if [ ! -d "$db/crates" ]; then
    echo "infra/audit.sh: no RustSec advisory database at $db" >&2
    echo "  (it comes with the handbook beside the project; set RUSTSEC_DB to another copy)" >&2
    exit 2
fi
tools="$root/.test-tools/cargo"
if [ ! -x "$tools/bin/cargo-audit" ]; then
    echo "installing cargo-audit 0.22.2 into $tools"
    CARGO_TARGET_DIR="$root/.test-tools/cargo-target" \
        cargo install cargo-audit --version 0.22.2 --locked --root "$tools" --quiet
fi
cd "$root"
exec "$tools/bin/cargo-audit" audit --db "$db" --no-fetch --file Cargo.lock "$@"
