"""Sequence-parallel plans: where a model's sequence is split across ranks and where it is gathered again.

A plan comes from the model's ``[model.sequence-parallel]`` table when its rules have one, else from the class's own
diffusers ``_cp_plan`` (translated entry by entry), else there is none. Either way it resolves to concrete module
names, so the same plan is shown by ``plan``, checked by ``rule-lint`` and applied by the loader. Resolving needs
no process group; applying it is :mod:`shardrules.loader.sequence`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from dataclasses import dataclass

from torch import nn

from ..errors import SequenceParallelError
from ..rules import Location, RuleSet, SequenceRule
from .compile import compile_rule
from .facts import ModuleFacts

RULES = "rules"
DIFFUSERS = "diffusers"


@dataclass(frozen=True)
class SequenceEntry:
    """One split or gather point on one module."""

    module: str  # "" is the root
    kind: str  # "split" | "gather"
    input: str | None  # a forward argument split before the module runs
    output: int | None  # an element of the module's output, split (or gathered) after it runs
    dim: int
    expected_dims: int | None
    origin: str  # the rule text, or the _cp_plan key it came from
    where: Location | None  # where that rule is written (none for a _cp_plan)
    segments: tuple[str, ...] = ()  # the input concatenates these arguments' tokens: split segment by segment
    why: str = ""  # kind "refuse": why a split run cannot take ``input``
    layout: str = "local"  # with segments: "local" or "gathered" (whole, in the all-to-all's token order)
    tail_count: str | None = None  # an integer argument counting the input's last tokens: each rank gets its share
    element: int | None = None  # the input is a tuple or list: only this element of it is split

    @property
    def arguments(self) -> tuple[str, ...]:
        """The forward arguments this entry names: its input, its segments and its tail count."""
        return tuple(a for a in (self.input, *self.segments, self.tail_count) if a is not None)

    @property
    def what(self) -> str:
        """The tensor, in words: ``hidden_states`` or ``output 0``."""
        return self.input if self.input is not None else f"output {self.output}"

    def describe(self) -> str:
        if self.kind == "refuse":
            return f"refuse {self.module or '(root)'} {self.input}: {self.why}"
        dims = f", {self.expected_dims}-d" if self.expected_dims is not None else ""
        parts = f" by segments {' + '.join(self.segments)}" if self.segments else ""
        parts += ", whole in the order of the gathered tokens" if self.layout == "gathered" else ""
        parts += ", before it runs" if self.kind == "gather" and self.input is not None else ""
        parts += f", {self.tail_count} counting its last tokens" if self.tail_count else ""
        what = f"{self.what}[{self.element}]" if self.element is not None else self.what
        return f"{self.kind} {self.module or '(root)'} {what} along dim {self.dim}{dims}{parts}"


@dataclass(frozen=True)
class SequencePlan:
    model_class: str
    source: str  # RULES | DIFFUSERS
    origin: str  # "model 'wan' (file:line:col)" or "WanTransformer3DModel._cp_plan"
    entries: tuple[SequenceEntry, ...]
    whole: tuple[str, ...] = ()  # modules that see the whole sequence: their attention needs no parallel config
    cannot: str = ""  # the rules say no plan can split this model, and why: a split run is refused

    @property
    def splits(self) -> tuple[SequenceEntry, ...]:
        return tuple(e for e in self.entries if e.kind == "split")

    @property
    def gathers(self) -> tuple[SequenceEntry, ...]:
        return tuple(e for e in self.entries if e.kind == "gather")

    @property
    def refusals(self) -> tuple[SequenceEntry, ...]:
        """Arguments a split run cannot take: a call that passes one is refused (loader/sequence.py)."""
        return tuple(e for e in self.entries if e.kind == "refuse")

    @property
    def gathered_inputs(self) -> tuple[SequenceEntry, ...]:
        """Arguments gathered whole before their module runs (applied by shardrules' own hook): a module that needs
        the whole sequence inside a split model (an expert-choice mixture of experts)."""
        return tuple(e for e in self.entries if e.kind == "gather" and e.input is not None)

    @property
    def segmented(self) -> tuple[SequenceEntry, ...]:
        """Splits of a tensor that concatenates several arguments' tokens (applied by shardrules' own hook)."""
        return tuple(e for e in self.entries if e.segments)

    def unreached(self, names: list[str]) -> tuple[SequenceEntry, ...]:
        """The splits that no gather comes after, ``names`` being the model's modules in the order its forward runs
        them (:func:`forward_order`): the model would return each rank's share of the sequence. A split takes
        effect as its module starts (an argument) or ends (an output), a gather likewise; a module ends after every
        module inside it."""
        order = {name: i for i, name in enumerate(names)}

        def end(module: str) -> int:
            return max(i for name, i in order.items()
                       if not module or name == module or name.startswith(module + "."))

        def when(entry: SequenceEntry) -> int:
            return 2 * order[entry.module] if entry.input is not None else 2 * end(entry.module) + 1

        gathers = [when(g) for g in self.gathers]
        return tuple(s for s in self.splits if not any(g > when(s) for g in gathers))

    def as_text(self) -> str:
        if self.cannot:
            return f"sequence parallel: none, {self.cannot} ({self.origin})"
        lines = [f"sequence parallel: {self.origin}"]
        lines += [f"  {entry.describe()}" for entry in self.entries]
        if self.whole:
            lines.append(f"  whole sequence: {', '.join(self.whole)}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"source": self.source, "origin": self.origin, "whole": list(self.whole),
                **({"cannot": self.cannot} if self.cannot else {}),
                "entries": [{"module": e.module, "kind": e.kind, "input": e.input, "output": e.output,
                             "dim": e.dim, "expected_dims": e.expected_dims, "segments": list(e.segments),
                             **({"layout": e.layout} if e.segments else {}),
                             **({"tail_count": e.tail_count} if e.tail_count else {}),
                             **({"element": e.element} if e.element is not None else {}),
                             **({"why": e.why} if e.kind == "refuse" else {})}
                            for e in self.entries]}

    def hook_specs(self) -> list[tuple[str, dict | list]]:
        """diffusers' hook specs, module by module: the splits (``ContextParallelInput`` by argument name or output
        index) of every module that splits, then the gathers (``ContextParallelOutput`` by output index) of every
        module that gathers. A module may do both: its arguments split before it runs and its output gathered after
        (the last block of a model that slices its output after the blocks, which also takes a table at every
        block)."""
        from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

        splits: dict = {}
        gathers: dict[str, dict[int, SequenceEntry]] = {}
        for entry in self.entries:
            if entry.segments or entry.kind == "refuse" or (entry.kind == "gather" and entry.input is not None):
                continue  # shardrules' own hooks (loader/sequence.py)
            if entry.kind == "split":
                key = entry.input if entry.input is not None else entry.output
                if entry.element is None:
                    spec = ContextParallelInput(split_dim=entry.dim, expected_dims=entry.expected_dims,
                                                split_output=entry.input is None)
                else:
                    spec = of_element()(split_dim=entry.dim, expected_dims=entry.expected_dims, split_output=False,
                                        element=entry.element)
                earlier = splits.get(entry.module, {}).get(key)
                if earlier is not None:  # diffusers' hooks take one split per argument or output
                    choices = getattr(earlier, "choices", (earlier,))
                    elements = entry.element is not None or getattr(earlier, "element", None) is not None
                    if elements or entry.expected_dims is None or any(c.expected_dims in (None, entry.expected_dims)
                                                                      for c in choices):
                        why = (": a split of one of its elements ('element') must be its only split" if elements else
                               " for the same number of dimensions; a module splits each argument or output once, or "
                               "once for each expected-dims")
                        raise SequenceParallelError(f"{entry.where or self.origin}: '{entry.module or '(root)'}' "
                                                    f"{entry.what} is split twice{why}")
                    spec = by_dims()(split_dim=choices[0].split_dim, expected_dims=None,
                                     split_output=entry.input is None, choices=(*choices, spec))
                splits.setdefault(entry.module, {})[key] = spec
            else:
                gathers.setdefault(entry.module, {})[entry.output] = entry
        return [*splits.items(), *((module, [None if i not in by_index else ContextParallelOutput(
            gather_dim=by_index[i].dim, expected_dims=by_index[i].expected_dims) for i in range(max(by_index) + 1)])
            for module, by_index in gathers.items())]

    def cp_plan(self) -> dict:
        """The plan as diffusers' ``ContextParallelModelPlan``, keyed by concrete module names. That format has one
        entry per module, so a module that both splits and gathers cannot be written in it."""
        plan: dict = {}
        for module, spec in self.hook_specs():
            if module in plan:
                raise SequenceParallelError(f"module '{module or '(root)'}' both splits and gathers, which diffusers' "
                                            f"_cp_plan format cannot say (one entry per module)")
            plan[module] = spec
        return plan


@functools.cache
def by_dims() -> type:
    """diffusers' ``ContextParallelInput`` holding several splits of one argument or output, each for a different
    number of dimensions (``choices``): the tensor's own number of dimensions chooses one when it is split (LTX-2's
    rotary tables are [B, T, D] or, with its "split" rope, [B, H, T, D / 2]). shardrules' split hook reads it."""
    from diffusers.models._modeling_parallel import ContextParallelInput

    @dataclass(frozen=True)
    class ContextParallelByDims(ContextParallelInput):
        choices: tuple = ()

    return ContextParallelByDims


