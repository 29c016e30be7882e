"""Compiled units: each unit's forward compiled after fully_shard, on 2 gloo ranks, equal to eager, with one graph for
every block and no recompilation after the first step; with the guidance split and with sequence parallel.

The ranks compile with dynamo's ``aot_eager`` backend: the same capture (dynamo, AOT autograd, FSDP2's hooks left
outside, the graph shared by the blocks, the guards that decide recompiles) without inductor's code generation, which
costs about 25 s a launch on a 2-core machine. Inductor's output against eager is measured by bench/compile.py
(max |diff| 7e-7 on an 8-layer Wan-like model); ``run --compile`` uses inductor."""

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
    backend = {"backend": "aot_eager"}
    return run_several({
        "guidance split": ("rank_checks:compiled_runner_matches", dict(common, compile=backend)),
        "ulysses": ("rank_checks:compiled_runner_matches", dict(common, compile=backend, ulysses=2)),
    }, timeout=600)


@pytest.mark.multirank
@pytest.mark.parametrize("case, split", [("guidance split", "guidance"), ("ulysses", "none")])
def test_compiled_units_equal_eager_with_no_recompilation(launched, case, split):
    for rank, result in enumerate(checked(launched[case])):
        assert result["compiled"] == ["blocks.1", "blocks.0"], (rank, result)
        assert result["split"] == split
        assert result["max_abs_diff"] <= 1e-4, (rank, result)
        # one graph for both blocks (they share WanTransformerBlock.forward), made at the first step, none after
        assert result["graphs_after_first_step"] == 1, (rank, result)
        assert result["graphs_after_all_steps"] == 1 and result["recompiles"] == 0, (rank, result)
