"""rule-lint: one fixture and snapshot per code, positions, formats, the schema, and no tracebacks."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from shardrules.lint.cli import main
from shardrules.lint.registry import CHECKS
from shardrules.rules.reader import _embedded_files, tomllib

FIXTURES = Path(__file__).parent / "fixtures" / "lint"
MODELS = json.loads((FIXTURES / "models.json").read_text())


def rule_lint(capsys, *args, cwd=FIXTURES) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(list(args))
    finally:
        os.chdir(old)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("code", sorted(CHECKS))
def test_fixture_matches_snapshot(capsys, code):
    fixture = FIXTURES / f"{code}.toml"
    # SR100's fixture is a path that is not there (a moved file a hook still names)
    assert fixture.exists() != (code == "SR100"), f"no fixture for {code}"
    args = [fixture.name, "--select", code, "--show-embedded"] + (["--model", MODELS[code]] if code in MODELS else [])
    exit_code, out, err = rule_lint(capsys, *args)
    assert out == (FIXTURES / f"{code}.expected").read_text()
    assert f": {code} " in out  # the fixture shows its code
    assert exit_code == (0 if CHECKS[code].SEVERITY == "info" else 1), err


def test_every_check_has_a_ruff_style_docstring():
    for code, module in CHECKS.items():
        doc = module.__doc__
        assert doc.startswith(f"{code} {module.NAME}.")
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert heading in doc, (code, heading)


def token_at(path: Path, line: int, column: int) -> str:
    return path.read_text().splitlines()[line - 1][column - 1:]


def test_positions_point_at_tokens_in_multiline_strings_and_inline_tables(capsys):
    _, out, _ = rule_lint(capsys, "SR002.toml", "SR003.toml", "SR204.toml", "--format", "json")
    findings = json.loads(out)
    got = {(f["path"], f["code"]): token_at(FIXTURES / f["path"], f["line"], f["column"]) for f in findings}
    assert got[("SR002.toml", "SR002")].startswith("indx is digit")  # second line of a """ string
    assert any(token_at(FIXTURES / f["path"], f["line"], f["column"]).startswith('3", reshard')
               for f in findings if f["code"] == "SR003")  # inside an inline table
    globs = sorted(token_at(FIXTURES / f["path"], f["line"], f["column"]) for f in findings if f["code"] == "SR204")
    assert [g.split("'")[0] for g in globs] == ['"blocks.*"', '"blocks..attn"', '"blocks.[0-9"']


def test_embedded_rules_lint_clean(capsys):
    exit_code, out, _ = rule_lint(capsys)
    assert (exit_code, out) == (0, "All checks passed!\n")


def test_embedded_rules_with_models_have_no_errors_or_warnings(capsys):
    exit_code, out, _ = rule_lint(capsys, "--model", "models/sana", "--model", "models/wan", "--ignore", "SR307")
    assert (exit_code, out) == (0, "All checks passed!\n")


