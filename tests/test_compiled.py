"""Compiled units: each unit's forward compiled (inductor) after fully_shard, on 2 gloo ranks, equal to eager, with no
recompilation after the first step; with the guidance split and with sequence parallel."""

from __future__ import annotations

import pytest
import tiny_models
import torch
from multirank import checked, run_several
from safetensors.torch import save_file

from shardrules.loader.compiled import compile_options
from shardrules.rules import read_rule_file


def test_compile_options():
    assert compile_options(False) is None
    assert compile_options(True) == {"fullgraph": True}
    assert compile_options({"mode": "max-autotune-no-cudagraphs"}) == {"fullgraph": True,
                                                                      "mode": "max-autotune-no-cudagraphs"}
    with pytest.raises(TypeError, match="compile must be True, False or a dict"):
        compile_options("yes")


def test_a_shard_rule_can_leave_its_units_eager():
    rules = read_rule_file('schema = 1\n[[model]]\nname = "m"\napplies-to = "class == M"\n'
                           'shard = [{ match = "name == a", compile = false }, "name == b"]\n', "c.toml")
    first, second = rules.models[0].shard
    assert first.options["compile"] is False and "compile" not in second.options
    with pytest.raises(Exception, match="'model\\[0\\].shard\\[0\\].compile' must be true or false"):
        read_rule_file('schema = 1\n[[model]]\nname = "m"\napplies-to = "class == M"\n'
                       'shard = [{ match = "name == a", compile = "no" }]\n', "c.toml")


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    root = tmp_path_factory.mktemp("compiled")
    torch.manual_seed(0)
    wan = tiny_models.build("WanTransformer3DModel")
    wan.save_pretrained(root / "wan", safe_serialization=True)
    example = example_inputs(wan, batch=1, seed=0)
    latents = DenoisingRunner(wan, FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=3, guidance_scale=4.0, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)
    save_file({"latents": latents.contiguous()}, str(root / "eager.safetensors"))
    common = {"model_dir": str(root / "wan"), "ref": str(root / "eager.safetensors"), "steps": 3, "guidance": 4.0}
    return run_several({
        "inductor": ("rank_checks:compiled_runner_matches", dict(common, compile=True)),
        # with the sequence split: dynamo's own backend without inductor's code generation (a second inductor
        # compile, for half the tokens, would double the test's time)
        "ulysses": ("rank_checks:compiled_runner_matches", dict(common, compile={"backend": "aot_eager"},
                                                                ulysses=2)),
    }, timeout=600)


@pytest.mark.multirank
@pytest.mark.parametrize("case, split", [("inductor", "guidance"), ("ulysses", "none")])
def test_compiled_units_equal_eager_with_no_recompilation(launched, case, split):
    for rank, result in enumerate(checked(launched[case])):
        assert result["compiled"] == ["blocks.1", "blocks.0"], (rank, result)
        assert result["split"] == split
        assert result["max_abs_diff"] <= 1e-4, (rank, result)
        # one graph for both blocks (they share WanTransformerBlock.forward), made at the first step, none after
        assert result["graphs_after_first_step"] == 1, (rank, result)
        assert result["graphs_after_all_steps"] == 1 and result["recompiles"] == 0, (rank, result)
