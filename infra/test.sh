#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the tests need, then runs
# formatting, lints and every test. Fails loudly when something cannot be set up.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target folder outside the clone lets CI reuse earlier builds; a cold one works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tablecast/target}"
export CARGO_TERM_COLOR=never
# Under this command nothing may skip: tests that need a service fail instead.
export TABLECAST_REQUIRE_SERVICES=1

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --all-targets --locked -- -D warnings

step "tests"
cargo test --all-targets --locked -- --test-threads 4
