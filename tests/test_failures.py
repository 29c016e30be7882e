"""A rank that fails mid-load or mid-loop: every rank exits non-zero, fast, and the cause is named."""

from __future__ import annotations

import time

import pytest
import tiny_models
import torch
import toy_models
from multirank import run_ranks
from safetensors.torch import save_file

from shardrules.launch import causes_first


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    torch.manual_seed(0)
    (root / "toy").mkdir()
    save_file(toy_models.split_state_dict(toy_models.FusedToy()), str(root / "toy" / "model.safetensors"))
    (root / "toy.toml").write_text(toy_models.RULES)
    return root


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    tiny_models.build("WanTransformer3DModel").save_pretrained(root, safe_serialization=True)
    return root


def check_all_failed(results, began, cause):
    elapsed = time.monotonic() - began
    assert elapsed < 60, f"ranks took {elapsed:.0f} s to exit"
    assert all(not r.ok and r.exitcode != 0 for r in results), results
    first = causes_first(results)[0]  # the order RankFailure reports
    assert first.rank == 1 and cause in (first.error or ""), results


@pytest.mark.multirank
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_rank_failing_in_load_sharded(toy, how):
    began = time.monotonic()
    results = run_ranks("rank_checks:fail_while_loading", timeout=90, model_dir=str(toy / "toy"),
                        rules=str(toy / "toy.toml"), how=how)
    if how == "raise":
        check_all_failed(results, began, "disk vanished on rank 1")
        # the healthy rank learns why: no rank returns a partly loaded model
        assert "rank 1 failed while loading the checkpoint" in results[0].error
    else:
        check_all_failed(results, began, "exited with code 9")


@pytest.mark.multirank
def test_rank_whose_file_ends_while_read_beside_sharding(wan):
    """The thread that reads rows while fully_shard runs fails on rank 1: every rank raises, none hangs."""
    began = time.monotonic()
    results = run_ranks("rank_checks:fail_while_reading", timeout=90, model_dir=str(wan))
    check_all_failed(results, began, "ends early (file truncated while reading)")
    assert "rank 1 failed while loading the checkpoint" in results[0].error


@pytest.mark.multirank
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_rank_failing_in_the_denoising_loop(wan, how):
    began = time.monotonic()
    results = run_ranks("rank_checks:fail_while_denoising", timeout=90, model_dir=str(wan), how=how)
    check_all_failed(results, began, "out of memory on rank 1" if how == "raise" else "exited with code 9")


def test_the_cause_is_reported_before_the_ranks_that_stopped_because_of_it():
    """All ranks raise together once they agree that one failed; the healthy rank may finish first."""
    from shardrules.launch import RankFailure, RankResult

    fallout = RankResult(0, False, error="CheckpointError: rank 1 failed while loading the checkpoint: ...",
                         failed_at=100.0, fallout=True)
    cause = RankResult(1, False, error="CheckpointError: disk vanished", failed_at=100.2)
    assert [r.rank for r in causes_first([fallout, cause])] == [1, 0]
    assert str(RankFailure(causes_first([fallout, cause]))).startswith("rank 1 failed: CheckpointError: disk")


# -- backend -------------------------------------------------------------------------------------------------

def test_backend_follows_the_gpus_of_this_machine():
    from shardrules.launch import LaunchError, choose_backend

    assert choose_backend("auto", 2, gpus=0)[0] == "gloo"
    assert choose_backend("auto", 8, gpus=8) == ("nccl", "nccl, one GPU per rank (8 rank(s) here, 8 GPU(s))")
    assert choose_backend("gloo", 8, gpus=8)[0] == "gloo"
    with pytest.raises(LaunchError, match="4 ranks on this machine but 2 GPU"):
        choose_backend("auto", 4, gpus=2)  # never a silent fall back to gloo on a GPU machine
    with pytest.raises(LaunchError, match="needs GPUs"):
        choose_backend("nccl", 1, gpus=0)


def test_backend_counts_the_ranks_of_this_node_under_torchrun(monkeypatch):
    """torchrun on 2 nodes x 8 GPUs: world 16, 8 ranks per node, each node has 8 GPUs -> NCCL."""
    from shardrules.launch import choose_backend, local_ranks

    for name, value in dict(RANK="9", WORLD_SIZE="16", LOCAL_RANK="1", LOCAL_WORLD_SIZE="8", MASTER_ADDR="a",
                            MASTER_PORT="1").items():
        monkeypatch.setenv(name, value)
    assert local_ranks(nproc=2) == 8
    assert choose_backend("auto", local_ranks(2), gpus=8)[0] == "nccl"