@functools.cache
def of_element() -> type:
    """diffusers' ``ContextParallelInput`` for one element of a tuple or list argument (``element``): shardrules' split
    hook splits each tensor in that element and passes the others as they are (Allegro's rotary argument is
    ``(tables, positions)``, and only the positions follow the tokens)."""
    from diffusers.models._modeling_parallel import ContextParallelInput

    @dataclass(frozen=True)
    class ContextParallelElement(ContextParallelInput):
        element: int = 0

    return ContextParallelElement


def _class_plan(model: nn.Module) -> dict | None:
    """The class's own diffusers ``_cp_plan`` (through FSDP2's subclass), or ``None``."""
    plan = getattr(type(model), "_cp_plan", None)
    if isinstance(plan, property):
        plan = getattr(model, "_cp_plan", None)
    return plan or None


def _expand(facts: ModuleFacts, key: str) -> list[str]:
    """The modules a ``_cp_plan`` key names: dotted names where ``*`` stands for each entry of a ModuleList."""
    if key == "":
        return [""]
    parts = key.split(".")
    found = []
    for name in facts.names:
        atoms = name.split(".") if name else []
        if len(atoms) == len(parts) and all(p in ("*", a) for p, a in zip(parts, atoms, strict=True)):
            found.append(name)
    return found


