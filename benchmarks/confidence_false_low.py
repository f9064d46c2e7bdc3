"""How often a random key body is wrongly judged ``low``, per rule, by simulation.

Run by hand: ``python benchmarks/confidence_false_low.py [N]``. Each body length from 29 to 49
characters gets N random URL-safe base64 bodies (the alphabet of real keys).
"""

from __future__ import annotations

import collections
import random
import sys

from poelis_scan.detect.grammar import MAX_BODY, MIN_BODY, classify_body

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(20261127)
    for length in (MIN_BODY, 32, 43, MAX_BODY):
        reasons: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            body = "".join(rng.choice(ALPHABET) for _ in range(length))
            confidence, reason = classify_body(body)
            if confidence.value == "low":
                reasons[reason] += 1
        total = sum(reasons.values())
        print(f"body length {length}: {total}/{n} random bodies judged low "
              f"({total / n:.2e}) {dict(reasons)}")


if __name__ == "__main__":
    main()
