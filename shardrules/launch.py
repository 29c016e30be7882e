"""Starting N ranks for a command, and telling the user which rank failed and why.

Under ``torchrun`` (its whole set of variables: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``) the job runs in this process as that rank; part of that set is an error that
names what is missing. Otherwise ``nproc`` processes are spawned on this machine.

Backend: NCCL when every rank on this machine has a GPU of its own (``LOCAL_WORLD_SIZE`` under torchrun,
``nproc`` when spawned), each rank on ``cuda:LOCAL_RANK``; gloo on the CPU when the machine has no GPU. More
ranks on a machine than it has GPUs is an error unless ``backend="gloo"`` is asked for. Collectives time out
after ``timeout`` seconds (10 minutes by default: a rank reading tens of GB from network storage can be slow
between two agreement points); a failing rank still stops the others within seconds, because every rank
learns of a failure at the next agreement point, and spawned ranks that do not are killed after ``GRACE_S``.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import Interrupted, LaunchError, RankFailure, printable  # noqa: F401 (the launcher's errors, imported from here)

WAITED = "finished, then waited "  # a rank whose final barrier timed out
UNFINISHED = "did not finish: the ranks that finished timed out waiting for it"
GRACE_S = 20  # how long the other ranks may take to fail on their own after one rank fails
PG_TIMEOUT_S = 600  # the default collective timeout
BACKENDS = ("auto", "nccl", "gloo")
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


# Ctrl-C, kill, and the terminal closing (SIGHUP): each stops every rank and removes the temporary folder
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _die_with_parent() -> None:
    """Ask Linux to kill this rank when the launcher dies (even by SIGKILL), so no rank runs on orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the ranks still stop at their next collective's timeout
        pass


# Why a rank was killed when it is the one that stopped answering: the others' collectives timed out on it.
FROZEN = ("stopped answering: the process was stopped (SIGSTOP or a debugger) and the other ranks timed out "
          "waiting for it")


def _is_stopped(pid: int) -> bool:
    """Whether the process is stopped (state T or t in /proc): frozen, not merely slow."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("T", "t")


def _stop(processes: list) -> None:
    """SIGTERM every rank still running, then SIGKILL those alive after 3 s."""
    for p in processes:
        if p.exitcode is None:
            p.terminate()
    deadline = time.monotonic() + 3
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            p.kill()
            p.join()


@dataclass
class RankResult:
    rank: int
    ok: bool
    value: Any = None
    error: str | None = None
    exitcode: int | None = None
    failed_at: float = float("inf")  # when the rank failed (wall clock), to tell the cause from the fallout
    fallout: bool = False  # it raised because another rank failed (all ranks agreed to stop), not a cause
    traceback: str | None = None  # the rank's own traceback, for --verbose


def raised_at(exc: BaseException) -> str:
    """`` (at FILE:LINE)`` of the frame that raised ``exc``, the file relative to its package's folder, for errors
    that are not shardrules' own (those name the file or rule they are about); else ``""``."""
    from .errors import ShardRulesError

    if isinstance(exc, ShardRulesError) or exc.__traceback__ is None:
        return ""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    path = Path(frame.filename)
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            path = Path(*parts[parts.index(marker) + 1:])
            break
    else:
        path = Path(path.name)
    return f" (at {path}:{frame.lineno})"


def causes_first(results: list[RankResult]) -> list[RankResult]:
    """Failed ranks first, the cause before the fallout: a failure that no other rank's failure explains
    (earliest in time first), then the ranks that stopped because of it, then the ranks that finished."""
    return sorted(results, key=lambda r: (r.ok, r.fallout, r.failed_at, r.rank))


def choose_backend(requested: str, local_ranks: int, gpus: int | None = None) -> tuple[str, str]:
    """The backend for ``local_ranks`` ranks on this machine, and why it was chosen (said once to the user)."""
    if requested not in BACKENDS:
        raise LaunchError(f"backend must be one of {', '.join(BACKENDS)}, not {requested!r}")
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested == "gloo":
        return "gloo", "gloo on the CPU, as asked"
    if gpus == 0:
        if requested == "nccl":
            raise LaunchError("--backend nccl needs GPUs; this machine has none")
        return "gloo", "gloo on the CPU: this machine has no GPU"
    if gpus >= local_ranks:
        return "nccl", f"nccl, one GPU per rank ({local_ranks} rank(s) here, {gpus} GPU(s))"
    raise LaunchError(f"{local_ranks} ranks on this machine but {gpus} GPU(s): NCCL needs one GPU per rank; "
                      f"start at most {gpus} ranks here, or pass --backend gloo to run on the CPU")


def local_ranks(nproc: int) -> int:
    """How many ranks run on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else the ranks spawned here."""
    return int(os.environ["LOCAL_WORLD_SIZE"]) if in_torchrun() else nproc


Target = Callable[..., Any] | str  # a module-level function, or "package.module:function"


def _call(target: Target, rank: int, world_size: int, kwargs: dict) -> Any:
    if callable(target):
        return target(rank, world_size, **kwargs)
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)(rank, world_size, **kwargs)


