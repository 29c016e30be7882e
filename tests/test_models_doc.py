"""docs/models.md is generated and current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_models_table_is_current():
    """The generator's --check, in this process (a new interpreter would pay torch's and diffusers' imports again)."""
    spec = importlib.util.spec_from_file_location("generate_models", ROOT / "docs" / "generate_models.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stale = "docs/models.md is stale: run python docs/generate_models.py"
    assert generator.OUT.read_text() == generator.render(), stale
