"""A sequence-parallel plan applied to a sharded model, with diffusers' own context-parallel machinery.

One mesh over every rank, ``(split, ring, ulysses)``: the ``ulysses x ring`` ranks of a row share one sequence, each
holding 1 / (ulysses x ring) of its tokens; the ``split`` rows take the runner's guidance or batch split; FSDP2 still
shards the weights over all ranks (its own 1-D mesh). The plan's split and gather points become diffusers'
``ContextParallelSplitHook`` / ``ContextParallelGatherHook`` on the modules it names, and every attention processor
gets diffusers' ``ParallelConfig``, so ``dispatch_attention_fn`` runs Ulysses' all-to-all (or ring attention) itself.
Not ``ModelMixin.enable_parallelism``: it divides by ``torch.accelerator.device_count()`` (no accelerator: a
ZeroDivisionError) and builds a mesh of its own instead of sharing one with the guidance split.

Inputs are given whole on every rank and the output comes back whole on every rank.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from ..engine.sequence import SequencePlan, attention_modules, check_sequence_parallel, inside
from ..errors import SequenceParallelError
from .shard import default_device

RING_BACKENDS = ("flash", "flash_hub", "_native_cudnn", "_native_flash", "sage", "sage_hub")
_HOOK = "shardrules-sequence---{}"


@dataclass(frozen=True)
class SequenceParallel:
    """What a model split across ranks carries (``model.sequence_parallel``): the degrees, the mesh, and the group of
    ranks that hold the same tokens of different guidance branches or batch items (the runner's split)."""

    ulysses: int
    ring: int
    mesh: DeviceMesh
    plan: SequencePlan

    @property
    def degree(self) -> int:
        return self.ulysses * self.ring

    @property
    def split_group(self):
        return self.mesh.get_group("split")

    @property
    def split_rank(self) -> int:
        return self.mesh.get_local_rank("split")

    @property
    def split_size(self) -> int:
        return self.mesh.size(0)


def check_degrees(ulysses: int, ring: int, world: int, *, guidance: bool = False) -> None:
    """Refuse degrees that do not fit ``world`` ranks (with ``guidance``, two guidance branches on top)."""
    for name, value in (("ulysses", ulysses), ("ring", ring)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SequenceParallelError(f"{name} must be a whole number of ranks, at least 1, not {value!r}")
    need = ulysses * ring * (2 if guidance else 1)
    if world % need:
        what = f"ulysses {ulysses} x ring {ring}" + (" x 2 guidance branches" if guidance else "")
        raise SequenceParallelError(f"{what} = {need} ranks does not divide the world size {world}")


def sequence_mesh(ulysses: int, ring: int) -> DeviceMesh:
    """The ``(split, ring, ulysses)`` mesh over every rank of the process group."""
    world = dist.get_world_size()
    check_degrees(ulysses, ring, world)
    return init_device_mesh(default_device().type, (world // (ulysses * ring), ring, ulysses),
                            mesh_dim_names=("split", "ring", "ulysses"))


def _checked_split_hook():
    """diffusers' split hook, refusing a tensor the degree does not divide with a typed error that names the module,
    the tensor, its length and the degree (diffusers asserts, or splits unevenly in its "anything" modes)."""
    import inspect

    from diffusers.hooks.context_parallel import ContextParallelSplitHook, ModuleForwardMetadata

    class OptionalArguments(ModuleForwardMetadata):
        """diffusers' lookup of a forward argument, except that an optional one the caller did not pass is None, so
        the split skips it (diffusers raises "Expected N arguments but got M", or an IndexError once its indices are
        cached): a plan can name Flux3's reference-image tokens, which only edit pipelines pass."""

        def _get_parameter_from_args_kwargs(self, identifier: str, args=(), kwargs=None):
            kwargs = kwargs or {}
            if identifier in kwargs:
                return kwargs[identifier], True, None
            if self.cached_parameter_indices is None:
                names = list(inspect.signature(self._cls.forward).parameters)[1:]
                self.cached_parameter_indices = {name: i for i, name in enumerate(names)}
            index = self.cached_parameter_indices[identifier]  # the plan's names are checked to exist
            if index >= len(args):
                return None, True, None
            return args[index], False, index

    class CheckedSplitHook(ContextParallelSplitHook):
        def __init__(self, module_name: str, metadata, parallel_config) -> None:
            super().__init__(metadata, parallel_config)
            self.labels = {id(choice): key for key, spec in metadata.items()
                           for choice in (spec, *getattr(spec, "choices", ()))}
            self.module_name = module_name

        def initialize_hook(self, module):
            module = super().initialize_hook(module)
            self.module_forward_metadata = OptionalArguments(_cls=self.module_forward_metadata._cls)
            return module

        def pre_forward(self, module, *args, **kwargs):
            """diffusers' split, except that one split of an argument that is a tuple, list or dict of tensors,
            nested or not (a rotary table passed as ``(cos, sin)`` or ``{"query": ..., "key": ...}``), splits each of
            its tensors the same way and keeps its types (diffusers wants a plan entry per element, returns a list,
            and refuses a dict); a split of one element of a tuple or list (``element``) splits that one alone."""
            lookup = self.module_forward_metadata._get_parameter_from_args_kwargs
            args, plan, each = list(args), self.metadata, {}
            for name, spec in plan.items():
                if isinstance(name, str) and not isinstance(spec, (list, tuple)) and not spec.split_output:
                    value, is_kwarg, index = lookup(name, args, kwargs)
                    element = getattr(spec, "element", None)
                    if element is None and not isinstance(value, (list, tuple, dict)):
                        continue  # a tensor: diffusers' own split
                    each[name] = spec
                    if value is None:  # an optional argument not passed: nothing to split
                        continue
                    if element is None:
                        value = self._split_each(value, spec)
                    elif isinstance(value, (list, tuple)) and element < len(value):
                        value = type(value)(self._split_each(v, spec) if i == element else v
                                            for i, v in enumerate(value))
                    else:
                        got = f"{len(value)} elements" if isinstance(value, (list, tuple)) else "no elements"
                        raise SequenceParallelError(f"'{self.module_name or '(root)'}' '{name}' is a "
                                                    f"{type(value).__name__} of {got}, so it has no element "
                                                    f"{element} for the plan to split")
                    if is_kwarg:
                        kwargs[name] = value
                    else:
                        args[index] = value
            if not each:
                return super().pre_forward(module, *args, **kwargs)
            self.metadata = {name: spec for name, spec in plan.items() if name not in each}
            try:
                return super().pre_forward(module, *args, **kwargs)
            finally:
                self.metadata = plan

        def _split_each(self, value, spec):
            """Every tensor in ``value`` (nested tuples, lists and dicts: JoyImage's rotary tables are
            ``((cos, sin), (cos, sin))``) split by ``spec``; anything else, None included, as it is."""
            if torch.is_tensor(value):
                return self._prepare_cp_input(value, spec)
            if isinstance(value, dict):
                return {k: self._split_each(v, spec) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(self._split_each(v, spec) for v in value)
            return value

        def post_forward(self, module, output):
            """diffusers' split of outputs, except that an output the plan splits nothing of passes as it is (diffusers
            refuses anything but tensors: a model split at its root failed when called with return_dict=True), and
            an output tuple may hold None where the plan splits nothing (Wan-style condition embedders return the
            image embedding as None without an image)."""
            if not any(getattr(spec, "split_output", False) for spec in self.metadata.values()):
                return output
            if isinstance(output, (list, tuple)) and any(x is None for x in output):
                missing = [i for i, x in enumerate(output) if x is None]
                filled = type(output)(torch.empty(0) if x is None else x for x in output)
                result = list(super().post_forward(module, filled))
                for i in missing:
                    result[i] = None
                return type(output)(result)
            return super().post_forward(module, output)

        def _prepare_cp_input(self, x: torch.Tensor, cp_input):
            if getattr(cp_input, "choices", ()):  # one split for each number of dimensions: this tensor's chooses
                cp_input = next((c for c in cp_input.choices if c.expected_dims == x.dim()), None)
                if cp_input is None:
                    return x
            if cp_input.expected_dims is not None and x.dim() != cp_input.expected_dims:
                return x  # not this form of the argument (diffusers' meaning), without diffusers' warning
            degree = self.parallel_config._flattened_mesh.size()
            length = x.shape[cp_input.split_dim]
            if length % degree:
                key = self.labels.get(id(cp_input), "?")
                what = f"output {key}" if isinstance(key, int) else f"'{key}'"
                raise SequenceParallelError(
                    f"'{self.module_name or '(root)'}' {what} has {length} tokens along dim "
                    f"{cp_input.split_dim}, which sequence parallel of degree {degree} cannot split evenly")
            # a rank's share as a tensor of its own, not a view at an offset into the whole: every rank then hands
            # its (compiled) blocks the same kind of tensor, and the whole one can be freed
            return super()._prepare_cp_input(x, cp_input).clone()

    return CheckedSplitHook


def check_sequence(model: nn.Module, plan: SequencePlan | None, ulysses: int, ring: int,
                   world: int | None = None) -> None:
    """Everything :func:`apply_sequence_parallel` refuses, checked without a collective (``world``: the process
    group's size unless given)."""
    check_degrees(ulysses, ring, dist.get_world_size() if world is None else world)
    check_sequence_parallel(model, plan, ulysses, ring)
    if ring > 1:
        _check_ring(model)


def _argument_hook():
    """The base of shardrules' own diffusers hooks for one entry of a plan (``entry``, under the model's
    context-parallel config): they read one of a module's forward arguments, passed by name or by position, and hand
    the forward a replacement."""
    from diffusers.hooks.hooks import ModelHook

    from ..engine.sequence import forward_parameters

    class ArgumentHook(ModelHook):
        def __init__(self, entry, parallel_config) -> None:
            super().__init__()
            self.entry, self.parallel_config = entry, parallel_config

        def initialize_hook(self, module):
            self.names = forward_parameters(module)
            return module

        def _get(self, name, args, kwargs):
            if name in kwargs:
                return kwargs[name]
            index = self.names.index(name)
            return args[index] if index < len(args) else None

        def _put(self, name, value, args, kwargs):
            if name in kwargs:
                kwargs[name] = value
            else:
                index = self.names.index(name)
                args = (*args[:index], value, *args[index + 1:])
            return args, kwargs

        def _input(self, args, kwargs):
            """The entry's input when this call passes it as a tensor of the entry's number of dimensions (the plan's
            meaning of expected-dims), else None: nothing to do for this call."""
            value = self._get(self.entry.input, args, kwargs)
            expected = self.entry.expected_dims
            return value if isinstance(value, torch.Tensor) and expected in (None, value.dim()) else None

        def _place(self) -> tuple[int, int]:
            """The sequence-parallel degree and this rank's place among those ranks."""
            mesh = self.parallel_config._flattened_mesh
            return mesh.size(), dist.get_rank(mesh.get_group())

    return ArgumentHook


def _segment_split_hook():
    """shardrules' own split hook, for what diffusers' cannot say: a tensor that concatenates several arguments' tokens
    along ``dim`` (HunyuanVideo's joint attention mask, ``[image tokens | text tokens]``, built inside ``forward`` and
    passed whole to every block). Each segment is split as its argument is, and this rank's pieces are put back side
    by side, in the layout the attention processor gives the tokens on this rank (``[its image | its text]``);
    diffusers' Ulysses attention all-gathers such a local mask to match its all-to-all. A segment's whole length is
    its argument's length along dimension 1, or that times the degree once the argument has been split (the blocks
    after the first)."""
    class SegmentSplitHook(_argument_hook()):
        def pre_forward(self, module, *args, **kwargs):
            entry, value = self.entry, self._input(args, kwargs)
            if value is None:
                return args, kwargs
            degree, rank = self._place()
            lengths = [self._get(name, args, kwargs).shape[1] for name in entry.segments]
            total = value.shape[entry.dim]
            if sum(lengths) * degree == total:  # the arguments are already split (a block after the first)
                lengths = [length * degree for length in lengths]
            elif sum(lengths) != total:
                raise SequenceParallelError(
                    f"'{entry.module}' '{entry.input}' has {total} tokens along dim {entry.dim}, not the "
                    f"{' + '.join(entry.segments)} it concatenates ({' + '.join(map(str, lengths))})")
            for name, length in zip(entry.segments, lengths, strict=True):
                if length % degree:
                    raise SequenceParallelError(
                        f"'{entry.module}' '{entry.input}': its {name} segment has {length} tokens, which "
                        f"sequence parallel of degree {degree} cannot split evenly")
            starts = [sum(lengths[:i]) for i in range(len(lengths))]

            def pieces_of(r: int) -> list[torch.Tensor]:  # rank r's share of each segment, side by side
                return [value.narrow(entry.dim, start + r * (length // degree), length // degree)
                        for start, length in zip(starts, lengths, strict=True)]

            # "gathered": the whole tensor in the order Ulysses' all-to-all gives the tokens (rank 0's pieces, then
            # rank 1's, ...), for a query x key mask the blocks build from it (Chroma); else this rank's pieces
            ranks = range(degree) if entry.layout == "gathered" else [rank]
            split = torch.cat([piece for r in ranks for piece in pieces_of(r)], dim=entry.dim)
            return self._put(entry.input, split, args, kwargs)

    return SegmentSplitHook


def _sdpa_hook():
    """A hook for an attention module whose processor takes no parallel config but calls torch's
    ``scaled_dot_product_attention`` itself (diffusers' legacy processors: SD3's ``JointAttnProcessor2_0``,
    ``AttnProcessor2_0``, CogVideoX's, ...): its forward runs under a torch function mode that hands that call, its
    ``[B, H, S, D]`` tensors turned to diffusers' ``[B, S, H, D]``, to diffusers' ``dispatch_attention_fn`` with the
    model's parallel config, so that diffusers' Ulysses (or ring) attention runs it over the whole sequence. Every
    other torch call goes on as it is; inside the mode's handler the mode is off, so the attention diffusers runs
    there is torch's own."""
    import torch.nn.functional as F
    from diffusers.hooks.hooks import ModelHook
    from diffusers.models.attention_dispatch import dispatch_attention_fn
    from torch.overrides import TorchFunctionMode

    class SplitAttention(TorchFunctionMode):
        def __init__(self, config) -> None:
            super().__init__()
            self.config = config

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is not F.scaled_dot_product_attention:
                return func(*args, **kwargs)
            return _split_sdpa(self.config, *args, **kwargs)

    def _split_sdpa(config, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                    enable_gqa=False):
        if query.dim() != 4:
            raise SequenceParallelError(f"scaled_dot_product_attention was called with {query.dim()}-d queries; "
                                        f"shardrules splits [batch, heads, tokens, head_dim] ones")
        out = dispatch_attention_fn(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                    attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                                    enable_gqa=enable_gqa, parallel_config=config)
        return out.transpose(1, 2)

    class SDPAHook(ModelHook):
        def __init__(self, config) -> None:
            super().__init__()
            self.config = config

        def new_forward(self, module, *args, **kwargs):
            with SplitAttention(self.config):
                return self.fn_ref.original_forward(*args, **kwargs)

    return SDPAHook


def _gather_hook():
    """diffusers' gather of a module's outputs, except that the module may return more outputs than the plan gathers,
    and ones that are not tensors: those pass as they are (diffusers wants exactly one entry per output, all tensors;
    HunyuanVideo Framepack's last single block returns the text states beside the latents, which forward drops)."""
    from diffusers.hooks.context_parallel import ContextParallelGatherHook

    class GatherHook(ContextParallelGatherHook):
        def post_forward(self, module, output):
            if isinstance(output, torch.Tensor):
                return super().post_forward(module, output)
            plan, items = self.metadata, list(output)
            try:
                for i, spec in enumerate(plan):
                    if spec is not None:
                        if i >= len(items) or not isinstance(items[i], torch.Tensor):
                            raise SequenceParallelError(f"the plan gathers output {i} of {type(module).__name__}, "
                                                        f"which returned {len(items)} outputs")
                        self.metadata = [spec]  # diffusers' own gather of that one tensor
                        items[i] = super().post_forward(module, items[i])
            finally:
                self.metadata = plan
            return type(output)(items)

    return GatherHook


def _tail_count_hook():
    """shardrules' own hook for an integer argument that counts the tokens at the end of a split argument (Helios'
    ``original_context_length``, the current frames after the history frames in its self-attention's input, from
    which the processor finds the history it scales): registered after diffusers' split of the same argument, so it
    runs first and sees the whole tensor, and hands the forward how many of those last tokens this rank's share
    holds (diffusers' split gives rank r the r-th of ``degree`` equal pieces). Passed on whole, the count made each
    rank treat its own share as if it ended with all of them."""
    class TailCountHook(_argument_hook()):
        def pre_forward(self, module, *args, **kwargs):
            entry = self.entry
            value, count = self._input(args, kwargs), self._get(entry.tail_count, args, kwargs)
            if value is None or not isinstance(count, int):
                return args, kwargs
            degree, rank = self._place()
            total = value.shape[entry.dim]
            share = total // degree  # an uneven split is refused by the split hook, which runs next
            start, end = rank * share, (rank + 1) * share
            local = max(0, end - max(start, total - count))
            return self._put(entry.tail_count, local, args, kwargs)

    return TailCountHook


def _input_gather_hook():
    """shardrules' own gather of a forward argument before its module runs, the converse of a split (diffusers' hooks
    gather outputs only): a module inside the split model that must see the whole sequence (NucleusMoE's expert-choice
    mixture of experts, where each expert takes its top tokens over the whole sequence) gets every rank's share,
    in rank order, as diffusers' split hands them out; a split of its output gives each rank its share back."""
    class InputGatherHook(_argument_hook()):
        def pre_forward(self, module, *args, **kwargs):
            entry, value = self.entry, self._input(args, kwargs)
            if value is None:
                return args, kwargs
            degree, _ = self._place()
            pieces = [torch.empty_like(value) for _ in range(degree)]
            dist.all_gather(pieces, value.contiguous(), group=self.parallel_config._flattened_mesh.get_group())
            return self._put(entry.input, torch.cat(pieces, dim=entry.dim), args, kwargs)

    return InputGatherHook


def apply_sequence_parallel(model: nn.Module, plan: SequencePlan | None, ulysses: int, ring: int = 1,
                            mesh: DeviceMesh | None = None) -> SequenceParallel:
    """Split ``model``'s sequence across ``ulysses x ring`` ranks by ``plan`` (checked first, on every rank alike).
    Returns what the model now carries as ``model.sequence_parallel``."""
    from diffusers.hooks.hooks import HookRegistry
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

    check_sequence(model, plan, ulysses, ring)
    if mesh is None:
        mesh = sequence_mesh(ulysses, ring)
    config = ParallelConfig(context_parallel_config=ContextParallelConfig(ring_degree=ring, ulysses_degree=ulysses))
    config.setup(dist.get_rank(), dist.get_world_size(), default_device(), mesh=mesh)
    cp = config.context_parallel_config
    # the processors of modules that see the whole sequence (a text refiner) attend as they are
    def attach(module_name: str, hook, hook_name: str) -> None:
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(module_name)).register_hook(hook, hook_name)

    wanted = {a.name: a for a in attention_modules(model) if a.takes_split and not inside(a.name, plan.whole)}
    sdpa_hook = _sdpa_hook()
    for name, module in model.named_modules():
        if name in wanted and wanted[name].routed:
            attach(name, sdpa_hook(config), f"shardrules-sdpa---{name}")
        elif name in wanted:
            module.processor._parallel_config = config
    if ulysses > 1:
        _ulysses_attention()
    split_hook, gather_output_hook = _checked_split_hook(), _gather_hook()
    for name, spec in plan.hook_specs():  # a module that splits and gathers gets both hooks, under two names
        if isinstance(spec, dict):
            attach(name, split_hook(name, spec, cp), _HOOK.format(name))
        else:
            attach(name, gather_output_hook(spec, cp), _HOOK.format(name) + "---gather")
    for entry in plan.refusals:
        module = model.get_submodule(entry.module)
        module.register_forward_pre_hook(_refuse_argument(type(model).__name__.removeprefix("FSDP"), entry, module),
                                         with_kwargs=True)
    gather_hook = _input_gather_hook()
    for entry in plan.gathered_inputs:
        attach(entry.module, gather_hook(entry, cp), f"shardrules-gather---{entry.module}---{entry.input}")
    tail_hook = _tail_count_hook()
    for entry in (e for e in plan.splits if e.tail_count):  # after the split of the same argument: runs before it
        attach(entry.module, tail_hook(entry, cp), f"shardrules-tail-count---{entry.module}---{entry.tail_count}")
    segment_hook = _segment_split_hook()
    for entry in plan.segmented:  # registered last: each runs before diffusers' split of the same module's arguments
        attach(entry.module, segment_hook(entry, cp), f"shardrules-segments---{entry.module}---{entry.input}")
    model._parallel_config = config  # what diffusers records after enable_parallelism: it refuses a second one
    # diffusers' gather calls a torch function that torch deprecates; the warning is about diffusers' code, not the
    # user's, and would print once per rank at the first step
    warnings.filterwarnings("ignore", message=r".*all_gather_tensor.* is deprecated", category=FutureWarning)
    info = SequenceParallel(ulysses, ring, mesh, plan)
    model.sequence_parallel = info
    return info


def _ulysses_attention() -> None:
    """Make diffusers' Ulysses attention take three kinds of call it failed on (once per process).

    diffusers' ``_templated_context_parallel_attention`` (every backend calls it when a parallel config is set) is
    wrapped so that, under Ulysses alone (the Ulysses + ring path, and diffusers' "anything" mode, which shardrules
    does not use, are left to diffusers):

    - A mask with one slice per head keeps the heads this rank attends with. Processors such as diffusers' LTX, LTX-2
      and SANA-WM refiner ones repeat the attention mask for each head before attending
      (``attention_mask.view(batch_size, attn.heads, -1, ...)``): a ``[B, H, Q, K]`` mask. Ulysses' all-to-all gives
      each rank H / U of the heads, whole-sequence, and diffusers hands the mask on unchanged, so attention failed
      with a shape error on every rank (diffusers' own ``_cp_plan`` for LTX and LTX-2 has the same fault). Rank r of
      the Ulysses group receives heads ``r * H / U`` to ``(r + 1) * H / U`` (the order diffusers' all-to-all sends
      them). A mask with one head, or none, is passed on as it is.
    - Grouped-query attention (``enable_gqa``: fewer key / value heads than query heads, ACE-Step's) has its key and
      value heads repeated to the query's, as ``scaled_dot_product_attention(enable_gqa=True)`` pairs them (query head
      h reads key / value head h // (H / H_kv)): the same attention, which diffusers' split refused ("GQA is not yet
      supported for templated attention"). Its all-to-all then moves H heads of keys and values instead of H_kv.
    - Causal attention (``is_causal``: Cosmos 3's understanding pathway) goes to diffusers' Ulysses attention, which
      diffusers' entry point refused ("Causal attention is not yet supported for templated attention"): after the
      all-to-all each rank attends with whole-sequence queries and keys, in the order of the ranks' shares, which is
      the tokens' own order when the sequence is split contiguously (a plan that splits by segments is refused
      before anything runs: engine/sequence.py)."""
    from diffusers.models import attention_dispatch

    original = attention_dispatch._templated_context_parallel_attention
    if getattr(original, "shardrules_ulysses", False):
        return

    def attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
                  return_lse=False, *, forward_op, backward_op, _parallel_config=None):
        cp = _parallel_config.context_parallel_config if _parallel_config is not None else None
        if cp is not None and cp.ulysses_degree > 1 and cp.ring_degree == 1 and not cp.ulysses_anything:
            heads = query.shape[2]  # query: [B, S / U, H, D]
            if attn_mask is not None and attn_mask.ndim == 4 and attn_mask.shape[1] == heads > 1:
                local = heads // cp.ulysses_degree
                start = cp._ulysses_local_rank * local
                attn_mask = attn_mask[:, start:start + local]
            if enable_gqa and key.shape[2] != heads:
                key, value = (x.repeat_interleave(heads // x.shape[2], dim=2) for x in (key, value))
                enable_gqa = False
            if is_causal:
                return attention_dispatch.TemplatedUlyssesAttention.apply(
                    query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, return_lse, forward_op,
                    backward_op, _parallel_config)
        return original(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, return_lse,
                        forward_op=forward_op, backward_op=backward_op, _parallel_config=_parallel_config)

    attention.__doc__ = original.__doc__
    attention.shardrules_ulysses = True
    attention_dispatch._templated_context_parallel_attention = attention


def _argument(module: nn.Module, name: str):
    """A function of a forward pre-hook's ``(args, kwargs)`` giving the argument ``name`` of ``module.forward``, None
    when the call does not pass it."""
    import inspect

    names = list(inspect.signature(module.forward).parameters)
    index = names.index(name) if name in names else None
    return lambda args, kwargs: kwargs.get(name, args[index] if index is not None and index < len(args) else None)


def _refuse_argument(model_name: str, entry, module: nn.Module):
    """A forward pre-hook refusing a call that passes ``entry.input`` (not None), with the plan's reason: a typed
    error on every rank instead of a wrong answer or torch's error inside the model."""
    given = _argument(module, entry.input)  # checked to be an argument before applying

    def hook(module, args, kwargs):
        if given(args, kwargs) is not None:
            raise SequenceParallelError(f"{model_name}: '{entry.module or '(root)'}' was given '{entry.input}', which "
                                        f"sequence parallel cannot take: {entry.why} ({entry.where})")

    return hook


def _check_ring(model: nn.Module) -> None:
    """Ring attention merges partial results by their log-sum-exp, which diffusers' native backend (the one that runs
    on a CPU) does not return: refuse it there instead of failing inside the first forward."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    for module in model.modules():
        processor = getattr(module, "processor", None)
        if processor is None or not hasattr(processor, "_parallel_config"):
            continue
        backend = getattr(processor, "_attention_backend", None)
        if backend is None:
            backend, _ = _AttentionBackendRegistry.get_active_backend()
        backend = AttentionBackendName(backend).value
        if backend not in RING_BACKENDS or default_device().type == "cpu":
            raise SequenceParallelError(f"ring attention needs an attention backend that returns the log-sum-exp: "
                                        f"{', '.join(RING_BACKENDS)} (on a GPU); {type(model).__name__} uses "
                                        f"'{backend}' on {default_device().type}. Use ulysses instead, or set a "
                                        f"backend with diffusers' attention_backend")
        return
