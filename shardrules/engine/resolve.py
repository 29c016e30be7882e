"""Resolution: the embedded order of strategies chooses the units of a model (README, "Rules")."""

from __future__ import annotations

import difflib
import functools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter, is_
from types import MappingProxyType
from typing import Any, NamedTuple

from torch import nn

from ..errors import ContainerUnitError, NoUnitError, PlanError, TiedParameterError
from ..rules import Location, Rule, RuleSet
from ..torch_internals import own_parameters, own_persistent_buffers
from .compile import CompiledRule, compile_rule
from .describe import plan_as_text
from .facts import ModuleFacts
from .wrapped import get_wrapped_attr

_CONTAINERS = (nn.ModuleList, nn.ModuleDict)

Shapes = tuple[tuple[tuple[int, ...], int], ...]  # (shape, element size) of each parameter


def _local_bytes(shapes: Shapes, world_size: int) -> int:
    """Bytes on one rank: FSDP2 shards dim 0, padded to a multiple of the world size; 0-d is replicated."""
    return sum(math.ceil(shape[0] / world_size) * math.prod(shape[1:]) * size if shape else size
               for shape, size in shapes)


class _Sizes:
    """Which parameters each unit shards, worked out on first use (a plan is often used only for its names)."""

    def __init__(self, facts: ModuleFacts, units: frozenset[int], groups: Mapping[int, int] | None = None) -> None:
        self._facts, self._units = facts, units
        self._groups = groups or {}  # a module of a one-unit group -> the group's first module (its unit's name)

    @functools.cached_property
    def shapes(self) -> dict[str, Shapes]:
        facts = self._facts
        owner = facts.owners(self._units)
        found: dict[int, list] = {}
        seen: set[int] = set()
        for i, module in enumerate(facts.modules):
            for _, param in own_parameters(module):
                if id(param) not in seen:
                    seen.add(id(param))
                    holder = self._groups.get(owner[i], owner[i])
                    found.setdefault(holder, []).append((tuple(param.shape), param.element_size()))
        return {facts.name(i): tuple(found.get(i, ())) for i in (0, *self._units) if self._groups.get(i, i) == i}

    @functools.cached_property
    def buffers(self) -> Shapes:
        """Persistent buffers (saved with the weights, e.g. SD3's ``pos_embed``): whole on every rank."""
        seen: set[int] = set()
        found = []
        for module in self._facts.modules:
            for _, buf in own_persistent_buffers(module):
                if id(buf) not in seen:
                    seen.add(id(buf))
                    found.append((tuple(buf.shape), buf.element_size()))
        return tuple(found)


class Unit(NamedTuple):
    """One module that becomes an FSDP unit, and why."""

    name: str
    class_name: str
    rule: str  # the expression that chose it (block-class: the class and the attribute naming it)
    where: Location | None  # file:line:col of that rule; none for block-class (read from the model)
    options: Mapping[str, Any]
    sizes: _Sizes  # shared by the units of one plan; read through params and bytes_per_rank
    members: tuple[str, ...] = ()  # the other modules of a one-unit group (``fully_shard([name, *members])``)

    @property
    def param_shapes(self) -> Shapes:
        return self.sizes.shapes[self.name]

    @property
    def params(self) -> int:
        """Parameters this unit shards: its subtree's, less those of units nested in it."""
        return sum(math.prod(shape) for shape, _ in self.param_shapes)

    def bytes_per_rank(self, world_size: int) -> int:
        return _local_bytes(self.param_shapes, world_size)


@dataclass(frozen=True)
class Attempt:
    strategy: str
    selected: int
    detail: str


