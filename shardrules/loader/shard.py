"""A plan becomes an FSDP2-sharded model: ``fully_shard`` on each unit bottom-up, then on the root."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

from ..engine.resolve import ShardPlan
from ..errors import ShardRulesError


def default_device() -> torch.device:
    """The device this rank computes on: its GPU under NCCL, else the CPU."""
    if torch.cuda.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def default_mesh() -> DeviceMesh:
    """A 1-D mesh over every rank: plain FSDP."""
    return init_device_mesh(default_device().type, (dist.get_world_size(),))


def offload_policy(offload: bool | OffloadPolicy | None) -> OffloadPolicy:
    """``True`` -> ``CPUOffloadPolicy``, pinning memory only where an accelerator exists (pinning without
    one fails: "Cannot access accelerator device when none is available")."""
    if isinstance(offload, OffloadPolicy):
        return offload
    if offload:
        return CPUOffloadPolicy(pin_memory=torch.cuda.is_available())
    return OffloadPolicy()


def shard(model: nn.Module, plan: ShardPlan, mesh: DeviceMesh | None = None,
          mp_policy: MixedPrecisionPolicy | None = None, reshard_after_forward: bool | int | None = None,
          offload: bool | OffloadPolicy | None = None) -> nn.Module:
    """``fully_shard`` every unit of ``plan`` (bottom-up), then the root. Per-unit options from the rules win
    over the arguments. Works on a model whose parameters are on the meta device. Returns ``model``."""
    if mesh is None and not dist.is_initialized():
        raise ShardRulesError("shard() needs a process group: call torch.distributed.init_process_group() first "
                              "(torchrun sets its variables), or pass a DeviceMesh; plan() needs none")
    if mesh is None:
        mesh = default_mesh()
    classes = {id(module): type(module) for module in model.modules()}
    common: dict[str, Any] = {"mesh": mesh, "offload_policy": offload_policy(offload)}
    if mp_policy is not None:
        common["mp_policy"] = mp_policy
    for unit in plan.units_info:
        options = dict(common)
        after = unit.options.get("reshard_after_forward", reshard_after_forward)
        if after is not None:
            options["reshard_after_forward"] = after
        modules = [model.get_submodule(name) for name in (unit.name, *unit.members)]
        fully_shard(modules if unit.members else modules[0], **options)  # a list: one unit of several modules
    if reshard_after_forward is not None:
        common["reshard_after_forward"] = reshard_after_forward
    fully_shard(model, **common)
    keep_output_recording(model, classes)
    return model


def keep_output_recording(model: nn.Module, classes: dict[int, type]) -> None:
    """transformers (5.x) records ``output_hidden_states`` and ``output_attentions`` by hooks that it installs from a
    registry keyed on the model's class name; ``fully_shard`` gives each sharded module a new class
    (``FSDPGemma2Model``), which the registry does not know, so a sharded encoder returned ``hidden_states=None``
    (Lumina 2's pipeline, which takes Gemma 2's second-to-last states, failed with "'NoneType' object is not
    subscriptable"). Each sharded transformers model is registered again under its new class, with its own class's
    entry; ``classes``: each module's class before sharding, by ``id``."""
    try:
        from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY as registry
    except ImportError:  # no transformers, or a release that does not record outputs by hooks
        return
    for module in model.modules():
        before = classes.get(id(module))
        if before is not None and type(module) is not before and str(before) in registry:
            registry[module] = dict.get(registry, str(before))
