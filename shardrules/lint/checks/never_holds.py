"""SR202 never-holds.

## What it does
Reports a rule that can hold for no module (`index is digit and index is not digit`, `depth < 0`, `name == a and name == b`, `in []`).

## Why is this bad?
Such a rule selects nothing; it is almost always a typo for `or` or a wrong bound.

## Example
```toml
shard = ["container == blocks and container == layers"]
```

## Use instead
```toml
shard = ["container in [blocks, layers]"]
```
"""

from ...grammar.tree import FIELDS, INT, And, Compare, Expr, InList, IsDigit, IsRoot, Or
from ..findings import Finding

CODE = "SR202"
NAME = "never-holds"
SEVERITY = "error"


_NON_NEGATIVE = ("depth", "params", "index", "rindex")


class _Field:
    """What a conjunction of tests allows for one field."""

    def __init__(self) -> None:
        self.allowed: set | None = None  # none: anything
        self.excluded: set = set()
        self.low, self.high = 0, float("inf")  # for the integer fields, which are never negative
        self.digit: bool | None = None

    def empty(self, field: str) -> bool:
        if self.allowed is not None:
            allowed = self.allowed - self.excluded
            if FIELDS[field] == INT:
                allowed = {v for v in allowed if self.low <= v <= self.high}
            if self.digit is True and field != "index":
                allowed = {v for v in allowed if isinstance(v, str) and v.isdigit()}
            if self.digit is False and field != "index":
                allowed = {v for v in allowed if not (isinstance(v, str) and v.isdigit())}
            if not allowed:
                return True
        if FIELDS[field] == INT and self.low > self.high:
            return True
        return False


def _never(expr: Expr) -> Expr | None:
    """The sub-expression that makes ``expr`` impossible, or None when it can hold (as far as we can tell)."""
    if isinstance(expr, Or):
        return expr if all(_never(e) is not None for e in expr.operands) else None
    if isinstance(expr, And):
        for operand in expr.operands:
            if _never(operand) is not None:
                return operand
        return expr if _conjunction_empty(expr.operands) else None
    return expr if _conjunction_empty((expr,)) else None


def _conjunction_empty(tests) -> bool:
    fields: dict[str, _Field] = {}
    root: set[bool] = set()

    def of(name: str) -> _Field:
        return fields.setdefault(name, _Field())

    for test in tests:
        if isinstance(test, InList) and not test.negated or isinstance(test, Compare) and test.op == "==":
            values = set(test.values) if isinstance(test, InList) else {test.value}
            f = of(test.field)
            f.allowed = values if f.allowed is None else f.allowed & values
        elif isinstance(test, InList) or isinstance(test, Compare) and test.op == "!=":
            of(test.field).excluded |= set(test.values) if isinstance(test, InList) else {test.value}
        elif isinstance(test, Compare):
            f = of(test.field)
            value = test.value
            if test.op == "<":
                f.high = min(f.high, value - 1)
            elif test.op == "<=":
                f.high = min(f.high, value)
            elif test.op == ">":
                f.low = max(f.low, value + 1)
            else:
                f.low = max(f.low, value)
            if test.field == "index":  # an order holds only for a number
                if of("index").digit is False:
                    return True
                of("index").digit = of("leaf").digit = True
        elif isinstance(test, IsDigit):
            want = not test.negated
            # index is a number exactly when the leaf is all digits
            for field in ("index", "leaf") if test.field in ("index", "leaf") else (test.field,):
                f = of(field)
                if f.digit is not None and f.digit != want:
                    return True
                f.digit = want
        elif isinstance(test, IsRoot):
            root.add(not test.negated)
    if len(root) > 1:
        return True
    if True in root:  # the root has depth 0, an empty name, leaf and container, and no index
        depth = of("depth")
        depth.low, depth.high = max(depth.low, 0), min(depth.high, 0)
        if of("index").digit is True:
            return True
    index = fields.get("index")
    if index is not None and index.digit is False and (index.allowed or index.low > 0 or index.high < float("inf")):
        return True
    return any(f.empty(name) for name, f in fields.items())


def check(ctx):
    from ...grammar.tree import walk

    for _, _, rule in ctx.rules():
        culprit = _never(rule.expr)
        if culprit is not None:
            yield Finding.at(rule.source, culprit.span.start, culprit.span.end, CODE,
                             f"rule can never hold: '{rule.text[culprit.span.start:culprit.span.end]}'", SEVERITY)
            continue
        for node in walk(rule.expr):  # a branch of an 'or' that can never hold is dead code
            if isinstance(node, Or):
                for operand in node.operands:
                    if _never(operand) is not None:
                        text = rule.text[operand.span.start:operand.span.end]
                        yield Finding.at(rule.source, operand.span.start, operand.span.end, CODE,
                                         f"this branch of 'or' can never hold: '{text}'", SEVERITY)
