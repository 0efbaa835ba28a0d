#!/usr/bin/env python3
"""Parse a Prometheus text exposition with an independent parser.

Usage: parse_metrics.py < metrics.txt

Reads the body of Tessera's /metrics on standard input and parses it with
the official Python client's parser (prometheus_client.parser), which raises
on a line it cannot read. Prints one JSON object: {"families": [{"name",
"type", "samples": [{"name", "labels", "value"}]}]} and exits 0; on a parse
error prints the reason to stderr and exits 1.

Needs prometheus_client (pip install prometheus_client).
"""

import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # pragma: no cover - environment problem
    print(f"parse_metrics.py: prometheus_client is not installed ({e})", file=sys.stderr)
    sys.exit(1)


def number(value):
    # JSON has no infinities; the format's +Inf bucket bound stays a label.
    return value if math.isfinite(value) else str(value)


def main():
    text = sys.stdin.read()
    try:
        families = [
            {
                "name": family.name,
                "type": family.type,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": number(s.value)}
                    for s in family.samples
                ],
            }
            for family in text_string_to_metric_families(text)
        ]
    except Exception as e:  # the parser raises ValueError and others
        print(f"parse_metrics.py: not valid Prometheus text: {e!r}", file=sys.stderr)
        sys.exit(1)
    json.dump({"families": families}, sys.stdout)


if __name__ == "__main__":
    main()
