"""``shardrules demo``: an embedded tiny Flux transformer, sharded over 2 ranks, checked against one process.

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
    from ..runner.report import run_report

    began = time.perf_counter()
    model_dir = demo_model_dir()
    print(f"tiny Flux transformer in {model_dir}; {nproc} ranks, {steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "latents.safetensors")
        results = run_on_ranks("shardrules.runner.job:run_model", nproc,
                               dict(model_dir=str(model_dir), steps=steps, seed=seed, out=out), backend=backend,
                               **({"collective_timeout": timeout} if timeout else {}))
        print(run_report([(r.rank, r.value) for r in results]))
        sharded = load_file(out)["latents"]
    reference = unsharded_latents(model_dir, steps, seed)
    diff = (sharded - reference).abs().max().item()
    passed = diff <= ATOL
    print(f"sharded vs unsharded: max abs diff {diff:.2e} (tolerance {ATOL:.0e}): {'PASS' if passed else 'FAIL'} "
          f"in {time.perf_counter() - began:.1f} s")
    return passed
