"""One launcher for every multi-rank test: N gloo ranks on CPU, a hard timeout, one JSON result per rank.

A check is a function ``check(rank, world_size, **kwargs) -> dict`` in a module importable from tests/.
Each rank runs it in an initialised process group and writes what it returns (or the exception it raised)
to ``rank<N>.json``; the pytest side asserts on those.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

import torch.multiprocessing as mp

PG_TIMEOUT_S = 60


def _rank_main(rank: int, world_size: int, target: str, kwargs: dict, workdir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    result: dict
    code = 0
    try:
        dist.init_process_group("gloo", init_method=f"file://{workdir}/pg", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=kwargs.pop("_pg_timeout", PG_TIMEOUT_S)))
        module_name, func_name = target.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        result = {"ok": True, "value": func(rank, world_size, **kwargs)}
    except BaseException as exc:  # reported to the test, which decides
        result = {"ok": False, "type": type(exc).__name__, "error": str(exc), "traceback": traceback.format_exc()}
        code = 1
    Path(workdir, f"rank{rank}.json").write_text(json.dumps(result, default=str))
    try:
        if dist.is_initialized():
            if code == 0:
                dist.barrier()
            dist.destroy_process_group()
    except Exception:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_ranks(target: str, workdir: Path, world_size: int = 2, timeout: float = 240, **kwargs) -> list[dict]:
    """Run ``target`` on ``world_size`` ranks; return each rank's result. Fails the test on a hang."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("rank*.json"):
        old.unlink()
    ctx = mp.start_processes(_rank_main, args=(world_size, target, kwargs, str(workdir)), nprocs=world_size,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while any(p.exitcode is None for p in ctx.processes):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            raise AssertionError(f"{target} did not finish within {timeout} s on {world_size} ranks (hang?)")
        time.sleep(0.05)
    results = []
    for rank, process in enumerate(ctx.processes):
        path = workdir / f"rank{rank}.json"
        if path.exists():
            result = json.loads(path.read_text())
        else:
            result = {"ok": False, "type": "Died", "error": f"rank {rank} exited with {process.exitcode}"}
        result["exitcode"] = process.exitcode
        results.append(result)
    return results


def values(results: list[dict]) -> list:
    """Each rank's returned value; fails with the rank's traceback when one raised."""
    for rank, result in enumerate(results):
        assert result["ok"], f"rank {rank} raised {result.get('type')}: {result.get('error')}\n" \
                             f"{result.get('traceback', '')}"
    return [r["value"] for r in results]
