"""load_pipeline(split="batch") on a pipeline that batches its guidance branches (PixArt-Sigma), 2 gloo ranks.

Per-step time of the pipeline's own __call__ with guidance, every rank computing the whole guided + unguided batch
(split="none") against each rank computing one of the two rows (split="batch"). Goal: >= 1.6x faster, same images.
A PixArt transformer of 8 layers, width 512, 1024 image tokens (--size 64), random weights; best of 2 calls of
6 steps; a step
is timed between the pipeline's step callbacks, so text encoding and VAE decoding (not split) are left out.

    python bench/pipeline_split.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

STEPS = 6
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tiny pipeline builder


def split_rank(rank, world_size, folder: str, size: int) -> dict:
    import tiny_pipelines

    from shardrules import load_pipeline

    call = dict(tiny_pipelines.PIXART_CALL, height=size, width=size, num_inference_steps=STEPS)
    out, images = {}, {}
    for split in ("none", "batch"):
        pipe = load_pipeline(folder, split=split, progress=False)
        pipe.set_progress_bar_config(disable=True)
        times = []
        for _ in range(2):
            stamps = []  # the end of each denoising step (the pipeline's step callback): encode and decode excluded
            image = pipe(prompt="a red cat on the moon", negative_prompt="dog",
                         generator=torch.Generator().manual_seed(0),
                         callback=lambda step, t, latents: stamps.append(time.perf_counter()), **call).images
            times.append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
        out[split] = min(times)
        images[split] = image
    out["max_abs_diff"] = (images["none"] - images["batch"]).abs().max().item()  # element-wise, not a checksum
    return out


def main() -> None:
    import argparse

    import tiny_pipelines

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="latent height and width (64: 1024 image tokens)")
    size = parser.parse_args().size
    from shardrules.launch import run_on_ranks

    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_pipelines.pixart(Path(tmp), layers=8, heads=8, head_dim=64, sample_size=size)
        sys.path.insert(0, str(Path(__file__).parent))
        results = run_on_ranks("pipeline_split:split_rank", 2, {"folder": str(folder), "size": size}, threads=1)
    print(f"PixArt-Sigma, 8 layers x width 512, {size}x{size} latents ({(size // 2) ** 2} tokens), guidance 4.5, "
          f"{STEPS} steps, 2 gloo ranks, "
          "1 thread each, best of 2 calls:")
    for r in results:
        v = r.value
        print(f"  rank {r.rank}: split='none' {v['none'] * 1e3:7.1f} ms/step, split='batch' {v['batch'] * 1e3:7.1f} "
              f"ms/step: {v['none'] / v['batch']:.2f}x (goal >= 1.6x); images differ by at most "
              f"{v['max_abs_diff']:.1e} (element-wise)")


if __name__ == "__main__":
    main()
