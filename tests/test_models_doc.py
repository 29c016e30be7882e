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


def test_the_summary_counts_the_table():
    """The summary line's counts are those of the table's own columns, read off the page as a reader would."""
    import re

    text = (ROOT / "docs" / "models.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| class |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| class |")]
    rows = [r for r in rows if len(r) == len(columns)]  # the skipped classes' table has three
    summary = re.search(r"(\d+) classes planned .*?; (\d+) proven sharded == unsharded", text)
    assert int(summary.group(1)) == len(rows)
    assert int(summary.group(2)) == sum(r[columns.index("sharded == unsharded")] == "yes" for r in rows)


def test_the_readme_counts_the_classes_left_without_a_plan():
    """README's count of the classes left without a plan is the table's: processors that could take a split."""
    import re

    table = (ROOT / "docs" / "models.md").read_text().count("| none (processors could take one) |")
    readme = (ROOT / "README.md").read_text()
    said = re.search(r"Classes whose processors could take a split but that have neither a plan nor a `cannot`: "
                     r"(\d+)", " ".join(readme.split()))
    assert said and int(said.group(1)) == table, (said and said.group(0), table)
