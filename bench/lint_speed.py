"""rule-lint on a generated file of 1,000 models x 5 rules. Goal: under 1 s.

Prints the time of lint() in this process (best of 5) and of the whole `rule-lint FILE` command (one run,
interpreter start-up and imports included).

    python bench/lint_speed.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

RULES = [
    "container in [transformer_blocks, single_transformer_blocks] and index is digit",
    "name == proj_out or name == norm_out",
    'name matches "blocks.*.attn" and not (leaf endswith norm)',
    "params >= 10M and depth <= 3",
    "class in [Block{i}, SingleBlock{i}] and index is not digit or leaf == head{i}",
]


def generate(models: int = 1000) -> str:
    out = ["schema = 1", ""]
    for i in range(models):
        out += ["[[model]]", f'name = "model-{i}"', f'applies-to = "class == Model{i}"', "shard = ["]
        out += [f'  "{rule.format(i=i)}",' if "{" in rule else f"  '{rule}'," for rule in RULES]
        out += ["]", ""]
    return "\n".join(out)


def main() -> None:
    from shardrules.lint import lint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.toml"
        path.write_text(generate())
        findings = lint([str(path)])
        assert findings == [], findings[:3]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            lint([str(path)])
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "shardrules.lint.cli", str(path)], capture_output=True,
                                text=True)
        command = time.perf_counter() - start
        assert result.returncode == 0, result.stdout + result.stderr
    size = path.stat().st_size if path.exists() else len(generate())
    print(f"1,000 models x 5 rules ({size / 1024:.0f} KiB, 6,000 expressions with applies-to):")
    print(f"  lint() in process   {min(times):.3f} s (best of 5)   goal < 1 s")
    print(f"  rule-lint command   {command:.3f} s (start-up and imports included)")


if __name__ == "__main__":
    main()
