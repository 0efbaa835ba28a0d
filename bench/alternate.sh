#!/usr/bin/env bash
# Throughput of several endpoints (any servers) measured in turn, round after
# round, so that the machine's drift falls on all of them alike; prints each
# one's median and its ratio to the first, as the ratio of the medians and as
# the median of the per-round ratios. The server(s) should be pinned to CPU 0
# (`taskset -c 0 tessera serve`); wrk runs on CPU 1, and CPU 0's busy time per
# request (from /proc/stat: user, nice, system, irq, softirq; steal left out)
# is reported beside the rate.
#
#   ROUNDS=20 SECS=2 bench/alternate.sh \
#     'healthz http://127.0.0.1:8080/healthz' \
#     'cookie http://127.0.0.1:8080/v1/me Cookie: __Host-tessera=ts_...' \
#     'peer http://127.0.0.1:3001/me Cookie: id=...'
#
# Each argument is NAME, URL and optionally one request header. Loopback only
# unless you name another address; every run stops by itself.
set -euo pipefail
rounds=${ROUNDS:-20}
secs=${SECS:-2}
connections=${CONNECTIONS:-64}
[ $# -ge 2 ] || { echo "usage: bench/alternate.sh 'NAME URL [HEADER]' 'NAME URL [HEADER]' ..." >&2; exit 2; }
for tool in wrk taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench/alternate.sh: $tool is needed" >&2; exit 1; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

busy() { awk '/^cpu0 /{print $2+$3+$4+$7+$8}' /proc/stat; }

for round in $(seq "$rounds"); do
    for target in "$@"; do
        name=${target%% *}
        rest=${target#* }
        url=${rest%% *}
        header=""
        [ "$rest" != "$url" ] && header=${rest#* }
        args=(-t2 "-c$connections" "-d${secs}s")
        [ -n "$header" ] && args+=(-H "$header")
        before=$(busy)
        report=$(taskset -c 1 wrk "${args[@]}" "$url")
        after=$(busy)
        requests=$(awk '/requests in/{print $1}' <<< "$report")
        rate=$(awk '/Requests\/sec/{print $2}' <<< "$report")
        bad=$(awk '/Non-2xx/{print $5}' <<< "$report")
        [ -n "$bad" ] && { echo "bench/alternate.sh: $name answered $bad requests with non-2xx" >&2; exit 1; }
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rate" "$requests" "$((after - before))" >> "$out"
    done
done

python3 - "$out" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
tick = 1e6 / int(sys.argv[2])
names = list(dict.fromkeys(r[1] for r in rows))
rate = {n: [] for n in names}
cpu = {n: [] for n in names}
for _, name, r, n, b in rows:
    rate[name].append(float(r))
    cpu[name].append(float(b) * tick / max(int(n), 1))
base = names[0]
print(f"{'endpoint':<12} {'req/s':>10} {'CPU0 µs/req':>12} {'÷ ' + base + ' (medians)':>22} {'(per round)':>12}")
for n in names:
    ratio = statistics.median(rate[n]) / statistics.median(rate[base])
    per_round = statistics.median(a / b for a, b in zip(rate[n], rate[base]))
    print(f"{n:<12} {statistics.median(rate[n]):>10.0f} {statistics.median(cpu[n]):>12.2f} {ratio:>22.3f} {per_round:>12.3f}")
PY
