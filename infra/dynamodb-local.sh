#!/usr/bin/env bash
# Starts AWS's DynamoDB Local (the Java emulator) in memory on a free loopback port.
#
#   source infra/dynamodb-local.sh   # exports the variables below into the calling shell
#   bash infra/dynamodb-local.sh     # prints them (`export NAME=value` lines) and leaves it running
#
# Exports AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, dummy AWS credentials and DYNAMODB_LOCAL_PID
# (the caller stops it with `kill "$DYNAMODB_LOCAL_PID"`). The emulator comes from the npm package
# `amplify-dynamodb-simulator` (its `emulator/` folder ships DynamoDBLocal.jar and the native
# SQLite libraries) and is cached under ~/.cache/tablecast/; Java 17 is installed only when `java`
# is missing. Any failure is fatal and loud.

_ddb_local_main() {
    local version="${DYNAMODB_SIMULATOR_VERSION:-2.9.30}"
    local cache="${TABLECAST_CACHE:-$HOME/.cache/tablecast}"
    local dir="$cache/dynamodb-local-$version"

    mkdir -p "$cache" || return 1
    if [[ ! -f "$dir/DynamoDBLocal.jar" ]]; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "dynamodb-local: installing npm (to fetch the emulator)" >&2
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                npm >/dev/null; } || {
                echo "dynamodb-local: cannot install npm" >&2
                return 1
            }
        fi
        echo "dynamodb-local: fetching amplify-dynamodb-simulator@$version from npm" >&2
        local tmp
        tmp="$(mktemp -d)" || return 1
        (cd "$tmp" && npm pack --silent "amplify-dynamodb-simulator@$version" >/dev/null) || {
            echo "dynamodb-local: npm pack failed" >&2
            rm -rf "$tmp"
            return 1
        }
        tar -xzf "$tmp"/amplify-dynamodb-simulator-*.tgz -C "$tmp" package/emulator || {
            echo "dynamodb-local: the package has no emulator/ folder" >&2
            rm -rf "$tmp"
            return 1
        }
        # Another run may have unpacked it meanwhile; either copy will do.
        mv -T "$tmp/package/emulator" "$dir" 2>/dev/null || true
        rm -rf "$tmp"
        [[ -f "$dir/DynamoDBLocal.jar" ]] || {
            echo "dynamodb-local: DynamoDBLocal.jar missing after unpacking" >&2
            return 1
        }
    fi

    if ! command -v java >/dev/null 2>&1; then
        echo "dynamodb-local: installing Java 17 (openjdk-17-jre-headless)" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            openjdk-17-jre-headless >/dev/null; } || {
            echo "dynamodb-local: cannot install Java" >&2
            return 1
        }
    fi

    local port log
    log="$(mktemp -t dynamodb-local.XXXXXX.log)" || return 1
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)" ||
        port=$((20000 + RANDOM % 20000))

    # No telemetry: it would try to reach AWS (this machine reaches only loopback and the package
    # registries) and write dynamodb-local-metadata.json into the working folder.
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        -inMemory -disableTelemetry -port "$port" >"$log" 2>&1 &
    local pid=$!

    # Any HTTP answer (DynamoDB Local answers a bare GET with 400) means it is up.
    local i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "dynamodb-local: the emulator exited during start-up; its log:" >&2
            cat "$log" >&2
            return 1
        fi
        if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if ! curl -s -o /dev/null "http://127.0.0.1:$port/"; then
        echo "dynamodb-local: no answer on port $port after 30 s; its log:" >&2
        cat "$log" >&2
        kill "$pid" 2>/dev/null
        return 1
    fi

    export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
    export DYNAMODB_LOCAL_PID="$pid"
    echo "dynamodb-local: listening on $AWS_ENDPOINT_URL_DYNAMODB (pid $pid)" >&2
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _ddb_local_main
    # Executed, not sourced: print what a caller would export.
    echo "export AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"
    echo "export AWS_REGION=$AWS_REGION"
    echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    echo "export DYNAMODB_LOCAL_PID=$DYNAMODB_LOCAL_PID"
else
    _ddb_local_main || return 1
fi
