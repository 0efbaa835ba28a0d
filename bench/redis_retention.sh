#!/usr/bin/env bash
# Sessions in continuous use stay cached in Redis: N cookie sessions are
# signed in on a PostgreSQL + Redis `tessera serve`, then used round-robin
# (GET /v1/me) for USE_SECS; at the end, how many of them still have their
# one Redis key (not a tombstone). Touches (once a minute per session) and
# refill reads must rewrite the cached entry, never evict it.
#   bench/redis_retention.sh target/release/tessera
# Knobs: N=1000 USE_SECS=150 PG_URL=postgres://postgres@127.0.0.1:5432
# Needs redis-server, psql, wrk, openssl, curl; binds 127.0.0.1 only.
set -euo pipefail
BIN=$1; N=${N:-1000}; USE_SECS=${USE_SECS:-150}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}; DB=tessera_retention
PORT=$((20000 + RANDOM % 10000)); RP=$((PORT + 1))
D=$(mktemp -d); chmod 700 "$D"
SPID=""; RPID=""
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; [ -n "$RPID" ] && kill $RPID 2>/dev/null; rm -rf "$D"' EXIT
redis-server --port $RP --bind 127.0.0.1 --save "" --appendonly no --daemonize no > "$D/redis.log" 2>&1 &
RPID=$!
PGOPTIONS="-c client_min_messages=warning" psql "$PG_URL/postgres" -XqAtc "DROP DATABASE IF EXISTS $DB" && psql "$PG_URL/postgres" -XqAtc "CREATE DATABASE $DB"
TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_PUBLIC_URL=http://127.0.0.1:$PORT TESSERA_DATA_DIR=$D/data \
  TESSERA_DATABASE_URL=$PG_URL/$DB TESSERA_REDIS_URL=redis://127.0.0.1:$RP \
  TESSERA_KEY_ENCRYPTION_KEY=$(openssl rand -base64 32) "$BIN" serve > "$D/server.log" 2>&1 &
SPID=$!
for _ in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.2; done
U='{"username":"retention","password":"correct horse battery staple"}'
curl -sf -o /dev/null -H 'content-type: application/json' -d "$U" "http://127.0.0.1:$PORT/v1/users"
for _ in $(seq "$N"); do
  curl -sf -D - -o /dev/null -H 'content-type: application/json' -d "$U" "http://127.0.0.1:$PORT/v1/session" |
    awk 'tolower($1)=="set-cookie:"{split($2,a,";"); print a[1]}' | tr -d '\r'
done > "$D/cookies.txt"
[ "$(grep -c . "$D/cookies.txt")" = "$N" ] || { echo "only $(grep -c . "$D/cookies.txt") of $N sign-ins succeeded" >&2; exit 1; }
cat > "$D/cycle.lua" <<'LUA'
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do cookies[#cookies + 1] = line end
local i = math.random(#cookies)
request = function()
  i = i % #cookies + 1
  return wrk.format("GET", "/v1/me", {["Cookie"] = cookies[i]})
end
LUA
COOKIES=$D/cookies.txt wrk -t2 -c16 -d"${USE_SECS}s" -s "$D/cycle.lua" "http://127.0.0.1:$PORT/v1/me" > "$D/wrk.txt"
if grep -q Non-2xx "$D/wrk.txt"; then echo "some requests failed:" >&2; cat "$D/wrk.txt" >&2; exit 1; fi
count() { redis-cli -p $RP EVAL "local n = 0 for _, k in ipairs(redis.call('keys', ARGV[1])) do if redis.call('strlen', k) $1 0 then n = n + 1 end end return n" 0 '*s:c:*'; }
CACHED=$(count '>'); TOMBS=$(count '==')
echo "$N sessions in use for $USE_SECS s ($(awk '/requests in/{print $1}' "$D/wrk.txt") requests): $CACHED cached in Redis ($(awk -v c="$CACHED" -v n="$N" 'BEGIN{printf "%.1f", 100*c/n}') %), $TOMBS tombstones"
