"""``rule-lint``: report rule-file errors as ``path:line:col: CODE message``."""

from __future__ import annotations

import argparse
import sys

from ..errors import SourceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rule-lint", description="check shardrules rule files")
    parser.add_argument("paths", nargs="*", help="rule files (default: the embedded rules)")
    args = parser.parse_args(argv)
    from ..rules import load_rules

    findings = 0
    for path in args.paths or [None]:
        try:
            load_rules(*([path] if path else []))
        except SourceError as exc:
            print(f"{exc.location}: {exc.code} {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            findings += 1
    print(f"Found {findings} error{'s' if findings != 1 else ''}." if findings else "All checks passed!")
    return 1 if findings else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