def _rank_main(rank: int, world_size: int, target: Target, kwargs: dict, workdir: str, backend: str,
               timeout: float, threads: int | None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C reaches the whole process group: the launcher stops the ranks; a rank itself neither prints a
    # KeyboardInterrupt traceback nor writes into a folder the launcher may already have removed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    import torch
    import torch.distributed as dist

    code = 0
    # Progress bars share a lock; tqdm's default is a multiprocessing lock (a named semaphore) that the
    # os._exit below would leave behind, and the parent's resource tracker then warns of leaked semaphores.
    # One process, one bar writer: a thread lock is enough.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    from .extras import quiet_library_notices

    quiet_library_notices()
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        else:
            torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world_size))
        dist.init_process_group(backend, init_method=f"file://{workdir}/pg", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout))
        result = {"ok": True, "value": _call(target, rank, world_size, kwargs)}
    except BaseException as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}{raised_at(exc)}",
                  "traceback": traceback.format_exc(),
                  "failed_at": time.time(), "fallout": getattr(exc, "failed_rank", None) not in (None, rank)}
        code = 1
    result_path = Path(workdir, f"rank{rank}.json")
    try:
        result_path.write_text(json.dumps(result, default=str))
    except OSError as exc:  # a full or removed temporary folder: the launcher reports the rank's result unreadable
        print(f"rank {rank}: cannot write its result to {workdir}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(1)
    try:
        if dist.is_initialized():
            if code == 0:
                began = time.monotonic()
                try:
                    dist.barrier()
                except Exception:  # a rank that never finished (hung in its job): this one must not pass for done
                    result = {"ok": False, "error": f"{WAITED}{time.monotonic() - began:.1f} s at the end for the "
                              f"other ranks (--timeout {timeout:g} s)", "failed_at": time.time(), "fallout": True,
                              "waited": True}
                    result_path.write_text(json.dumps(result))
                    code = 1
            dist.destroy_process_group()
    except Exception:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def in_torchrun() -> bool:
    """Whether this process is a rank started by torchrun. Part of its variables, or values torchrun never sets, is
    an error (``LaunchError``), never a guess: ``RANK=3`` with ``WORLD_SIZE=1`` would wait out the timeout first."""
    present = [v for v in TORCHRUN_VARIABLES if v in os.environ]
    if not present:
        return False
    missing = [v for v in TORCHRUN_VARIABLES if v not in os.environ]
    if missing:
        raise LaunchError(f"{', '.join(present)} set but not {', '.join(missing)}: start the ranks with torchrun "
                          f"(which sets them all), or unset {', '.join(present)} to have --nproc ranks spawned")
    number = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_PORT"):
        text = os.environ[name]
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise LaunchError(f"{name}={printable(text[:40])!r} is not a whole number (torchrun sets it)")
        number[name] = int(text)
    checks = [
        (number["WORLD_SIZE"] >= 1, "WORLD_SIZE must be at least 1"),
        (number["RANK"] < number["WORLD_SIZE"], "RANK must be less than WORLD_SIZE"),
        (1 <= number["LOCAL_WORLD_SIZE"] <= number["WORLD_SIZE"], "LOCAL_WORLD_SIZE must be 1 to WORLD_SIZE"),
        (number["LOCAL_RANK"] < number["LOCAL_WORLD_SIZE"], "LOCAL_RANK must be less than LOCAL_WORLD_SIZE"),
        (1 <= number["MASTER_PORT"] <= 65535, "MASTER_PORT must be a port, 1 to 65535"),
    ]
    for holds, rule in checks:
        if not holds:
            values = ", ".join(f"{k}={v}" for k, v in number.items())
            raise LaunchError(f"torchrun's variables do not fit together: {rule} ({values})")
    return True


def run_on_ranks(target: Target, nproc: int, kwargs: dict, timeout: float | None = None,
                 threads: int | None = None, backend: str = "auto",
                 collective_timeout: float = PG_TIMEOUT_S, start_method: str = "spawn") -> list[RankResult]:
    """Run ``target`` (a module-level function, which spawned ranks import by its qualified name, or
    ``"package.module:function"``; called as ``f(rank, world_size, **kwargs)``) on ``nproc``
    ranks (or as this torchrun rank); return every rank's result. ``timeout`` bounds the whole job,
    ``collective_timeout`` each collective. Raises :class:`RankFailure` naming the first rank that failed.

    ``start_method="forkserver"`` is for a process that launches many jobs (a notebook, a service, a test suite):
    the ranks fork from one server process (Python's multiprocessing forkserver, started at the first such launch
    with this process's ``sys.path`` and environment) that has imported torch, diffusers' model classes, shardrules'
    loader and the first target's module, instead of each rank of each job importing them again (2-3 s a job on a
    CPU); the Linux parent death signal of the ranks then goes with the server, which ends with this process."""
    chosen, _ = choose_backend(backend, local_ranks(nproc))
    if in_torchrun():
        return _run_here(target, kwargs, chosen, collective_timeout)
    import multiprocessing

    if start_method not in ("spawn", "forkserver"):
        raise LaunchError(f"start_method is 'spawn' or 'forkserver', not {start_method!r}")
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":  # read when the server starts: the first such launch of this process
        module = target.partition(":")[0] if isinstance(target, str) else target.__module__
        context.set_forkserver_preload(["torch", "torch.distributed", "diffusers", "diffusers.models.transformers",
                                        "diffusers.models.autoencoders", "shardrules.loader.load", module])
    try:
        temporary = tempfile.TemporaryDirectory(prefix="shardrules-")
    except OSError as exc:
        raise LaunchError(f"cannot make a temporary folder in {tempfile.gettempdir()}: {exc.strerror} (set TMPDIR "
                          f"to a folder with room)") from None
    with temporary as workdir:
        processes = [context.Process(target=_rank_main, daemon=False,
                                     args=(rank, nproc, target, kwargs, workdir, chosen, collective_timeout,
                                           threads))
                     for rank in range(nproc)]
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, _interrupt) for s in STOP_SIGNALS}
        try:
            for process in processes:
                process.start()
            killed = _wait(processes, timeout, workdir)
        except Interrupted:
            _stop(processes)
            raise
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
        results = []
        for rank, process in enumerate(processes):
            path = Path(workdir, f"rank{rank}.json")
            data = _read_result(path) if path.exists() else None
            if isinstance(data, str):
                results.append(RankResult(rank, False, None, data, process.exitcode, failed_at=0.0))
            elif data is not None:
                results.append(RankResult(rank, data["ok"], data.get("value"), data.get("error"), process.exitcode,
                                          data.get("failed_at", float("inf")), data.get("fallout", False),
                                          data.get("traceback")))
            elif rank in killed:
                why = killed[rank]  # a frozen rank is the cause of the others' timeouts, whenever they noticed
                results.append(RankResult(rank, False, None, why, process.exitcode,
                                          failed_at=0.0 if why in (FROZEN, UNFINISHED) else float("inf")))
            else:  # died without a word (killed, out of memory): a cause, never the fallout of another failure
                results.append(RankResult(rank, False, None, f"exited with code {process.exitcode}",
                                          process.exitcode, failed_at=0.0))
    if any(not r.ok for r in results):
        raise RankFailure(causes_first(results))
    return results


