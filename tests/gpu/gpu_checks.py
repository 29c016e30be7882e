"""Checks that run inside the one rank of a GPU test (NCCL, world size 1, cuda:0)."""

from __future__ import annotations

from pathlib import Path

import tiny_models
import torch
from safetensors.torch import load_file

from shardrules import DenoisingRunner, LoadStats, load_sharded
from shardrules.runner.inputs import example_inputs


def runner_on_gpu(rank, world_size, model_dir: str, class_name: str) -> dict:
    """Inputs built on the CPU go to the transformer's device; timesteps are made there (SPEC §6)."""
    import diffusers

    model = load_sharded(model_dir, progress=False)
    example = example_inputs(model, seed=0)  # on the CPU: the runner moves them
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    runner = DenoisingRunner(model, scheduler, progress=False, timestep_scale=example.timestep_scale,
                             cast_timestep=example.cast_timestep)
    got = runner.run(example.latents, num_inference_steps=3, model_kwargs=example.model_kwargs)
    plain = tiny_models.build(class_name)
    plain.load_state_dict(load_file(next(iter(sorted(Path(model_dir).glob("*.safetensors"))))))
    want = DenoisingRunner(plain, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False,
                           timestep_scale=example.timestep_scale, cast_timestep=example.cast_timestep).run(
        example.latents, num_inference_steps=3, model_kwargs=example.model_kwargs)
    return {"device": str(got.device), "timesteps_device": str(scheduler.timesteps.device),
            "max_abs_diff": (got.cpu() - want).abs().max().item(), "backend": torch.distributed.get_backend()}


def half_precision_on_gpu(rank, world_size, model_dir: str, class_name: str) -> dict:
    import diffusers

    model = load_sharded(model_dir, dtype=torch.bfloat16, progress=False)
    reference = getattr(diffusers, class_name).from_pretrained(model_dir, torch_dtype=torch.bfloat16).to("cuda")
    ours = {n: str(p.dtype) for n, p in model.named_parameters()}
    theirs = {n: str(p.dtype) for n, p in reference.named_parameters()}
    kwargs = {k: v.to("cuda", torch.bfloat16) if v.is_floating_point() else v.to("cuda")
              for k, v in tiny_models.inputs(class_name, dtype=torch.bfloat16).items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        got = tiny_models.first_output(model(**kwargs, return_dict=False))
        want = tiny_models.first_output(reference(**kwargs, return_dict=False))
    return {"dtypes_differ": {n: (ours.get(n), d) for n, d in theirs.items() if ours.get(n) != d},
            "max_abs_diff": (got.float() - want.float()).abs().max().item()}


def staged_load_on_gpu(rank, world_size, model_dir: str) -> dict:
    """Every shard equals the file's tensor; peak CUDA memory stays near the shards (no whole tensor on the GPU
    beyond its own shard, host buffers are pinned host memory)."""
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    stats = LoadStats()
    model = load_sharded(model_dir, stats=stats, progress=False)
    peak = torch.cuda.max_memory_allocated() - before
    shards = sum(p.to_local().numel() * p.element_size() if hasattr(p, "to_local") else p.numel() * p.element_size()
                 for p in model.parameters())
    state = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        state.update(load_file(str(path)))
    wrong = [n for n, p in model.named_parameters()
             if not torch.equal((p.full_tensor() if hasattr(p, "full_tensor") else p).cpu(), state[n])]
    return {"wrong": wrong, "peak": peak, "shards": shards, "device": str(next(model.parameters()).device)}
