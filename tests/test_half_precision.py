"""Half precision as diffusers and transformers load it (SPEC §5): float32 islands kept, sharded == unsharded."""

from __future__ import annotations

import pytest
import tiny_encoders
import tiny_models
import torch
from multirank import checked, run_several

from shardrules.loader.dtypes import keeps_float32

CASES = [("WanTransformer3DModel", "diffusers", "bfloat16"), ("WanTransformer3DModel", "diffusers", "float16"),
         ("CosmosTransformer3DModel", "diffusers", "bfloat16"), ("T5EncoderModel", "transformers", "float16"),
         ("UMT5EncoderModel", "transformers", "bfloat16")]


def half_precision_cases(root) -> list[dict]:
    cases = []
    for class_name, library, dtype in CASES:
        folder = root / class_name
        if not folder.exists():
            torch.manual_seed(0)
            builder = tiny_models.build if library == "diffusers" else tiny_encoders.build
            builder(class_name).save_pretrained(folder)
        cases.append({"class": class_name, "library": library, "dtype": dtype, "dir": str(folder)})
    return cases


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The loads and the loops of this file in one launch of the ranks."""
    half = half_precision_cases(tmp_path_factory.mktemp("half"))
    return run_several({
        "loaded": ("rank_checks:half_precision_matches", {"cases": half}),
        "loops": ("rank_checks:half_precision_loops", {"cases": loop_cases(tmp_path_factory.mktemp("loops")),
                                                       "dtype": "bfloat16"}),
    }, timeout=400)


@pytest.fixture
def loaded(launched):
    return checked(launched["loaded"])


@pytest.fixture
def loops(launched):
    return checked(launched["loops"])


@pytest.mark.parametrize("class_name,library,dtype", CASES)
def test_dtypes_are_those_of_the_library(loaded, class_name, library, dtype):
    for result in loaded:
        got = result[f"{class_name}/{dtype}"]
        assert got["dtypes_differ"] == {}
        assert got["out_dtype"] == f"torch.{dtype}" or class_name.endswith("EncoderModel")


def test_float32_islands_are_kept(loaded):
    for result in loaded:
        wan = result["WanTransformer3DModel/bfloat16"]["float32"]
        assert "scale_shift_table" in wan and any(n.startswith("condition_embedder.time_embedder.") for n in wan)
        assert any(".norm2." in n for n in wan) and not any(".ffn." in n for n in wan)
        t5 = result["T5EncoderModel/float16"]["float32"]
        assert t5 and all(".wo." in n for n in t5)  # transformers keeps T5's wo in float32 in float16 only
        assert result["UMT5EncoderModel/bfloat16"]["float32"] == []


@pytest.mark.parametrize("class_name,library,dtype", CASES)
def test_sharded_half_precision_equals_the_library_model(loaded, class_name, library, dtype):
    for rank, result in enumerate(loaded):
        got = result[f"{class_name}/{dtype}"]
        assert got["max_abs_diff"] <= 1e-3, f"rank {rank}: {got['max_abs_diff']}"
        assert got["requires_grad"] is False  # inference parameters: lets one FSDP2 group mix dtypes


def test_no_should_be_kept_in_float32_message(loaded):
    for result in loaded:
        assert not [m for m in result["logged"] if "kept in float32" in m], result["logged"]


def test_keep_rules_follow_each_library():
    wan = tiny_models.build("WanTransformer3DModel", device="meta")
    keep = keeps_float32(wan, torch.bfloat16)
    assert keep("blocks.0.norm2.weight") and keep("scale_shift_table")
    assert not keep("blocks.0.norm2x.weight")  # diffusers matches whole segments
    assert not keeps_float32(wan, torch.float32)("scale_shift_table")
    t5 = tiny_encoders.build("T5EncoderModel")
    assert keeps_float32(t5, torch.float16)("encoder.block.0.layer.1.DenseReluDense.wo.weight")
    assert not keeps_float32(t5, torch.bfloat16)("encoder.block.0.layer.1.DenseReluDense.wo.weight")
    assert not keeps_float32(torch.nn.Linear(2, 2), torch.float16)("weight")


# The classes a denoising loop runs on: Z-Image takes lists, HunyuanVideo 1.5 concatenates conditioning channels
# to its latents (9 in, 4 out), which its pipeline does and the runner does not.
RUN_MODELS = [name for name, config in tiny_models.CONFIGS.items() if name != "ZImageTransformer2DModel"
              and config.get("in_channels") == config.get("out_channels", config.get("in_channels"))]


def loop_cases(root) -> list[dict]:
    cases = []
    for class_name in RUN_MODELS:
        torch.manual_seed(0)
        tiny_models.build(class_name).save_pretrained(root / class_name)
        cases.append({"class": class_name, "dir": str(root / class_name)})
    return cases


@pytest.mark.parametrize("class_name", RUN_MODELS)
def test_bf16_loop_on_float32_inputs_equals_the_library_model(loops, class_name):
    """The runner casts float32 inputs to the model's compute dtype (a plain loop fails: Float and BFloat16)."""
    for rank, result in enumerate(loops):
        got = result[class_name]
        assert got["dtype"] == "torch.bfloat16" and got["finite"]
        assert got["max_abs_diff"] <= 1e-3 * max(1.0, got["scale"]), f"rank {rank}: {got}"