@dataclass(frozen=True)
class ShardPlan:
    model_class: str
    source: str  # "explicit" | "block-class" | "common-numbered-block"
    model_rule: str | None  # the [[model]] name when source is "explicit"
    units_info: tuple[Unit, ...]  # bottom-up: children before parents, the order fully_shard needs
    attempts: tuple[Attempt, ...]
    _sizes: _Sizes = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()  # what the plan fell back from (also issued as UserWarning)

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(unit.name for unit in self.units_info)

    def table(self, world_size: int = 1) -> str:
        """The table ``shardrules plan`` prints, for ``world_size`` ranks."""
        return plan_as_text(self, world_size)

    def __repr__(self) -> str:
        rule = f", model_rule={self.model_rule!r}" if self.model_rule else ""
        return (f"ShardPlan({self.model_class}, source={self.source!r}{rule}, units={len(self.units)}, "
                f"params={self.total_params})")

    def unit(self, name: str) -> Unit:
        for unit in self.units_info:
            if unit.name == name:
                return unit
        raise KeyError(f"'{name}' is not a unit of this plan")

    def explain(self, name: str) -> str:
        """Why ``name`` (any module of the model; ``""`` is the root) is or is not a unit: for a unit, the rule
        that chose it and where that rule is written, and its FSDP options; for any other module, the unit that
        holds its parameters and why it is not a unit itself."""
        if name in self.units:
            return self._describe_unit(self.unit(name))
        grouped = next((u for u in self.units_info if name in u.members), None)
        if grouped is not None:
            return (f"{name}: part of unit '{grouped.name}' (one unit of several modules). "
                    f"{self._describe_unit(grouped)}")
        facts = self._sizes._facts
        names = facts.names
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            raise KeyError(f"'{name}' is not a module of {self.model_class}"
                           + (f" (did you mean '{close[0]}'?)" if close else ""))
        if not name:
            return (f"<root> ({self.model_class}): the last fully_shard; holds every parameter outside the units "
                    f"({self.root_params} parameters)")
        i = names.index(name)
        units = {names.index(u) for unit in self.units_info for u in (unit.name, *unit.members)}
        owner = facts.owners(units)[i]
        module = facts.modules[i]
        if owner:
            holder = next(u for u in self.units_info if names[owner] in (u.name, *u.members))
            return (f"{name}: not a unit; nested inside unit '{holder.name}', whose all-gather holds its "
                    f"parameters. {self._describe_unit(holder)}")
        if isinstance(module, _CONTAINERS):
            why = f"a {type(module).__name__}, which fully_shard rejects as a unit (its entries can be units)"
        else:
            why = f"no rule of the {self.source} strategy chose it"
        return f"{name}: not a unit: {why}; its parameters outside any unit nested in it are held by the root"

    def _describe_unit(self, unit: Unit) -> str:
        where = f" ({unit.where})" if unit.where else ""
        if unit.members:
            where += f"; one unit with {', '.join(repr(m) for m in unit.members)}"
        options = ", ".join(f"{k}={v!r}" for k, v in unit.options.items())
        return f"{unit.name}: {self.source} rule '{unit.rule}'{where}" + (f"; options: {options}" if options else "")

    @property
    def root_params(self) -> int:
        return sum(math.prod(shape) for shape, _ in self._sizes.shapes[""])

    @property
    def total_params(self) -> int:
        return self.root_params + sum(unit.params for unit in self.units_info)

    def root_bytes_per_rank(self, world_size: int) -> int:
        return _local_bytes(self._sizes.shapes[""], world_size)

    @property
    def buffer_bytes(self) -> int:
        """Bytes of persistent buffers, which FSDP2 does not shard: the same on every rank."""
        return sum(math.prod(shape) * size for shape, size in self._sizes.buffers)

    def bytes_per_rank(self, world_size: int) -> int:
        """Parameters (sharded) and persistent buffers (whole) on one rank."""
        return (self.root_bytes_per_rank(world_size) + sum(u.bytes_per_rank(world_size) for u in self.units_info)
                + self.buffer_bytes)


@functools.lru_cache(maxsize=4096)
def compiled_rule(rule: Rule) -> CompiledRule:
    """The predicate of a rule from a rule file, compiled once per rule."""
    return compile_rule(rule.expr)


# A choice: unit position -> (rule text, location, options)
Choice = dict[int, tuple[str, "Location | None", Mapping[str, Any]]]


