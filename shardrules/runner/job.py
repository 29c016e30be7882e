"""One rank's part of ``shardrules run``: load sharded, denoise, report."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ..engine.describe import plan_summary
from ..engine.facts import class_name
from ..engine.wrapped import get_wrapped_attr
from ..errors import ShardRulesError
from ..loader.load import LoadStats, load_sharded
from ..loader.pipeline import TEXT_ENCODER, TRANSFORMER, PipelineFolder, read_folder, scheduler_config, sharded_parts
from ..rules import load_rules
from .denoise import DenoisingRunner
from .inputs import example_inputs
from .report import RunResult


def rank_zero_warns() -> None:
    """The libraries' warnings from rank 0 alone: every rank runs the same calls with the same arguments, so the
    others' are the same warnings again (PixArt's missing Beautiful Soup came once per rank, and a deprecation warning
    diffusers' Ideogram 4 pipeline raises through transformers). Python's warnings too: a rule's, or a library's."""
    if dist.get_rank() == 0:
        return
    import importlib
    import warnings

    warnings.simplefilter("ignore")

    for library in ("diffusers", "transformers"):  # transformers: the encoders extra
        if importlib.util.find_spec(library) is not None:
            importlib.import_module(library).utils.logging.set_verbosity_error()


def import_classes(folder: Path | PipelineFolder) -> None:
    """Import the model classes of ``folder`` (each sharded component's for a pipeline) before the load is timed:
    importing diffusers' model modules takes seconds, and is not loading."""
    from ..loader.build import model_class, read_config

    for _, part in sharded_parts(folder):
        model_class(read_config(part), str(part / "config.json"))
    dist.barrier()  # every rank starts the timed load together: no rank's figure holds another's imports


def _scheduler(pipeline: PipelineFolder | None):
    """The pipeline's own scheduler when it lists one (checked: a diffusers scheduler with bounded tables), else
    flow-matching Euler. Nothing outside the named folder is read (a model folder's parent may hold anything)."""
    import diffusers

    part = pipeline.get("scheduler") if pipeline is not None else None
    if part is not None and os.path.lexists(part.folder / "scheduler_config.json"):
        cls, config = scheduler_config(part)
        return cls.from_config(config)
    return diffusers.FlowMatchEulerDiscreteScheduler()


def _vmrss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memory() -> dict[str, float]:
    """Resident memory now and at its peak (ru_maxrss lags VmRSS by a page or two: the peak is never less)."""
    now = _vmrss_mib()
    return {"vmrss_mib": now, "maxrss_mib": max(now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _hidden_states(encoder, length: int, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Every layer's hidden states on seeded random token ids (no tokenizer is needed or downloaded), the last one
    last. A vision-language or causal language model (Qwen-Image's Qwen2.5-VL, Flux 2 Klein's Qwen 3) keeps its
    vocabulary in its text config and returns logits first: its hidden states are what the pipelines take."""
    config = get_wrapped_attr(encoder, "config")
    vocab = config.get_text_config().vocab_size if hasattr(config, "get_text_config") else config.vocab_size
    ids = torch.randint(2, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))
    device = next(encoder.parameters()).device
    with torch.no_grad():
        out = encoder(input_ids=ids.to(device), output_hidden_states=True)
    states = getattr(out, "hidden_states", None)
    return tuple(states) if states else (out[0],)


def _encode(encoder, length: int, batch: int, seed: int) -> torch.Tensor:
    """The last hidden states of seeded random token ids."""
    return _hidden_states(encoder, length, batch, seed)[-1]


def _states(encoder, length: int, batch: int, seed: int, layers: int = 1) -> torch.Tensor:
    """The last ``layers`` hidden states of seeded token ids, side by side."""
    return torch.cat(_hidden_states(encoder, length, batch, seed)[-layers:], dim=-1)


def _conditioning(encoders: dict, length: int, width: int, batch: int, seed: int) -> tuple[str, int, torch.Tensor]:
    """The text encoder whose hidden states the transformer takes, and its states on seeded token ids: of the
    pipeline's text encoders in index order, CLIP text models last, the first whose width fits the transformer's
    ``encoder_hidden_states`` (Flux, SD3 and HunyuanVideo take their sequence from T5 or Llama and only a pooled
    vector from CLIP: Flux-dev's CLIP is 768 wide, its transformer takes 4,096). A transformer k times as wide as
    an encoder takes k of its layers side by side (Flux 2: three of Mistral's or Qwen 3's): the last k. Returns the
    encoder's name, k, and the states. Every rank runs the encoders in the same order, collectively, until one
    fits."""
    widths = {}
    for name, encoder in sorted(encoders.items(), key=lambda item: class_name(item[1]).startswith("CLIPText")):
        states = _hidden_states(encoder, length, batch, seed)
        own = states[-1].shape[-1]
        if own == width:
            return name, 1, states[-1]
        layers = width // own
        if width % own == 0 and 1 < layers <= len(states) - 1:
            return name, layers, torch.cat(states[-layers:], dim=-1)
        widths[name] = own
    found = ", ".join(f"{name} {w}" for name, w in widths.items())
    raise ShardRulesError(f"no text encoder fits the transformer's encoder_hidden_states width {width} ({found})")


def _save_image(vae_folder: Path, latents: torch.Tensor, path: str) -> None:
    from PIL import Image

    from ..loader.build import load_plain

    vae = load_plain(vae_folder)
    config = vae.config
    scaled = latents.float().cpu() / getattr(config, "scaling_factor", 1.0)
    with torch.no_grad():
        image = vae.decode(scaled).sample
    if image.dim() == 5:  # video: the first frame
        image = image[:, :, 0]
    pixels = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)


def run_model(rank: int, world_size: int, model_dir: str | Path | PipelineFolder, rules: list[str] | None = None,
              steps: int = 4,
              guidance: float | None = None, dtype: str | None = None, seed: int = 0, batch: int = 1,
              out: str | None = None, split: str = "auto", ulysses: int = 1, ring: int = 1,
              compile: bool = False) -> dict:
    """Load ``model_dir`` sharded over the process group, run ``steps`` denoising steps, return figures.
    ``ulysses`` / ``ring``: the transformers' sequence split across that many ranks.

    For a pipeline folder every transformer and text encoder is sharded, as :func:`load_pipeline` shards them; the
    runner drives ``transformer``, the text encoder whose width fits it (a CLIP one only when no other does)
    encodes seeded token ids into the conditioning, and the
    VAE (on rank 0) decodes the result into a PNG.
    """
    pipeline = model_dir if isinstance(model_dir, PipelineFolder) else read_folder(model_dir)
    folder = pipeline.folder if pipeline is not None else Path(model_dir)
    rank_zero_warns()
    import_classes(pipeline or folder)
    stats = LoadStats()
    torch_dtype = getattr(torch, dtype) if dtype else None
    rule_set = load_rules(*(rules or []))
    notes = []
    encoders: dict = {}
    vae_folder = None
    transformer_options = dict(ulysses=ulysses, ring=ring, compile=compile)
    if pipeline is not None:
        if pipeline.get("transformer") is None:
            raise ShardRulesError(f"{pipeline.index_path} lists no transformer")
        loaded = {c.name: load_sharded(c.folder, rule_set, dtype=torch_dtype,
                                       stats=stats if c.name == "transformer" else None,
                                       progress=c.name == "transformer",
                                       **(transformer_options if c.role == TRANSFORMER else {}))
                  for c in pipeline.sharded}
        model = loaded["transformer"]
        encoders = {c.name: loaded[c.name] for c in pipeline.sharded if c.role == TEXT_ENCODER}
        others = sorted(set(loaded) - {"transformer"} - set(encoders))
        if others:
            notes.append(f"also loaded sharded: {', '.join(others)} (the runner drives 'transformer')")
        if (vae := pipeline.get("vae")) is not None:
            vae_folder = vae.folder
    else:
        model = load_sharded(folder, rule_set, dtype=torch_dtype, stats=stats, **transformer_options)
    if (ulysses, ring) != (1, 1):
        notes.append(f"sequence parallel: ulysses {ulysses} x ring {ring}, plan from "
                     f"{model.sequence_parallel.plan.origin}")
    example = example_inputs(model, batch=batch, seed=seed)
    if encoders:
        random_states = example.model_kwargs["encoder_hidden_states"]
        name, layers, states = _conditioning(encoders, random_states.shape[1], random_states.shape[-1], batch, seed)
        example.model_kwargs["encoder_hidden_states"] = states
        example.negative_model_kwargs["encoder_hidden_states"] = _states(encoders[name], states.shape[1], batch,
                                                                         seed + 1, layers)
        side = f", its last {layers} layers side by side" if layers > 1 else ""
        notes.append(f"conditioning: {name} ({class_name(encoders[name])}{side}) on seeded token ids")
    else:
        notes.append("conditioning: seeded random tensors (no text encoder)")
    runner = DenoisingRunner(model, _scheduler(pipeline), split=split, timestep_scale=example.timestep_scale,
                             cast_timestep=example.cast_timestep)
    began = time.perf_counter()
    latents = runner.run(example.latents, num_inference_steps=steps, guidance_scale=guidance,
                         model_kwargs=example.model_kwargs,
                         negative_model_kwargs=example.negative_model_kwargs if guidance is not None else None,
                         latent_condition=example.latent_condition)
    seconds = time.perf_counter() - began
    timing = {"step_s": seconds / steps}
    if compile:  # the first step compiles: report it apart, and ms/step over the others
        later = runner.step_seconds[1:]
        timing = {"first_step_s": runner.step_seconds[0], "step_s": sum(later) / len(later) if later else 0.0}
        notes.append(f"compiled: {len(stats.compiled)} units")
    image = None
    if rank == 0 and out:
        from safetensors.torch import save_file

        save_file({"latents": latents.float().cpu().contiguous()}, out)
        if vae_folder is not None and latents.dim() in (4, 5):
            image = str(Path(out).with_suffix(".png"))
            _save_image(vae_folder, latents, image)
        elif vae_folder is not None:  # Flux-style packed tokens: unpacking them is the pipeline's own business
            notes.append(f"no image: {class_name(model)}'s "
                         f"latents are packed tokens {list(latents.shape)}, not the VAE's layout; run the pipeline "
                         f"with --prompt for an image")
    return RunResult(plan=plan_summary(stats.plan, world_size) if rank == 0 else None, notes=notes, image=image,
                     load_s=stats.seconds, read_mib=stats.bytes_read / 2**20, **_memory(), **timing,
                     split=runner.explain_split(example.latents.shape[0], guidance is not None),
                     world_size=dist.get_world_size()).as_dict()


def _step_timer(pipe) -> tuple[dict, list[float]]:
    """Keyword arguments that make ``pipe`` stamp the end of each denoising step, and the list they fill."""
    from .denoise import accepted_keywords

    stamps: list[float] = []
    accepted = accepted_keywords(pipe.__call__)
    if "callback_on_step_end" in accepted:
        def on_step_end(pipeline, step, timestep, callback_kwargs):
            stamps.append(time.perf_counter())
            # nothing to replace: the pipelines keep their own tensors for what the dict leaves out. Handing
            # callback_kwargs back changed LTXI2VLongMultiPromptPipeline's picture (it offers its unpacked latents
            # and takes them back as its packed ones)
            return {}

        return {"callback_on_step_end": on_step_end}, stamps
    if "callback" in accepted:
        return {"callback": lambda step, timestep, latents: stamps.append(time.perf_counter())}, stamps
    return {}, stamps


def can_write_mp4() -> bool:
    """Whether diffusers' ``export_to_video`` can write MP4 here: it needs imageio and its ffmpeg plugin."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("imageio", "imageio_ffmpeg"))


def _save_output(result, out: str) -> str:
    """The pipeline's output to ``out``, in the format its suffix names: an image (PIL); a video as MP4 (diffusers'
    ``export_to_video``, 8 frames per second) or an animated GIF; a video of one frame as an image. Nothing is
    written under another name."""
    frames = getattr(result, "frames", None)
    suffix = Path(out).suffix.lower()
    if frames is None:
        result.images[0].save(out)
        return out
    video = list(frames[0])
    if suffix == ".mp4":
        from diffusers.utils import export_to_video

        return export_to_video(video, out, fps=8, macro_block_size=1)  # tiny sizes stay as they are
    if suffix == ".gif":
        video[0].save(out, save_all=True, append_images=video[1:], duration=125, loop=0)
        return out
    if len(video) == 1:
        video[0].save(out)
        return out
    raise ShardRulesError(f"{out}: a video of {len(video)} frames goes to a .mp4 or .gif file, not "
                          f"{suffix or 'a file without a suffix'}")


def _sequence_notes(pipe, pipeline: PipelineFolder, ulysses: int, ring: int) -> list[str]:
    """Which transformers of the pipeline run split, and whose plan they follow."""
    if (ulysses, ring) == (1, 1):
        return []
    plans = [f"{c.name} by {getattr(pipe, c.name).sequence_parallel.plan.origin}" for c in pipeline.components
             if c.role == TRANSFORMER and getattr(getattr(pipe, c.name, None), "sequence_parallel", None)]
    return [f"sequence parallel: ulysses {ulysses} x ring {ring}; {', '.join(plans)}"]


def run_pipeline(rank: int, world_size: int, model_dir: str | Path | PipelineFolder, prompt: str,
                 rules: list[str] | None = None,
                 negative_prompt: str | None = None, steps: int | None = 4, guidance: float | None = None,
                 height: int | None = None, width: int | None = None, frames: int | None = None,
                 dtype: str | None = None, seed: int = 0, out: str | None = None, split: str = "none",
                 ulysses: int = 1, ring: int = 1, compile: bool = False, call: dict | None = None) -> dict:
    """Load the pipeline of ``model_dir`` sharded and call it on ``prompt``, on every rank; rank 0 writes ``out``.
    ``call``: more keyword arguments of the pipeline's ``__call__``."""
    from .denoise import accepted_keywords
    from .pipeline import decodes_only_tiled, frame_keyword, load_pipeline

    pipeline = model_dir if isinstance(model_dir, PipelineFolder) else PipelineFolder.read(model_dir)
    rank_zero_warns()
    import_classes(pipeline)
    stats = LoadStats()
    began = time.perf_counter()
    pipe = load_pipeline(pipeline, load_rules(*(rules or [])), dtype=getattr(torch, dtype) if dtype else None,
                         split=split, stats=stats, ulysses=ulysses, ring=ring, compile=compile)
    load_s = time.perf_counter() - began
    pipe.set_progress_bar_config(disable=rank != 0, leave=False)
    vae_notes = []
    if (vae := getattr(pipe, "vae", None)) is not None and (where := decodes_only_tiled(vae)):
        vae.enable_tiling()  # what diffusers' own example for the pipeline does
        vae_notes.append(f"the VAE decodes in tiles: {type(vae).__name__} cannot decode whole ({where})")
    accepted = accepted_keywords(pipe.__call__)
    frames_key = frame_keyword(accepted) or "num_frames"  # num_frames, or Sana Video's frames, Latte's video_length
    # run's own arguments when given; the caller's --call ones as given, None included (Sana's
    # complex_human_instruction=None turns its default instruction off)
    call = {k: v for k, v in dict(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=steps,
                                  guidance_scale=guidance, height=height, width=width, output_type="pil",
                                  **{frames_key: frames}, generator=torch.Generator().manual_seed(seed)).items()
            if v is not None} | (call or {})
    dropped = sorted(k for k in call if k not in accepted)
    if dropped:
        raise ShardRulesError(f"{type(pipe).__name__} does not take {', '.join(dropped)}")
    timer, stamps = _step_timer(pipe)
    began = time.perf_counter()
    result = pipe(**call, **timer)
    total = time.perf_counter() - began
    step_s = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else total / (steps or len(stamps) or 1)
    written = _save_output(result, out) if rank == 0 and out else None
    sharded = [c.name for c in pipeline.sharded]
    return RunResult(
        plan=f"{type(pipe).__name__}: sharded {', '.join(sharded)}; {stats.bytes_read / 2**20:.2f} MiB read on "
             f"this rank of {stats.checkpoint_bytes / 2**20:.2f} MiB" if rank == 0 else None,
        notes=[f"prompt through the pipeline's own tokenizers and encoders; "
               f"{f'{steps} steps' if steps else f'its own schedule ({len(stamps)} steps)'}",
               *vae_notes, *(["the pipeline's audio is not written: run writes images and videos"]
                             if getattr(result, "audio", None) is not None else []),
               *_sequence_notes(pipe, pipeline, ulysses, ring)], image=written,
        output="video" if getattr(result, "frames", None) is not None else "image", load_s=load_s,
        read_mib=stats.bytes_read / 2**20, **_memory(), step_s=step_s, split=split,
        world_size=dist.get_world_size()).as_dict()
