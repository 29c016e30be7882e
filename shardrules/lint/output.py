"""The three output formats: text (``path:line:col: CODE message``), JSON, GitHub annotations."""

from __future__ import annotations

import json

from ..errors import printable
from .findings import ERROR, INFO, WARNING, Finding


def text(findings: list[Finding]) -> str:
    lines = [f"{printable(f.path)}:{f.line}:{f.column}: {f.code} {printable(f.message)}"
             + ("" if f.severity == ERROR else f" [{f.severity}]") for f in findings]
    counts = {s: sum(1 for f in findings if f.severity == s) for s in (ERROR, WARNING, INFO)}
    if not findings:
        lines.append("All checks passed!")
    else:
        parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
        lines.append(f"Found {', '.join(parts)}.")
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2)


_GITHUB = {ERROR: "error", WARNING: "warning", INFO: "notice"}


def _escape_property(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github(findings: list[Finding]) -> str:
    return "\n".join(
        f"::{_GITHUB[f.severity]} title={f.code},file={_escape_property(f.path)},line={f.line},col={f.column},"
        f"endLine={f.end_line},endColumn={f.end_column}::{_escape_data(f'{f.code} {f.message}')}"
        for f in findings)


FORMATS = {"text": text, "json": as_json, "github": github}
