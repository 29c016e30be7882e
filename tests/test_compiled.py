"""Compiled units: each unit's forward compiled after fully_shard, on 2 gloo ranks, equal to eager, with one graph for
every block and no recompilation after the first step; with the guidance split and with sequence parallel.

The ranks compile with dynamo's ``aot_eager`` backend: the same capture (dynamo, AOT autograd, FSDP2's hooks left
outside, the graph shared by the blocks, the guards that decide recompiles) without inductor's code generation, which
costs about 25 s a launch on a 2-core machine. Inductor's output against eager is measured by bench/compile.py
(max |diff| 7e-7 on an 8-layer Wan-like model); ``run --compile`` uses inductor."""

from __future__ import annotations

import pytest
from multirank import checked

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


@pytest.fixture
def launched(launched_forward_plans):
    return launched_forward_plans


@pytest.mark.multirank
def test_compiled_units_equal_eager_for_every_class_the_runner_drives(launched):
    """Each class's units compiled whole-graph (fullgraph) on 2 ranks: the runner's latents equal the eager unsharded
    loop, each block class compiled once (no graph after the first step), nothing recompiled. Also Wan with
    reshard-after-forward false, in bfloat16 with its float32 islands (against the same load, eager), and with
    regions outside the units named by the model entry's compile expression."""
    from shardrules.runner.inputs import DRIVEN_CLASSES

    _, results = launched
    variants = ["wan, bfloat16", "wan, reshard-after-forward false", "wan, compile regions"]
    for rank, result in enumerate(checked(results["compiled classes"])):
        assert sorted(result) == sorted([*DRIVEN_CLASSES, *variants])
        assert result["wan, compile regions"]["compiled"] == ["blocks.1", "blocks.0", "rope", "condition_embedder",
                                                             "proj_out"], result["wan, compile regions"]
        for name, got in result.items():
            assert got["compiled"] and got["max_abs_diff"] <= 1e-4, (rank, name, got)
            assert got["dtype"] == ("torch.bfloat16" if name == "wan, bfloat16" else "torch.float32"), (rank, got)
            assert got["graphs_after_all_steps"] == got["graphs_after_first_step"] >= 1, (rank, name, got)
            assert got["recompiles"] == 0, (rank, name, got)


@pytest.mark.multirank
@pytest.mark.parametrize("case, split", [("compiled, guidance split", "guidance"), ("compiled, ulysses", "none")])
def test_compiled_units_equal_eager_with_no_recompilation(launched, case, split):
    """In the launch of tests/test_sequence_parallel.py: the runner's latents against the eager unsharded loop."""
    _, results = launched
    for rank, result in enumerate(checked(results[case])):
        assert result["compiled"] == ["blocks.1", "blocks.0"], (rank, result)
        assert result["split"] == split
        assert result["max_abs_diff"] <= 1e-4, (rank, result)
        # one graph for both blocks (they share WanTransformerBlock.forward), made at the first step, none after
        assert result["graphs_after_first_step"] == 1, (rank, result)
        assert result["graphs_after_all_steps"] == 1 and result["recompiles"] == 0, (rank, result)


def test_a_compile_region_must_choose_modules_outside_the_compiled_units():
    import tiny_models

    from shardrules import load_rules, plan
    from shardrules.errors import PlanError
    from shardrules.loader.compiled import compile_units, region_names

    model = tiny_models.build("WanTransformer3DModel", device="meta")
    rules = read_rule_file('schema = 1\n[[model]]\nname = "wan"\napplies-to = "class == WanTransformer3DModel"\n'
                           'shard = ["container == blocks and index is digit"]\ncompile = "leaf == attn1"\n', "r.toml")
    region = rules.models[0].compile
    assert region_names(model, region) == ["blocks.0.attn1", "blocks.1.attn1"]
    with pytest.raises(PlanError, match=r"the compile region 'blocks.0.attn1' \(rule 'leaf == attn1' at r.toml:6:12\) "
                                        r"lies inside the compiled unit 'blocks.0'"):
        compile_units(model, plan(model, load_rules()), {"backend": "eager"}, region, region_names(model, region))
    nothing = read_rule_file('schema = 1\n[[model]]\nname = "wan"\napplies-to = "class == X"\nshard = ["leaf == a"]\n'
                             'compile = "leaf == nothing"\n', "r.toml").models[0].compile
    with pytest.raises(PlanError, match="the compile rule 'leaf == nothing' at r.toml:6:12 chooses no module"):
        region_names(model, nothing)
