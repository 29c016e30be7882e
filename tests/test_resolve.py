"""Resolution and plans (SPEC §4) on tiny diffusers transformers built on the meta device."""

from __future__ import annotations

import pytest
import tiny_models
from torch import nn

from shardrules import PlanError, RuleError, load_rules, plan

MODELS = list(tiny_models.CONFIGS)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def meta_model(class_name):
    return tiny_models.build(class_name, device="meta")


@pytest.mark.parametrize("class_name", MODELS)
def test_explicit_rules_choose_the_blocks(rules, class_name):
    p = plan(meta_model(class_name), rules)
    assert p.source == "explicit"
    assert list(p.units) == tiny_models.EXPECTED_UNITS[class_name]
    for unit in p.units:
        explanation = p.explain(unit)
        assert "shardrules/rules/models/diffusers.toml:" in explanation


@pytest.mark.parametrize("class_name", MODELS)
def test_without_explicit_rules_block_class_is_used(rules, class_name):
    model = meta_model(class_name)
    p = plan(model, rules.without_models())
    assert p.source == "block-class"
    assert p.attempts[0].strategy == "explicit" and p.attempts[0].selected == 0
    if class_name == "SanaTransformer2DModel":
        # PatchEmbed and SanaModulatedNorm are in _no_split_modules but are not numbered blocks
        assert list(p.units) == ["transformer_blocks.1", "transformer_blocks.0"]
        assert "patch_embed" not in p.units and "norm_out" not in p.units
    for unit in p.units:
        assert unit.rsplit(".", 1)[-1].isdigit()


@pytest.mark.parametrize("class_name", MODELS)
def test_without_block_attributes_common_numbered_block_is_used(rules, class_name):
    model = meta_model(class_name)
    model._repeated_blocks = []
    model._no_split_modules = None
    p = plan(model, rules.without_models())
    assert p.source == "common-numbered-block"
    assert [a.strategy for a in p.attempts] == ["explicit", "block-class", "common-numbered-block"]
    assert all(u.split(".")[-2] in ("blocks", "layers", "transformer_blocks", "single_transformer_blocks")
               for u in p.units)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.head = nn.Linear(4, 2)


def test_no_unit_names_every_strategy_tried(rules):
    with pytest.raises(PlanError) as info:
        plan(Plain(), rules)
    message = str(info.value)
    assert "Plain" in message
    for strategy in ("explicit", "block-class", "common-numbered-block"):
        assert f"{strategy}:" in message


def user_rules(tmp_path, shard, applies="class == Plain"):
    path = tmp_path / "user.toml"
    path.write_text(f'schema = 1\n[[model]]\nname = "plain"\napplies-to = "{applies}"\nshard = [{shard}]\n')
    return load_rules(path)


def test_user_rule_for_an_unknown_model(tmp_path):
    p = plan(Plain(), user_rules(tmp_path, '"container == encoder and index is digit"'))
    assert p.units == ("encoder.1", "encoder.0")
    assert p.explain("encoder.0").endswith(f"({tmp_path / 'user.toml'}:5:11)")


def test_module_list_unit_is_refused(tmp_path):
    model = meta_model("WanTransformer3DModel")
    with pytest.raises(PlanError, match="'blocks' is a ModuleList"):
        plan(model, user_rules(tmp_path, '"name == blocks"', applies="class == WanTransformer3DModel"))


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.parts = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.parts[1].weight = self.parts[0].weight


def test_tied_parameter_across_units_is_refused(tmp_path):
    with pytest.raises(PlanError) as info:
        plan(Tied(), user_rules(tmp_path, '"container == parts and index is digit"', applies="class == Tied"))
    message = str(info.value)
    assert "parts.0.weight" in message and "parts.1.weight" in message and "make 'parts' one unit" in message


def test_tied_parameter_within_one_unit_is_fine(rules):
    model = nn.Module()
    model.layers = nn.ModuleList([Tied()])
    p = plan(model, rules)
    assert p.units == ("layers.0",)


def test_units_are_bottom_up_and_exclude_root(rules):
    model = meta_model("HunyuanVideoTransformer3DModel")
    p = plan(model, rules)
    names = [n for n, _ in model.named_modules()]
    positions = [names.index(u) for u in p.units]
    assert positions == sorted(positions, reverse=True)
    assert "" not in p.units


def test_per_unit_options_are_recorded(tmp_path):
    p = plan(Plain(), user_rules(tmp_path, '{ match = "name == head", reshard-after-forward = false }, '
                                           '"container == encoder and index is digit"'))
    assert p.unit("head").options == {"reshard_after_forward": False}
    assert p.unit("encoder.0").options == {}


def test_sizes_per_rank_follow_fsdp_padding(tmp_path):
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Linear(3, 5)])  # weight (5, 3), bias (5,)
    p = plan(model, load_rules())
    unit = p.unit("blocks.0")
    assert unit.params == 20
    assert unit.bytes_per_rank(1) == 80
    assert unit.bytes_per_rank(2) == (3 * 3 + 3) * 4  # ceil(5 / 2) rows each
    assert unit.bytes_per_rank(4) == (2 * 3 + 2) * 4
    assert p.total_params == 20


