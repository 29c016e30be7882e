"""Typed expression tree -> predicate.

Every node of a compiled rule answers two questions over :class:`ModuleFacts`: ``test(facts, i)``, does
module ``i`` satisfy it, and ``select(facts)``, which modules do. ``select`` uses the facts' indexes where a
field has one (``container in [blocks]`` looks up the children of the modules named ``blocks`` instead of
testing every module), and ``and`` selects with its cheapest operand and tests the rest on those candidates
only. Both answers come from the same node, so the drop-in ``rule(name, module)`` and a plan over a whole
model cannot disagree.
"""

from __future__ import annotations

import operator

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
from .glob import compile_glob

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Node:
    indexed = False  # True when select() looks modules up instead of testing each

    def test(self, facts: ModuleFacts, i: int) -> bool:
        raise NotImplementedError

    def select(self, facts: ModuleFacts) -> set[int]:
        test = self.test
        return {i for i in range(facts.size) if test(facts, i)}


class FieldIn(Node):
    """``field == v``, ``field != v``, ``field in [...]``, ``field not in [...]``."""

    def __init__(self, field: str, values: frozenset, negated: bool) -> None:
        self.field, self.values, self.negated = field, values, negated
        self.indexed = field != "params"  # a scan of one column, no per-module call

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return (facts.value(self.field, i) in self.values) != self.negated

    def select(self, facts: ModuleFacts) -> set[int]:
        values, column = self.values, facts.column(self.field)
        if self.negated:
            return {i for i, value in enumerate(column) if value not in values}
        return {i for i, value in enumerate(column) if value in values}


class Ordered(Node):
    def __init__(self, field: str, op: str, value: int) -> None:
        self.field, self.order, self.value = field, _ORDER[op], value

    def test(self, facts: ModuleFacts, i: int) -> bool:
        got = facts.value(self.field, i)
        return got is not None and self.order(got, self.value)  # index is none when the leaf is not a number


class Glob(Node):
    def __init__(self, field: str, pattern: str) -> None:
        self.field = field
        self.match = compile_glob(pattern)

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return self.match(facts.value(self.field, i))


class StringOp(Node):
    def __init__(self, field: str, op: str, value: str) -> None:
        self.field, self.value = field, value
        self.op = {"startswith": str.startswith, "endswith": str.endswith,
                   "contains": lambda text, part: part in text}[op]

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return self.op(facts.value(self.field, i), self.value)


class Digit(Node):
    def __init__(self, field: str, negated: bool) -> None:
        self.field, self.negated = field, negated
        self.indexed = not negated and field in ("leaf", "index")

    def test(self, facts: ModuleFacts, i: int) -> bool:
        # index is a number exactly when the leaf is all digits
        value = facts.leaves[i] if self.field == "index" else facts.value(self.field, i)
        return is_digits(value) != self.negated

    def select(self, facts: ModuleFacts) -> set[int]:
        if self.indexed:
            return set(facts.numbered) if facts.parents is not None else super().select(facts)
        return super().select(facts)


class Root(Node):
    def __init__(self, negated: bool) -> None:
        self.negated = negated

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return (facts.depths[i] == 0) != self.negated


class AllOf(Node):
    def __init__(self, parts: list[Node]) -> None:
        # the first indexed operand selects; the others only test its candidates
        parts = sorted(parts, key=lambda p: not p.indexed)
        self.parts = tuple(parts)
        self.indexed = parts[0].indexed

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return all(p.test(facts, i) for p in self.parts)

    def select(self, facts: ModuleFacts) -> set[int]:
        first, rest = self.parts[0], self.parts[1:]
        return {i for i in first.select(facts) if all(p.test(facts, i) for p in rest)}


class AnyOf(Node):
    def __init__(self, parts: list[Node]) -> None:
        self.parts = tuple(parts)
        self.indexed = all(p.indexed for p in parts)

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return any(p.test(facts, i) for p in self.parts)

    def select(self, facts: ModuleFacts) -> set[int]:
        found: set[int] = set()
        for part in self.parts:
            found |= part.select(facts)
        return found


class NoneOf(Node):
    def __init__(self, inner: Node) -> None:
        self.inner = inner

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return not self.inner.test(facts, i)

    def select(self, facts: ModuleFacts) -> set[int]:
        return set(facts.all - self.inner.select(facts))


def _node(expr: Expr) -> Node:
    if isinstance(expr, And):
        return AllOf([_node(e) for e in expr.operands])
    if isinstance(expr, Or):
        return AnyOf([_node(e) for e in expr.operands])
    if isinstance(expr, Not):
        return NoneOf(_node(expr.operand))
    if isinstance(expr, Compare):
        if expr.op in ("==", "!="):
            return FieldIn(expr.field, frozenset([expr.value]), expr.op == "!=")
        return Ordered(expr.field, expr.op, expr.value)
    if isinstance(expr, InList):
        return FieldIn(expr.field, frozenset(expr.values), expr.negated)
    if isinstance(expr, Matches):
        return Glob(expr.field, expr.pattern)
    if isinstance(expr, StringTest):
        return StringOp(expr.field, expr.op, expr.value)
    if isinstance(expr, IsDigit):
        return Digit(expr.field, expr.negated)
    if isinstance(expr, IsRoot):
        return Root(expr.negated)
    raise AssertionError(f"unknown expression node {expr!r}")  # pragma: no cover


class CompiledRule:
    """A compiled expression. Call it as ``rule(name, module)``: a drop-in for a seed-style condition."""

    __slots__ = ("text", "expr", "node", "fields")

    def __init__(self, text: str, expr: Expr) -> None:
        self.text = text
        self.expr = expr
        self.node = _node(expr)
        self.fields = fields_used(expr)

    def __call__(self, name: str, module: nn.Module) -> bool:
        return self.node.test(ModuleFacts.of(name, module), 0)

    def test(self, facts: ModuleFacts, i: int) -> bool:
        return self.node.test(facts, i)

    def select(self, facts: ModuleFacts) -> set[int]:
        """Positions of the modules in ``facts`` for which the rule holds."""
        return self.node.select(facts)

    def __repr__(self) -> str:
        return f"CompiledRule({self.text!r})"


def compile_rule(rule: str | Expr, source: SourceMap | None = None) -> CompiledRule:
    """Compile an expression (text or parsed tree). Every error is raised here, never at evaluation."""
    if isinstance(rule, str):
        return CompiledRule(rule, parse_expression(rule, source))
    if not isinstance(rule, Expr):
        raise TypeError(f"compile_rule takes an expression string or a parsed Expr, not {type(rule).__name__}")
    return CompiledRule("", rule)

