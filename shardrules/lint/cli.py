"""``rule-lint``: argument parsing and exit codes (0 clean, 1 findings, 2 usage or internal error)."""

from __future__ import annotations

import argparse
import sys

from .findings import INFO


def _codes(value: str) -> list[str]:
    return [c.strip().upper() for c in value.split(",") if c.strip()]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shardrules")
    except PackageNotFoundError:
        return "unknown (not installed)"


SETTINGS = {"exclude", "select", "ignore"}


def project_settings(path: str = "pyproject.toml") -> dict:
    """``[tool.rule-lint]`` of ./pyproject.toml, as ruff reads ``[tool.ruff]``: ``exclude``, ``select`` and
    ``ignore``, each a list of strings. A key it does not know, or a value of another type, is a usage error."""
    from pathlib import Path

    from ..errors import UsageError

    if not Path(path).is_file():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("tool", {}).get("rule-lint", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read [tool.rule-lint]: {exc}") from None
    unknown = sorted(set(table) - SETTINGS)
    if unknown:
        raise UsageError(f"{path}: [tool.rule-lint] has no setting {unknown[0]!r} (settings: "
                         f"{', '.join(sorted(SETTINGS))})")
    for key, value in table.items():
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise UsageError(f"{path}: [tool.rule-lint] {key} must be a list of strings")
    return {k: ([c.strip().upper() for c in v] if k != "exclude" else v) for k, v in table.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rule-lint", description="Check shardrules rule files.")
    parser.add_argument("--version", action="version", version=f"rule-lint (shardrules) {_version()}")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="rule files or folders (their *.toml files), - for standard input (default: the "
                             "embedded rules)")
    parser.add_argument("--exclude", action="append", metavar="GLOB", default=[],
                        help="skip files and folders matching GLOB while walking folders (added to [tool.rule-lint] "
                             "exclude of ./pyproject.toml); repeatable")
    parser.add_argument("--stdin-filename", metavar="NAME", help="the name to report for standard input (-)")
    parser.add_argument("--isolated", action="store_true", help="ignore [tool.rule-lint] in ./pyproject.toml")
    parser.add_argument("--model", action="append", metavar="MODEL", default=[],
                        help="also check the rules against this model: a folder (config.json, or a pipeline's "
                             "model_index.json) or package.module:factory, a callable returning an nn.Module "
                             "(built on the meta device; the current folder is importable); repeatable")
    parser.add_argument("--ulysses", type=int, default=1, metavar="U",
                        help="with --model: check that sequence-parallel plans can run with Ulysses U (heads divide)")
    parser.add_argument("--show-embedded", action="store_true",
                        help="also show findings in the embedded rules beneath the given files (hidden by default)")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument("--select", type=_codes, metavar="CODES", help="only these codes or prefixes (SR2,SR301)")
    parser.add_argument("--ignore", type=_codes, metavar="CODES", help="skip these codes or prefixes")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    parser.add_argument("--explain", metavar="CODE", help="describe a check and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own usage message
        return 2 if exc.code else 0
    try:
        from .output import FORMATS
        from .registry import CHECKS, explain
        from .run import UsageError, lint

        if args.explain:
            code = args.explain.upper()
            if code not in CHECKS:
                print(f"rule-lint: unknown code {args.explain!r}; codes: {', '.join(CHECKS)}", file=sys.stderr)
                return 2
            print(explain(code))
            return 0
        if args.ulysses < 1:
            raise UsageError(f"--ulysses must be at least 1, not {args.ulysses}")
        settings = {} if args.isolated else project_settings()
        select = args.select or settings.get("select")
        ignore = args.ignore or settings.get("ignore")
        for code in (select or []) + (ignore or []):
            if not any(known.startswith(code) for known in CHECKS):
                raise UsageError(f"no check matches {code!r}")
        findings = lint(args.paths, args.model, select, ignore, args.ulysses,
                        exclude=settings.get("exclude", []) + args.exclude, stdin_name=args.stdin_filename)
        hidden = []
        if args.paths and not args.show_embedded:  # the embedded rules lie beneath the user's: not theirs to fix
            from ..rules.reader import _embedded_files

            embedded = {name for name, _ in _embedded_files()}
            hidden = [f for f in findings if f.path in embedded]
            findings = [f for f in findings if f.path not in embedded]
        print(FORMATS[args.format](findings))
        if hidden:
            print(f"rule-lint: {len(hidden)} finding(s) in the embedded rules not shown (--show-embedded)",
                  file=sys.stderr)
    except UsageError as exc:
        print(f"rule-lint: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rule-lint --explain SR001 | head`: the reader left; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # never a traceback: say what broke, exit 2
        print(f"rule-lint: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    failing = [f for f in findings if f.severity != INFO]
    return 0 if args.exit_zero or not failing else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
