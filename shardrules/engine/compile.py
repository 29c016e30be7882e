"""Typed expression tree -> predicate over :class:`ModuleFacts`.

Compilation builds a tree of closures once; evaluating a rule is then plain attribute reads and set lookups.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from typing import Callable

from torch import nn

from ..grammar import SourceMap, parse_expression
from ..grammar.tree import (
    And,
    Compare,
    Expr,
    InList,
    IsDigit,
    IsRoot,
    Matches,
    Not,
    Or,
    StringTest,
    fields_used,
)
from .facts import ModuleFacts, is_digits

Test = Callable[[ModuleFacts], bool]

_ATTR = {"class": "class_name"}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_RUNS_OF_STARS = re.compile(r"\*{2,}")


class CompiledRule:
    """A compiled expression. Call it as ``rule(name, module)``: a drop-in for a seed-style condition."""

    __slots__ = ("text", "expr", "test", "fields")

    def __init__(self, text: str, expr: Expr) -> None:
        self.text = text
        self.expr = expr
        self.test: Test = _compile(expr)
        self.fields = fields_used(expr)

    def __call__(self, name: str, module: nn.Module) -> bool:
        params = None if "params" in self.fields else -1
        return self.test(ModuleFacts.of(name, module, params))

    def __repr__(self) -> str:
        return f"CompiledRule({self.text!r})"


def compile_rule(rule: str | Expr, source: SourceMap | None = None) -> CompiledRule:
    """Compile an expression (text or parsed tree). Every error is raised here, never at evaluation."""
    if isinstance(rule, str):
        return CompiledRule(rule, parse_expression(rule, source))
    return CompiledRule("", rule)


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """Shell-style glob, anchored at both ends, case-sensitive. Runs of ``*`` are one ``*``."""
    regex = re.compile(fnmatch.translate(_RUNS_OF_STARS.sub("*", pattern)))
    return lambda text: regex.match(text) is not None


def _compile(expr: Expr) -> Test:
    if isinstance(expr, And):
        parts = tuple(_compile(e) for e in expr.operands)
        return lambda f: all(p(f) for p in parts)
    if isinstance(expr, Or):
        parts = tuple(_compile(e) for e in expr.operands)
        return lambda f: any(p(f) for p in parts)
    if isinstance(expr, Not):
        inner = _compile(expr.operand)
        return lambda f: not inner(f)

    get = operator.attrgetter(_ATTR.get(expr.field, expr.field))
    if isinstance(expr, Compare):
        value = expr.value
        if expr.op == "==":
            return lambda f: get(f) == value
        if expr.op == "!=":
            return lambda f: get(f) != value
        order = _ORDER[expr.op]

        def ordered(f: ModuleFacts) -> bool:
            got = get(f)
            return got is not None and order(got, value)  # index is none when the leaf is not a number

        return ordered
    if isinstance(expr, InList):
        values = frozenset(expr.values)
        if expr.negated:
            return lambda f: get(f) not in values
        return lambda f: get(f) in values
    if isinstance(expr, Matches):
        glob = compile_glob(expr.pattern)
        return lambda f: glob(get(f))
    if isinstance(expr, StringTest):
        value = expr.value
        if expr.op == "startswith":
            return lambda f: get(f).startswith(value)
        if expr.op == "endswith":
            return lambda f: get(f).endswith(value)
        return lambda f: value in get(f)
    if isinstance(expr, IsDigit):
        if expr.field == "index":
            check: Test = lambda f: f.index is not None  # noqa: E731
        else:
            check = lambda f: is_digits(get(f))  # noqa: E731
        if expr.negated:
            return lambda f: not check(f)
        return check
    if isinstance(expr, IsRoot):
        if expr.negated:
            return lambda f: f.depth != 0
        return lambda f: f.depth == 0
    raise AssertionError(f"unknown expression node {expr!r}")  # pragma: no cover
