#!/bin/sh
# Instructions per `GET /v1/me` with a cookie, for several builds of
# crates/tessera-benches/examples/me_request.rs, in one run:
#   bench/me_request_callgrind.sh before=/path/to/me_request after=/path/to/me_request
# Each binary, without and with the default log subscriber, twice; one
# request is (total at 2200 requests - total at 200) / 2000.
set -eu
for rep in 1 2; do
    for named in "$@"; do
        name=${named%%=*}
        bin=${named#*=}
        for mode in plain log; do
            arg=""
            [ "$mode" = log ] && arg=log
            count() {
                valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" $arg 2>&1 |
                    sed -n 's/.*Collected : //p'
            }
            a=$(count 200)
            b=$(count 2200)
            echo "$rep $name $mode $(((b - a) / 2000))"
        done
    done
done
