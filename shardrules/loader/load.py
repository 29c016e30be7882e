"""``load_sharded``: build on meta, plan, shard, and fill each rank's shards from the safetensors files.

Each rank reads only the rows of its own shard of every sharded parameter (positioned reads at offsets
from the safetensors header) straight into FSDP2's local storage; no rank ever holds the full state dict. On
the CPU most rows are read by a thread while ``fully_shard`` runs (see :mod:`shardrules.loader.local`).
Every check runs before any data is read, and the ranks agree on the outcome twice (after checking and
after reading), so either every rank returns a loaded model or every rank raises.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, OffloadPolicy
from torch.distributed.tensor import DTensor

from ..engine.glob import compile_glob
from ..engine.resolve import ShardPlan, plan
from ..engine.sequence import sequence_plan
from ..errors import CheckpointError, ShardRulesError
from ..rules import RuleSet, load_rules
from ..torch_internals import like_parameter, own_persistent_buffers
from .build import build_model
from .checkpoint import Checkpoint
from .compiled import compile_options, compile_units, region_names
from .dtypes import cast_like_library
from .local import Early, Reader, materialise, plan_early, rows_of
from .rename import Source, library_renames, map_keys
from .sequence import apply_sequence_parallel, check_sequence
from .shard import default_device, default_mesh, offload_policy, shard
from .staging import Staging


@dataclass
class LoadStats:
    """What a load did on this rank (pass one to ``load_sharded`` to have it filled). Given to ``load_pipeline``,
    the byte and tensor counts add up over its sharded components; plan, phases and seconds are the last one's."""

    bytes_read: int = 0  # every byte read from the checkpoint files
    bytes_sharded: int = 0  # of which rows of sharded parameters
    bytes_replicated: int = 0  # of which whole tensors every rank keeps (buffers, weight_loader inputs)
    checkpoint_bytes: int = 0  # size of all tensors in the checkpoint
    tensors: int = 0
    seconds: float = 0.0
    # seconds per phase, in order: build, check, shard (fully_shard, while a thread reads the rows of the evenly
    # sharded parameters), materialise (the parameters take the memory their rows were read into), read (waiting
    # for that thread, then everything else: buffers, uneven rows, weight_loader inputs, every read on a GPU)
    phases: dict[str, float] = field(default_factory=dict)
    early_tensors: int = 0  # of ``tensors``, read beside fully_shard
    early_read_seconds: float = 0.0  # the reading thread's own time
    plan: ShardPlan | None = field(default=None, repr=False)
    compiled: list[str] = field(default_factory=list)  # units whose forward is compiled (compile=...)


def _float_kind(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point


def _agree(error: BaseException | None, stage: str) -> None:
    """Every rank learns whether any rank failed; all raise together (the first failure's message)."""
    message = None if error is None else f"{type(error).__name__}: {error}"
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, message)
    failed = [(rank, m) for rank, m in enumerate(messages) if m is not None]
    if not failed:
        return
    if error is not None:
        raise error
    rank, first = failed[0]
    raise CheckpointError(f"rank {rank} failed while {stage}: {first}", failed_rank=rank)


@contextlib.contextmanager
def _agreed(stage: str) -> Iterator[None]:
    """Run the block on every rank, then agree on the outcome (:func:`_agree`): every rank raises when any rank
    failed. Every failure is treated alike: a shardrules error as it is, any other (an I/O or FSDP failure, a
    library's own check) as a CheckpointError naming its type; escaping unagreed, it would leave the other ranks
    waiting in the next collective until the timeout."""
    error: BaseException | None = None
    try:
        yield
    except ShardRulesError as exc:
        error = exc
    except Exception as exc:
        error = CheckpointError(f"{type(exc).__name__}: {exc}")
    _agree(error, stage)


