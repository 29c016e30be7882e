"""What the checks look at: the linted files, the rule set they layer into, and the models to check."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from ..grammar.tree import And, Compare, Expr, InList, IsDigit, IsRoot, Matches, Not, Or, StringTest
from ..rules import ModelRules, Rule, RuleFile, RuleSet


@dataclass
class LintContext:
    files: list[RuleFile]  # the files being linted, as read (entries with errors left out)
    ruleset: RuleSet | None  # the embedded rules with the linted files layered over them
    models: list[tuple[str, object]] = field(default_factory=list)  # (model folder, model built on meta)
    ulysses: int = 1  # the Ulysses degree sequence-parallel plans are checked for

    def rules(self) -> Iterator[tuple[RuleFile, ModelRules | None, Rule]]:
        """Every rule of the linted files: applies-to, shard and compile rules of models, then strategy rules."""
        for rule_file in self.files:
            for model in rule_file.models:
                yield rule_file, model, model.applies_to
                for rule in model.shard:
                    yield rule_file, model, rule
                if model.compile is not None:
                    yield rule_file, model, model.compile
            for rule in rule_file.numbered_block_rules or ():
                yield rule_file, None, rule


def canonical(expr: Expr):
    """The structure of an expression without positions, for comparing two rules."""
    if isinstance(expr, (And, Or)):  # the order of operands does not change what a rule selects
        return (type(expr).__name__, frozenset(canonical(e) for e in expr.operands))
    if isinstance(expr, Not):
        return ("Not", canonical(expr.operand))
    if isinstance(expr, InList):
        return ("InList", expr.field, frozenset(expr.values), expr.negated)
    if isinstance(expr, Compare):
        if expr.op in ("==", "!="):
            return ("InList", expr.field, frozenset([expr.value]), expr.op == "!=")
        return ("Compare", expr.field, expr.op, expr.value)
    if isinstance(expr, Matches):
        return ("Matches", expr.field, expr.pattern)
    if isinstance(expr, StringTest):
        return ("StringTest", expr.field, expr.op, expr.value)
    if isinstance(expr, (IsDigit, IsRoot)):
        return (type(expr).__name__, expr.field, expr.negated)
    raise AssertionError(expr)  # pragma: no cover


class ModelAnalysis:
    """The plan of one model under the linted rules, and what the checks need around it."""

    def __init__(self, model_dir: str, model, ruleset: RuleSet) -> None:
        from ..engine.facts import ModuleFacts
        from ..engine.resolve import compiled_rule, plan
        from ..errors import PlanError

        self.model_dir = model_dir
        self.model = model
        self.ruleset = ruleset
        self.facts = ModuleFacts.of_model(model)
        self.entry = next((m for m in ruleset.models if compiled_rule(m.applies_to).test(self.facts, 0)), None)
        self.plan = None
        self.error: PlanError | None = None
        try:
            with warnings.catch_warnings():  # a fallback is reported as a finding (SR302), not as a warning
                warnings.simplefilter("ignore", UserWarning)
                self.plan = plan(model, ruleset)
        except PlanError as exc:
            self.error = exc

    def rules_of_source(self) -> tuple[Rule, ...]:
        """The rules of the strategy that planned (or would plan) the model."""
        source = self.plan.source if self.plan else None
        if source == "common-numbered-block":
            return self.ruleset.numbered_block_rules
        if self.entry is not None and source in (None, "explicit"):
            return self.entry.shard
        return ()

    @cached_property
    def unit_positions(self) -> dict[str, int]:
        """Position of each unit of the plan in the facts."""
        wanted = set(self.plan.units)
        return {name: i for i, name in enumerate(self.facts.names) if name in wanted}

    @cached_property
    def _owners(self) -> list[int]:
        return self.facts.owners(set(self.unit_positions.values()))

    def unit_above(self, i: int) -> int:
        """Position of the deepest unit that holds module ``i`` from above (not ``i`` itself); 0 if none."""
        return self._owners[self.facts.parents[i]]

    def selected(self, rule: Rule) -> set[int]:
        from ..engine.resolve import compiled_rule

        return {i for i in compiled_rule(rule).select(self.facts) if i}

    def finding(self, code: str, message: str, severity: str):
        """A finding about the model as a whole, placed on the resolution order that planned it."""
        from .findings import Finding

        where = self.ruleset.order_where
        return Finding(where.path, where.line, where.column, where.line, where.column + 1, code,
                       f"{self.model_dir}: {message}", severity)


def analyses(ctx: LintContext) -> list[ModelAnalysis]:
    cached = getattr(ctx, "_analyses", None)
    if cached is None:
        cached = [ModelAnalysis(d, m, ctx.ruleset) for d, m in ctx.models] if ctx.ruleset else []
        ctx._analyses = cached
    return cached
