"""Resolution: the embedded order of strategies chooses the units of a model (SPEC §4)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from torch import nn

from ..errors import PlanError
from ..rules import Location, Rule, RuleSet
from .compile import CompiledRule, compile_rule
from .facts import ModuleFacts, class_name, collect_facts, is_digits
from .wrapped import get_wrapped_attr

_CONTAINERS = (nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Unit:
    """One module that becomes an FSDP unit, and why."""

    name: str
    class_name: str
    rule: str  # the expression (or description) that chose it
    where: Location | None  # file:line:col of that rule, none for block-class (read from the model)
    params: int  # parameters this unit shards (its subtree minus nested units)
    param_shapes: tuple[tuple[tuple[int, ...], int], ...]  # (shape, element size) of each parameter it shards
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def bytes_per_rank(self, world_size: int) -> int:
        """Bytes of this unit's parameters on one rank: FSDP2 shards dim 0, padding it to a multiple."""
        return sum(_local_bytes(shape, size, world_size) for shape, size in self.param_shapes)


@dataclass(frozen=True)
class Attempt:
    strategy: str
    selected: int
    detail: str


@dataclass(frozen=True)
class ShardPlan:
    model_class: str
    source: str
    model_rule: str | None  # the [[model]] name when source is "explicit"
    units_info: tuple[Unit, ...]  # bottom-up: children before parents, the order fully_shard needs
    root_params: int
    root_param_shapes: tuple[tuple[tuple[int, ...], int], ...]
    attempts: tuple[Attempt, ...]

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(unit.name for unit in self.units_info)

    def unit(self, name: str) -> Unit:
        for unit in self.units_info:
            if unit.name == name:
                return unit
        raise KeyError(f"'{name}' is not a unit of this plan")

    def explain(self, name: str) -> str:
        """Which rule made ``name`` a unit, and where that rule is written."""
        unit = self.unit(name)
        where = f" ({unit.where})" if unit.where else ""
        return f"{name}: {self.source} rule '{unit.rule}'{where}"

    @property
    def total_params(self) -> int:
        return self.root_params + sum(unit.params for unit in self.units_info)

    def root_bytes_per_rank(self, world_size: int) -> int:
        return sum(_local_bytes(shape, size, world_size) for shape, size in self.root_param_shapes)

    def bytes_per_rank(self, world_size: int) -> int:
        return self.root_bytes_per_rank(world_size) + sum(u.bytes_per_rank(world_size) for u in self.units_info)


def _local_bytes(shape: tuple[int, ...], element_size: int, world_size: int) -> int:
    if not shape:
        return element_size  # a 0-d parameter is replicated
    return math.ceil(shape[0] / world_size) * math.prod(shape[1:]) * element_size


# -- strategies ------------------------------------------------------------------------------------------
# Each returns {unit name: (rule text, location, options)} over the non-root modules.

Choice = tuple[str, "Location | None", Mapping[str, Any]]


@functools.lru_cache(maxsize=4096)
def compiled_rule(rule: Rule) -> CompiledRule:
    """The predicate of a rule from a rule file, compiled once per rule."""
    return compile_rule(rule.expr)


def _by_rules(facts: list[tuple[nn.Module, ModuleFacts]], rules: tuple[Rule, ...]) -> dict[str, Choice]:
    compiled: list[tuple[Rule, CompiledRule]] = [(rule, compiled_rule(rule)) for rule in rules]
    chosen: dict[str, Choice] = {}
    for _, fact in facts[1:]:
        for rule, predicate in compiled:
            if predicate.test(fact):
                chosen[fact.name] = (rule.text, rule.where, rule.options)
                break
    return chosen


def _numbered_entry_or_child(name: str) -> bool:
    parts = name.split(".")
    if len(parts) >= 2 and is_digits(parts[-1]):
        return True
    return len(parts) >= 3 and is_digits(parts[-2])


def _by_block_class(model: nn.Module, facts, attrs: tuple[str, ...]) -> tuple[dict[str, Choice], str]:
    classes: dict[str, str] = {}
    for attr in attrs:
        for cls in get_wrapped_attr(model, attr, None) or ():
            classes.setdefault(cls, attr)
    if not classes:
        return {}, f"the model has none of {', '.join(attrs)}"
    chosen: dict[str, Choice] = {}
    for _, fact in facts[1:]:
        attr = classes.get(fact.class_name)
        if attr is not None and _numbered_entry_or_child(fact.name):
            chosen[fact.name] = (f"class {fact.class_name} in {attr}", None, MappingProxyType({}))
    if not chosen:
        return {}, f"no numbered block has a class in {sorted(classes)}"
    return chosen, f"classes {sorted(classes)}"


