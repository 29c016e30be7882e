"""SR204 glob-never-matches.

## What it does
Reports a `matches` glob that can match no module name: a dot in a leaf, container or class glob, an empty segment (`..`), a leading or trailing dot, whitespace or `/`.

## Why is this bad?
Module names are dot-separated identifiers; such a glob selects nothing.

## Example
```toml
shard = ['leaf matches "blocks.*"']
```

## Use instead
```toml
shard = ['name matches "blocks.*"']
```
"""

from ...grammar.tree import Matches, walk
from ..findings import Finding

CODE = "SR204"
NAME = "glob-never-matches"
SEVERITY = "error"


_IMPOSSIBLE = set(" \t\n\r/\\")


def _reason(field: str, pattern: str) -> str | None:
    literal = pattern.replace("*", "").replace("?", "")
    if any(c in _IMPOSSIBLE for c in literal):
        return "module names hold no whitespace, '/' or '\\'"
    if field in ("leaf", "container", "class") and "." in literal:
        return f"a {field} never contains '.'; match the full name with 'name matches'"
    if field == "name" and (".." in pattern or pattern.startswith(".") or pattern.endswith(".")):
        return "a module name has no empty segment, and does not start or end with '.'"
    return None


def check(ctx):
    for _, _, rule in ctx.rules():
        for node in walk(rule.expr):
            if isinstance(node, Matches):
                reason = _reason(node.field, node.pattern)
                if reason:
                    yield Finding.at(rule.source, node.value_span.start, node.value_span.end, CODE,
                                     f"glob {node.pattern!r} can never match: {reason}", SEVERITY)