# diffusers' own plans measured on 2 gloo ranks to fail: refused with what is wrong, instead of torch's shape error
# inside the first block on every rank. A [model.sequence-parallel] table in a rule file replaces the class's plan.
FAULTY_CP_PLANS = {
    "LTX2VideoTransformer3DModel": "splits the video tokens but leaves the audio tokens and the audio-video "
                                   "cross-attention's rotary tables whole, so the first block's audio-to-video "
                                   "attention fails",
}


def _from_diffusers(model: nn.Module, facts: ModuleFacts, class_plan: dict) -> SequencePlan:
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    name = type(model).__name__.removeprefix("FSDP")
    if name in FAULTY_CP_PLANS:
        raise SequenceParallelError(f"{name}._cp_plan (diffusers) {FAULTY_CP_PLANS[name]}; a [model.sequence-"
                                    f"parallel] table in a rule file would replace it")
    entries = []
    for key, value in class_plan.items():
        modules = _expand(facts, key)
        if not modules:
            raise SequenceParallelError(f"{name}._cp_plan names '{key}', which is not a module of this model")
        origin = f"_cp_plan[{key!r}]"
        for module in modules:
            if isinstance(value, dict):
                for arg, spec in value.items():
                    specs = spec if isinstance(spec, (list, tuple)) else [spec]
                    if not all(isinstance(s, ContextParallelInput) for s in specs) or len(specs) != 1:
                        raise SequenceParallelError(f"{name}.{origin}[{arg!r}] is {spec!r}; shardrules reads one "
                                                    f"ContextParallelInput per argument or output")
                    spec = specs[0]
                    split_output = isinstance(arg, int)
                    entries.append(SequenceEntry(module, "split", None if split_output else arg,
                                                 arg if split_output else None, spec.split_dim, spec.expected_dims,
                                                 origin, None))
            else:
                outputs = value if isinstance(value, (list, tuple)) else [value]
                for i, spec in enumerate(outputs):
                    if spec is None:
                        continue
                    if not isinstance(spec, ContextParallelOutput):
                        raise SequenceParallelError(f"{name}.{origin} is {value!r}, not ContextParallelOutput")
                    entries.append(SequenceEntry(module, "gather", None, i, spec.gather_dim, spec.expected_dims,
                                                 origin, None))
    return SequencePlan(name, DIFFUSERS, f"{name}._cp_plan (diffusers)", tuple(entries))


