# Sourced by infra/bench.sh and infra/holds-cost.sh: starts one fresh release instance for a
# benchmark and stops it (and removes its folder) when the calling script exits.
#
#   bench_server BIN PORT NAME
#
# Starts BIN on 127.0.0.1:PORT with the embedded SQLite store in a new temporary folder and the
# per-client limits off (the load comes from loopback, one client), waits until it is ready and
# fails loudly if it is not ours that answers. Sets `server` (its PID), `dir` (its folder, with
# server.log), `admin` (its admin token) and `url`.
bench_server() {
  local bin=$1 port=$2 name=$3
  dir="$(mktemp -d)"
  admin="$name-$RANDOM$RANDOM"
  url="http://127.0.0.1:$port"
  TABLECAST_ADMIN_TOKEN="$admin" "$bin" serve --listen "127.0.0.1:$port" --store "sqlite://$dir/$name.db" \
      --max-live-holds-per-client 0 --hold-rate off --max-connections-per-client 0 \
      >"$dir/server.log" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 1 100); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.1; done
  # Another process on the port would answer /readyz in our server's place: ours must be alive.
  kill -0 "$server" 2>/dev/null || {
    echo "the server did not start (port $port taken? set TABLECAST_BENCH_PORT):" >&2
    cat "$dir/server.log" >&2
    exit 1
  }
}
