"""The large fuzzing budget: >= 100,000 inputs through parsing, compiling and linting.

Random text, grammar-aware mutations of valid rules, and random (and damaged) TOML rule documents. Only the
project's typed rule errors, each with a line and a column, may come out; anything else is printed as a
failure with its input (to be kept as a regression test in tests/test_fuzz.py).

    python bench/fuzz_rules.py [--expressions 100000] [--documents 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzz_targets as ft  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expressions", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures: list[tuple[str, str, str]] = []
    began = time.perf_counter()
    kinds = (("expression", args.expressions, ft.expression, ft.check_expression),
             ("document", args.documents, ft.document, ft.check_document))
    for kind, count, generate, check in kinds:
        start = time.perf_counter()
        for _ in range(count):
            text = generate(rng)
            try:
                check(text)
            except ft.Failure as exc:
                failures.append((kind, text, str(exc)))
        print(f"{kind}s: {count:,} inputs in {time.perf_counter() - start:.1f} s")
    total = args.expressions + args.documents
    print(f"total: {total:,} inputs, {len(failures)} failures, {time.perf_counter() - began:.1f} s")
    for kind, text, why in failures[:20]:
        print(f"FAIL {kind}: {why}\n  input: {text!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