@pytest.mark.multirank
def test_forkserver_ranks_start_with_the_libraries_imported():
    """start_method="forkserver" (what the suite's own launches use): the ranks fork from a server that imported
    diffusers' model classes once, which spawned ranks (the default) import themselves when they need them."""
    from multirank import ready_for_ranks

    from shardrules.launch import LaunchError, run_on_ranks

    ready_for_ranks()
    names = ["diffusers.models.transformers", "diffusers.models.autoencoders"]
    for method, want in (("forkserver", names), ("spawn", [])):
        results = run_on_ranks("rank_checks:imported", 2, {"names": names}, timeout=120, threads=1,
                               start_method=method)
        assert [r.value for r in results] == [want, want], method
    with pytest.raises(LaunchError, match="start_method is 'spawn' or 'forkserver', not 'fork'"):
        run_on_ranks("rank_checks:imported", 2, {"names": names}, start_method="fork")


@pytest.mark.multirank
def test_a_frozen_rank_is_named_as_the_cause():
    """Rank 1 is SIGSTOPped; rank 0's collective times out. The report blames rank 1, and the launcher does not wait
    out its grace period for a rank that cannot fail on its own."""
    from multirank import ready_for_ranks

    from shardrules.launch import RankFailure, run_on_ranks

    ready_for_ranks()
    began = time.monotonic()
    with pytest.raises(RankFailure) as failure:
        run_on_ranks("rank_checks:freeze_one", 2, {}, timeout=120, threads=1, collective_timeout=5)
    first = causes_first(failure.value.results)[0]
    assert first.rank == 1 and first.error.startswith("stopped answering: the process was stopped"), first
    assert time.monotonic() - began < 60


@pytest.mark.multirank
def test_a_library_error_names_where_it_was_raised_and_verbose_gives_the_traceback():
    from multirank import ready_for_ranks

    from shardrules.cli import describe_failure
    from shardrules.launch import RankFailure, run_on_ranks

    ready_for_ranks()
    import rank_checks

    with pytest.raises(RankFailure) as failure:  # the target as a function object: spawned ranks import it by name
        run_on_ranks(rank_checks.library_error, 2, {}, timeout=120, threads=1, collective_timeout=10)
    line = describe_failure(failure.value)
    assert line.startswith("error: rank 0 failed: ValueError: Invalid sample size (at rank_checks.py:"), line
    assert line.endswith("\n  (rank 1: finished, then waited for the others)"), line
    assert "Traceback" not in line
    verbose = describe_failure(failure.value, verbose=True)
    assert verbose.startswith("rank 0 traceback:\nTraceback (most recent call last):"), verbose
    assert 'raise ValueError("Invalid sample size")' in verbose and verbose.endswith(line)


@pytest.mark.multirank
def test_a_rank_that_never_finishes_is_named_and_stopped_at_the_collective_timeout():
    """Rank 0 hangs after its last collective; rank 1 finishes and waits for it at the end. Rank 1's wait times out
    after the collective timeout (--timeout), so the run fails naming rank 0, instead of rank 1 exiting 0 and the
    launcher waiting for rank 0 forever."""
    from multirank import ready_for_ranks

    from shardrules.launch import UNFINISHED, WAITED, RankFailure, run_on_ranks

    ready_for_ranks()
    began = time.monotonic()
    with pytest.raises(RankFailure) as failure:
        run_on_ranks("rank_checks:hang_one", 2, {}, timeout=120, threads=1, collective_timeout=5)
    cause, waited = causes_first(failure.value.results)
    assert (cause.rank, cause.error) == (0, UNFINISHED), cause
    assert waited.rank == 1 and waited.error.startswith(WAITED) and waited.error.endswith("(--timeout 5 s)"), waited
    assert 4.5 < float(waited.error.removeprefix(WAITED).split()[0]) < 20  # the collective timeout, not a crash
    assert time.monotonic() - began < 60  # not the 20 s grace after the timeout, and far from rank 0's 600 s


