#!/usr/bin/env bash
# The local multi-instance stack: DynamoDB Local, Redis, N tablecast instances and nginx in front
# (the stand-in for the AWS ALB).
#
#   bash infra/local/stack.sh up [N]   # default N=3; front door on http://127.0.0.1:8080
#   bash infra/local/stack.sh down     # stops everything it started, by PID
#
# Ports: TABLECAST_STACK_PORT (front, default 8080); instances take the next N ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
run="${TABLECAST_STACK_DIR:-$HOME/.cache/tablecast/stack}"
front="${TABLECAST_STACK_PORT:-8080}"
table="tablecast-local"

down() {
    [[ -f "$run/pids" ]] || { echo "stack: nothing running"; return 0; }
    while read -r pid name; do
        kill "$pid" 2>/dev/null && echo "stopped $name ($pid)" || true
    done <"$run/pids"
    rm -f "$run/pids"
}

up() {
    local n="${1:-3}"
    [[ -f "$run/pids" ]] && { echo "stack: already up (run down first)" >&2; exit 1; }
    mkdir -p "$run"
    for cmd in redis-server nginx java npm; do
        command -v "$cmd" >/dev/null || [[ -x "/usr/sbin/$cmd" ]] || [[ "$cmd" == java ]] ||
            { echo "stack: $cmd is missing (apt-get install redis-server nginx)" >&2; exit 1; }
    done
    cargo build --release --locked
    local bin="${CARGO_TARGET_DIR:-target}/release/tablecast"
    : >"$run/pids"

    # shellcheck source=../dynamodb-local.sh
    (cd "$run" && source "$OLDPWD/infra/dynamodb-local.sh" && env | grep -E '^(AWS_|DYNAMODB_LOCAL_PID)' >"$run/env")
    set -a; source "$run/env"; set +a
    echo "$DYNAMODB_LOCAL_PID dynamodb-local" >>"$run/pids"

    local redis_port=$((front + n + 1))
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$run/redis.log" 2>&1 &
    echo "$! redis" >>"$run/pids"

    "$bin" migrate --store "dynamodb://$table"
    local servers="" admin="${TABLECAST_ADMIN_TOKEN:-local-admin-$RANDOM$RANDOM}"
    for i in $(seq 1 "$n"); do
        local port=$((front + i)) demo=""
        [[ $i == 1 ]] && demo="--demo"
        TABLECAST_ADMIN_TOKEN="$admin" "$bin" serve --listen "127.0.0.1:$port" \
            --store "dynamodb://$table" --bus "redis://127.0.0.1:$redis_port" $demo \
            --trusted-proxies 127.0.0.1/32 \
            >"$run/instance-$i.log" 2>&1 &
        echo "$! instance-$i" >>"$run/pids"
        servers+="        server 127.0.0.1:$port max_fails=1 fail_timeout=2s;"$'\n'
    done
    python3 - "$run" "$front" "$servers" <<'PY'
import sys
run, port, servers = sys.argv[1], sys.argv[2], sys.argv[3]
t = open("infra/local/nginx.conf.template").read()
open(f"{run}/nginx.conf", "w").write(t.replace("@DIR@", run).replace("@PORT@", port).replace("@SERVERS@", servers))
PY
    local nginx; nginx="$(command -v nginx || echo /usr/sbin/nginx)"
    "$nginx" -c "$run/nginx.conf" -p "$run" -e "$run/nginx-error.log" >"$run/nginx.out" 2>&1 &
    echo "$! nginx" >>"$run/pids"

    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$front/readyz" >/dev/null && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:$front/readyz" >/dev/null || { echo "stack: not ready; logs in $run" >&2; down; exit 1; }
    echo "stack up: http://127.0.0.1:$front (nginx) → $n instances; admin token $admin"
    grep -h "demo" "$run/instance-1.log" || true
    echo "logs and pids in $run; stop with: bash infra/local/stack.sh down"
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down ;;
    *) echo "usage: $0 up [N] | down" >&2; exit 2 ;;
esac
