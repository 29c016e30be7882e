"""Ctrl-C and SIGTERM stop every rank within seconds, with one line and the shell's exit code; a SIGKILLed
launcher takes its ranks with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tiny_models
from commands import children

pytestmark = pytest.mark.multirank  # every test here starts processes


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals") / "wan"
    tiny_models.build("WanTransformer3DModel").save_pretrained(folder, safe_serialization=True)
    return folder


def start(model_dir, tmp: str) -> tuple[subprocess.Popen, list[int], Path]:
    """A long run (many steps); returns once both ranks are up and rank 0's progress bar has been drawn (the line a
    message printed after an interruption must not be glued to), with the file that collects stderr."""
    err = Path(tmp) / "stderr.txt"
    with open(err, "w") as stderr:  # a file, read while the run goes on (a pipe nobody reads could fill)
        launcher = subprocess.Popen([sys.executable, "-m", "shardrules.cli", "run", str(model_dir), "--nproc", "2",
                                     "--steps", "100000"], stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                    start_new_session=True, env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=tmp))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and launcher.poll() is None:
        ranks = [c for c in children(launcher.pid) if "rank" in _cmdline(c) or "spawn_main" in _cmdline(c)]
        if len(ranks) >= 2 and "denoising:" in err.read_text():
            return launcher, ranks, err
        time.sleep(0.2)
    launcher.kill()
    raise AssertionError(f"the ranks did not start denoising:\n{err.read_text()[-2000:]}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


# Ctrl-C from a terminal (SIGINT to the whole process group) through the command, end to end. A signal to the launcher
# alone (SIGINT, SIGTERM, SIGHUP) takes the same path in run_on_ranks: tests/test_failures.py sends each in-process.
@pytest.mark.parametrize("how, code", [("SIGINT to the group", 130)])
def test_interrupting_stops_every_rank(model_dir, how, code):
    with tempfile.TemporaryDirectory() as tmp:
        launcher, ranks, err = start(model_dir, tmp)
        sent = time.monotonic()
        if how == "SIGINT to the group":
            os.killpg(launcher.pid, signal.SIGINT)
        else:
            launcher.send_signal(signal.SIGINT if "SIGINT" in how else signal.SIGTERM)
        launcher.wait(timeout=30)
        assert time.monotonic() - sent < 5
        stderr = err.read_text()
        assert launcher.returncode == code, stderr
        assert stderr.endswith("\ninterrupted\n") and "Traceback" not in stderr, stderr[-500:]
        time.sleep(0.5)
        assert not [r for r in ranks if alive(r)]
        assert not list(Path(tmp).glob("shardrules-*"))


def test_ranks_exit_when_the_launcher_is_killed(model_dir):
    with tempfile.TemporaryDirectory() as tmp:
        launcher, ranks, _ = start(model_dir, tmp)
        launcher.kill()
        launcher.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [r for r in ranks if alive(r)]:
            time.sleep(0.2)
        assert not [r for r in ranks if alive(r)]
