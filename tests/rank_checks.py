"""Checks that run inside each rank of a multi-rank test (see multirank.py)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file

import tiny_models
from shardrules import LoadStats, load_sharded


def forward_matches(rank, world_size, cases: list[dict], dtype: str | None = None, mesh_shape=None,
                    atol: float = 1e-5) -> dict:
    """Load each saved model sharded and compare its forward output with the unsharded reference."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", tuple(mesh_shape), mesh_dim_names=("replicate", "shard")) if mesh_shape else None
    out = {}
    for case in cases:
        stats = LoadStats()
        model = load_sharded(case["dir"], mesh=mesh, stats=stats, progress=False,
                             dtype=getattr(torch, dtype) if dtype else None)
        with torch.no_grad():
            got = model(**tiny_models.inputs(case["class"], batch=1), return_dict=False)[0]
        want = load_file(case["ref"])["out"]
        out[case["class"]] = {
            "max_abs_diff": (got.float() - want.float()).abs().max().item(),
            "close": bool(torch.allclose(got.float(), want.float(), atol=atol)),
            "source": stats.plan.source,
            "units": list(stats.plan.units),
            "bytes_read": stats.bytes_read,
            "bytes_sharded": stats.bytes_sharded,
            "bytes_replicated": stats.bytes_replicated,
            "checkpoint_bytes": stats.checkpoint_bytes,
            "param_dtypes": sorted({str(p.dtype) for p in model.parameters()}),
            "meta_left": [n for n, p in model.named_parameters() if p.device.type == "meta"],
        }
    return out


def expect_load_error(rank, world_size, model_dir: str, rules: str | None = None) -> dict:
    """Load a broken checkpoint; report the error type and message this rank saw."""
    from shardrules import load_rules

    try:
        load_sharded(model_dir, rules=load_rules(rules) if rules else None, progress=False)
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc), "tensor": getattr(exc, "tensor", None),
                "path": getattr(exc, "path", None)}
    return {"type": None}
