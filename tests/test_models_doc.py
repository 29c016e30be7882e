"""docs/models.md is generated and current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.multirank
def test_models_table_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "generate_models.py"), "--check"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
