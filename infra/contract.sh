#!/usr/bin/env bash
# The contract check: the server against its own documents.
#
#   bash infra/contract.sh
#
# Builds and starts `tablecast serve` (a fresh SQLite file, a demo restaurant, a known admin
# token) on a free loopback port, then
#   1. validates GET /asyncapi.json with the official AsyncAPI parser (@asyncapi/parser), and
#   2. runs schemathesis against GET /openapi.json with every check, as the admin.
# Any error or finding fails the script. The server is stopped by its PID on exit.
#
# Tools are cached under ${XDG_CACHE_HOME:-$HOME/.cache}/tablecast/: a Python venv with
# schemathesis, and the parser installed from the npm registry. Knobs (environment):
#   CONTRACT_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   CONTRACT_SEED          schemathesis seed (default: a fixed one, so the test command's run is
#                          the same every time; `random` lets schemathesis pick and print one,
#                          to explore cases beyond the fixed run)
#   CONTRACT_PROFILE       `debug` (default) or `release`
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
ASYNCAPI_PARSER_VERSION=3.6.3
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tablecast"
venv="$cache/venv-contract"
parser_dir="$cache/asyncapi-parser-$ASYNCAPI_PARSER_VERSION"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tablecast/target}"
profile="${CONTRACT_PROFILE:-debug}"
max_examples="${CONTRACT_MAX_EXAMPLES:-100}"

say() { printf 'contract: %s\n' "$*"; }
die() { printf 'contract: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
mkdir -p "$cache"
if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != *"$SCHEMATHESIS_VERSION"* ]]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  command -v python3 >/dev/null || die "python3 is required"
  python3 -m venv "$venv" || die "cannot create a venv (apt-get install python3-venv?)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || die "cannot install schemathesis"
fi
if [[ ! -f "$parser_dir/node_modules/@asyncapi/parser/package.json" ]]; then
  say "installing @asyncapi/parser $ASYNCAPI_PARSER_VERSION into $parser_dir"
  command -v npm >/dev/null || die "node and npm are required"
  mkdir -p "$parser_dir"
  npm install --prefix "$parser_dir" --no-audit --no-fund --silent \
    "@asyncapi/parser@$ASYNCAPI_PARSER_VERSION" >/dev/null || die "cannot install @asyncapi/parser"
fi

# --- server ------------------------------------------------------------------------------
if [[ "$profile" == release ]]; then
  cargo build --release --locked --bin tablecast
else
  cargo build --locked --bin tablecast
fi
bin="$CARGO_TARGET_DIR/$profile/tablecast"
[[ -x "$bin" ]] || die "no binary at $bin"

work="$(mktemp -d -t tablecast-contract.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin="contract-admin-$RANDOM$RANDOM"
flags=(--listen "127.0.0.1:$port" --store "sqlite://$work/contract.db" --admin-token "$admin" --demo)
# Per-client limits are off: the whole run is one loopback client.
flags+=(--hold-rate off --max-live-holds-per-client 0 --max-connections-per-client 0)
RUST_LOG="${RUST_LOG:-warn}" "$bin" serve "${flags[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited"; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { cat "$work/server.log" >&2; die "the server is not ready"; }
say "server $bin on $base (pid $server_pid)"

# --- AsyncAPI ----------------------------------------------------------------------------
curl -fsS "$base/asyncapi.json" -o "$work/asyncapi.json" || die "GET /asyncapi.json failed"
node infra/asyncapi-validate.cjs "$parser_dir" "$work/asyncapi.json" || die "the AsyncAPI document is invalid"

# --- OpenAPI -----------------------------------------------------------------------------
TABLECAST_CONTRACT_RID="$(curl -fsS "$base/v1/restaurants" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["restaurants"][0]["id"])')" \
  || die "no demo restaurant"
export TABLECAST_CONTRACT_RID
say "demo restaurant $TABLECAST_CONTRACT_RID"
seed=()
contract_seed="${CONTRACT_SEED:-20261203}"
[[ "$contract_seed" != random ]] && seed=(--seed "$contract_seed")
status=0
# Run from the scratch folder: schemathesis keeps a crash cache in its working directory.
# One worker: with two, hypothesis parses sources from two threads at once and CPython 3.11 may
# raise "SystemError: AST constructor recursion depth mismatch" inside schemathesis (a crash of
# the tool, reported as a runtime error, not a finding about the server).
config="$PWD/infra/schemathesis.toml"
(cd "$work" && "$venv/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $admin" \
  --max-examples "$max_examples" \
  --workers 1 \
  --request-timeout 10 \
  --no-color \
  "${seed[@]}") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
  cat "$work/server.log" >&2
  die "the server died during the run"
fi
[[ "$status" == 0 ]] || die "schemathesis reported findings (exit $status)"
say "OpenAPI: 0 findings; AsyncAPI: valid"