@pytest.mark.multirank
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_to_the_launcher_stops_every_rank_and_leaves_nothing(tmp_path, monkeypatch, name):
    """Ctrl-C to the launcher alone, kill, and the terminal closing (SIGHUP): every rank is stopped, the temporary
    folder removed, and the launcher raises Interrupted with the signal (the command turns it into one line and
    128 + the signal number, as tests/test_signals.py checks end to end)."""
    import os
    import signal
    import tempfile
    import threading

    from commands import children
    from multirank import TESTS

    from shardrules.errors import Interrupted
    from shardrules.launch import run_on_ranks

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the launcher makes its folder
    monkeypatch.syspath_prepend(TESTS)
    started = tmp_path / "started"
    started.mkdir()

    signum = getattr(signal, name)

    def send():
        deadline = time.monotonic() + 60
        while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signum)

    threading.Thread(target=send, daemon=True).start()
    with pytest.raises(Interrupted) as stopped:
        run_on_ranks("rank_checks:wait_forever", 2, {"started": str(started)}, timeout=120, threads=1)
    assert stopped.value.signum == signum
    assert not list(tmp_path.glob("shardrules-*"))
    time.sleep(0.5)
    ranks = [pid for pid in children(os.getpid()) if "spawn_main" in _cmdline(pid)]
    assert not [pid for pid in ranks if os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)]


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.parametrize("change, words", [
    ({"LOCAL_WORLD_SIZE": "x"}, "LOCAL_WORLD_SIZE='x' is not a whole number"),
    ({"RANK": "abc"}, "RANK='abc' is not a whole number"),
    ({"MASTER_PORT": "abc"}, "MASTER_PORT='abc' is not a whole number"),
    ({"RANK": "-1"}, "RANK='-1' is not a whole number"),
    ({"RANK": "3"}, "RANK must be less than WORLD_SIZE"),
    ({"LOCAL_RANK": "2"}, "LOCAL_RANK must be less than LOCAL_WORLD_SIZE"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT must be a port"),
    ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE must be at least 1"),
])
def test_torchrun_variables_torchrun_never_sets_are_refused_before_anything_starts(monkeypatch, change, words):
    """RANK=3 with WORLD_SIZE=1 used to wait out the collective timeout; the others failed with a traceback."""
    from shardrules.launch import LaunchError, in_torchrun

    variables = dict(RANK="0", WORLD_SIZE="2", LOCAL_RANK="1", LOCAL_WORLD_SIZE="2", MASTER_ADDR="a",
                     MASTER_PORT="29500")
    for name, value in {**variables, **change}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(LaunchError, match=words):
        in_torchrun()


def test_torchrun_variables_refused_by_the_command_exit_2(monkeypatch, tmp_path):
    import tiny_models
    from commands import cli

    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path)
    for name, value in dict(RANK="3", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1", MASTER_ADDR="a",
                            MASTER_PORT="29500").items():
        monkeypatch.setenv(name, value)
    done = cli("run", str(tmp_path), "--steps", "1")
    assert done.returncode == 2 and done.stderr.startswith("error: torchrun's variables do not fit together")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_full_temporary_folder_is_one_line(monkeypatch, tmp_path):
    """No room for the launcher's folder: a LaunchError naming it; a rank's result cut short: named, never a
    JSONDecodeError in the launcher."""
    import tempfile

    from shardrules.launch import LaunchError, _read_result, run_on_ranks

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))  # mkdir under a file fails as a full disk does
    with pytest.raises(LaunchError, match="cannot make a temporary folder in .*a-file"):
        run_on_ranks("rank_checks:hang_one", 2, {})
    cut = tmp_path / "work" / "rank0.json"
    cut.parent.mkdir()
    cut.write_text('{"ok": true, "val')
    assert _read_result(cut).startswith(f"its result in {cut} cannot be read (JSONDecodeError): is the temporary")


def test_a_rank_result_is_read_back_typed():
    from shardrules.runner.report import RunResult, run_report

    result = RunResult(plan="P", split="none", world_size=2, load_s=0.5, read_mib=1.0, vmrss_mib=100, maxrss_mib=120,
                       step_s=0.01, notes=["n"], first_step_s=2.0)
    assert RunResult.from_dict(result.as_dict()) == result
    assert run_report([(0, result)]).splitlines()[2] == ("rank 0: load 0.50 s, read 1.00 MiB, VmRSS 100 MiB (peak "
                                                          "120 MiB), 10.0 ms/step, first step 2.00 s (compiling)")
    with pytest.raises(ValueError, match="fields this launcher does not know: extra"):
        RunResult.from_dict(dict(result.as_dict(), extra=1))
    with pytest.raises(TypeError):
        RunResult.from_dict({"plan": "P"})  # fields missing