def plan_from_rules(facts: ModuleFacts, model_name: str, table) -> SequencePlan:
    """The plan a model's `[model.sequence-parallel]` table resolves to over its modules."""
    if table.cannot:
        return SequencePlan(facts.value("class", 0), RULES, f"model '{model_name}' ({table.where})", (),
                            cannot=table.cannot)
    entries = []
    rules: tuple[SequenceRule, ...] = (*table.split, *table.gather, *table.refuse)
    for rule in rules:
        chosen = sorted(compile_rule(rule.match.expr).select(facts))
        if not chosen:
            raise SequenceParallelError(f"{rule.where}: the sequence-parallel {rule.kind} rule '{rule.match.text}' "
                                        f"of model '{model_name}' matches no module")
        for i in chosen:
            entries.append(SequenceEntry(facts.name(i), rule.kind, rule.input, rule.output, rule.dim,
                                         rule.expected_dims, rule.match.text, rule.where, rule.segments, rule.why,
                                         rule.layout, rule.tail_count, rule.element))
    whole = ()
    if table.whole is not None:
        whole = tuple(facts.name(i) for i in sorted(compile_rule(table.whole.expr).select(facts)))
        if not whole:
            raise SequenceParallelError(f"{table.whole.where}: the sequence-parallel 'whole' rule "
                                        f"'{table.whole.text}' of model '{model_name}' matches no module")
    return SequencePlan(facts.value("class", 0), RULES, f"model '{model_name}' ({table.where})", tuple(entries),
                        whole)


def sequence_plan(model: nn.Module, rules: RuleSet | None = None) -> SequencePlan | None:
    """The sequence-parallel plan of ``model``: its rules' ``[model.sequence-parallel]`` table when the first
    ``[[model]]`` that applies to it has one, else its class's diffusers ``_cp_plan``, else ``None``."""
    from .resolve import compiled_rule

    if rules is None:
        from ..rules import load_rules

        rules = load_rules()
    facts = ModuleFacts.of_model(model)
    entry = next((m for m in rules.models if compiled_rule(m.applies_to).test(facts, 0)), None)
    if entry is not None and entry.sequence_parallel is not None:
        return plan_from_rules(facts, entry.name, entry.sequence_parallel)
    class_plan = _class_plan(model)
    if class_plan is not None:
        return _from_diffusers(model, facts, class_plan)
    return None


@functools.cache
def _named_in_forward(cls: type) -> dict[str, int]:
    """The attributes a class's ``forward`` names as ``self.<name>``, each at its first place in the source; a
    method of the class it calls (``self._blocks(...)``) is read in place, once."""
    order: dict[str, int] = {}

    def read(method: str, seen: set[str]) -> None:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, method))))
        except (OSError, TypeError, SyntaxError):  # no source (a C extension, a generated forward): no order
            return
        named = sorted((node.lineno, node.col_offset, node.attr) for node in ast.walk(tree)
                       if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                       and node.value.id == "self")
        for _, _, attr in named:
            if inspect.isfunction(inspect.getattr_static(cls, attr, None)):
                if attr not in seen:
                    seen.add(attr)
                    read(attr, seen)
            else:
                order.setdefault(attr, len(order))

    read("forward", {"forward"})
    return order


def forward_order(model: nn.Module) -> list[str]:
    """The names of ``model``'s modules, each module before the modules inside it, and a module's children in the
    order its ``forward`` first names them (children it does not name, and the entries of a ``ModuleList``, where
    they are registered, after the named ones): the order the forward runs them, read from its source, which
    ``named_modules()``' order of registration is not (Z-Image registers its final layer before its blocks)."""
    names: list[str] = []

    def visit(module: nn.Module, prefix: str) -> None:
        names.append(prefix)
        children = list(module.named_children())
        named = _named_in_forward(type(module))
        ranked = sorted(range(len(children)), key=lambda i: (named.get(children[i][0], len(named) + i)))
        for i in ranked:
            child_name, child = children[i]
            visit(child, f"{prefix}.{child_name}" if prefix else child_name)

    visit(model, "")
    return names


def forward_parameters(module: nn.Module) -> list[str]:
    """The names a module's ``forward`` takes (FSDP2's subclass keeps the model's own ``forward``)."""
    return list(inspect.signature(type(module).forward).parameters)[1:]


