"""SR204 glob-never-matches.

## What it does
Reports a `matches` glob that can match no module name: a dot in a leaf, container or class glob, an empty segment (`..`), a leading or trailing dot, whitespace or `/`, an unclosed `[` (a literal `[`, which no name holds).

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


def _unclosed_bracket(pattern: str) -> bool:
    """Whether a '[' opens a class that no ']' closes (fnmatch then reads it as a literal '[')."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # a ']' first is part of the class
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                return True
            i = close
        i += 1
    return False


def _reason(field: str, pattern: str) -> str | None:
    if _unclosed_bracket(pattern):
        return "its '[' is never closed, so it stands for a literal '[', which no module name holds"
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
