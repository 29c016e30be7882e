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


def ready_for_ranks() -> None:
    """One thread per rank, and the checks of tests/ importable by the ranks spawned from here."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)


def run_ranks(target: str, world_size: int = 2, timeout: float = 240, **kwargs) -> list[RankResult]:
    """Run ``target`` on ``world_size`` ranks; every rank's result, failed or not. Fails on a hang."""
    ready_for_ranks()
    try:
        # the ranks fork from a server that imported torch, diffusers and the checks once for the whole session; it
        # keeps the environment it started with, so a check that needs a variable takes it as an argument
        results = run_on_ranks(target, world_size, kwargs, timeout=timeout, threads=1, start_method="forkserver")
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


def run_several(calls: dict[str, tuple[str, dict]], world_size: int = 2, timeout: float = 300) -> dict[str, list]:
    """Several checks in one launch of the ranks (each launch costs every rank its imports): ``{label: (target,
    kwargs)}`` -> ``{label: [each rank's value or {"error": ...}]}``; one check's failure does not hide another's."""
    results = values(run_ranks("multirank:_several", world_size, timeout=timeout,
                               calls=[[label, target, kwargs] for label, (target, kwargs) in calls.items()]))
    return {label: [result[label] for result in results] for label in calls}


def checked(values_per_rank: list) -> list:
    """The values of one check of :func:`run_several`; fails with a rank's error when it raised."""
    for rank, value in enumerate(values_per_rank):
        assert not (isinstance(value, dict) and set(value) == {"error"}), f"rank {rank} failed: {value['error']}"
    return values_per_rank


def _several(rank: int, world_size: int, calls: list) -> dict:
    import importlib

    out = {}
    for label, target, kwargs in calls:
        module_name, func_name = target.split(":")
        try:
            out[label] = getattr(importlib.import_module(module_name), func_name)(rank, world_size, **kwargs)
        except Exception as exc:
            out[label] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
