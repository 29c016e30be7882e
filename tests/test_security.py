"""What the package must never do (SECURITY.md), checked on its source, and the documented size limits."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

import shardrules
from shardrules import compile_rule
from shardrules.errors import RuleLimitError
from shardrules.grammar import MAX_EXPRESSION_CHARS, parse_expression
from shardrules.rules import MAX_FILE_BYTES, load_rules

PACKAGE = Path(shardrules.__file__).parent
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "fnmatch"}
REGEX_FUNCTIONS = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer"}
# The one documented place where user regular expressions run: [[model.rename]] patterns, compiled once,
# checked when the rule file is read, applied to checkpoint keys of bounded length.
USER_REGEX_ALLOWED = {"rules/reader.py", "loader/rename.py"}


def violations(package: Path) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                problems.append(f"{name}:{node.lineno}: {node.func.id}()")
            if isinstance(node, ast.Import):
                problems += [f"{name}:{node.lineno}: import {a.name}" for a in node.names
                             if a.name.split(".")[0] in FORBIDDEN_MODULES]
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{name}:{node.lineno}: from {node.module} import")
            if isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name) \
                    and node.value.id == "torch":
                problems.append(f"{name}:{node.lineno}: torch.load")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in REGEX_FUNCTIONS):
                pattern = node.args[0] if node.args else None
                literal = isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)
                if not literal and name not in USER_REGEX_ALLOWED:
                    problems.append(f"{name}:{node.lineno}: re.{node.func.attr} on a pattern that is not a literal")
    return problems


def test_no_eval_exec_pickle_torch_load_or_user_regex():
    assert violations(PACKAGE) == []


def test_the_check_catches_what_it_forbids(tmp_path):
    """The walk finds each forbidden construct (so a clean result means something)."""
    (tmp_path / "bad.py").write_text("import pickle\nimport re\nimport torch\n"
                                     "eval('1')\ntorch.load('x')\nre.compile(user_text)\n")
    assert sorted(violations(tmp_path)) == ["bad.py:1: import pickle", "bad.py:4: eval()", "bad.py:5: torch.load",
                                    "bad.py:6: re.compile on a pattern that is not a literal"]


def fails_fast(action, error=RuleLimitError, budget_s=1.0):
    start = time.perf_counter()
    with pytest.raises(error):
        action()
    return time.perf_counter() - start < budget_s


def test_resource_limits(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("schema = 1\n" + "#" * (MAX_FILE_BYTES + 1))
    assert fails_fast(lambda: load_rules(big))
    assert fails_fast(lambda: parse_expression("(" * 1000 + "name == a" + ")" * 1000))
    huge_list = "name in [" + ", ".join(f"m{i}" for i in range(100_000)) + "]"
    assert len(huge_list) > MAX_EXPRESSION_CHARS
    assert fails_fast(lambda: parse_expression(huge_list))
    rule = compile_rule('name matches "' + "*" * 1000 + '"')
    start = time.perf_counter()
    assert rule("a." * 5000, None) is True
    assert time.perf_counter() - start < 1.0  # a backtracking matcher would take longer than the universe
