#!/usr/bin/env bash
# Instructions per request of a real `tessera serve` (the socket, hyper and
# every middleware included), counted by callgrind around N keep-alive
# requests after 300 unmeasured ones:
#   bench/served_request_callgrind.sh target/release/tessera /healthz
#   bench/served_request_callgrind.sh target/release/tessera /v1/me cookie
#   bench/served_request_callgrind.sh target/release/tessera /v1/me bearer
# and the same for the axum + tower-sessions peer of docs/BENCHMARKS.md
# ("Side by side"), signed in by its POST /login:
#   bench/served_request_callgrind.sh peers/rust/target/release/peer-axum /me peer
# KEEP=FILE keeps the profile (callgrind_annotate FILE).
# Instruction counts do not move with the machine's load, unlike req/s.
set -euo pipefail
BIN=$1; P=$2; AUTH=${3:-cookie}; N=${N:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=$((20000 + RANDOM % 10000)); D=$(mktemp -d); OUT=$D/callgrind.out
trap 'kill $VPID 2>/dev/null || true; rm -rf "$D"' EXIT
if [ "$AUTH" = peer ]; then
  ADDR=127.0.0.1:$PORT MODE=session STORE=memory \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" "$BIN" > "$D/log" 2>&1 &
else
  TESSERA_DATA_DIR=$D/data TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_PUBLIC_URL=http://127.0.0.1:$PORT \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" "$BIN" serve > "$D/log" 2>&1 &
fi
VPID=$!
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
python3 "$HERE/served_request_client.py" "$PORT" "$P" "$N" 300 "$VPID" "$AUTH" > /dev/null
kill "$VPID"; wait "$VPID" 2>/dev/null || true
TOTAL=$(callgrind_annotate "$OUT" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",","",$1); print $1; done=1}')
[ -n "${KEEP:-}" ] && cp "$OUT" "$KEEP"
echo "$P $AUTH: $((TOTAL / N)) instructions per request"