def _read_result(path: Path) -> dict | str:
    """A rank's result file, or why it cannot be read (a full temporary folder leaves it cut short)."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("ok"), bool):
            return data
        return f"its result in {path} is not a result"
    except (OSError, ValueError) as exc:
        return (f"its result in {path} cannot be read ({type(exc).__name__}): is the temporary folder "
                f"{path.parent.parent} full?")


def _only_waited(processes: list, workdir: str) -> bool:
    """Whether every rank that failed had finished its job and only timed out waiting for the others at the end."""
    for rank, p in enumerate(processes):
        if p.exitcode not in (None, 0):
            data = _read_result(Path(workdir, f"rank{rank}.json"))
            if isinstance(data, str) or not data.get("waited"):
                return False
    return True


def _wait(processes: list, timeout: float | None, workdir: str) -> dict[int, str]:
    """Wait for the ranks; stop the rest ``GRACE_S`` after one fails, or all at ``timeout``. Returns the ranks
    killed, with why."""
    deadline = None if timeout is None else time.monotonic() + timeout
    failed_at = None
    killed: dict[int, str] = {}
    while any(p.exitcode is None for p in processes):
        now = time.monotonic()
        if failed_at is None and any(p.exitcode not in (None, 0) for p in processes):
            failed_at = now
        running = [p for p in processes if p.exitcode is None]
        frozen = failed_at is not None and all(_is_stopped(p.pid) for p in running)  # cannot fail on their own
        # ranks that finished and timed out waiting for the rest: the ranks still running are the cause, hung
        hung = failed_at is not None and _only_waited(processes, workdir)
        if (failed_at is not None and (now - failed_at > GRACE_S or frozen or hung)) \
                or (deadline and now > deadline):
            why = (f"did not finish within {timeout} s" if deadline and now > deadline
                   else UNFINISHED if hung else "stopped after another rank failed")
            for rank, p in enumerate(processes):
                if p.exitcode is None:
                    killed[rank] = FROZEN if _is_stopped(p.pid) else why
                    p.kill()
            break
        time.sleep(0.05)
    for p in processes:
        p.join()
    return killed


def _run_here(target: Target, kwargs: dict, backend: str, timeout: float) -> list[RankResult]:
    """Under torchrun: run as this rank; every rank gets every rank's result (rank 0's first)."""
    import torch
    import torch.distributed as dist

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    created = not dist.is_initialized()
    if created:
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    try:
        value = _call(target, rank, world_size, kwargs)
        gathered: list = [None] * world_size
        dist.all_gather_object(gathered, value)
    finally:
        if created:  # a process group left alive makes gloo abort at exit
            dist.destroy_process_group()
    results = [RankResult(r, True, v) for r, v in enumerate(gathered)]
    return results if rank == 0 else results[rank:] + results[:rank]