def _by_rules(facts: ModuleFacts, rules: tuple[Rule, ...]) -> Choice:
    chosen: Choice = {}
    for rule in rules:  # the first rule that holds for a module is the one that explains it
        for i in compiled_rule(rule).select(facts):
            if i and i not in chosen:
                chosen[i] = (rule.text, rule.where, rule.options)
    return chosen


def _by_block_class(model: nn.Module, facts: ModuleFacts, attrs: tuple[str, ...]) -> tuple[Choice, str]:
    classes: dict[str, str] = {}
    for attr in attrs:
        for cls in get_wrapped_attr(model, attr, None) or ():
            classes.setdefault(cls, attr)
    if not classes:
        return {}, f"the model sets none of {', '.join(attrs)}"
    # numbered entries of containers (blocks.3) and the modules one level inside them (blocks.3.block)
    candidates = set(facts.numbered)
    candidates.update(facts.children_of(facts.numbered))
    chosen: Choice = {}
    for i in sorted(candidates):
        name = facts.value("class", i)
        attr = classes.get(name)
        if attr is not None:
            chosen[i] = (f"class {name} in {attr}", None, MappingProxyType({}))
    if not chosen:
        return {}, f"no numbered block has a class in {sorted(classes)}"
    return chosen, f"classes {sorted(classes)}"


def plan(model: nn.Module, rules: RuleSet | None = None) -> ShardPlan:
    """Choose the FSDP units of ``model``: the first strategy of ``rules.order`` that selects a unit wins."""
    if rules is None:
        from ..rules import load_rules

        rules = load_rules()
    facts = ModuleFacts.of_model(model)
    root_class = facts.value("class", 0)
    attempts: list[Attempt] = []
    notes: list[str] = []
    for strategy in rules.order:
        model_rule = None
        if strategy == "explicit":
            entry = next((m for m in rules.models if compiled_rule(m.applies_to).test(facts, 0)), None)
            if entry is None:
                attempts.append(Attempt(strategy, 0, f"no [[model]] applies to {root_class}"))
                continue
            chosen = _by_rules(facts, entry.shard)
            model_rule = entry.name
            detail = f"model '{entry.name}' ({entry.where})" + ("" if chosen else " matched no module")
            if not chosen:
                note = (f"[[model]] '{entry.name}' ({entry.where}) applies to {root_class} but none of its shard "
                        f"rules matches a module; the plan falls back to the next strategy")
                warnings.warn(note, UserWarning, stacklevel=2)
                notes.append(note)
        elif strategy == "block-class":
            chosen, detail = _by_block_class(model, facts, rules.block_class_attrs)
        else:
            chosen = _by_rules(facts, rules.numbered_block_rules)
            detail = (f"{len(rules.numbered_block_rules)} numbered-container rule(s)" if rules.numbered_block_rules
                      else "no rules configured") + ("" if chosen else " matched no module")
        attempts.append(Attempt(strategy, _unit_count(chosen), detail))
        if chosen:
            return _build(facts, chosen, strategy, model_rule, tuple(attempts), tuple(notes))
    tried = "; ".join(f"{a.strategy}: {a.detail}" for a in attempts)
    raise NoUnitError(f"no shard unit found for {root_class}; tried {tried}. "
                      f"Add a [[model]] with applies-to = \"class == {root_class}\" to a rule file.")


def _build(facts: ModuleFacts, chosen: Choice, source: str, model_rule: str | None,
           attempts: tuple[Attempt, ...], notes: tuple[str, ...] = ()) -> ShardPlan:
    for i, (rule, where, _) in chosen.items():
        if isinstance(facts.modules[i], _CONTAINERS):
            name = facts.name(i)
            kind = type(facts.modules[i]).__name__
            raise ContainerUnitError(f"unit '{name}' is a {kind}, which fully_shard rejects (chosen by '{rule}'"
                                     f"{f' at {where}' if where else ''}); select its entries instead, e.g. "
                                     f"'name startswith \"{name}.\" and index is digit'")
    groups = _groups(facts, chosen)
    _check_tied(facts, chosen, groups)
    sizes = _Sizes(facts, frozenset(chosen), groups)
    members: dict[int, list[str]] = {}
    for i, leader in groups.items():
        if i != leader:
            members.setdefault(leader, []).append(facts.name(i))
    units = tuple(Unit(facts.name(i), facts.value("class", i), *chosen[i], sizes, tuple(members.get(i, ())))
                  for i in sorted(chosen, reverse=True)  # reversed pre-order: children before parents
                  if groups.get(i, i) == i)
    return ShardPlan(facts.value("class", 0), source, model_rule, units, attempts, sizes, notes)


