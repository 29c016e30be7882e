"""Compiled units against eager, on 2 gloo ranks: per-step time, and cold compile time for 2 and 8 layers.

The Wan-like transformer of bench/sequence_parallel.py (12 heads of 64, width 768, FFN 3072, random weights, fp32, one
thread per rank) at 1,024 video tokens (one latent frame of 64 x 64) and 16 text tokens, loaded with load_sharded
(FSDP2 over both ranks), eager and with ``compile=True`` (inductor, fullgraph, each unit's forward). A step is one
transformer forward; best of --repeats after the first forward, which for the compiled model is the cold compile
(timed, with an empty inductor cache in a fresh folder, so nothing is reused from an earlier run). Goal: compiled
<= 0.8x eager per step; cold compile for 8 layers <= 1.5x that for 2 (one graph shared by every block of a class).
The outputs are compared element-wise with eager.

    python bench/compile.py [--repeats 3]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import torch

CONFIG = dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=64, in_channels=16, out_channels=16,
              text_dim=256, freq_dim=256, ffn_dim=3072, cross_attn_norm=True, rope_max_seq_len=1024)


def bench_rank(rank, world_size, folder: str, repeats: int, compile: bool, out: str | None) -> dict:
    from safetensors.torch import save_file
    from torch._dynamo.utils import counters

    from shardrules import load_sharded

    g = torch.Generator().manual_seed(0)
    kwargs = dict(hidden_states=torch.randn(1, 16, 1, 64, 64, generator=g),
                  encoder_hidden_states=torch.randn(1, 16, CONFIG["text_dim"], generator=g),
                  timestep=torch.tensor([500.0]), return_dict=False)
    model = load_sharded(folder, progress=False, compile=compile)
    with torch.no_grad():
        began = time.perf_counter()
        model(**kwargs)
        first = time.perf_counter() - began
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            result = model(**kwargs)[0]
            times.append(time.perf_counter() - began)
        kernels = kernel_share(model, kwargs) if not compile else None
    if rank == 0 and out:
        save_file({"out": result.contiguous()}, out)
    return {"first_s": first, "step_s": min(times), "graphs": dict(counters["stats"]).get("unique_graphs", 0),
            "kernels": kernels}


# The kernels inductor calls as they are (it does not generate its own matrix multiplies or attention on the CPU)
KERNELS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu")


# FSDP2's all-gathers and the copies into and out of their buffers, which stay eager around the compiled forward
COLLECTIVE = ("allgather", "all_gather", "gloo", "c10d", "wait", "split_with_sizes_copy", "foreach_copy", "chunk_cat")


def kernel_share(model, kwargs) -> dict[str, float]:
    """Shares of one eager forward's operator time: :data:`KERNELS`, FSDP2's collectives and their copies, and the
    rest (elementwise work, norms, ...). Compiling can only shrink the rest, so compiled / eager cannot go below
    the first two together."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(**kwargs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    kernels = sum(e.self_cpu_time_total for e in events if e.key in KERNELS)
    collective = sum(e.self_cpu_time_total for e in events
                     if e.key not in KERNELS and any(word in e.key.lower() for word in COLLECTIVE))
    return {"kernels": kernels / total, "collective": collective / total}


def main() -> None:
    import argparse

    from diffusers import WanTransformer3DModel
    from safetensors.torch import load_file

    from shardrules.launch import run_on_ranks

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (2, 8):
            folder = os.path.join(tmp, f"wan-{layers}")
            torch.manual_seed(0)
            WanTransformer3DModel.from_config(dict(CONFIG, num_layers=layers)).save_pretrained(folder)
        for label, layers, compile in (("eager", 8, False), ("compiled", 8, True), ("compiled-2", 2, True)):
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, f"inductor-{label}")  # cold: a fresh cache
            out = os.path.join(tmp, f"{label}.safetensors") if layers == 8 else None
            results[label] = run_on_ranks("compile:bench_rank", 2, dict(
                folder=os.path.join(tmp, f"wan-{layers}"), repeats=args.repeats, compile=compile, out=out),
                timeout=1800, threads=1)
        outputs = [load_file(os.path.join(tmp, f"{label}.safetensors"))["out"] for label in ("eager", "compiled")]
    diff = (outputs[0] - outputs[1]).abs().max().item()
    print(f"Wan-like transformer, 1024 video tokens, 2 gloo ranks, fp32, 1 thread per rank; best of {args.repeats}")
    print(f"{'rank':>4} {'eager s/step':>13} {'compiled s/step':>16} {'ratio':>6} {'first forward 8 layers s':>25} "
          f"{'first forward 2 layers s':>25} {'graphs 8 / 2':>13}")
    for eager, compiled, two in zip(results["eager"], results["compiled"], results["compiled-2"], strict=True):
        e, c, t = eager.value, compiled.value, two.value
        print(f"{eager.rank:>4} {e['step_s']:>13.3f} {c['step_s']:>16.3f} {c['step_s'] / e['step_s']:>5.2f}x "
              f"{c['first_s']:>25.1f} {t['first_s']:>25.1f} {c['graphs']:>7} / {t['graphs']}")
    print(f"outputs (8 layers): max |eager - compiled| = {diff:.2e}")
    for r in results["eager"]:
        share = r.value["kernels"]
        print(f"rank {r.rank}, eager operator time: matrix multiplies and attention {share['kernels']:.0%}, FSDP2 "
              f"collectives and their copies {share['collective']:.0%}, the rest "
              f"{1 - share['kernels'] - share['collective']:.0%} (compiling can only shrink the rest: compiled / "
              f"eager cannot go below {share['kernels'] + share['collective']:.2f}x)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