def plan(model: nn.Module, rules: RuleSet | None = None) -> ShardPlan:
    """Choose the FSDP units of ``model``: the first strategy of ``rules.order`` that selects a unit wins."""
    if rules is None:
        from ..rules import load_rules

        rules = load_rules()
    facts = collect_facts(model)
    root_facts = facts[0][1]
    attempts: list[Attempt] = []
    for strategy in rules.order:
        model_rule = None
        if strategy == "explicit":
            entry = next((m for m in rules.models if compiled_rule(m.applies_to).test(root_facts)), None)
            if entry is None:
                attempts.append(Attempt(strategy, 0, f"no [[model]] applies to {root_facts.class_name}"))
                continue
            chosen = _by_rules(facts, entry.shard)
            model_rule = entry.name
            detail = f"model '{entry.name}' ({entry.where})" + ("" if chosen else " matched no module")
        elif strategy == "block-class":
            chosen, detail = _by_block_class(model, facts, rules.block_class_attrs)
        else:
            chosen = _by_rules(facts, rules.numbered_block_rules)
            detail = (f"{len(rules.numbered_block_rules)} numbered-container rule(s)" if rules.numbered_block_rules
                      else "no rules configured") + ("" if chosen else " matched no module")
        attempts.append(Attempt(strategy, len(chosen), detail))
        if chosen:
            return _build(model, facts, chosen, strategy, model_rule, tuple(attempts))
    tried = "; ".join(f"{a.strategy}: {a.detail}" for a in attempts)
    raise PlanError(f"no shard unit found for {root_facts.class_name}; tried {tried}. "
                    f"Add a [[model]] with applies-to = \"class == {root_facts.class_name}\" to a rule file.")


def _build(model: nn.Module, facts, chosen: dict[str, Choice], source: str, model_rule: str | None,
           attempts: tuple[Attempt, ...]) -> ShardPlan:
    modules = {fact.name: module for module, fact in facts}
    for name in chosen:
        if isinstance(modules[name], _CONTAINERS):
            rule, where, _ = chosen[name]
            raise PlanError(f"unit '{name}' is a {type(modules[name]).__name__}, which fully_shard rejects "
                            f"(chosen by '{rule}'{f' at {where}' if where else ''}); select its entries "
                            f"instead, e.g. 'name startswith \"{name}.\" and index is digit'")

    # Each parameter belongs to its deepest enclosing unit ("" = the root). A parameter reachable under two
    # owners (tied weights) cannot be sharded by both.
    owners: dict[int, list[tuple[str, str]]] = {}
    params: dict[int, nn.Parameter] = {}
    for pname, param in model.named_parameters(remove_duplicate=False):
        owner = _owner(pname, chosen)
        owners.setdefault(id(param), []).append((pname, owner))
        params[id(param)] = param
    per_owner: dict[str, list[nn.Parameter]] = {}
    for pid, places in owners.items():
        distinct = {owner for _, owner in places}
        if len(distinct) > 1:
            names = " and ".join(f"'{p}' (unit '{o or '<root>'}')" for p, o in places)
            common = _common_prefix([p for p, _ in places])
            suggestion = (f"make '{common}' one unit" if common else "leave both modules to the root unit")
            raise PlanError(f"parameter shared by two units: {names}; FSDP2 cannot shard a tied weight in two "
                            f"places: {suggestion}")
        per_owner.setdefault(places[0][1], []).append(params[pid])

    def shapes(owner: str) -> tuple[tuple[tuple[int, ...], int], ...]:
        return tuple((tuple(p.shape), p.element_size()) for p in per_owner.get(owner, ()))

    units = []
    for _, fact in reversed(facts):  # bottom-up
        if fact.name in chosen:
            rule, where, options = chosen[fact.name]
            owned = per_owner.get(fact.name, ())
            units.append(Unit(fact.name, fact.class_name, rule, where, sum(p.numel() for p in owned),
                              shapes(fact.name), options))
    root_owned = per_owner.get("", ())
    return ShardPlan(class_name(model), source, model_rule, tuple(units), sum(p.numel() for p in root_owned),
                     shapes(""), attempts)


def _owner(param_name: str, units: dict[str, Choice]) -> str:
    prefix = param_name
    while "." in prefix:
        prefix = prefix.rsplit(".", 1)[0]
        if prefix in units:
            return prefix
    return ""


def _common_prefix(names: list[str]) -> str:
    split = [n.split(".")[:-1] for n in names]
    common = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)