def _group_leaders(chosen: Choice) -> dict[int, int]:
    """The modules of each ``one-unit`` rule, mapped to the first of them (whose name the unit takes)."""
    groups: dict[int, int] = {}
    first: dict[tuple, int] = {}
    for i in sorted(chosen):
        rule, where, options = chosen[i]
        if options.get("one_unit"):
            groups[i] = first.setdefault((rule, where), i)
    return groups


def _unit_count(chosen: Choice) -> int:
    """Units of a choice: the modules of one one-unit rule count once."""
    groups = _group_leaders(chosen)
    return sum(1 for i in chosen if groups.get(i, i) == i)


def _groups(facts: ModuleFacts, chosen: Choice) -> dict[int, int]:
    """:func:`_group_leaders`, checked: a group's modules must lie outside every other unit (``fully_shard`` of
    the group comes before the units around it)."""
    groups = _group_leaders(chosen)
    if groups:
        owner = facts.owners(chosen)
        for i in groups:
            around = owner[facts.parents[i]]
            if around:
                rule, where = chosen[i][:2]
                raise PlanError(f"module '{facts.name(i)}' of the one-unit rule '{rule}'"
                                f"{f' ({where})' if where else ''} lies inside unit '{facts.name(around)}'; the "
                                f"modules of one unit must lie outside every other unit")
    return groups


def _check_tied(facts: ModuleFacts, chosen: Choice, groups: Mapping[int, int]) -> None:
    """Refuse a parameter reachable from two units (or a unit and the root): FSDP2 shards it in one place. The
    modules of a one-unit group are one unit."""
    values = list(chain.from_iterable(map(dict.values, map(attrgetter("_parameters"), facts.modules))))
    distinct = set(map(id, values))
    distinct.discard(id(None))
    if len(distinct) == len(values) - sum(map(is_, values, repeat(None))):
        return  # no parameter is reachable twice: the common case, decided without a per-parameter loop
    places: dict[int, list[tuple[int, str]]] = {}
    for i, module in enumerate(facts.modules):
        for key, param in own_parameters(module):
            places.setdefault(id(param), []).append((i, key))
    shared = [where for where in places.values() if len(where) > 1]
    owner = facts.owners(chosen)
    for where in shared:
        owners = {groups.get(owner[i], owner[i]) for i, _ in where}
        if len(owners) > 1:
            names = [f"{facts.name(i)}.{key}" if i else key for i, key in where]
            described = " and ".join(f"'{n}' (unit '{facts.name(owner[i]) or '<root>'}')"
                                     for n, (i, _) in zip(names, where, strict=True))
            common = _common_prefix(names)
            modules = [facts.name(i) for i, _ in where]
            one_unit = f"{{ match = \"name in [{', '.join(modules)}]\", one-unit = true }}"
            suggestion = (f"make '{common}' one unit" if common else
                          f"make the modules one unit with the shard rule {one_unit}, or leave all of them to the "
                          f"root unit" if all(modules) else "leave both modules to the root unit")
            raise TiedParameterError(f"parameter shared by two units: {described}; FSDP2 cannot shard a tied weight "
                                     f"in two places: {suggestion}")


def _common_prefix(names: list[str]) -> str:
    split = [n.split(".")[:-1] for n in names]
    common = []
    for parts in zip(*split, strict=False):  # up to the shortest name
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)
