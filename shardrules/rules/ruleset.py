"""The values a rule file becomes: rules with their origin, model entries, strategies, the resolution order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..grammar import Expr, SourceMap

STRATEGIES = ("explicit", "block-class", "common-numbered-block")


@dataclass(frozen=True)
class Location:
    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, eq=False)
class Rule:
    """One expression with where it was written and the per-unit FSDP options that go with it."""

    text: str
    expr: Expr
    where: Location
    source: SourceMap
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, eq=False)
class Rename:
    """A ``[[model.rename]]`` entry: checkpoint keys matching ``pattern`` become ``replace``.

    An empty ``replace`` drops the key. With ``fuse``, the keys that rename to one parameter are
    concatenated along dim 0 in the order of ``fuse``, read from the pattern's group named ``part``.
    """

    pattern: str
    replace: str
    fuse: tuple[str, ...]
    where: Location


@dataclass(frozen=True, eq=False)
class SequenceRule:
    """One entry of ``[model.sequence-parallel]``: the modules ``match`` selects split a tensor along ``dim`` across
    the sequence-parallel ranks (``split``: the forward argument ``input``, or the module's output ``output``), or
    all-gather their output ``output`` along ``dim`` (``gather``). ``expected_dims``: only a tensor with this many
    dimensions is split or gathered (diffusers' ``expected_dims``: Wan's ``timestep`` is split only when it is given
    per token)."""

    kind: str  # "split" | "gather"
    match: Rule
    input: str | None
    output: int | None
    dim: int
    expected_dims: int | None
    where: Location
    # the tensor is these arguments' tokens concatenated along ``dim`` (a joint mask built inside forward): each
    # segment is split on its own, as the arguments it stands for are
    segments: tuple[str, ...] = ()
    why: str = ""  # a ``refuse`` entry: why a call that passes ``input`` cannot run split
    # with ``segments``: "local" (each rank keeps its own pieces) or "gathered" (every rank keeps the whole tensor,
    # its pieces in the order Ulysses' all-to-all gives the tokens: rank by rank, each rank's segments side by side)
    layout: str = "local"
    # an integer forward argument that counts the tokens at the end of ``input`` (Helios' ``original_context_length``:
    # the current frames after the history): each rank is given how many of them its share holds
    tail_count: str | None = None
    # the element of a tuple or list argument that is split (Allegro's rotary argument is (tables, positions): the
    # positions follow the tokens, the tables do not); the other elements are passed as they are
    element: int | None = None

    @property
    def arguments(self) -> tuple[str, ...]:
        """The forward arguments this entry names: its input, its segments and its tail count."""
        return tuple(a for a in (self.input, *self.segments, self.tail_count) if a is not None)


@dataclass(frozen=True, eq=False)
class SequencePlanRules:
    """A model's ``[model.sequence-parallel]`` table: where its sequence is split and where it is gathered."""

    split: tuple[SequenceRule, ...]
    gather: tuple[SequenceRule, ...]
    where: Location
    whole: Rule | None = None  # modules that always see the whole sequence (before any split): their attention
    # needs no parallel config (HunyuanVideo's token refiner, on the text alone)
    refuse: tuple[SequenceRule, ...] = ()  # arguments a split run cannot take: a call passing one is a typed error
    cannot: str = ""  # why no plan can split this model (its token mixing is outside what a split can carry)


@dataclass(frozen=True, eq=False)
class ModelRules:
    name: str
    applies_to: Rule
    shard: tuple[Rule, ...]
    rename: tuple[Rename, ...]
    allow_init: Mapping[str, str]  # parameter name glob -> "zeros" | "ones": may be missing from checkpoints
    where: Location
    sequence_parallel: SequencePlanRules | None = None
    compile: Rule | None = None  # modules outside the units compiled too (with load_sharded(compile=...))


@dataclass(frozen=True, eq=False, repr=False)
class RuleSet:
    """Rule files layered into one set: what ``plan`` reads."""

    order: tuple[str, ...]
    order_where: Location
    block_class_attrs: tuple[str, ...]
    numbered_block_rules: tuple[Rule, ...]
    models: tuple[ModelRules, ...]  # in precedence order: later files first, then file order
    files: tuple[str, ...]

    def __repr__(self) -> str:  # the dataclass repr printed every parsed expression: 585,801 characters
        return (f"RuleSet(files={list(self.files)!r}, models={len(self.models)}, order={list(self.order)!r}, "
                f"numbered_block_rules={len(self.numbered_block_rules)})")

    def model(self, name: str) -> ModelRules:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def without_models(self) -> RuleSet:
        """The same set with no explicit model entries (used to see what the fallbacks do)."""
        return RuleSet(self.order, self.order_where, self.block_class_attrs, self.numbered_block_rules, (),
                       self.files)
