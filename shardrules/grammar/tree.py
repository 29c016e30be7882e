"""The typed expression tree the parser produces.

Every node keeps ``span``: the character range it covers in the expression text, so that errors found
after parsing (by the linter, say) can point at the token in the rule file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    start: int
    end: int


# Field name -> its type. ``index`` is an int or none (none when the leaf is not all digits).
STR, INT = "str", "int"
FIELDS: dict[str, str] = {
    "name": STR,
    "leaf": STR,
    "container": STR,
    "index": INT,
    "rindex": INT,
    "depth": INT,
    "class": STR,
    "params": INT,
}

Value = str | int


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # == != < <= > >=
    value: Value
    span: Span
    field_span: Span
    value_span: Span


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Value, ...]
    negated: bool
    span: Span
    field_span: Span
    value_spans: tuple[Span, ...]


@dataclass(frozen=True)
class Matches:
    field: str
    pattern: str
    span: Span
    field_span: Span
    value_span: Span


@dataclass(frozen=True)
class StringTest:
    field: str
    op: str  # startswith endswith contains
    value: str
    span: Span
    field_span: Span
    value_span: Span


@dataclass(frozen=True)
class IsDigit:
    field: str
    negated: bool
    span: Span
    field_span: Span


@dataclass(frozen=True)
class IsRoot:
    field: str
    negated: bool
    span: Span
    field_span: Span


@dataclass(frozen=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]
    span: Span


Test = Compare | InList | Matches | StringTest | IsDigit | IsRoot
Expr = Test | Not | And | Or


def walk(expr: Expr):
    """Yield every node of ``expr``, parents before children."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, (And, Or)):
            stack.extend(reversed(node.operands))


def fields_used(expr: Expr) -> frozenset[str]:
    return frozenset(node.field for node in walk(expr) if hasattr(node, "field"))
