"""The multi-rank tests' launcher: shardrules' own (gloo on CPU, one thread per rank, a hard timeout).

A check is a function ``check(rank, world_size, **kwargs)`` in a module importable from tests/; what it
returns must be JSON-serialisable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shardrules.launch import RankFailure, RankResult, run_on_ranks

TESTS = str(Path(__file__).parent)


def run_ranks(target: str, world_size: int = 2, timeout: float = 240, **kwargs) -> list[RankResult]:
    """Run ``target`` on ``world_size`` ranks; every rank's result, failed or not. Fails on a hang."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    try:
        results = run_on_ranks(target, world_size, kwargs, timeout=timeout, threads=1)
    except RankFailure as failure:
        results = sorted(failure.results, key=lambda r: r.rank)
    hung = [r for r in results if r.error and "did not finish" in r.error]
    assert not hung, f"{target} did not finish within {timeout} s on {world_size} ranks (hang?)"
    return results


def values(results: list[RankResult]) -> list:
    """Each rank's returned value; fails with the rank's error when one raised."""
    for result in results:
        assert result.ok, f"rank {result.rank} failed: {result.error}"
    return [r.value for r in results]
