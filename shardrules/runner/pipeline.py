"""The diffusers pipeline adapter: ``load_pipeline`` returns the pipeline itself, its transformers and text encoders
sharded, so the pipeline's own ``__call__`` (tokenizers, prompts, guidance, VAE) runs unchanged on every rank."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import CheckpointError
from ..loader.paths import regular_files
from ..loader.pipeline import SCHEDULER, TEXT_ENCODER, TRANSFORMER, PipelineFolder, is_pipeline, scheduler_config
from .splits import PIPELINE_SPLITS

SPLITS = PIPELINE_SPLITS


def reshard_after_each_forward(model) -> None:
    """Free the gathered root parameters after every forward of an FSDP2 ``model``.

    FSDP2 leaves the root group unsharded after forward (it expects a backward). A transformer is called again at
    the next step, but an encoder runs once per prompt: its root (UMT5-XXL's 1.05 G-parameter embedding) would stay
    gathered on every rank for the whole denoising loop.
    """
    model.register_forward_hook(lambda module, args, output: module.reshard())


def split_batch(model) -> None:
    """Each rank computes its share of every forward's batch; the outputs are all-gathered, so the caller (the
    pipeline's own loop, which batches the guided and unguided branches) sees the whole batch.

    An argument is per-item when it is a tensor (or list) whose first dimension is the batch of ``hidden_states``;
    a batch that does not divide by the world size is padded with its last item and the padding dropped again.
    """
    import torch

    from .denoise import gather_rows, rank_rows, split_world

    inner = model.forward
    rank, world, group = split_world(model)

    def forward(*args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        batch = hidden.shape[0]
        rows = -(-batch // world)
        out = inner(*[rank_rows(a, batch, world, rank) for a in args],
                    **{k: rank_rows(v, batch, world, rank) for k, v in kwargs.items()})

        def gather(value):
            if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == rows:
                return gather_rows(value, world, batch, group=group)
            return value

        if isinstance(out, tuple):
            return tuple(gather(v) for v in out)
        if hasattr(out, "sample"):  # Transformer2DModelOutput
            out.sample = gather(out.sample)
            return out
        return gather(out)

    model.forward = forward


@contextlib.contextmanager
def progress_bars_off(*libraries):
    """The progress bars of ``libraries`` (diffusers, transformers: ``utils.logging``) off for the block, as they
    were afterwards."""
    before = [library.utils.logging.is_progress_bar_enabled() for library in libraries]
    for library in libraries:
        library.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        for library, enabled in zip(libraries, before, strict=True):
            if enabled:
                library.utils.logging.enable_progress_bar()


def _whole(value, default: int) -> int:
    return value if type(value) is int and value > 0 else default


def binning_shortfall(folder: PipelineFolder, call: dict) -> str | None:
    """Why the pipeline's resolution binning would refuse its transformer, or None. PixArt and Sana pipelines bin
    the asked size to an aspect-ratio table chosen by the transformer's ``sample_size``, and raise "Invalid sample
    size" inside ``__call__``, on every rank after loading, for any other; the sizes they know are read off
    ``__call__``'s own source (``self.transformer.config.sample_size == N``)."""
    import inspect
    import re

    import diffusers

    from ..loader.paths import read_json

    cls = getattr(diffusers, folder.class_name or "", None)
    try:
        parameter = inspect.signature(cls.__call__).parameters.get("use_resolution_binning")
        call_function = inspect.unwrap(cls.__call__)  # under torch.no_grad()
        lines, first = inspect.getsourcelines(call_function)
    except (TypeError, ValueError, OSError):
        return None
    if parameter is None or not call.get("use_resolution_binning", parameter.default):
        return None
    known = {int(m.group(1)): first + i for i, line in enumerate(lines)
             for m in re.finditer(r"self\.transformer\.config\.sample_size == (\d+)", line)}
    part = folder.get("transformer")
    if not known or part is None:
        return None
    path = part.folder / "config.json"
    config = read_json(path, "the model config")
    size = config.get("sample_size") if isinstance(config, dict) else None
    if size in known:
        return None
    where = f"{Path(inspect.getsourcefile(call_function)).name}:{min(known.values())}"
    return (f"{folder.class_name} bins resolutions only for a transformer sample_size of "
            f"{', '.join(map(str, known))} (diffusers' {where}), and {path} says {size!r}; run it with --call "
            f"use_resolution_binning=false")


def rotary_table_shortfall(folder: PipelineFolder, height: int, width: int, frames: int) -> str | None:
    """Why a video of ``height`` x ``width`` pixels and ``frames`` frames cannot go through the pipeline's
    transformers, or None. Wan-family transformers (Wan, SkyReels V2, AnyFlow, ...) hold a rotary table of
    ``rope_max_seq_len`` positions per axis of the patched latent grid; a longer axis fails inside the first forward
    on every rank with torch's "shape '[1, 1, 52, -1]' is invalid". The grid is worked out as diffusers' Wan pipelines
    do: the VAE's ``scale_factor_spatial`` / ``scale_factor_temporal`` (8 and 4 when the config has none), sizes
    rounded down to a whole number of patches, ``(frames - 1) // temporal + 1`` latent frames."""
    from ..loader.paths import read_json

    vae = folder.get("vae")
    vae_config = read_json(vae.folder / "config.json", "the VAE config") if vae else {}
    vae_config = vae_config if isinstance(vae_config, dict) else {}
    spatial = _whole(vae_config.get("scale_factor_spatial"), 8)
    temporal = _whole(vae_config.get("scale_factor_temporal"), 4)
    latent_frames = (max(frames, 1) - 1) // temporal + 1
    for part in folder.components:
        if part.role != TRANSFORMER:
            continue
        path = part.folder / "config.json"
        config = read_json(path, "the model config")
        if not isinstance(config, dict) or "rope_max_seq_len" not in config:
            continue
        table, patch = config["rope_max_seq_len"], config.get("patch_size")
        if type(table) is not int or not (isinstance(patch, list) and len(patch) == 3
                                          and all(_whole(p, 0) for p in patch)):
            continue
        axes = {"frames": (latent_frames // patch[0], frames, temporal * patch[0]),
                "rows": ((height // (spatial * patch[1])), height, spatial * patch[1]),
                "columns": ((width // (spatial * patch[2])), width, spatial * patch[2])}
        for axis, (length, asked, per_position) in axes.items():
            if length > table:
                unit = "frames" if axis == "frames" else "px"
                return (f"{part.name}: {part.class_name}'s rotary table has {table} positions per axis "
                        f"(rope_max_seq_len in {path}), and {asked} {unit} make {length} latent {axis} after "
                        f"patching; ask for at most {table * per_position} {unit} on that axis, or use a model "
                        f"whose table is longer")
    return None


def load_pipeline(folder: str | Path | PipelineFolder, rules=None, mesh=None, dtype=None, *, split: str = "none",
                  mp_policy=None, reshard_after_forward=None, offload=None, stats=None, progress: bool = True,
                  ulysses: int = 1, ring: int = 1, compile: bool | dict = False):
    """The diffusers pipeline of ``folder`` (the class ``model_index.json`` names), with every transformer and
    every text encoder sharded with FSDP2 by ``rules`` and loaded with per-rank reads; tokenizers,
    scheduler, VAE and the rest are loaded the ordinary diffusers way (the VAE whole on every rank) and moved to
    this rank's device. Call it on every rank inside an initialised process group; call the pipeline on every
    rank with the same arguments (and the same seeded ``generator``), as FSDP's collectives must match.

    Works on the sharded modules: ``config``, ``dtype``, ``device``, the pipeline's ``_execution_device``,
    ``encode_prompt`` and ``__call__``. ``split="batch"`` has each rank compute its share of the transformers'
    batch (pipelines that batch the guided and unguided branches into one forward: PixArt, Sana, SD3), see
    :func:`split_batch`. ``ulysses`` / ``ring`` above 1 split each transformer's sequence across that many ranks
    (see :func:`shardrules.load_sharded`); the pipeline still passes whole inputs and gets whole outputs, and with
    ``split="batch"`` the batch is shared among the ranks that hold the same tokens. ``compile`` compiles each
    transformer's units (see :func:`shardrules.load_sharded`); text encoders, which run once per prompt, stay eager.
    Does not: ``pipe.save_pretrained`` (FSDP2 cannot flatten unevenly sharded tensors) and diffusers' CPU offload
    hooks (``enable_model_cpu_offload`` moves whole modules; use
    ``offload=True``, FSDP2's own CPU offload, instead); ``pipe.config`` records the sharded components' classes
    as FSDP classes.
    """
    import diffusers

    from ..loader.load import load_sharded
    from ..loader.shard import default_device

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if isinstance(folder, PipelineFolder):
        pipeline = folder
    elif is_pipeline(folder):
        pipeline = PipelineFolder.read(folder)  # a regular file holding a JSON object, or an error
    else:
        raise CheckpointError(f"{folder}: no model_index.json, so not a diffusers pipeline folder",
                              path=str(Path(folder) / "model_index.json"))
    parts = pipeline.components
    name = pipeline.class_name
    cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(f"{pipeline.index_path}: diffusers {diffusers.__version__} has no pipeline "
                              f"class {name!r}", path=str(pipeline.index_path))
    missing = [c for c in parts if not c.folder.is_dir()]
    if missing:
        raise CheckpointError(f"{pipeline.index_path} lists '{missing[0].name}', which has no folder",
                              path=str(missing[0].folder))
    for part in parts:
        if part.role == SCHEDULER:
            scheduler_config(part)  # a diffusers scheduler with bounded tables, before any rank loads anything
        elif not part.sharded:
            regular_files(part.folder)
    sharded = {}
    for part in parts:
        if not part.sharded:
            continue
        encoder = part.role == TEXT_ENCODER
        model = load_sharded(part.folder, rules, mesh, dtype, mp_policy=mp_policy,
                             reshard_after_forward=reshard_after_forward, offload=offload, stats=stats,
                             progress=progress, ulysses=1 if encoder else ulysses, ring=1 if encoder else ring,
                             compile=False if encoder else compile)
        if encoder:
            reshard_after_each_forward(model)
        elif split == "batch":
            split_batch(model)
        sharded[part.name] = model
    import warnings

    import torch.distributed as dist

    rank0 = not dist.is_initialized() or dist.get_rank() == 0  # one progress bar for the job, from rank 0
    with warnings.catch_warnings(), contextlib.nullcontext() if rank0 else progress_bars_off(diffusers):
        # diffusers 0.42 renamed from_pretrained's torch_dtype to dtype and warns on every rank; earlier releases
        # the package supports take only torch_dtype
        warnings.filterwarnings("ignore", message="`torch_dtype` is deprecated", category=FutureWarning)
        pipe = cls.from_pretrained(str(pipeline.folder), **sharded,
                                   **({"torch_dtype": dtype} if dtype is not None else {}))
    device = default_device()
    for part in parts:
        module = getattr(pipe, part.name, None)
        if part.name not in sharded and hasattr(module, "to") and hasattr(module, "parameters"):
            module.to(device)
    return pipe