def test_plan_counts_every_parameter(rules):
    model = meta_model("FluxTransformer2DModel")
    p = plan(model, rules)
    assert p.total_params == sum(t.numel() for t in model.parameters())
    assert p.bytes_per_rank(1) == sum(t.numel() * t.element_size() for t in model.parameters())


def test_compiled_rule_is_a_drop_in_condition(rules):
    from shardrules import compile_rule

    model = meta_model("FluxTransformer2DModel")
    condition = compile_rule("container in [transformer_blocks, single_transformer_blocks] and index is digit")
    seed_style = [n for n, m in reversed(list(model.named_modules())) if n and condition(n, m)]
    assert seed_style == list(plan(model, rules).units)


def test_plan_without_weights_works_on_meta():
    model = meta_model("QwenImageTransformer2DModel")
    assert all(t.device.type == "meta" for t in model.parameters())
    assert plan(model).source == "explicit"



def test_an_explicit_entry_that_matches_nothing_warns(tmp_path):
    import warnings

    import tiny_models

    from shardrules import load_rules, plan

    rules = tmp_path / "mine.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "wan-typo"\napplies-to = "class == WanTransformer3DModel"\n'
                     'shard = ["container == blokcs and index is digit"]\n')
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = plan(model, load_rules(rules))
    assert p.source != "explicit"
    assert len(p.warnings) == 1 and "'wan-typo'" in p.warnings[0] and "mine.toml:2:1" in p.warnings[0]
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == list(p.warnings)


def test_a_plan_prints_as_the_cli_table_and_has_a_short_repr():
    import tiny_models

    from shardrules import plan
    from shardrules.engine.describe import plan_as_text

    p = plan(tiny_models.build("WanTransformer3DModel", device="meta"))
    assert repr(p).startswith("ShardPlan(WanTransformer3DModel, source='explicit', model_rule='wan', units=2, ")
    assert len(repr(p)) < 120
    assert p.table(4) == plan_as_text(p, 4)
    table = p.table(4).splitlines()
    assert table[2].lstrip().startswith("blocks.0") and table[3].lstrip().startswith("blocks.1")  # model order


def test_explain_answers_for_every_module():
    import pytest as _pytest
    import tiny_models

    from shardrules import plan

    p = plan(tiny_models.build("WanTransformer3DModel", device="meta"))
    assert p.explain("blocks.0").startswith("blocks.0: explicit rule 'container == blocks and index is digit'")
    assert p.explain("blocks.0.attn1").startswith("blocks.0.attn1: not a unit; nested inside unit 'blocks.0'")
    assert "a ModuleList, which fully_shard rejects" in p.explain("blocks")
    assert "no rule of the explicit strategy chose it" in p.explain("norm_out")
    assert p.explain("").startswith("<root> (WanTransformer3DModel)")
    with _pytest.raises(KeyError, match="did you mean 'blocks.0.attn1'"):
        p.explain("blocks.0.atn1")


def test_explain_shows_a_units_options(tmp_path):
    import tiny_models

    from shardrules import load_rules, plan

    rules = tmp_path / "mine.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "wan-last"\napplies-to = "class == WanTransformer3DModel"\n'
                     'shard = [{ match = "container == blocks and index is digit", reshard-after-forward = false }]\n')
    p = plan(tiny_models.build("WanTransformer3DModel", device="meta"), load_rules(rules))
    assert p.explain("blocks.1").endswith("options: reshard_after_forward=False")


def test_modules_of_a_tied_weight_are_one_unit():
    """T5 ties 'shared' and 'encoder.embed_tokens': one unit of both (fully_shard of a list), not the root's."""
    import tiny_encoders

    model = tiny_encoders.build("T5EncoderModel")
    p = plan(model)
    unit = p.unit("shared")
    assert unit.members == ("encoder.embed_tokens",) and p.units == ("encoder.block.1", "encoder.block.0", "shared")
    assert unit.params == model.shared.weight.numel()  # counted once
    assert p.total_params == sum(t.numel() for t in model.parameters())
    assert "shared + encoder.embed_tokens  Embedding" in p.table()
    assert p.explain("encoder.embed_tokens").startswith("encoder.embed_tokens: part of unit 'shared'")
    assert "tried explicit: 3 units" in p.table()


def test_a_one_unit_module_inside_another_unit_is_refused(tmp_path):
    import tiny_encoders

    rules = tmp_path / "t5.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "t5-encoder"\napplies-to = "class == T5EncoderModel"\n'
                     'shard = ["name == encoder", { match = "name in [shared, encoder.embed_tokens]", '
                     'one-unit = true }]\n')
    with pytest.raises(PlanError, match=r"module 'encoder.embed_tokens' of the one-unit rule .*t5.toml:5:40\) "
                                         r"lies inside unit 'encoder'"):
        plan(tiny_encoders.build("T5EncoderModel"), load_rules(str(rules)))
    rules.write_text(rules.read_text().replace("one-unit = true", "one-unit = 1"))
    with pytest.raises(RuleError, match="one-unit"):
        load_rules(str(rules))
