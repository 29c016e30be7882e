"""The accelerator path at world size 1: loading into GPU shards and the runner's cost per step.

Wan 2.1 1.3B's config with random bf16 weights, saved once; page cache warm (each way runs once untimed first);
model classes imported before anything is timed. Prints one table and the goals:

- read phase of ``load_sharded`` <= 1.2x ``safetensors.torch.load_file(path, device="cuda")``
- whole ``load_sharded`` faster than diffusers' ``from_pretrained(torch_dtype=torch.bfloat16).to("cuda")``
- peak CUDA memory while loading <= the shards + 5 % (the staging buffers are pinned host memory)
- ``DenoisingRunner`` per step <= 1.02x a bare ``set_timesteps``/``forward``/``step`` loop on the same FSDP2 model

    python bench/gpu.py                       # on a GPU machine (NCCL, one rank)
    python bench/gpu.py --layers 2 --height 64 --width 64 --frames 5 --steps 2   # a small run (CPU: gloo)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

WAN_1_3B = dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=128, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    """The best of ``repeat`` runs after one warm-up (page cache, allocator), in seconds, and the last result."""
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        sync()
        began = time.perf_counter()
        result = fn()
        sync()
        best = min(best, time.perf_counter() - began)
    return best, result


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def save_model(folder: Path, layers: int) -> None:
    import diffusers

    from shardrules.loader.dtypes import cast_like_library

    if (folder / "config.json").exists():
        return
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        torch.manual_seed(0)
        model = diffusers.WanTransformer3DModel(**dict(WAN_1_3B, num_layers=layers))
    cast_like_library(model, torch.bfloat16)  # as diffusers stores it: the float32 islands kept
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100GB")
    del model


def step_times(model, args, device) -> dict[str, float]:
    """Milliseconds per step: DenoisingRunner against a bare loop over ``model``."""
    import diffusers

    from shardrules import DenoisingRunner

    g = torch.Generator().manual_seed(0)
    frames = (args.frames - 1) // 4 + 1
    latents = torch.randn(1, 16, frames, args.height // 8, args.width // 8, generator=g).to(device, torch.bfloat16)
    text = {"encoder_hidden_states": torch.randn(1, 512, 4096, generator=g).to(device, torch.bfloat16)}

    def bare():
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
        scheduler.set_timesteps(args.steps, device=device)
        x = latents
        with torch.no_grad():
            for t in scheduler.timesteps:
                noise = model(hidden_states=x, timestep=t.expand(1), return_dict=False, **text)[0]
                x = scheduler.step(noise, t, x, return_dict=False)[0]
        return x

    def runner():
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
        return DenoisingRunner(model, scheduler, progress=False).run(latents, num_inference_steps=args.steps,
                                                                     model_kwargs=text)

    out = {}
    for name, fn in (("bare", bare), ("runner", runner)):
        seconds, _ = timed(fn, repeat=2)
        out[name] = seconds / args.steps * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--folder", default=None, help="where the checkpoint is written (default: a temp folder)")
    args = parser.parse_args()

    import diffusers
    from safetensors.torch import load_file

    from shardrules import LoadStats, load_sharded, plan, shard  # noqa: F401  (imported before timing)

    gpu = torch.cuda.is_available()
    device = torch.device("cuda", 0) if gpu else torch.device("cpu")
    if gpu:
        torch.cuda.set_device(0)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29631")
    dist.init_process_group("nccl" if gpu else "gloo", rank=0, world_size=1, timeout=timedelta(seconds=600))
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-gpu-"))
    save_model(folder, args.layers)
    files = sorted(folder.glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)

    load_file_s, _ = timed(lambda: [load_file(str(f), device=str(device)) for f in files])
    diffusers_s, _ = timed(lambda: diffusers.WanTransformer3DModel.from_pretrained(
        folder, torch_dtype=torch.bfloat16).to(device))

    def ours():
        stats = LoadStats()
        model = load_sharded(folder, dtype=torch.bfloat16, stats=stats, progress=False)
        return model, stats

    ours()  # warm
    sync()
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if gpu else 0
    began = time.perf_counter()
    model, stats = ours()
    sync()
    load_s = time.perf_counter() - began
    peak = (torch.cuda.max_memory_allocated() - base) if gpu else 0
    shards = sum(p.to_local().numel() * p.element_size() for p in model.parameters())

    steps = step_times(model, args, device)
    del model
    plain = diffusers.WanTransformer3DModel.from_pretrained(folder, torch_dtype=torch.bfloat16).to(device).eval()
    plain_steps = step_times(plain, args, device)

    phases = ", ".join(f"{k} {v:.2f}" for k, v in stats.phases.items())
    print(f"Wan 1.3B config, {args.layers} layers, bf16, {size / 2**30:.2f} GiB, {device}, world size 1")
    rows = [
        ("load_file(path, device=...)", f"{load_file_s:.2f} s"),
        ("diffusers from_pretrained(bf16).to(device)", f"{diffusers_s:.2f} s"),
        ("load_sharded, whole", f"{load_s:.2f} s ({phases})"),
        ("load_sharded, read phase", f"{stats.phases['read']:.2f} s"),
        ("peak CUDA memory while loading", f"{peak / 2**20:.0f} MiB (shards {shards / 2**20:.0f} MiB)"),
        ("step, FSDP2: bare loop / runner", f"{steps['bare']:.1f} / {steps['runner']:.1f} ms"),
        ("step, plain model: bare loop / runner", f"{plain_steps['bare']:.1f} / {plain_steps['runner']:.1f} ms"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    goals = [
        ("read phase <= 1.2x load_file", stats.phases["read"] / load_file_s, 1.2),
        ("load_sharded / diffusers from_pretrained < 1", load_s / diffusers_s, 1.0),
        ("peak CUDA memory / shards <= 1.05", peak / shards if gpu else float("nan"), 1.05),
        ("runner / bare loop (FSDP2) <= 1.02", steps["runner"] / steps["bare"], 1.02),
    ]
    for name, ratio, goal in goals:
        verdict = "n/a (no GPU)" if ratio != ratio else ("met" if ratio <= goal else "NOT met")
        print(f"goal {name}: {ratio:.2f} -> {verdict}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
