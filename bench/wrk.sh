#!/usr/bin/env bash
# Loads a running Tessera (or any server with the same API) with wrk, so it
# can be compared with other servers under the same load generator.
#
#   bench/wrk.sh [BASE_URL] [SECONDS] [CONNECTIONS] [THREADS]
#
# Defaults: http://127.0.0.1:8080, 10 s, 32 connections, 2 threads. Targets
# loopback only unless you name another address. Every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")"
base="${1:-http://127.0.0.1:8080}"
seconds="${2:-10}"
connections="${3:-32}"
threads="${4:-2}"

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        echo "bench/wrk.sh: install wrk (Debian: apt-get install wrk)" >&2
        exit 1
    fi
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench/wrk.sh: $tool is needed" >&2; exit 1; }
done

user="wrk$(date +%s%N)"
password="wrk-bench-password-$RANDOM$RANDOM"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

curl -fsS "$base/v1/users" -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"$password\"}" >/dev/null
cookie=$(curl -fsS -D - -o /dev/null "$base/v1/session" -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"$password\"}" |
    awk 'tolower($1)=="set-cookie:" {split($2,a,";"); print a[1]}' | tr -d '\r')
access=$(curl -fsS "$base/v1/token" -d grant_type=password -d "username=$user" -d "password=$password" | json access_token)
[ -n "$cookie" ] && [ -n "$access" ] || { echo "bench/wrk.sh: could not sign in" >&2; exit 1; }

run() {
    local name="$1"; shift
    echo "== $name"
    wrk --latency -d "${seconds}s" -c "$connections" -t "$threads" "$@" | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors|^refresh.lua:"
}

run "GET /healthz (ceiling)" "$base/healthz"
run "GET /v1/me by cookie" -H "Cookie: $cookie" "$base/v1/me"
run "GET /v1/me by bearer" -H "Authorization: Bearer $access" "$base/v1/me"
# One refresh-token chain per connection, each started by a password grant
# made here, one after the other (the sign-in limits count attempts in flight).
tokens=$(mktemp)
trap 'rm -f "$tokens"' EXIT
for _ in $(seq "$connections"); do
    curl -fsS "$base/v1/token" -d grant_type=password -d "username=$user" -d "password=$password" |
        json refresh_token >>"$tokens"
done
REFRESH_TOKENS="$tokens" WRK_THREADS="$threads" USERNAME="$user" PASSWORD="$password" \
    run "POST /v1/token refresh_token (one chain per connection)" -s refresh.lua "$base/v1/token"
USERNAME="$user" PASSWORD="$password" \
    run "POST /v1/session (sign-in)" -s signin.lua "$base/v1/session"
