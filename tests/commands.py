"""Running the command-line tools as a user does: a fresh interpreter, captured output, a timeout."""

from __future__ import annotations

import os
import subprocess
import sys


def shardrules(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardrules.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def rule_lint(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardrules.lint.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
