"""plan() against seed-style shard conditions, on full-size configs on the meta device.

Seed style is what inference engines do today: a list of Python conditions, each splitting the name,
evaluated over ``reversed(named_modules())``. Prints milliseconds per call (best of several) and the
scaling of plan() on synthetic models of 1k, 10k and 100k modules.

    python bench/plan_speed.py
"""

from __future__ import annotations

import time

import diffusers
import torch
from torch import nn

from shardrules import load_rules, plan

WAN_14B = dict(patch_size=[1, 2, 2], num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16,
               text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True, eps=1e-6,
               rope_max_seq_len=1024)
FLUX_DEV = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True)


def is_module_list_entry(name: str, container: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] == container and parts[-1].isdigit()


SEED_CONDITIONS = {
    "HunyuanVideo": [lambda n, m: is_module_list_entry(n, "transformer_blocks"),
                     lambda n, m: is_module_list_entry(n, "single_transformer_blocks"),
                     lambda n, m: is_module_list_entry(n, "refiner_blocks")],
    "Wan 14B": [lambda n, m: is_module_list_entry(n, "blocks")],
    "Flux-dev": [lambda n, m: is_module_list_entry(n, "transformer_blocks"),
                 lambda n, m: is_module_list_entry(n, "single_transformer_blocks")],
}


def seed_style(model: nn.Module, conditions) -> list[str]:
    return [name for name, module in reversed(list(model.named_modules()))
            if name and any(cond(name, module) for cond in conditions)]


def best_of(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def full_size_models():
    with torch.device("meta"):
        yield "HunyuanVideo", diffusers.HunyuanVideoTransformer3DModel()
        yield "Wan 14B", diffusers.WanTransformer3DModel(**WAN_14B)
        yield "Flux-dev", diffusers.FluxTransformer2DModel(**FLUX_DEV)


def synthetic(num_modules: int) -> nn.Module:
    """A model of about ``num_modules`` modules: numbered blocks of three linears each."""
    with torch.device("meta"):
        model = nn.Module()
        model.blocks = nn.ModuleList(nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 4))
                                     for _ in range(num_modules // 4))
    return model


def main() -> None:
    rules = load_rules()
    print(f"{'model':<14}{'modules':>9}{'units':>7}{'plan() ms':>12}{'seed ms':>10}{'speed-up':>10}")
    for label, model in full_size_models():
        p = plan(model, rules)
        assert list(p.units) == seed_style(model, SEED_CONDITIONS[label]), label
        ours = best_of(lambda: plan(model, rules))
        seed = best_of(lambda: seed_style(model, SEED_CONDITIONS[label]))
        count = sum(1 for _ in model.named_modules())
        print(f"{label:<14}{count:>9}{len(p.units):>7}{ours * 1e3:>12.2f}{seed * 1e3:>10.2f}{seed / ours:>9.2f}x")

    print("\nscaling on synthetic models (numbered blocks; plan() resolves them by common-numbered-block)")
    print(f"{'modules':>9}{'plan() ms':>11}{'us/module':>11}{'seed ms':>10}{'us/module':>11}{'named_modules() ms':>20}")
    conditions = [lambda n, m: is_module_list_entry(n, "blocks")]
    for size in (1_000, 10_000, 100_000):
        model = synthetic(size)
        count = sum(1 for _ in model.named_modules())
        repeat = 3 if size >= 100_000 else 5
        ours = best_of(lambda: plan(model, rules), repeat)
        seed = best_of(lambda: seed_style(model, conditions), repeat)
        walk = best_of(lambda: list(model.named_modules()), repeat)
        print(f"{count:>9}{ours * 1e3:>11.1f}{ours / count * 1e6:>11.2f}{seed * 1e3:>10.1f}"
              f"{seed / count * 1e6:>11.2f}{walk * 1e3:>20.1f}")


if __name__ == "__main__":
    main()
