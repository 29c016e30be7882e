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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rule-lint", description="Check shardrules rule files.")
    parser.add_argument("--version", action="version", version=f"rule-lint (shardrules) {_version()}")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="rule files (default: the embedded rules)")
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
        for code in (args.select or []) + (args.ignore or []):
            if not any(known.startswith(code) for known in CHECKS):
                print(f"rule-lint: no check matches {code!r}", file=sys.stderr)
                return 2
        if args.ulysses < 1:
            raise UsageError(f"--ulysses must be at least 1, not {args.ulysses}")
        findings = lint(args.paths, args.model, args.select, args.ignore, args.ulysses)
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
