"""Diffusers pipeline folders (``model_index.json``): which components shardrules shards.

Each transformer (``transformer``, ``transformer_2``) and each text encoder (``text_encoder``,
``text_encoder_2``, ...) is sharded by its own rules; VAEs, schedulers and tokenizers are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

SHARDED_PREFIXES = ("transformer", "text_encoder")


@dataclass(frozen=True)
class Component:
    name: str  # the key in model_index.json, also the subfolder
    library: str
    class_name: str
    folder: Path

    @property
    def sharded(self) -> bool:
        return self.name.startswith(SHARDED_PREFIXES)


def is_pipeline(folder: str | Path) -> bool:
    return (Path(folder) / "model_index.json").exists()


def components(folder: str | Path) -> list[Component]:
    """The components a pipeline folder lists, in model_index.json order."""
    folder = Path(folder)
    path = folder / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the pipeline index ({exc})", path=str(path)) from None
    found = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        found.append(Component(name, value[0], value[1], folder / name))
    return found


ENCODER_PREFIX = "text_encoder"


def reshard_after_each_forward(model) -> None:
    """Free the gathered root parameters after every forward of an FSDP2 ``model``.

    FSDP2 leaves the root group unsharded after forward (it expects a backward). A transformer is called again at
    the next step, but an encoder runs once per prompt: its root (UMT5-XXL's 1.05 G-parameter embedding) would stay
    gathered on every rank for the whole denoising loop.
    """
    model.register_forward_hook(lambda module, args, output: module.reshard())


def load_pipeline(folder: str | Path, rules=None, mesh=None, dtype=None, *, mp_policy=None,
                  reshard_after_forward=None, offload=None, stats=None, progress: bool = True):
    """The diffusers pipeline of ``folder`` (the class ``model_index.json`` names), with every transformer and
    every text encoder sharded with FSDP2 by ``rules`` and loaded with per-rank reads; tokenizers,
    scheduler, VAE and the rest are loaded the ordinary diffusers way (the VAE whole on every rank) and moved to
    this rank's device. Call it on every rank inside an initialised process group; call the pipeline on every
    rank with the same arguments (and the same seeded ``generator``), as FSDP's collectives must match.

    Works on the sharded modules: ``config``, ``dtype``, ``device``, the pipeline's ``_execution_device``,
    ``encode_prompt`` and ``__call__``. Does not: ``pipe.save_pretrained`` (FSDP2 cannot flatten unevenly sharded
    tensors) and diffusers' CPU offload hooks (``enable_model_cpu_offload`` moves whole modules; use
    ``offload=True``, FSDP2's own CPU offload, instead); ``pipe.config`` records the sharded components' classes
    as FSDP classes.
    """
    import diffusers

    from .load import load_sharded
    from .shard import default_device

    folder = Path(folder)
    if not is_pipeline(folder):
        raise CheckpointError(f"{folder}: no model_index.json, so not a diffusers pipeline folder",
                              path=str(folder / "model_index.json"))
    index = json.loads((folder / "model_index.json").read_text())
    name = index.get("_class_name")
    cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(f"{folder / 'model_index.json'}: diffusers {diffusers.__version__} has no pipeline "
                              f"class {name!r}", path=str(folder / "model_index.json"))
    parts = components(folder)
    missing = [c.name for c in parts if not c.folder.is_dir()]
    if missing:
        raise CheckpointError(f"{folder / 'model_index.json'} lists '{missing[0]}', which has no folder",
                              path=str(folder / missing[0]))
    sharded = {}
    for part in parts:
        if not part.sharded:
            continue
        model = load_sharded(part.folder, rules, mesh, dtype, mp_policy=mp_policy,
                             reshard_after_forward=reshard_after_forward, offload=offload, stats=stats,
                             progress=progress)
        if part.name.startswith(ENCODER_PREFIX):
            reshard_after_each_forward(model)
        sharded[part.name] = model
    pipe = cls.from_pretrained(str(folder), **sharded, **({"torch_dtype": dtype} if dtype is not None else {}))
    device = default_device()
    for part in parts:
        module = getattr(pipe, part.name, None)
        if part.name not in sharded and hasattr(module, "to") and hasattr(module, "parameters"):
            module.to(device)
    return pipe
