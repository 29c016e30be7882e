"""One rank's part of ``shardrules run``: load sharded, denoise, report."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ..rules import load_rules
from .denoise import DenoisingRunner
from .inputs import example_inputs
from .load import LoadStats, load_sharded
from .report import plan_summary


def _scheduler(model_dir: Path):
    """The pipeline's scheduler when the folder has one, else flow-matching Euler."""
    import diffusers

    folder = model_dir.parent / "scheduler"
    if (folder / "scheduler_config.json").exists():
        import json

        name = json.loads((folder / "scheduler_config.json").read_text()).get("_class_name")
        if name and hasattr(diffusers, name):
            return getattr(diffusers, name).from_pretrained(str(folder))
    return diffusers.FlowMatchEulerDiscreteScheduler()


def _vmrss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_model(rank: int, world_size: int, model_dir: str, rules: list[str] | None = None, steps: int = 4,
              guidance: float | None = None, dtype: str | None = None, seed: int = 0, batch: int = 1,
              out: str | None = None, split: str = "auto") -> dict:
    """Load ``model_dir`` sharded over the process group, run ``steps`` denoising steps, return figures."""
    model_dir_path = Path(model_dir)
    stats = LoadStats()
    torch_dtype = getattr(torch, dtype) if dtype else None
    model = load_sharded(model_dir_path, rules=load_rules(*(rules or [])), dtype=torch_dtype, stats=stats)
    example = example_inputs(model, batch=batch, seed=seed)
    runner = DenoisingRunner(model, _scheduler(model_dir_path), split=split, timestep_scale=example.timestep_scale)
    began = time.perf_counter()
    latents = runner.run(example.latents, num_inference_steps=steps, guidance_scale=guidance,
                         model_kwargs=example.model_kwargs,
                         negative_model_kwargs=example.negative_model_kwargs if guidance is not None else None)
    seconds = time.perf_counter() - began
    if rank == 0 and out:
        from safetensors.torch import save_file

        save_file({"latents": latents.float().contiguous()}, out)
    return {
        "plan": plan_summary(stats.plan, world_size) if rank == 0 else None,
        "load_s": stats.seconds,
        "read_mib": stats.bytes_read / 2**20,
        "vmrss_mib": _vmrss_mib(),
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_s": seconds / steps,
        "split": runner.resolve_split(example.latents.shape[0], guidance is not None),
        "latents_abs_mean": latents.float().abs().mean().item(),
        "world_size": dist.get_world_size(),
    }

