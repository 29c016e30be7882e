"""Sequence parallel (Ulysses 2) against FSDP2 alone, on the same 2 gloo ranks: per-step time and peak memory.

A Wan-like transformer (WanTransformer3DModel, 4 layers, 12 heads of 64, width 768, FFN 3072, random weights),
latents of 16 x F x 64 x 64 (patch 1 x 2 x 2: 1,024 video tokens a frame, 2,048 with the default --frames 2),
16 text tokens, fp32, one thread per rank. Both configurations load the same folder with load_sharded (FSDP2 over
both ranks); with ``ulysses=2`` each rank computes half of the tokens and the attention exchanges heads (diffusers'
Ulysses all-to-all). A step is one transformer forward, as the runner's split="none" makes it; best of --repeats
after a warm-up. Peak activation memory: the rise of each rank's peak RSS over the forwards, from after the load
(ru_maxrss; each configuration in fresh processes). Goal: Ulysses 2 >= 1.7x faster than FSDP2 alone. The outputs
are compared element-wise. ``--keep-gathered`` loads both with ``reshard_after_forward=False``: FSDP2 keeps each
block's weights gathered after its first forward, so later steps make no all-gather (and each rank holds the whole
model): the speed-up Ulysses would give were FSDP2's all-gathers free.

    python bench/sequence_parallel.py [--frames 2] [--repeats 3] [--keep-gathered]
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

import torch

CONFIG = dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=64, in_channels=16, out_channels=16,
              text_dim=256, freq_dim=256, ffn_dim=3072, num_layers=4, cross_attn_norm=True, rope_max_seq_len=1024)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_rank(rank, world_size, folder: str, frames: int, repeats: int, ulysses: int,
               keep_gathered: bool = False) -> dict:
    from safetensors.torch import save_file

    from shardrules import load_sharded

    g = torch.Generator().manual_seed(0)
    kwargs = dict(hidden_states=torch.randn(1, 16, frames, 64, 64, generator=g),
                  encoder_hidden_states=torch.randn(1, 16, CONFIG["text_dim"], generator=g),
                  timestep=torch.tensor([500.0]), return_dict=False)
    model = load_sharded(folder, progress=False, ulysses=ulysses,
                         reshard_after_forward=False if keep_gathered else None)
    with torch.no_grad():
        before = _peak_mib()  # after loading: the rise is what the forwards add
        model(**kwargs)  # warm-up: the first all-gathers, the allocator
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            result = model(**kwargs)[0]
            times.append(time.perf_counter() - began)
        breakdown = time_breakdown(model, kwargs)
    if rank == 0:
        save_file({"out": result.contiguous()}, os.path.join(folder, "..", f"out-{ulysses}.safetensors"))
    return {"step_s": min(times), "peak_rise_mib": _peak_mib() - before, "tokens": frames * 64 * 64 // 4,
            "breakdown": breakdown}


# Operator names, lower case, of the collectives: FSDP2's all-gathers (and the copies into and out of their buffers),
# Ulysses' all-to-alls, the output gather
COLLECTIVE = ("allgather", "all_gather", "all_to_all", "alltoall", "gloo", "c10d", "wait", "split_with_sizes_copy",
              "foreach_copy", "chunk_cat")
KERNELS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu")


def time_breakdown(model, kwargs) -> dict[str, float]:
    """Seconds of one forward's operator time (profiled apart from the timed forwards) in matrix multiplies and
    attention, in collectives, and in the rest."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(**kwargs)
    events = prof.key_averages()
    kernels = sum(e.self_cpu_time_total for e in events if e.key in KERNELS) / 1e6
    collective = sum(e.self_cpu_time_total for e in events
                     if e.key not in KERNELS and any(word in e.key.lower() for word in COLLECTIVE)) / 1e6
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    return {"kernels": kernels, "collective": collective, "rest": total - kernels - collective}


def main() -> None:
    import argparse

    from diffusers import WanTransformer3DModel
    from safetensors.torch import load_file

    from shardrules.launch import run_on_ranks

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2, help="latent frames (2: 2,048 tokens)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep-gathered", action="store_true",
                        help="reshard_after_forward=False for both: no all-gather after the first step")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model_dir = os.path.join(tmp, "transformer")
        WanTransformer3DModel.from_config(CONFIG).save_pretrained(model_dir, safe_serialization=True)
        results = {}
        for ulysses in (1, 2):  # each in fresh processes, so that each peak is its own
            results[ulysses] = run_on_ranks("sequence_parallel:bench_rank", 2, dict(
                folder=model_dir, frames=args.frames, repeats=args.repeats, ulysses=ulysses,
                keep_gathered=args.keep_gathered), timeout=1200, threads=1)
        outputs = [load_file(os.path.join(tmp, f"out-{u}.safetensors"))["out"] for u in (1, 2)]
    diff = (outputs[0] - outputs[1]).abs().max().item()  # element-wise
    print(f"Wan-like transformer, {results[1][0].value['tokens']} video tokens, 2 gloo ranks, fp32, 1 thread per "
          f"rank; best of {args.repeats} forwards" + ("; weights kept gathered (reshard_after_forward=False)"
                                                        if args.keep_gathered else ""))
    print(f"{'rank':>4} {'FSDP2 s/step':>13} {'Ulysses 2 s/step':>17} {'speed-up':>9} "
          f"{'FSDP2 peak rise MiB':>20} {'Ulysses 2 peak rise MiB':>24}")
    for fsdp, split in zip(results[1], results[2], strict=True):
        a, b = fsdp.value, split.value
        print(f"{fsdp.rank:>4} {a['step_s']:>13.3f} {b['step_s']:>17.3f} {a['step_s'] / b['step_s']:>8.2f}x "
              f"{a['peak_rise_mib']:>20.1f} {b['peak_rise_mib']:>24.1f}")
    print(f"outputs: max |FSDP2 - Ulysses 2| = {diff:.2e}")
    print("where a forward's operator time goes (one profiled forward, seconds): matrix multiplies and attention / "
          "collectives / the rest")
    for fsdp, split in zip(results[1], results[2], strict=True):
        a, b = fsdp.value["breakdown"], split.value["breakdown"]
        print(f"  rank {fsdp.rank}: FSDP2 {a['kernels']:.3f} / {a['collective']:.3f} / {a['rest']:.3f}; "
              f"Ulysses 2 {b['kernels']:.3f} / {b['collective']:.3f} / {b['rest']:.3f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