def test_embedded_files_validate_against_the_json_schema():
    schema = json.loads(resources.files("shardrules.rules").joinpath("schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for _name, text in _embedded_files():
        jsonschema.validate(tomllib.loads(text), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tomllib.loads((FIXTURES / "SR102.toml").read_text()), schema)


def test_json_format(capsys):
    exit_code, out, _ = rule_lint(capsys, "SR202.toml", "SR203.toml", "--format", "json")
    findings = json.loads(out)
    assert exit_code == 1 and len(findings) == 6
    for f in findings:
        assert set(f) == {"code", "message", "path", "line", "column", "end_line", "end_column", "severity"}
        assert (f["end_line"], f["end_column"]) > (f["line"], f["column"])


GITHUB = re.compile(r"^::(error|warning|notice) title=SR\d{3},file=[^,:]+,line=\d+,col=\d+,endLine=\d+,"
                    r"endColumn=\d+::SR\d{3} .+$")


def test_github_format(capsys):
    _, out, _ = rule_lint(capsys, "SR201.toml", "SR202.toml", "SR305.toml", "--model", "models/sana",
                          "--format", "github")
    lines = out.strip().splitlines()
    assert lines and all(GITHUB.match(line) for line in lines), out
    assert {line.split()[0] for line in lines} == {"::error", "::warning", "::notice"}


def test_select_ignore_and_exit_zero(capsys):
    assert rule_lint(capsys, "SR202.toml", "--ignore", "SR2")[0] == 0
    assert rule_lint(capsys, "SR202.toml", "--exit-zero")[0] == 0
    code, out, _ = rule_lint(capsys, "SR201.toml", "SR202.toml", "--select", "SR201")
    assert code == 1 and " SR202 " not in out


def test_usage_errors_exit_2(capsys):
    assert rule_lint(capsys, "missing.toml")[0] == 1  # a finding (SR100); the other paths are still linted
    assert rule_lint(capsys, "--explain", "SR999")[0] == 2
    assert rule_lint(capsys, "--select", "XX1")[0] == 2
    assert rule_lint(capsys, "--bogus")[0] == 2
    assert rule_lint(capsys, "SR202.toml", "--model", "no-such-model")[0] == 2


def test_explain(capsys):
    code, out, _ = rule_lint(capsys, "--explain", "sr306")
    assert code == 0 and out.startswith("SR306 catches-per-layer.") and "## Use instead" in out


def malformed_inputs() -> list[bytes]:
    good = (FIXTURES / "SR203.toml").read_bytes()
    cases = [b"", b"\x00\x01\x02\xff" * 100, bytes(range(256)) * 4, good[: len(good) // 2], good[:-3],
             b"schema = 1\n[[model]]\n" * 50, b"schema = [[[[[[[[[[[[1]]]]]]]]]]]]\n", b"schema = {a = {b = {c = 1}}}",
             b"schema = 1\nmodel = 3\n", b"schema = 1\nmodel = [1, 2]\n", b"schema = 1\n[model]\nname = 1\n",
             b"schema = 1\nresolution = 'x'\n", b"schema = 1\n[resolution]\norder = 'explicit'\n",
             b"schema = 1\n[resolution]\norder = [1, 2]\n", b"schema = 1\n[resolution]\norder = []\n",
             b"schema = 1\nstrategy = []\n", b"schema = 1\n[strategy.block-class]\nfrom = 'x'\n",
             b"schema = 1\n[strategy.common-numbered-block]\nshard = [{}]\n",
             b"schema = true\n", b"schema = 1.5\n",
             b"schema = 1\n[[model]]\nname = ''\napplies-to = ''\nshard = ['']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = [[['name == a']]]\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = [{match = 3}]\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['a']\nrename = 'r'\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a']\n"
             b"[[model.rename]]\npattern = '('\nreplace = 1\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a']\n"
             b"[[model.rename]]\npattern = 'a'\nreplace = 'b'\nfuse = ['q']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a']\n"
             b"[model.allow-init]\n'w' = 'random'\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = '" + b"name == a or " * 2000
             + b"name == b'\nshard=['x']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = '" + b"(" * 5000 + b"'\nshard = ['a']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = '" + b"not " * 5000 + b"name == a'\nshard=['a']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class in [" + b"a, " * 30000 + b"b]'\nshard=['a']\n",
             b"schema = 1\n" + b"a = [" * 3000 + b"]" * 3000 + b"\n",
             b"schema = 1\n" + b"x = {" * 600 + b"}" * 600 + b"\n",
             b"schema = 1\n[[model]]\nname = \"\\ud800\"\n", b"\xef\xbb\xbfschema = 2\n",
             b"schema = 1\r\n[[model]]\r\nname = 'x'\r\napplies-to = 'clas == X'\r\nshard = ['name == a']\r\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = \"\"\"class\\\n   == X\"\"\"\nshard = ['nme == a']\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name matches \"' + "
             b"b'*' * 1000 + b'\"']\n",
             b"schema = 1\n'model' . 'x' = 1\n", b"schema = 1\n[a.b.c]\nd = 1979-05-27T07:32:00Z\n",
             b"schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['index > 1e5']\n",
             b"#" * 2_000_000]
    return cases


def test_no_input_makes_a_traceback(tmp_path, capsys):
    cases = malformed_inputs()
    assert len(cases) >= 40
    for i, data in enumerate(cases):
        path = tmp_path / f"case{i}.toml"
        path.write_bytes(data)
        code, out, err = rule_lint(capsys, str(path), cwd=tmp_path)
        assert code in (1, 2), (i, data[:80], out, err)
        assert "Traceback" not in out + err and "internal error" not in err, (i, data[:80], err)
        assert out.strip() or err.strip(), i
        if code == 1:
            assert re.search(rf"{re.escape(str(path))}:\d+:\d+: SR\d\d\d ", out), (i, out)


def test_folders_are_walked_for_toml_files(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.toml").write_text('schema = 1\n[[model]]\nname = "x"\napplies-to = "clas == X"\n'
                                               'shard = ["index is digit"]\n')
    (tmp_path / "notes.txt").write_text("not a rule file")
    code, out, _ = rule_lint(capsys, str(tmp_path))
    assert code == 1 and f"{tmp_path / 'sub' / 'bad.toml'}:4:15: SR" in out and "notes.txt" not in out
    (tmp_path / "empty").mkdir()
    code, _, err = rule_lint(capsys, str(tmp_path / "empty"))
    assert code == 2 and "no rule files (*.toml)" in err


def test_a_custom_module_from_a_factory(tmp_path, capsys):
    """--model package.module:factory lints against any nn.Module, built on meta, importable from the current folder."""
    (tmp_path / "custom_lint_models.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))\n"
        "        self.head = nn.Linear(8, 2)\n\n\n"
        "def build():\n    assert torch.empty(1).is_meta, 'built off meta'\n    return Net()\n\n\n"
        "def three():\n    return 3\n\n\n"
        "def leaves():\n    import sys\n    sys.exit(0)\n")
    (tmp_path / "net.toml").write_text('schema = 1\n\n[[model]]\nname = "net"\napplies-to = "class == Net"\n'
                                       'shard = ["container == blocks and index is digit", "name == nope"]\n')
    code, out, _ = rule_lint(capsys, "net.toml", "--model", "custom_lint_models:build", cwd=tmp_path)
    assert code == 1 and "net.toml:6:53: SR301 rule matches no module of Net (custom_lint_models:build)" in out
    for spec, message in [("custom_lint_models:three", "three() returned int, not an nn.Module"),
                          ("custom_lint_models:nothing", "'custom_lint_models' has no attribute 'nothing'"),
                          # a factory that exits must not end rule-lint with 0 and the findings unsaid
                          ("custom_lint_models:leaves", "leaves() failed: SystemExit: 0"),
                          ("no_such_module_here:build", "cannot import 'no_such_module_here': ModuleNotFoundError")]:
        code, _, err = rule_lint(capsys, "net.toml", "--model", spec, cwd=tmp_path)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_findings_in_the_embedded_rules_only_with_show_embedded(capsys):
    """SR307 is placed on the resolution order, which the user's file does not set: it is the embedded rules'."""
    code, out, err = rule_lint(capsys, "SR307.toml", "--model", "models/sana")
    assert (code, out) == (0, "All checks passed!\n")
    assert "2 finding(s) in the embedded rules not shown (--show-embedded)" in err
    code, out, _ = rule_lint(capsys, "SR307.toml", "--model", "models/sana", "--show-embedded")
    assert code == 0 and out.count("shardrules/rules/defaults.toml:6:9: SR307") == 2


def test_an_error_in_applies_to_does_not_hide_those_of_the_shard_list(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('schema = 1\n[[model]]\nname = "x"\napplies-to = "clas == X"\n'
                                       'shard = ["nme == a", "index is digit", "name startswith a."]\n')
    code, out, _ = rule_lint(capsys, "bad.toml", cwd=tmp_path)
    assert code == 1
    assert [line.split(" ", 2)[:2] for line in out.splitlines()[:-1]] == [
        ["bad.toml:4:15:", "SR002"], ["bad.toml:5:11:", "SR002"], ["bad.toml:5:58:", "SR001"]], out


def test_a_missing_path_is_a_finding_and_every_other_file_is_linted(capsys):
    code, out, err = rule_lint(capsys, "SR203.toml", "moved.toml", "SR204.toml")
    assert code == 1 and err == ""
    assert "moved.toml:1:1: SR100 cannot read: No such file or directory" in out
    assert "SR203.toml:8:4: SR203" in out and "SR204.toml:7:17: SR204" in out


def test_standard_input_is_linted_as_a_file(capsys, monkeypatch):
    import io
    import sys

    text = (FIXTURES / "SR204.toml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    code, out, _ = rule_lint(capsys, "-", "--stdin-filename", "rules/mine.toml")
    assert code == 1 and out == (FIXTURES / "SR204.expected").read_text().replace("SR204.toml", "rules/mine.toml")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"schema = 1\n")))
    assert rule_lint(capsys, "-")[:2] == (0, "All checks passed!\n")


def write_project(root: Path, settings: str = "") -> None:
    (root / "rules").mkdir()
    (root / "rules" / "mine.toml").write_text((FIXTURES / "SR203.toml").read_text())
    (root / "rules" / "old.toml").write_text((FIXTURES / "SR204.toml").read_text())
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "x.toml").write_text("not = [toml")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n' + settings)


def test_a_folder_walk_skips_other_tools_files_and_excluded_paths(capsys, tmp_path):
    write_project(tmp_path)
    code, out, _ = rule_lint(capsys, ".", cwd=tmp_path)
    assert "pyproject.toml" not in out and ".venv" not in out  # 22 errors for pyproject.toml before
    assert "rules/mine.toml:8:4: SR203" in out and "rules/old.toml:7:17: SR204" in out
    _, out, _ = rule_lint(capsys, ".", "--exclude", "old.toml", cwd=tmp_path)
    assert "rules/old.toml" not in out and "rules/mine.toml" in out
    code, out, err = rule_lint(capsys, ".", "--exclude", "rules", cwd=tmp_path)
    assert code == 2 and "no rule files (*.toml) in this folder" in err  # a folder excluded whole
    assert rule_lint(capsys, "pyproject.toml", cwd=tmp_path)[0] == 1  # a file named on the command line is linted


def test_project_settings_in_pyproject(capsys, tmp_path):
    write_project(tmp_path, '[tool.rule-lint]\nexclude = ["old.toml"]\nignore = ["SR2"]\n')
    assert rule_lint(capsys, ".", cwd=tmp_path)[:2] == (0, "All checks passed!\n")
    code, out, _ = rule_lint(capsys, ".", "--isolated", cwd=tmp_path)
    assert code == 1 and "SR203" in out and "SR204" in out
    (tmp_path / "pyproject.toml").write_text('[tool.rule-lint]\nexclud = ["old.toml"]\n')
    code, _, err = rule_lint(capsys, ".", cwd=tmp_path)
    assert code == 2 and "[tool.rule-lint] has no setting 'exclud'" in err
