"""Running the command-line tools as a user does, with captured output.

``shardrules`` and ``rule_lint`` start a fresh interpreter, as a shell does: for what only a separate process shows
(the demo from a cold start, torchrun, signals). ``cli`` and ``lint_cli`` call the same entry points in this process
with the same arguments, exit code and output, without paying for a new interpreter's imports on every call; ranks
are still spawned as separate processes.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock


def children(pid: int) -> list[int]:
    """The processes started by ``pid`` (ranks, a torchrun worker, the multiprocessing resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def shardrules(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardrules.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def rule_lint(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardrules.lint.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _in_process(main, program: str, args: tuple[str, ...], env: dict | None) -> subprocess.CompletedProcess:
    stdout, stderr = io.StringIO(), io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):  # as an interpreter prints a warning
        stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr), warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess([program, *args], code, stdout.getvalue(), stderr.getvalue())


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``shardrules ARGS`` through ``shardrules.cli.main`` in this process."""
    from shardrules.cli import main

    return _in_process(main, "shardrules", args, env)


def lint_cli(*args: str) -> subprocess.CompletedProcess:
    """``rule-lint ARGS`` through ``shardrules.lint.cli.main`` in this process."""
    from shardrules.lint.cli import main

    return _in_process(main, "rule-lint", args, None)
