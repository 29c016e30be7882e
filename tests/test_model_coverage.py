"""Every model family with an explicit rule, proven on a tiny instance: sharded forward == unsharded."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import tiny_encoders
from multirank import run_ranks, values


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    cases = []
    for name in tiny_encoders.CONFIGS:
        torch.manual_seed(0)
        model = tiny_encoders.build(name)
        model.save_pretrained(root / name, safe_serialization=True)
        save_file({"out": tiny_encoders.output(model).contiguous()}, str(root / f"{name}.ref.safetensors"))
        cases.append({"class": name, "dir": str(root / name), "ref": str(root / f"{name}.ref.safetensors")})
    return values(run_ranks("rank_checks:encoder_matches", cases=cases))


@pytest.mark.parametrize("class_name", list(tiny_encoders.CONFIGS))
def test_text_encoder_sharded_equals_unsharded(encoders, class_name):
    for rank, result in enumerate(encoders):
        got = result[class_name]
        assert got["max_abs_diff"] <= 1e-5, (rank, got)
        assert got["source"] == "explicit"
        assert got["units"] == tiny_encoders.EXPECTED_UNITS[class_name]
