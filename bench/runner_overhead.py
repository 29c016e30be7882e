"""Runner overhead and the guidance split, on a small Wan transformer (random weights, fp32, CPU).

1. Per-step time of DenoisingRunner against a bare hand-written loop (the same transformer call and
   scheduler.step, no filtering, no progress bar) over the same unsharded module. Goal: <= 2 % overhead.
2. At world size 2 with classifier-free guidance, per-step time with the two guidance branches split over
   the ranks against both branches on every rank. Goal: >= 1.6x faster. And, without guidance, a batch of
   two split over the ranks against the whole batch on every rank: what split="auto" chooses from.

    python bench/runner_overhead.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

CONFIG = dict(patch_size=[1, 2, 2], num_attention_heads=8, attention_head_dim=64, in_channels=16, out_channels=16,
              text_dim=512, freq_dim=256, ffn_dim=2048, num_layers=4, cross_attn_norm=True, rope_max_seq_len=256)
STEPS = 8


def build():
    import diffusers

    torch.manual_seed(0)
    return diffusers.WanTransformer3DModel(**CONFIG).eval()


def inputs(batch: int = 1):
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, 16, 4, 32, 32, generator=g)
    return latents, {"encoder_hidden_states": torch.randn(batch, 32, 512, generator=g)}, \
        {"encoder_hidden_states": torch.randn(batch, 32, 512, generator=g)}


def bare_loop(model, scheduler, latents, kwargs):
    scheduler.set_timesteps(STEPS)
    with torch.no_grad():
        for t in scheduler.timesteps:
            noise = model(hidden_states=latents, timestep=t.expand(latents.shape[0]), return_dict=False,
                          **kwargs)[0]
            latents = scheduler.step(noise, t, latents, return_dict=False)[0]
    return latents


def overhead() -> None:
    import diffusers

    from shardrules import DenoisingRunner

    torch.set_num_threads(2)
    model = build()
    latents, kwargs, _ = inputs()
    runner_times, bare_times = [], []
    for _ in range(5):  # interleaved, so drift hits both alike
        start = time.perf_counter()
        bare = bare_loop(model, diffusers.FlowMatchEulerDiscreteScheduler(), latents, kwargs)
        bare_times.append((time.perf_counter() - start) / STEPS)
        start = time.perf_counter()
        ours = DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), progress=True).run(
            latents, num_inference_steps=STEPS, model_kwargs=kwargs)
        runner_times.append((time.perf_counter() - start) / STEPS)
    assert torch.equal(bare, ours)
    b, r = statistics.median(bare_times), statistics.median(runner_times)
    print(f"unsharded, 1 process, {STEPS} steps, median of 5 runs:")
    print(f"  bare loop  {b * 1e3:8.1f} ms/step")
    print(f"  runner     {r * 1e3:8.1f} ms/step  overhead {100 * (r - b) / b:+.2f} % (goal <= 2 %)")


def split_rank(rank: int, world_size: int, model_dir: str) -> dict:
    import diffusers

    from shardrules import DenoisingRunner, load_sharded

    model = load_sharded(model_dir, progress=False)
    latents, kwargs, negative = inputs()
    out = {}
    for split in ("guidance", "none", "guidance", "none"):
        runner = DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), split=split, progress=False)
        start = time.perf_counter()
        result = runner.run(latents, num_inference_steps=STEPS, guidance_scale=5.0, model_kwargs=kwargs,
                            negative_model_kwargs=negative)
        out.setdefault(split, []).append((time.perf_counter() - start) / STEPS)
        out[f"{split}_latents"] = result.abs().mean().item()
    batch_latents, batch_kwargs, _ = inputs(batch=2)
    for split in ("batch", "none", "batch", "none"):
        runner = DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), split=split, progress=False)
        start = time.perf_counter()
        runner.run(batch_latents, num_inference_steps=STEPS, model_kwargs=batch_kwargs)
        out.setdefault(f"{split}_batch2", []).append((time.perf_counter() - start) / STEPS)
    return out


def split_speed() -> None:
    from shardrules.launch import run_on_ranks

    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        build().save_pretrained(tmp, safe_serialization=True)
        sys.path.insert(0, str(Path(__file__).parent))
        results = run_on_ranks("runner_overhead:split_rank", 2, {"model_dir": tmp}, threads=1)
    print(f"\nsharded over 2 gloo ranks (1 thread each), guidance 5.0, {STEPS} steps, best of 2 runs:")
    for r in results:
        v = r.value
        g, n = min(v["guidance"]), min(v["none"])
        print(f"  rank {r.rank}: both branches on every rank {n * 1e3:7.1f} ms/step, split over ranks "
              f"{g * 1e3:7.1f} ms/step: {n / g:.2f}x (goal >= 1.6x)")
        assert abs(v["guidance_latents"] - v["none_latents"]) < 1e-5
    print("\nsame, batch of 2, no guidance: each rank takes one item (split='batch') or both ('none'):")
    for r in results:
        v = r.value
        b, n = min(v["batch_batch2"]), min(v["none_batch2"])
        print(f"  rank {r.rank}: whole batch on every rank {n * 1e3:7.1f} ms/step, split over ranks "
              f"{b * 1e3:7.1f} ms/step: {n / b:.2f}x")


if __name__ == "__main__":
    overhead()
    split_speed()
