"""``shardrules demo``: an embedded tiny Flux transformer, sharded over 2 ranks, checked against one process.
``shardrules demo --pipeline flux|wan|pixart``: a tiny diffusers pipeline written offline, run sharded from a prompt
through its own ``__call__``, checked against diffusers' own pipeline in one process.

The config ships in this folder; random weights are written once to a cache folder
(``$SHARDRULES_CACHE`` or ``~/.cache/shardrules``). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path

ATOL = 1e-5


def cache_dir() -> Path:
    root = Path(os.environ.get("SHARDRULES_CACHE", Path.home() / ".cache" / "shardrules"))
    return root / "demo-flux-tiny"


def demo_model_dir() -> Path:
    """The tiny model's folder, written on first use (config from the package, seeded random weights)."""
    import diffusers
    import torch

    folder = cache_dir()
    config = json.loads(resources.files(__name__).joinpath("config.json").read_text())
    marker = folder / "config.json"
    if marker.exists() and list(folder.glob("*.safetensors")):
        return folder
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def unsharded_latents(model_dir: Path, steps: int, seed: int):
    import diffusers

    from ..loader.build import load_plain
    from ..runner.denoise import DenoisingRunner
    from ..runner.inputs import example_inputs

    model = load_plain(model_dir)
    example = example_inputs(model, seed=seed)
    runner = DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False,
                             timestep_scale=example.timestep_scale,
                             cast_timestep=example.cast_timestep)
    return runner.run(example.latents, num_inference_steps=steps, model_kwargs=example.model_kwargs,
                      latent_condition=example.latent_condition)


def run_demo(nproc: int = 2, steps: int = 4, seed: int = 0, backend: str = "auto",
             timeout: float | None = None) -> bool:
    """Run the demo; print the plan, per-rank figures and PASS or FAIL. Returns whether it passed."""
    import tempfile

    from safetensors.torch import load_file

    from ..launch import run_on_ranks
    from ..runner.job import run_model
    from ..runner.report import reports, run_report

    began = time.perf_counter()
    model_dir = demo_model_dir()
    print(f"tiny Flux transformer in {model_dir}; {nproc} ranks, {steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "latents.safetensors")
        results = run_on_ranks(run_model, nproc,
                               dict(model_dir=str(model_dir), steps=steps, seed=seed, out=out), backend=backend,
                               **({"collective_timeout": timeout} if timeout else {}))
        print(run_report(reports(results)))
        sharded = load_file(out)["latents"]
    reference = unsharded_latents(model_dir, steps, seed)
    diff = (sharded - reference).abs().max().item()
    passed = diff <= ATOL
    print(f"sharded vs unsharded: max abs diff {diff:.2e} (tolerance {ATOL:.0e}): {'PASS' if passed else 'FAIL'} "
          f"in {time.perf_counter() - began:.1f} s")
    return passed


# What each tiny pipeline is called with: sizes its tiny parts fit (the pipelines' defaults are for released
# models: 1024 px, 81 frames), and pipeline arguments they need (PixArt bins resolutions for released sizes only).
PIPELINES = {
    "flux": dict(suffix=".png", height=8, width=8, frames=None, guidance=None, call=dict(max_sequence_length=8)),
    "wan": dict(suffix=".gif", height=16, width=16, frames=5, guidance=4.0, call=dict(max_sequence_length=8)),
    "pixart": dict(suffix=".png", height=8, width=8, frames=None, guidance=4.5,
                   call=dict(max_sequence_length=8, use_resolution_binning=False, clean_caption=False)),
}
PIXEL_TOLERANCE = 1  # of 255: the sharded forward sums in another order; the PNG rounds to whole levels


def write_demo_pipeline(kind: str, root: Path) -> Path:
    """Write the tiny ``kind`` pipeline under ``root`` (seeded: the same files every time) and return its folder."""
    import diffusers
    import transformers

    from ..runner.pipeline import progress_bars_off
    from . import pipelines

    with progress_bars_off(diffusers, transformers):  # "Writing model shards", "Loading weights"
        return getattr(pipelines, kind)(root)


def _pixels(path: str):
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        return np.stack([np.asarray(f.convert("RGB"), dtype=np.int16) for f in ImageSequence.Iterator(image)])


def run_pipeline_demo(kind: str, out: str | None = None, prompt: str = "a red cat", nproc: int = 2,
                      steps: int = 3, seed: int = 0, backend: str = "auto", timeout: float | None = None) -> bool:
    """Write the tiny ``kind`` pipeline (into ``out``, else a temporary folder), run it sharded on ``nproc`` ranks
    from ``prompt``, and compare the output with diffusers' own pipeline called the same way in this process."""
    import tempfile

    import torch

    from ..launch import run_on_ranks
    from ..runner.job import _save_output, run_pipeline
    from ..runner.report import reports, run_report

    began = time.perf_counter()
    spec = PIPELINES[kind]
    with tempfile.TemporaryDirectory(prefix="shardrules-demo-") as tmp:
        root = Path(out) if out else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        folder = write_demo_pipeline(kind, root)
        written = str(root / f"{kind}{spec['suffix']}")
        print(f"tiny {kind} pipeline in {folder}; {nproc} ranks, {steps} steps, prompt {prompt!r}")
        args = dict(steps=steps, guidance=spec["guidance"], height=spec["height"], width=spec["width"],
                    frames=spec["frames"], seed=seed)
        results = run_on_ranks(run_pipeline, nproc,
                               dict(model_dir=str(folder), prompt=prompt, out=written, call=spec["call"], **args),
                               backend=backend, **({"collective_timeout": timeout} if timeout else {}))
        ranks = reports(results)
        print(run_report(ranks))
        print(f"{ranks[0][1].output} written to {written}")

        import diffusers
        import transformers

        from ..runner.pipeline import progress_bars_off

        with progress_bars_off(diffusers, transformers):
            plain = diffusers.DiffusionPipeline.from_pretrained(str(folder))
        plain.set_progress_bar_config(disable=True)
        call = {k: v for k, v in dict(prompt=prompt, num_inference_steps=steps, guidance_scale=spec["guidance"],
                                      height=spec["height"], width=spec["width"], num_frames=spec["frames"],
                                      output_type="pil", generator=torch.Generator().manual_seed(seed),
                                      **spec["call"]).items() if v is not None}
        reference = _save_output(plain(**call), str(Path(tmp) / f"reference{spec['suffix']}"))
        got, want = _pixels(written), _pixels(reference)
        diff = int(abs(got - want).max()) if got.shape == want.shape else None
        passed = diff is not None and diff <= PIXEL_TOLERANCE
        shape = "" if diff is not None else f" (shapes {got.shape} and {want.shape})"
        print(f"sharded vs diffusers' own pipeline: max pixel difference {diff}/255{shape} (tolerance "
              f"{PIXEL_TOLERANCE}): {'PASS' if passed else 'FAIL'} in {time.perf_counter() - began:.1f} s")
        if out:
            frames = f" --frames {spec['frames']}" if spec["frames"] else ""
            guidance = f" --guidance {spec['guidance']}" if spec["guidance"] else ""
            calls = "".join(f" --call {k}={json.dumps(v)}" for k, v in spec["call"].items())
            print(f"run it again: shardrules run {folder} --prompt {json.dumps(prompt)} --steps {steps} --seed {seed}"
                  f"{guidance} --height {spec['height']} --width {spec['width']}{frames}{calls} --out {written}")
        return passed