@dataclass(frozen=True)
class Attention:
    """An attention module of the model and what sequence parallel needs of it."""

    name: str
    class_name: str
    processor: str
    takes_split: bool  # its processor has diffusers' _parallel_config (dispatches through Ulysses / ring), or is routed
    heads: int | None
    grouped: bool = False  # grouped-query attention passed as such (enable_gqa): Ulysses only (loader/sequence.py)
    causal: bool = False  # causal attention (is_causal=True): Ulysses only, with the tokens in their order
    flex: bool = False  # dispatched on diffusers' flex backend (a BlockMask), which ignores the parallel config
    # no parallel config, but calls torch's scaled_dot_product_attention itself: shardrules routes that call through
    # diffusers' dispatch with the parallel config (loader/sequence.py), so it takes a split too
    routed: bool = False


@functools.cache
def _call_source(processor_class: type) -> str:
    """The source of the processor's ``__call__``, or "" where there is none to read."""
    try:
        return inspect.getsource(processor_class.__call__)
    except (OSError, TypeError):
        return ""


def _gqa_source(processor_class: type) -> str:
    """How the processor's ``__call__`` passes ``enable_gqa`` to diffusers' attention dispatch: "always", "by heads"
    (an expression, such as ACE-Step's ``attn.heads != attn.kv_heads``), or ""."""
    source = _call_source(processor_class)
    if re.search(r"enable_gqa\s*=\s*True", source):
        return "always"
    return "by heads" if re.search(r"enable_gqa\s*=", source) else ""


def _passes_causal(processor_class: type) -> bool:
    """Whether the processor's ``__call__`` asks diffusers' dispatch for causal attention (``is_causal=True``, as
    MiniMax Music 3's depth decoder does over its codebooks): its context-parallel attention raises "Causal attention
    is not yet supported for templated attention"."""
    return re.search(r"is_causal\s*=\s*True", _call_source(processor_class)) is not None


def _flex_source(processor_class: type) -> bool:
    """Whether the processor's ``__call__`` names diffusers' flex backend itself (``backend="flex"``)."""
    return re.search(r"backend\s*=\s*(AttentionBackendName\.FLEX\b|[\"']flex[\"'])",
                     _call_source(processor_class)) is not None


def _flex(processor) -> bool:
    """Whether the processor dispatches on diffusers' flex backend (its block-sparse ``BlockMask``, built over the
    whole sequence): Kandinsky 6 SR's NABLA attention, AnyFlow FAR's block-causal frames, Wan Animate 2's packed
    reference frames. diffusers registers that backend without context-parallel support and its function never
    reads the parallel config: each rank would attend over its own share of the tokens only. Measured with a plan for
    Kandinsky 6 SR: flex attention raised inside the first block on every rank (a BlockMask built for the whole
    sequence, 64 tokens given); a mask the caller builds per rank would give a wrong answer instead."""
    return _flex_source(type(processor)) or getattr(processor, "_attention_backend", None) in FLEX_BACKENDS


FLEX_BACKENDS = ("flex", "_native_flex")


def _calls_sdpa(processor_class: type) -> bool:
    """Whether the processor's ``__call__`` calls torch's ``scaled_dot_product_attention`` itself (diffusers' legacy
    processors: ``AttnProcessor2_0``, SD3's ``JointAttnProcessor2_0``, CogVideoX's, ...), with its ``[B, H, S, D]``
    tensors."""
    return re.search(r"\bscaled_dot_product_attention\(", _call_source(processor_class)) is not None


def _grouped(module: nn.Module, processor) -> bool:
    """Whether the module's processor hands diffusers' dispatch grouped-query attention (``enable_gqa``): its
    context-parallel attention raises "GQA is not yet supported for templated attention" (Cosmos 3 always passes
    it; ACE-Step when its key/value heads are fewer than its query heads)."""
    how = _gqa_source(type(processor))
    if how == "always":
        return True
    kv_heads = getattr(module, "kv_heads", None)
    return how == "by heads" and isinstance(kv_heads, int) and kv_heads != getattr(module, "heads", kv_heads)


