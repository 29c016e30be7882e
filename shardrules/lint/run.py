"""Linting a set of rule files: the reader's errors, then every semantic check in the table."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import RuleError, UsageError
from ..rules import RuleFile, check_rule_file, layer
from ..rules.reader import _embedded_files, read_rule_text
from .context import LintContext
from .findings import Finding
from .registry import CHECKS


def _selected(code: str, select: list[str] | None, ignore: list[str] | None) -> bool:
    if select and not any(code.startswith(prefix) for prefix in select):
        return False
    return not (ignore and any(code.startswith(prefix) for prefix in ignore))


STDIN = "-"
# TOML files of other tools, skipped when walking a folder (a file named on the command line is always linted)
OTHER_TOOLS = ("pyproject.toml", "ruff.toml", ".ruff.toml", "uv.toml", "Cargo.toml", "taplo.toml", ".taplo.toml",
               "rust-toolchain.toml", "netlify.toml", "hatch.toml", "pixi.toml", "typos.toml", "_typos.toml")
# Folders skipped when walking, as ruff skips them
SKIPPED_FOLDERS = {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "build", "dist",
                   "__pypackages__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages"}


def read_text(path: str, stdin_name: str | None = None) -> tuple[str, str | Finding]:
    """(the name to report, the text of a rule file or the finding that says why it cannot be read). ``-`` is
    standard input, reported as ``stdin_name`` (default ``-``)."""
    if path == STDIN:
        import sys

        from ..rules.reader import MAX_FILE_BYTES, RuleLimitError

        name = stdin_name or STDIN
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return name, Finding.from_error(RuleLimitError(f"rule file is larger than {MAX_FILE_BYTES} bytes",
                                                           path=name))
        try:
            return name, data.decode("utf-8")
        except UnicodeDecodeError:
            return name, Finding(name, 1, 1, 1, 2, "SR101", "rule file is not UTF-8 text")
    try:
        return path, read_rule_text(Path(path))
    except RuleError as exc:
        return path, Finding.from_error(exc)
    except OSError as exc:  # one unreadable path is a finding; the others are still linted
        return path, Finding(path, 1, 1, 1, 2, "SR100", f"cannot read: {exc.strerror}")


def excluded(path: Path, patterns: list[str]) -> bool:
    """Whether a path found by walking a folder matches an --exclude glob (by its name or its path), with the
    engine's linear-time globs (no regular expression is built from user input)."""
    from ..engine.glob import compile_glob

    text = path.as_posix().removeprefix("./")
    return any(compile_glob(p)(path.name) or any(compile_glob(form)(text) for form in (p, f"*/{p}", f"{p}/*",
                                                                                        f"*/{p}/*"))
               for p in patterns)


def rule_paths(paths: list[str], exclude: list[str] | None = None) -> list[str]:
    """The files to lint: each path as given, each folder's ``*.toml`` files (recursively, sorted), as ruff walks:
    other tools' TOML files, tool folders (``.git``, ``.venv``, ``build``, ...) and ``exclude`` globs skipped."""
    import os

    exclude = exclude or []
    found: list[str] = []
    for path in paths:
        if path != STDIN and Path(path).is_dir():
            files = []
            for root, folders, names in os.walk(path):
                folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS
                                    and not excluded(Path(root, f), exclude))
                files += [str(Path(root, n)) for n in names if n.endswith(".toml") and n not in OTHER_TOOLS
                          and not excluded(Path(root, n), exclude)]
            if not files:
                raise UsageError(f"{path}: no rule files (*.toml) in this folder")
            found += sorted(files)
        else:
            found.append(path)
    return found


def lint(paths: list[str], model_dirs: list[str] | None = None, select: list[str] | None = None,
         ignore: list[str] | None = None, ulysses: int = 1, exclude: list[str] | None = None,
         stdin_name: str | None = None) -> list[Finding]:
    """Findings for the rule files ``paths`` (the embedded rules when empty; ``-`` for standard input), sorted by
    position."""
    findings: list[Finding] = []
    sources = [(name, text) for name, text in _embedded_files()] if not paths else []
    for path in rule_paths(paths, exclude):
        name, text = read_text(path, stdin_name)
        if isinstance(text, Finding):
            findings.append(text)
        else:
            sources.append((name, text))
    models = [model for d in model_dirs or [] for model in _models(d)]
    return sorted(set(findings + lint_sources(sources, models, select, ignore, layered=bool(paths), ulysses=ulysses)))


def lint_sources(sources: list[tuple[str, str]], models: list | None = None, select: list[str] | None = None,
                 ignore: list[str] | None = None, layered: bool = True, ulysses: int = 1) -> list[Finding]:
    """Findings for rule files given as (path, text); ``layered`` puts the embedded rules beneath them."""
    findings: list[Finding] = []
    files: list[RuleFile] = []
    for path, text in sources:
        rule_file, errors = check_rule_file(text, path)
        findings.extend(Finding.from_error(e) for e in errors)
        if rule_file is not None:
            files.append(rule_file)
    embedded = [] if not layered else [f for f in (check_rule_file(t, n)[0] for n, t in _embedded_files()) if f]
    try:
        ruleset = layer(embedded + files)
    except RuleError:
        ruleset = None
    context = LintContext(files, ruleset, models or [], ulysses)
    for code, module in CHECKS.items():
        if hasattr(module, "check") and _selected(code, select, ignore):
            findings.extend(module.check(context))
    return [f for f in findings if _selected(f.code, select, ignore)]


def _models(model_dir: str) -> list[tuple[str, object]]:
    """(folder, model on meta) for a model folder, or for each transformer and text encoder of a pipeline."""
    from ..extras import MissingExtraError, require_fsdp

    try:
        require_fsdp("rule-lint --model")
    except MissingExtraError as exc:
        raise UsageError(str(exc)) from None
    from ..errors import ShardRulesError
    from ..loader.build import build_model
    from ..loader.pipeline import sharded_parts

    if FACTORY.fullmatch(model_dir) and not Path(model_dir).exists():
        return [(model_dir, _from_factory(model_dir))]
    try:
        return [(str(Path(model_dir) / name) if name else model_dir, build_model(part, meta="all"))
                for name, part in sharded_parts(model_dir)]
    except ShardRulesError as exc:
        raise UsageError(f"--model {model_dir}: {exc}") from None


FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # package.module:factory, as uvicorn and gunicorn name apps


def _from_factory(spec: str):
    """The module ``package.module:factory`` returns, built on the meta device (the current folder is importable,
    as for ``python -m``). Only code the command line names is imported; a rule file cannot name code."""
    import importlib
    import os
    import sys

    from torch import nn

    from ..loader.build import all_on_meta

    module_name, attr = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # ImportError, the module's own error, or its sys.exit() while importing
        raise UsageError(f"--model {spec}: cannot import '{module_name}': {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise UsageError(f"--model {spec}: '{module_name}' has no attribute '{attr}'")
        factory = getattr(factory, part)
    if not callable(factory):
        raise UsageError(f"--model {spec}: '{attr}' is not callable (give a function or class returning an "
                         f"nn.Module)")
    try:
        with all_on_meta():
            model = factory()
    except (Exception, SystemExit) as exc:  # a sys.exit(0) must not end rule-lint with 0 and its findings unsaid
        raise UsageError(f"--model {spec}: {attr}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {spec}: {attr}() returned {type(model).__name__}, not an nn.Module")
    return model
