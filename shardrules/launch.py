"""Starting N ranks for a command, and telling the user which rank failed and why.

Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set) the job runs in this process as that rank. Otherwise
``nproc`` processes are spawned, with gloo on the CPU or NCCL when there is a GPU per rank. When one rank
fails, the others are stopped after a grace period, so no job hangs on a collective a dead rank will never
join.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

GRACE_S = 20  # how long the other ranks may take to fail on their own after one rank fails
PG_TIMEOUT_S = 60


@dataclass
class RankResult:
    rank: int
    ok: bool
    value: Any = None
    error: str | None = None
    exitcode: int | None = None
    failed_at: float = float("inf")  # when the rank failed (wall clock), to tell the cause from the fallout
    fallout: bool = False  # it raised because another rank failed (all ranks agreed to stop), not a cause


class RankFailure(RuntimeError):
    def __init__(self, results: list[RankResult]) -> None:
        self.results = results
        failed = [r for r in results if not r.ok]
        first = failed[0]
        super().__init__(f"rank {first.rank} failed: {first.error}" +
                         (f" ({len(failed) - 1} other rank(s) stopped)" if len(failed) > 1 else ""))


def causes_first(results: list[RankResult]) -> list[RankResult]:
    """Failed ranks first, the cause before the fallout: a failure that no other rank's failure explains
    (earliest in time first), then the ranks that stopped because of it, then the ranks that finished."""
    return sorted(results, key=lambda r: (r.ok, r.fallout, r.failed_at, r.rank))


def _backend(world_size: int) -> str:
    import torch

    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world_size else "gloo"


def _call(target: str, rank: int, world_size: int, kwargs: dict) -> Any:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)(rank, world_size, **kwargs)


def _rank_main(rank: int, world_size: int, target: str, kwargs: dict, workdir: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    import torch.distributed as dist

    code = 0
    threads = kwargs.pop("_threads", None)
    # Progress bars share a lock; tqdm's default is a multiprocessing lock (a named semaphore) that the
    # os._exit below would leave behind, and the parent's resource tracker then warns of leaked semaphores.
    # One process, one bar writer: a thread lock is enough.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    try:
        backend = _backend(world_size)
        if backend == "nccl":
            torch.cuda.set_device(rank)
        else:
            torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world_size))
        dist.init_process_group(backend, init_method=f"file://{workdir}/pg", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=PG_TIMEOUT_S))
        result = {"ok": True, "value": _call(target, rank, world_size, kwargs)}
    except BaseException as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                  "failed_at": time.time(), "fallout": getattr(exc, "failed_rank", None) not in (None, rank)}
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


def in_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def run_on_ranks(target: str, nproc: int, kwargs: dict, timeout: float | None = None,
                 threads: int | None = None) -> list[RankResult]:
    """Run ``target`` (``"module:function"``, called as ``f(rank, world_size, **kwargs)``) on ``nproc``
    ranks; return every rank's result. Raises :class:`RankFailure` naming the first rank that failed."""
    if in_torchrun():
        return _run_here(target, kwargs)
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="shardrules-") as workdir:
        kwargs = dict(kwargs, _threads=threads)
        processes = [context.Process(target=_rank_main, args=(rank, nproc, target, kwargs, workdir), daemon=False)
                     for rank in range(nproc)]
        for process in processes:
            process.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        failed_at = None
        killed: set[int] = set()
        while any(p.exitcode is None for p in processes):
            now = time.monotonic()
            if failed_at is None and any(p.exitcode not in (None, 0) for p in processes):
                failed_at = now
            if (failed_at is not None and now - failed_at > GRACE_S) or (deadline and now > deadline):
                for rank, p in enumerate(processes):
                    if p.exitcode is None:
                        p.kill()
                        killed.add(rank)
                break
            time.sleep(0.05)
        for p in processes:
            p.join()
        results = []
        for rank, process in enumerate(processes):
            path = Path(workdir, f"rank{rank}.json")
            if path.exists():
                data = json.loads(path.read_text())
                results.append(RankResult(rank, data["ok"], data.get("value"), data.get("error"), process.exitcode,
                                          data.get("failed_at", float("inf")), data.get("fallout", False)))
            elif rank in killed:
                why = (f"did not finish within {timeout} s" if deadline and time.monotonic() > deadline
                       else "stopped after another rank failed")
                results.append(RankResult(rank, False, None, why, process.exitcode))
            else:  # died without a word (killed, out of memory): a cause, never the fallout of another failure
                results.append(RankResult(rank, False, None, f"exited with code {process.exitcode}",
                                          process.exitcode, failed_at=0.0))
    if any(not r.ok for r in results):
        raise RankFailure(causes_first(results))
    return results


def _run_here(target: str, kwargs: dict) -> list[RankResult]:
    """Under torchrun: run as this rank; every rank gets every rank's result (rank 0's first)."""
    import torch
    import torch.distributed as dist

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    created = not dist.is_initialized()
    if created:
        backend = _backend(world_size)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        dist.init_process_group(backend, timeout=timedelta(seconds=PG_TIMEOUT_S))
    kwargs = {k: v for k, v in kwargs.items() if k != "_threads"}
    try:
        value = _call(target, rank, world_size, kwargs)
        gathered: list = [None] * world_size
        dist.all_gather_object(gathered, value)
    finally:
        if created:  # a process group left alive makes gloo abort at exit
            dist.destroy_process_group()
    results = [RankResult(r, True, v) for r, v in enumerate(gathered)]
    return results if rank == 0 else results[rank:] + results[:rank]
