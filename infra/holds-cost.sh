#!/usr/bin/env bash
# Where a hold's CPU goes: runs `tablecast loadgen holds` (2,400 holds on distinct tables,
# concurrency 64) RUNS times against one fresh release instance (embedded SQLite, limits off: the
# load generator is one loopback client) and prints, per run, holds/s and /healthz req/s (as the
# holds scenario measures them) and the CPU per hold of the server's threads, read from /proc:
# the group-commit writer (`sqlite-writer`), sqlx's connection threads (the commit's WAL writes
# and fsync), the actix workers and the whole process (the workers' and the process's figures
# cover the whole run, /healthz baseline included).
#
# With `perf` installed (and allowed: kernel.perf_event_paranoid ≤ 2 for the whole machine),
# PHASES=1 adds one more run sampled on every CPU, split into its /healthz and holds phases:
# cores used by the server, by the load generator, and idle.
#
#   bash infra/holds-cost.sh                 # 3 runs, 1,000 watchers
#   WATCHERS=0 RUNS=5 bash infra/holds-cost.sh
#   PHASES=1 bash infra/holds-cost.sh
#   BIN=/path/to/other/tablecast bash infra/holds-cost.sh   # an A/B against another build
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
watchers="${WATCHERS:-1000}"
port="${TABLECAST_BENCH_PORT:-18090}"
if [[ -z ${BIN:-} ]]; then
  cargo build --release --locked --quiet
  BIN="${CARGO_TARGET_DIR:-target}/release/tablecast"
fi
source infra/bench-server.sh
bench_server "$BIN" "$port" cost
tick=$(getconf CLK_TCK)
holds=2400
# CPU ticks (user + system) of the server's threads whose name starts with $1.
ticks() {
  local sum=0 t
  for t in /proc/"$server"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == "$1"* ]] || continue
    sum=$((sum + $(awk '{print $14 + $15}' "$t/stat")))
  done
  echo "$sum"
}
per_hold() { echo $((($2 - $1) * 1000000 / tick / holds)); }
loadgen() {
  "$BIN" loadgen holds --holds "$holds" --watchers "$watchers" --concurrency 64 \
    --url "$url" --admin-token "$admin" --timeout-secs 120 --quiet
}
echo "holds, $watchers watchers: CPU per hold in µs (10 ms ticks over $holds holds: ±4 µs)"
for r in $(seq 1 "$runs"); do
  w0=$(ticks sqlite-writer) q0=$(ticks sqlx-sqlite) a0=$(ticks actix-server) p0=$(awk '{print $14 + $15}' /proc/"$server"/stat)
  out=$(loadgen 2>&1)
  w1=$(ticks sqlite-writer) q1=$(ticks sqlx-sqlite) a1=$(ticks actix-server) p1=$(awk '{print $14 + $15}' /proc/"$server"/stat)
  rate=$(awk '/^POST holds/ {print $NF}' <<<"$out")
  base=$(awk '/healthz \(baseline\)/ {print $NF}' <<<"$out")
  [[ -n $rate ]] || { echo "the run failed:" >&2; echo "$out" >&2; exit 1; }
  echo "run $r: $rate holds/s, /healthz $base req/s | writer $(per_hold "$w0" "$w1"), sqlx $(per_hold "$q0" "$q1"), actix workers $(per_hold "$a0" "$a1") (whole run), process $(per_hold "$p0" "$p1") (whole run)"
done
[[ ${PHASES:-} == 1 ]] || exit 0
command -v perf >/dev/null || { echo "PHASES=1 needs perf" >&2; exit 1; }
perf record -F 1999 -a -o "$dir/perf.data" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.3
out=$(loadgen 2>&1)
kill -INT "$perf_pid"
wait "$perf_pid" || true
grep -E '^(GET|POST)' <<<"$out"
# The holds phase is the span of the writer's samples; the /healthz phase the quarter second
# before it (its 24,000 requests take about that long here).
perf script -i "$dir/perf.data" -F pid,comm,time 2>/dev/null | python3 -c '
import collections, sys
server = int(sys.argv[1])
rows = []
for line in sys.stdin:
    parts = line.split()
    if len(parts) < 3:
        continue
    t = float(parts[-1].rstrip(":"))
    pid = int(parts[-2].split("/")[0])
    rows.append((t, pid, " ".join(parts[:-2])))
writer = sorted(t for t, _, c in rows if c.startswith("sqlite-writer"))
start, end = writer[len(writer) // 20], writer[-1]
def who(pid, comm):
    if comm == "swapper":
        return "idle"
    if pid == server:
        return "server"
    if comm.startswith("tablecast") or comm.startswith("tokio-rt"):
        return "load generator"
    return "other"
for name, (a, b) in {"/healthz": (start - 0.30, start - 0.05), "holds": (start, end)}.items():
    c = collections.Counter(who(p, m) for t, p, m in rows if a <= t <= b)
    cores = ", ".join(f"{k} {v / 1999 / (b - a):.2f}" for k, v in c.most_common())
    print(f"{name} phase ({b - a:.2f} s), cores: {cores}")
' "$server"
