"""rule-lint installed the way pre-commit installs a hook: a fresh venv, ``pip install <repo>``; no torch."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "triton", "diffusers", "transformers", "safetensors", "tokenizers")

pytestmark = pytest.mark.multirank  # every test here starts processes


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hook")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    # what pre-commit runs for a python hook: the repository installed with its dependencies
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--report", str(root / "report.json"),
                                str(REPO)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    report = json.loads((root / "report.json").read_text())
    return root, python, sorted(item["metadata"]["name"].lower() for item in report["install"])


def test_the_hook_installs_no_model_libraries(hook_env):
    _, _, packages = hook_env
    assert not [p for p in packages if p in HEAVY or p.startswith("nvidia")], packages
    assert set(packages) == {"lark", "google-re2", "shardrules"}, packages  # the linter's imports, nothing else


def test_the_hook_lints_the_embedded_rules_and_a_bad_file(hook_env):
    root, python, _ = hook_env
    lint = root / "venv" / "bin" / "rule-lint"
    clean = subprocess.run([str(lint)], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = root / "bad.toml"
    bad.write_text('schema = 1\n\n[[model]]\nname = "x"\napplies-to = "clas == X"\nshard = ["index is digit"]\n')
    found = subprocess.run([str(lint), str(bad)], capture_output=True, text=True, timeout=60)
    assert found.returncode == 1
    assert f"{bad}:5:15: SR" in found.stdout and "unknown field 'clas'" in found.stdout


def test_model_checks_in_a_lint_only_install_name_the_extra(hook_env, tmp_path):
    root, python, _ = hook_env
    (tmp_path / "config.json").write_text("{}")
    result = subprocess.run([str(root / "venv" / "bin" / "rule-lint"), "--model", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'shardrules[fsdp]'" in result.stderr and "Traceback" not in result.stderr
    run = subprocess.run([str(root / "venv" / "bin" / "shardrules"), "plan", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and "pip install 'shardrules[fsdp]'" in run.stderr, run.stderr