def _suggest(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class _Target:
    """A tensor of the model that the checkpoint must fill."""

    name: str  # the name it is loaded under (for a tied parameter, the one the checkpoint has)
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: torch.dtype
    loader: object = None  # a weight_loader of the pre-shard parameter
    pre_shard: nn.Parameter | None = None


def _targets(model: nn.Module) -> dict[str, _Target]:
    """Parameters (each once, under all its names) and persistent buffers of ``model``."""
    by_param: dict[int, list[str]] = {}
    params: dict[int, nn.Parameter] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_param.setdefault(id(param), []).append(name)
        params[id(param)] = param
    targets: dict[str, _Target] = {}
    for pid, names in by_param.items():
        param = params[pid]
        targets[names[0]] = _Target(names[0], tuple(names), tuple(param.shape), param.dtype,
                                    getattr(param, "weight_loader", None), param)
    for module_name, module in model.named_modules():
        for key, buf in own_persistent_buffers(module):
            name = f"{module_name}.{key}" if module_name else key
            targets[name] = _Target(name, (name,), tuple(buf.shape), buf.dtype)
    return targets


def _match(targets: dict[str, _Target], sources: dict[str, Source], checkpoint: Checkpoint, rules_entry,
           path: str) -> tuple[dict[str, Source], dict[str, str]]:
    """Pair every target with its checkpoint source, strictly. Returns (target name -> source, inits)."""
    alias_of = {alias: t.name for t in targets.values() for alias in t.aliases}
    paired: dict[str, Source] = {}
    unexpected = []
    for name, source in sources.items():
        target = alias_of.get(name)
        if target is None:
            unexpected.append((name, source))
        elif target not in paired:
            paired[target] = source
    allow = {compile_glob(glob): how for glob, how in (rules_entry.allow_init if rules_entry else {}).items()}
    inits: dict[str, str] = {}
    missing = []
    for name, target in targets.items():
        if name in paired:
            continue
        how = next((v for glob, v in allow.items() if any(glob(a) for a in target.aliases)), None)
        if how is not None:
            inits[name] = how
        else:
            missing.append(name)
    if missing:
        name = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        spare = [n for n, _ in unexpected]  # checkpoint keys no model tensor takes: the only honest suggestions
        raise CheckpointError(f"{path}: missing key '{name}'{more}{_suggest(name, spare)}; the model needs it "
                              f"(allow it to be initialised with [model.allow-init] if that is intended)",
                              path=path, tensor=name)
    if unexpected:
        name, source = unexpected[0]
        where = checkpoint.entries[source.keys[0]].path
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        renamed = f" (renamed from '{source.keys[0]}')" if source.keys[0] != name else ""
        raise CheckpointError(f"{where}: unexpected key '{name}'{renamed}{more}: the model has no such "
                              f"parameter or buffer (every one it has is filled)", path=where, tensor=name)
    for name, source in paired.items():
        target = targets[name]
        entries = [checkpoint.entries[k] for k in source.keys]
        for entry in entries:
            if _float_kind(entry.dtype) != _float_kind(target.dtype) or (
                    not _float_kind(entry.dtype) and entry.dtype != target.dtype):
                raise CheckpointError(f"{entry.path}: dtype mismatch for '{entry.name}': checkpoint {entry.dtype}, "
                                      f"model {target.dtype}", path=entry.path, tensor=entry.name)
        if target.loader is not None:
            continue  # a weight_loader takes checkpoint tensors of its own shapes
        if len(entries) == 1:
            shape = entries[0].shape
        else:
            rest = {e.shape[1:] for e in entries}
            if len(rest) != 1 or any(not e.shape for e in entries):
                raise CheckpointError(f"{entries[0].path}: fused parts of '{name}' differ beyond dim 0: "
                                      f"{[list(e.shape) for e in entries]}", path=entries[0].path, tensor=name)
            shape = (sum(e.shape[0] for e in entries), *entries[0].shape[1:])
        if tuple(shape) != target.shape:
            entry = entries[0]
            also = f" ('{name}')" if name != entry.name else ""  # the model's name, when a rename changed it
            raise CheckpointError(f"{entry.path}: shape mismatch for '{entry.name}': checkpoint {list(shape)}, "
                                  f"model {list(target.shape)}{also}", path=entry.path, tensor=entry.name)
    return paired, inits


def _fill(local: torch.Tensor, source: Source, checkpoint: Checkpoint, start: int, stop: int,
          staging: Staging | None = None) -> int:
    """Copy rows ``start:stop`` of the (possibly fused) source into ``local`` (on a GPU through ``staging``).
    Returns bytes read."""
    before = checkpoint.bytes_read
    offset = 0
    for key in source.keys:
        entry = checkpoint.entries[key]
        rows = entry.shape[0] if entry.shape else 1
        lo, hi = max(start, offset), min(stop, offset + rows)
        if lo < hi or not entry.shape:
            dest = local[lo - start:hi - start] if entry.shape else local
            if staging is not None and dest.device.type != "cpu":
                staging.fill(checkpoint, key, lo - offset, hi - offset, dest)
            elif dest.dtype == entry.dtype and dest.device.type == "cpu" and dest.is_contiguous():
                checkpoint.read_rows(key, lo - offset, hi - offset, dest)  # straight into FSDP's storage
            else:
                dest.copy_(checkpoint.read(key, lo - offset, hi - offset).reshape(dest.shape))
        offset += rows
    return checkpoint.bytes_read - before


def _load_with_loader(target: _Target, source: Source, checkpoint: Checkpoint) -> torch.Tensor:
    """Run a parameter's ``weight_loader`` on a full-size tensor: the pre-shard parameter, materialised."""
    pre = target.pre_shard
    full = like_parameter(pre, torch.empty(pre.shape, dtype=target.dtype), requires_grad=False)
    for key, part in zip(source.keys, source.parts, strict=True):
        tensor = checkpoint.read(key).to(target.dtype)
        if part is None:
            target.loader(full, tensor)
        else:
            target.loader(full, tensor, part)
    return full.data


def _initialise(value: str, tensor: torch.Tensor) -> None:
    if value == "zeros":
        tensor.zero_()
    else:
        tensor.fill_(1)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration. A load creates hundreds of thousands of objects
    (FSDP2's per-parameter state, DTensor specs) beside the ~500k that torch and diffusers hold, and each full
    collection walks them all: measured on a 36-layer model at world size 1, a load took 2.0-2.6 s with the
    collector on and 1.2-1.4 s with it off, and the pauses fell on ranks at different times. Nothing a load
    makes is cyclic garbage it needs freed before it ends; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@gc_paused()
def load_sharded(model_dir: str | os.PathLike, rules: RuleSet | None = None, mesh: DeviceMesh | None = None,
                 dtype: torch.dtype | None = None, *, model: nn.Module | None = None,
                 mp_policy: MixedPrecisionPolicy | None = None, reshard_after_forward: bool | int | None = None,
                 offload: bool | OffloadPolicy | None = None, stats: LoadStats | None = None,
                 progress: bool = True, ulysses: int = 1, ring: int = 1,
                 compile: bool | dict = False) -> nn.Module:
    """Build (or take) a model with parameters on meta, shard it by its rules and load its weights.

    Must run in an initialised process group, on every rank. ``model`` is a model already built with
    parameters on the meta device (for classes that do not build from ``config.json``). A diffusers pipeline
    folder (``model_index.json``) is refused: :func:`shardrules.load_pipeline` loads those.

    ``dtype`` gives every parameter the dtype the model's own library gives it with ``from_pretrained(
    torch_dtype=dtype)``: diffusers' and transformers' ``_keep_in_fp32_modules`` stay float32 (see
    :mod:`shardrules.loader.dtypes`). The returned parameters do not require grad: the loader is for inference, and
    FSDP2 only insists on one dtype per group for parameters that require grad, so float32 islands share a unit
    with the half-precision weights around them instead of needing units of their own (which would split blocks
    such as Wan's, whose ``norm2`` and ``scale_shift_table`` are float32, into several all-gathers).

    ``ulysses`` and ``ring`` above 1 split the model's sequence across that many ranks by its sequence-parallel plan
    (its rules' ``[model.sequence-parallel]``, else its class's diffusers ``_cp_plan``; see
    :mod:`shardrules.loader.sequence`); the weights stay sharded over every rank. The plan, the attention processors
    and the degrees are checked with the checkpoint, before any data is read.

    ``compile`` (``True``, or a dict of ``torch.compile`` keywords) compiles the ``forward`` of every unit the rules
    choose (``compile = false`` on a shard rule leaves its units eager; see :mod:`shardrules.loader.compiled`).
    Compilation happens at the first forward; ``stats.compiled`` names the compiled units.
    """
    from .pipeline import is_pipeline

    if model is None and is_pipeline(model_dir):
        raise ShardRulesError(f"{model_dir} is a diffusers pipeline folder (model_index.json): load it with "
                              f"load_pipeline, which shards every transformer and text encoder; load_sharded takes "
                              f"one model's folder, such as {Path(model_dir) / 'transformer'}")
    compile_with = compile_options(compile)  # a bad value is refused before anything is read
    if not dist.is_initialized():
        raise ShardRulesError("load_sharded needs an initialised process group (torch.distributed."
                              "init_process_group, or run under torchrun / shardrules run)")
    began = time.perf_counter()
    model_dir = Path(model_dir)
    stats = stats if stats is not None else LoadStats()
    checkpoint = None
    try:
        with _agreed("checking the checkpoint"):
            rules = rules if rules is not None else load_rules()
            if model is None:
                model = build_model(model_dir, meta="params", dtype=dtype)
            elif dtype is not None:
                cast_like_library(model, dtype)
            model.requires_grad_(False)  # inference: lets one FSDP2 group hold float32 islands beside half precision
            stats.phases["build"] = time.perf_counter() - began
            shard_plan = plan(model, rules)
            entry = rules.model(shard_plan.model_rule) if shard_plan.model_rule else None
            checkpoint = Checkpoint(model_dir)
            sources, _ = map_keys(checkpoint.entries, entry.rename if entry else (), str(model_dir),
                                  library=library_renames(model, checkpoint.entries))  # transformers' layouts first
            targets = _targets(model)
            paired, inits = _match(targets, sources, checkpoint, entry, str(model_dir))
            regions = entry.compile if entry is not None and compile_with is not None else None
            # a rule that chooses nothing is refused before any weight is read
            region_modules = region_names(model, regions) if regions is not None else []
            sequence = None
            if (ulysses, ring) != (1, 1):
                sequence = sequence_plan(model, rules)
                check_sequence(model, sequence, ulysses, ring)
        stats.phases["check"] = time.perf_counter() - began - stats.phases["build"]
        with _agreed("loading the checkpoint"):
            if mesh is None:
                mesh = default_mesh()
            _shard_and_fill(model, shard_plan, mesh, targets, paired, inits, checkpoint, stats, progress,
                            mp_policy=mp_policy, reshard_after_forward=reshard_after_forward, offload=offload)
            leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
            if leftover:
                raise CheckpointError(f"'{leftover[0]}' is still on the meta device after loading",
                                      tensor=leftover[0])
    finally:
        if checkpoint is not None:
            checkpoint.close()
    stats.checkpoint_bytes += sum(e.end - e.start for e in checkpoint.entries.values())
    if compile_with is not None:  # after fully_shard, before the sequence-parallel hooks (see loader/compiled.py)
        stats.compiled = compile_units(model, shard_plan, compile_with, regions, region_modules)
    if (ulysses, ring) != (1, 1):
        apply_sequence_parallel(model, sequence, ulysses, ring)
    stats.seconds = time.perf_counter() - began
    stats.plan = shard_plan
    return model


def _shard_and_fill(model: nn.Module, shard_plan: ShardPlan, mesh: DeviceMesh, targets: dict[str, _Target],
                    paired: dict[str, Source], inits: dict[str, str], checkpoint: Checkpoint, stats: LoadStats,
                    progress: bool, *, mp_policy, reshard_after_forward, offload) -> None:
    """``fully_shard`` the model by its plan and fill every target. Where the shards live in this process's
    pageable memory, the rows of evenly sharded parameters are read by a thread while ``fully_shard`` runs
    (:mod:`shardrules.loader.local`); the rest are read once the model is sharded and materialised."""
    mark = time.perf_counter()
    device = torch.device("cpu") if offload else default_device()
    early: list[Early] = []
    reader = None
    pinned = getattr(offload_policy(offload), "pin_memory", False)  # FSDP2 would copy each shard to pin it
    with _progress_bar(len(targets), progress) as bar:
        try:
            if device.type == "cpu" and not pinned:
                early = plan_early({name: (t.shape, t.dtype) for name, t in targets.items()
                                    if t.pre_shard is not None and t.loader is None and name not in inits}, mesh)
                reader = Reader(early, lambda item: _read_early(item, paired, checkpoint, bar)).start()
            shard(model, shard_plan, mesh=mesh, mp_policy=mp_policy, reshard_after_forward=reshard_after_forward,
                  offload=offload)
            stats.phases["shard"] = time.perf_counter() - mark
            mark = time.perf_counter()
            if reader is not None:
                reader.join()
                stats.early_read_seconds += reader.seconds
            reader = None
        finally:
            if reader is not None:  # sharding failed: stop reading before the checkpoint is closed
                reader.cancel()
        wait = time.perf_counter() - mark
        materialise(model, device, early, set(targets))
        stats.bytes_sharded += checkpoint.bytes_read
        stats.early_tensors += len(early)
        stats.tensors += len(early)
        stats.phases["materialise"] = time.perf_counter() - mark - wait
        mark = time.perf_counter()
        done = {item.name for item in early}
        _read_all(model, {n: t for n, t in targets.items() if n not in done}, paired, inits, checkpoint, stats, bar)
        stats.bytes_read += checkpoint.bytes_read
        stats.phases["read"] = wait + time.perf_counter() - mark


def _progress_bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    show = progress and dist.get_rank() == 0
    return tqdm(total=total, desc="loading shards", unit="tensor", disable=not show, leave=False,
                delay=1.0)  # no bar at all for a load under a second


def _read_early(item: Early, paired: dict[str, Source], checkpoint: Checkpoint, bar) -> None:
    _fill(item.view, paired[item.name], checkpoint, item.start, item.stop)
    bar.update(1)


def _read_all(model: nn.Module, targets: dict[str, _Target], paired: dict[str, Source], inits: dict[str, str],
              checkpoint: Checkpoint, stats: LoadStats, bar) -> None:
    """Fill ``targets`` (the tensors not read early) after sharding: the device path, uneven rows,
    ``weight_loader`` parameters, initialised tensors and buffers."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    device = default_device()
    staging = None
    if device.type == "cuda":
        staging = Staging(device, row_bytes=max((e.row_bytes for e in checkpoint.entries.values()), default=0))
    with torch.no_grad():
        for name, target in targets.items():
            tensor = tensors[name]
            local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
            if isinstance(tensor, DTensor):
                start, stop = rows_of(tensor)
            else:
                start, stop = 0, target.shape[0] if target.shape else 1
            if name in inits:
                _initialise(inits[name], local)
            elif target.loader is not None:
                before = checkpoint.bytes_read
                full = _load_with_loader(target, paired[name], checkpoint)
                stats.bytes_replicated += checkpoint.bytes_read - before
                local.copy_(full[start:stop] if full.dim() else full)
                tensor.weight_loader = target.loader  # the attribute survives sharding
            else:
                read = _fill(local, paired[name], checkpoint, start, stop, staging)
                if isinstance(tensor, DTensor):
                    stats.bytes_sharded += read
                else:
                    stats.bytes_replicated += read
            stats.tensors += 1
            bar.update(1)
    if staging is not None:
        staging.finish()
