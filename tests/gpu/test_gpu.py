"""The accelerator path at world size 1 (NCCL, cuda:0): runner devices, half precision, staged loading.

Skipped without CUDA; run on a GPU machine with ``python -m pytest tests/gpu -m gpu``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tiny_models
import torch
from multirank import run_ranks, values

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
sys.path.insert(0, str(Path(__file__).parent))  # gpu_checks, for the rank process too


def saved(tmp_path, class_name):
    torch.manual_seed(0)
    tiny_models.build(class_name).save_pretrained(tmp_path / class_name, safe_serialization=True)
    return str(tmp_path / class_name)


@pytest.mark.parametrize("class_name", ["FluxTransformer2DModel", "WanTransformer3DModel"])
def test_runner_moves_inputs_and_timesteps_to_the_gpu(tmp_path, class_name):
    [got] = values(run_ranks("gpu_checks:runner_on_gpu", world_size=1, model_dir=saved(tmp_path, class_name),
                             class_name=class_name))
    assert got["backend"] == "nccl" and got["device"] == "cuda:0" and got["timesteps_device"] == "cuda:0"
    assert got["max_abs_diff"] <= 1e-4, got


def test_shardrules_run_on_the_gpu(tmp_path):
    from commands import shardrules

    result = shardrules("run", saved(tmp_path, "FluxTransformer2DModel"), "--nproc", "1", "--steps", "2",
                        "--dtype", "bfloat16")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backend: nccl" in result.stdout


def test_half_precision_on_the_gpu_equals_diffusers(tmp_path):
    [got] = values(run_ranks("gpu_checks:half_precision_on_gpu", world_size=1,
                             model_dir=saved(tmp_path, "WanTransformer3DModel"), class_name="WanTransformer3DModel"))
    assert got["dtypes_differ"] == {} and got["max_abs_diff"] <= 1e-3, got


def test_staged_load_fills_every_shard_and_stays_near_the_shards(tmp_path):
    [got] = values(run_ranks("gpu_checks:staged_load_on_gpu", world_size=1,
                             model_dir=saved(tmp_path, "WanTransformer3DModel")))
    assert got["device"] == "cuda:0" and got["wrong"] == []
    assert got["peak"] <= got["shards"] * 1.05 + 2 * 2**20, got  # CUDA's 2 MiB block rounding on a tiny model
