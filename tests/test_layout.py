"""The folders import only downwards: grammar -> rules -> engine -> loader -> runner -> commands and lint."""

from __future__ import annotations

import ast
from pathlib import Path

import shardrules

PACKAGE = Path(shardrules.__file__).parent
LAYERS = ["grammar", "rules", "engine", "loader", "runner"]
# What each folder must never import (lint may use engine and loader, never runner).
FORBIDDEN = {
    "grammar": {"rules", "engine", "loader", "runner", "lint", "cli", "launch", "demo"},
    "rules": {"engine", "loader", "runner", "lint", "cli", "launch", "demo"},
    "engine": {"loader", "runner", "lint", "cli", "launch", "demo"},
    "loader": {"runner", "lint", "cli", "launch", "demo"},
    "runner": {"lint", "cli", "demo"},
    "lint": {"runner", "cli", "launch", "demo"},
}


def imported_parts(path: Path) -> set[str]:
    """The top-level shardrules subpackages or modules a file imports (relative or absolute)."""
    folder = path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(folder[: len(folder) - (node.level - 1)]) if node.level - 1 <= len(folder) else []
                parts = base + (node.module.split(".") if node.module else [])
                if not parts and node.level:  # "from . import x" at the package top
                    parts = [a.name for a in node.names]
            elif node.module and node.module.startswith("shardrules."):
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("shardrules.")}
    return found


def test_each_folder_imports_only_downwards():
    problems = []
    for folder, forbidden in FORBIDDEN.items():
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            bad = imported_parts(path) & forbidden
            problems += [f"{path.relative_to(PACKAGE)} imports {name}" for name in sorted(bad)]
    assert problems == []


def test_the_import_reader_finds_relative_and_absolute_imports():
    # The check above can only fail if imported_parts sees imports at all: relative (..engine) and absolute.
    target = PACKAGE / "loader" / "load.py"
    assert "engine" in imported_parts(target)
    assert "runner" in imported_parts(PACKAGE / "cli.py")


def module_imports(path: Path) -> set[str]:
    """The shardrules modules a file imports anywhere, by dotted name relative to the package (``engine.resolve``);
    imports under ``if TYPE_CHECKING:`` never run and are left out."""
    package = list(path.relative_to(PACKAGE).with_suffix("").parts)[:-1]  # the folder, for a module or __init__
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
        node.test) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package[: len(package) - (node.level - 1)]
        module = base + (node.module.split(".") if node.module else [])
        for alias in node.names:  # "from . import x" names a module; "from .m import f" the module m
            candidate = module + [alias.name]
            if (PACKAGE.joinpath(*candidate).with_suffix(".py")).exists():
                found.add(".".join(candidate))
            elif module:
                found.add(".".join(module))
    return found


def test_no_two_modules_import_each_other():
    """No import circle between two modules (a module importing another that imports it back, even inside a
    function, is a tangle a reader has to untie)."""
    graph = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): module_imports(p) for p in PACKAGE.rglob("*.py")}
    circles = sorted(f"{a} <-> {b}" for a, targets in graph.items() for b in targets
                     if a < b and a in graph.get(b, ()) and not a.endswith("__init__") and not b.endswith("__init__"))
    assert circles == []
    assert "engine.describe" in graph["engine.resolve"]  # the reader sees imports at all


def test_ruff_finds_nothing():
    """ruff (the rules pyproject.toml selects: pycodestyle, pyflakes, isort, pyupgrade, bugbear) is clean."""
    import subprocess
    import sys

    root = PACKAGE.parent
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(root)], capture_output=True,
                            text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


PRIVATE_TORCH = {"_parameters", "_buffers", "_non_persistent_buffers_set", "_apply", "_spec", "register_parameter"}


def private_torch_uses(path: Path) -> list[str]:
    """Attributes of PyTorch's private API (and the patched registration) that ``path`` reads or calls."""
    return [f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.attr}"
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_TORCH]


def test_private_torch_api_is_used_in_one_module_only():
    """A torch upgrade has one place to look (shardrules/torch_internals.py, each use with its reason)."""
    uses = [use for path in sorted(PACKAGE.rglob("*.py")) if path.name != "torch_internals.py"
            for use in private_torch_uses(path)]
    assert uses == []
    assert len(private_torch_uses(PACKAGE / "torch_internals.py")) >= len(PRIVATE_TORCH)  # the scan sees them