def split_refusal(attention: list[Attention], ring: int = 1, segmented: bool = False) -> str | None:
    """Why these attention modules cannot run split, or None: a processor without diffusers' parallel config (it
    would attend over its own share of the tokens only), the flex backend (the same), or, with ``ring`` above 1,
    causal or grouped-query attention (under Ulysses alone shardrules takes both: loader/sequence.py). Causal
    attention is refused too when the plan splits a tensor by segments (``segmented``): the all-to-all then gathers
    the tokens out of their order, and causality is about their order."""
    for a in attention:
        if not a.takes_split:
            return (f"its attention processor {a.processor} (on {a.class_name} '{a.name}') takes no parallel config, "
                    f"so it would attend over its own share of the tokens only")
    for a in attention:
        if a.flex:
            return (f"its attention processor {a.processor} (on {a.class_name} '{a.name}') dispatches on diffusers' "
                    f"flex backend, which has no context-parallel attention: each rank would attend over its own "
                    f"share of the tokens only")
        if a.causal and ring > 1:
            return (f"'{a.name}' ({a.class_name}) is causal attention (is_causal in {a.processor}), which diffusers' "
                    f"ring attention refuses (\"Causal attention is not yet supported for templated attention\"); "
                    f"Ulysses alone takes it")
        if a.causal and segmented:
            return (f"'{a.name}' ({a.class_name}) is causal attention (is_causal in {a.processor}), and the plan "
                    f"splits a tensor by segments, so the tokens reach attention out of their order")
        if a.grouped and ring > 1:
            return (f"'{a.name}' ({a.class_name}) is grouped-query attention (enable_gqa in {a.processor}), which "
                    f"diffusers' ring attention refuses (\"GQA is not yet supported for templated attention\"); "
                    f"Ulysses alone takes it")
    return None


def attention_modules(model: nn.Module) -> list[Attention]:
    """Every diffusers attention module of ``model``, in model order."""
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention as LegacyAttention

    found = []
    for name, module in model.named_modules():
        if not isinstance(module, (LegacyAttention, AttentionModuleMixin)):
            continue
        processor = getattr(module, "processor", None)
        heads = getattr(module, "heads", None)
        configured = processor is not None and hasattr(processor, "_parallel_config")
        routed = processor is not None and not configured and _calls_sdpa(type(processor))
        found.append(Attention(name, type(module).__name__, type(processor).__name__, configured or routed,
                               heads if isinstance(heads, int) else None,
                               processor is not None and _grouped(module, processor),
                               processor is not None and _passes_causal(type(processor)),
                               processor is not None and _flex(processor), routed))
    return found


def inside(name: str, modules: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``modules`` or lies inside one."""
    return any(name == m or name.startswith(m + ".") for m in modules)


def check_sequence_parallel(model: nn.Module, plan: SequencePlan | None, ulysses: int, ring: int) -> None:
    """Refuse, with a typed error naming the class, what cannot run split: no plan, a processor that cannot take a
    split, heads that do not divide by the Ulysses degree, a split argument the forward does not take."""
    name = type(model).__name__.removeprefix("FSDP")
    if plan is None:
        raise SequenceParallelError(f"{name} has no sequence-parallel plan: its class has no diffusers _cp_plan and "
                                    f"no [[model]] that applies to it has a [model.sequence-parallel] table")
    if plan.cannot:
        raise SequenceParallelError(f"{name} cannot run sequence parallel: {plan.cannot} ({plan.origin})")
    attention = [a for a in attention_modules(model) if not inside(a.name, plan.whole)]
    if not attention:
        raise SequenceParallelError(f"{name} has no diffusers attention module, so nothing attends across the split")
    why = split_refusal(attention, ring, bool(plan.segmented))
    if why:
        raise SequenceParallelError(f"{name} cannot run sequence parallel: {why}")
    if ulysses > 1:
        for a in attention:
            if a.heads is not None and a.heads % ulysses:
                raise SequenceParallelError(f"{name}: '{a.name}' has {a.heads} attention heads, which Ulysses "
                                            f"{ulysses} cannot divide (each rank takes heads / {ulysses})")
    plan.hook_specs()  # an argument split twice: refused before anything runs
    for entry in plan.entries:
        if entry.input is None:
            continue
        module = model.get_submodule(entry.module)
        for argument in entry.arguments:
            if argument not in forward_parameters(module):
                raise SequenceParallelError(f"{entry.where or plan.origin}: {type(module).__name__}.forward of "
                                            f"'{entry.module or '(root)'}' takes no argument '{argument}'")
