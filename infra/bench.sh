#!/usr/bin/env bash
# Runs every loadgen scenario at full size against a fresh release-build instance on loopback
# (embedded SQLite store), each next to its baseline from the same run. Bounded: each scenario
# stops by itself within its --timeout-secs.
#
#   bash infra/bench.sh            # all scenarios
#   bash infra/bench.sh stampede   # one of: stampede paced combination fanout holds mixed history waitlist
#
# Each run also redraws its latency plot, docs/bench/<scenario>.svg (stampede.svg,
# stampede-paced.svg, stampede-combination.svg, fanout.svg, …); TABLECAST_BENCH_PLOTS=DIR writes
# them elsewhere, TABLECAST_BENCH_PLOTS= (empty) draws none.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/tablecast"
port="${TABLECAST_BENCH_PORT:-18080}"
source infra/bench-server.sh
bench_server "$bin" "$port" bench
plots="${TABLECAST_BENCH_PLOTS-docs/bench}"
plot=()
[[ -n $plots ]] && plot=(--plot-dir "$plots")
run() { "$bin" loadgen "$@" --url "$url" --admin-token "$admin" --timeout-secs 600 "${plot[@]}"; }
want="${1:-all}"
[[ $want == all || $want == stampede ]] && run stampede --diners 1000 --tables 1 --watchers 50
# The same crowd into one paced window (10 covers a quarter-hour, 30 free tables): pacing decides.
[[ $want == all || $want == paced ]] && run stampede --diners 1000 --paced --tables 30 --max-covers 10 --watchers 50
# Half the crowd on a 2-table combination, half on its two tables: one side wins, never both.
[[ $want == all || $want == combination ]] && run stampede --diners 1000 --combination c2 --tables 2 --watchers 50
if [[ $want == all || $want == fanout ]]; then
  npm ci --prefix benches/node --loglevel=error --no-audit --no-fund >/dev/null # the Node ws baseline
  run fanout --subscribers 10000 --changes 20 --baseline --node-baseline benches/node/broadcast.js --server-pid "$server"
fi
[[ $want == all || $want == holds ]] && run holds --holds 2000 --watchers 1000 --concurrency 64
[[ $want == all || $want == mixed ]] && run mixed --diners 200 --tables 40 --duration-secs 20
[[ $want == all || $want == history ]] && run history --cycles 30000
# 200 entries watch a full 19:00 live; 8 clients free 50 of its tables; half the offers passed
# (the 500 entries / 100 frees run is in BENCHMARKS.md).
[[ $want == all || $want == waitlist ]] && run waitlist --entries 200 --frees 50 --clients 8
echo "server log: $dir/server.log (removed on exit)"
