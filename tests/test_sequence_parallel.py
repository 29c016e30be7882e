"""Sequence parallel by rules: plans read from rule files or translated from diffusers' ``_cp_plan``, refused where
they cannot hold, and proven on 2 gloo ranks (Ulysses 2 with FSDP2) equal to the unsharded model."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
import tiny_models
import torch
from multirank import checked, run_several
from safetensors.torch import save_file

from shardrules import load_rules
from shardrules.engine.sequence import attention_modules, check_sequence_parallel, sequence_plan
from shardrules.errors import MissingKeyError, SequenceParallelError, UnknownKeyError, WrongValueError
from shardrules.loader.sequence import check_degrees, check_sequence
from shardrules.rules import read_rule_file

# Every class of the tiny set whose plan comes from diffusers' _cp_plan or from the embedded rules.
PLANNED = tiny_models.SEQUENCE_PROVEN
# built and called by tiny_fallback (with an even number of text tokens): the planned classes tiny_models lacks
FALLBACK = tuple(name for name in PLANNED if name not in tiny_models.CONFIGS)

# Inputs a class is proven on when not the default ones (tiny_fallback.VARIANTS): a padded prompt where the model
# takes a mask; Wan Animate's tiny inputs have 21 latent frames, which a split of 2 cannot give each rank whole (a
# typed error; its face attention works frame by frame)
VARIANT = {"WanAnimateTransformer3DModel": "even frames", "AnyFlowTransformer3DModel": "per-frame timesteps",
           "LTXVideoTransformer3DModel": "padded", "ErnieImageTransformer2DModel": "padded",
           "BriaFibo2Transformer2DModel": "padded", "ChromaTransformer2DModel": "padded",
           "MiniMaxMusic3Transformer1DModel": "odd frames", "JoyImageEditPlusTransformer3DModel": "padded",
           "Kandinsky6Transformer3DModel": "padded", "SanaWMLTX2RefinerTransformer3DModel": "padded",
           "GlmImageTransformer2DModel": "cached", "MotifVideoTransformer3DModel": "padded",
           "NucleusMoEImageTransformer2DModel": "padded", "LTX2VideoTransformer3DModel": "padded",
           "AceStepTransformer1DModel": "long", "Cosmos3OmniTransformer": "packed",
           "HunyuanImageTransformer2DModel": "padded", "HunyuanVideoFramepackTransformer3DModel": "padded",
           "PixArtTransformer2DModel": "padded", "CogVideoXTransformer3DModel": "rotary",
           # a ControlNet's per-block residuals, split at the root as the image tokens are
           "SD3Transformer2DModel": "controlnet", "Lumina2Transformer2DModel": "padded",
           "ConsisIDTransformer3DModel": "rotary", "HunyuanDiT2DModel": "rotary",
           "StableAudioDiTModel": "odd latents", "AllegroTransformer3DModel": "rotary"}

WAN_AS_RULES = """\
schema = 1

[[model]]
name = "wan"
applies-to = "class == WanTransformer3DModel"
shard = ["container == blocks and index is digit"]

[model.sequence-parallel]
split = [
  { match = "name == rope", output = 0, dim = 1, expected-dims = 4 },
  { match = "name == rope", output = 1, dim = 1, expected-dims = 4 },
  { match = "name == blocks.0", input = "hidden_states", dim = 1, expected-dims = 3 },
  { match = "is root", input = "timestep", dim = 1, expected-dims = 2 },
]
gather = [{ match = "name == proj_out", dim = 1, expected-dims = 3 }]
"""


WAN_REGIONS = """\
schema = 1

[[model]]
name = "wan"
applies-to = "class == WanTransformer3DModel"
shard = ["container == blocks and index is digit"]
compile = "name in [proj_out, condition_embedder, rope]"
"""


def rules_with(text: str, tmp_path):
    path = tmp_path / "sp.toml"
    path.write_text(textwrap.dedent(text))
    return load_rules(path), path


# -- rule files --------------------------------------------------------------------------------------------------


def test_wan_plan_written_as_rules_is_diffusers_plan(tmp_path):
    """The rules say everything _cp_plan says: Wan's plan written as a rule file translates to the same plan."""
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    rules, path = rules_with(WAN_AS_RULES, tmp_path)
    from_rules = sequence_plan(model, rules)
    from_class = sequence_plan(model, load_rules())
    assert from_rules.source == "rules" and str(path) in from_rules.origin
    assert from_class.source == "diffusers" and from_class.origin == "WanTransformer3DModel._cp_plan (diffusers)"
    assert repr(from_rules.cp_plan()) == repr({k: from_class.cp_plan()[k] for k in from_rules.cp_plan()})
    assert set(from_rules.cp_plan()) == set(from_class.cp_plan())


def test_every_cp_plan_translates_to_its_own_modules():
    """A translated _cp_plan names concrete modules: each '*' becomes every entry of the ModuleList."""
    model = tiny_models.build("QwenImageTransformer2DModel", device="meta")
    translated = sequence_plan(model, load_rules()).cp_plan()
    assert set(translated) == {"transformer_blocks.0", "transformer_blocks.1", "pos_embed", "proj_out"}
    # transformer_blocks.0 has both its own entry and the '*' one: the hook gets the union, as diffusers' does
    assert set(translated["transformer_blocks.0"]) == {"hidden_states", "encoder_hidden_states",
                                                       "modulate_index", "encoder_hidden_states_mask"}


def _positioned(tables: str, text: str, error: str, token: str, line: int) -> None:
    """A [model.sequence-parallel] table whose last array holds ``text`` on its own line, ``line``: reading it fails
    with ``error`` at that line of sp.toml, at the column of ``token``."""
    body = f"""\
schema = 1

[[model]]
name = "m"
applies-to = "class == M"
shard = ["name == a"]

[model.sequence-parallel]
gather = [{{ match = "name == proj_out", dim = 1 }}]
{tables}
  {text},
]
"""
    with pytest.raises(Exception) as info:
        read_rule_file(body, "sp.toml")
    assert error in str(info.value), str(info.value)
    assert info.value.path == "sp.toml" and info.value.line == line, str(info.value)
    assert body.splitlines()[line - 1][info.value.column - 1:].startswith(token), str(info.value)


@pytest.mark.parametrize("text, error, token", [
    ('{ match = "name == rope", dim = 1 }', "either 'input'", "{"),
    ('{ match = "name == rope", input = "x", output = 0, dim = 1 }', "not both or neither", "{"),
    ('{ match = "name == rope", input = "x y", dim = 1 }', "forward argument's name", '"x y"'),
    ('{ match = "name == rope", output = -1, dim = 1 }', "'output' must be 0 or more", "-1"),
    ('{ match = "name == rope", input = "x", dim = 3, expected-dims = 3 }', "outside a tensor of 3", "3,"),
    ('{ match = "nme == rope", input = "x", dim = 1 }', "unknown field 'nme'", "nme"),
    ('{ match = "name == rope", output = 0, dim = 1, segments = ["a", "b"] }', "'segments' names two or more", '["a"'),
    ('{ match = "name == rope", input = "m", dim = 1, segments = ["a"] }', "'segments' names two or more", '["a"'),
    ('{ match = "name == rope", input = "m", dim = 1, layout = "gathered" }', "'layout' goes with 'segments'",
     '"gathered"'),
    ('{ match = "name == rope", input = "m", dim = 1, segments = ["a", "b"], layout = "ranks" }',
     "'layout' goes with 'segments'", '"ranks"'),
    ('{ match = "name == rope", output = 0, dim = 1, tail-count = "n" }', "'tail-count' goes with the split of an "
     "'input'", '"n"'),
    ('{ match = "name == rope", input = "m", dim = 1, tail-count = "n m" }', "'tail-count' goes with", '"n m"'),
    ('{ match = "name == rope", input = "m", dim = 1, tail-count = 3 }', "a forward argument's name", "3"),
    ('{ match = "name == rope", output = 0, dim = 1, element = 1 }', "'element' goes with the split of an 'input'",
     "1 }"),
    ('{ match = "name == rope", input = "m", dim = 1, element = -1 }', "'element' goes with", "-1"),
    ('{ match = "name == rope", input = "m", dim = 1, element = "1" }', "an integer", '"1"'),
])
def test_bad_sequence_entries_are_positioned(text, error, token):
    """Each error names sp.toml, line 11 and the column of the offending token (inside the expression for 'nme')."""
    _positioned("split = [", text, error, token, line=11)


@pytest.mark.parametrize("text, error, token", [
    ('{ match = "is root", input = "x" }', "refuse table has no 'why'", "{"),
    ('{ match = "is root", input = "x", why = " " }', "'why' says why", '" "'),
    ('{ match = "is root", input = "x y", why = "w" }', "forward argument's name", '"x y"'),
    ('{ match = "is root", input = "x", why = "w", dim = 1 }', "dim", "dim"),
])
def test_bad_refusals_are_positioned(text, error, token):
    _positioned('split = [{ match = "is root", input = "x", dim = 1 }]\nrefuse = [', text, error, token, line=12)


# A model entry's head, up to its [model.sequence-parallel] table (six lines): the table's lines follow
SEQUENCE_TABLE = """\
schema = 1
[[model]]
name = "m"
applies-to = "class == M"
shard = ["name == a"]
[model.sequence-parallel]
"""


def test_unknown_sequence_key_names_the_closest():
    body = SEQUENCE_TABLE + """\
split = [{ match = "name == a", input = "x", dim = 1 }]
gather = [{ match = "name == a", dim = 1, expected-dim = 3 }]
"""
    with pytest.raises(UnknownKeyError, match="did you mean 'expected-dims'") as info:
        read_rule_file(body, "sp.toml")
    assert info.value.line == 8 and body.splitlines()[7][info.value.column - 1:].startswith("expected-dim =")


def test_sequence_table_needs_both_lists():
    body = SEQUENCE_TABLE + """\
split = []
gather = [{ match = "name == a", dim = 1 }]
"""
    with pytest.raises(WrongValueError, match="is empty"):
        read_rule_file(body, "sp.toml")


def test_a_gather_of_an_input_is_read_and_said():
    """A gather entry may name a forward argument, gathered whole before the module runs (NucleusMoE's experts);
    naming an output too is an error at the entry's place."""
    body = SEQUENCE_TABLE + """\
split = [{ match = "name == a", input = "x", dim = 1 }]
gather = [{ match = "name == a", input = "y", output = 0, dim = 1 }]
"""
    with pytest.raises(MissingKeyError, match="names either 'input' \\(a forward argument, gathered before the "
                                              "module runs\\) or 'output'") as info:
        read_rule_file(body, "sp.toml")
    assert info.value.line == 8 and body.splitlines()[7][info.value.column - 1:].startswith("{ match")
    import tiny_fallback

    model = tiny_fallback.build("NucleusMoEImageTransformer2DModel")
    plan = sequence_plan(model, load_rules())
    text = plan.as_text()
    assert "gather transformer_blocks.1.img_mlp hidden_states along dim 1, 3-d, before it runs" in text, text
    assert "split transformer_blocks.1.img_mlp output 0 along dim 1, 3-d" in text, text
    assert [e.module for e in plan.gathered_inputs] == ["transformer_blocks.1.img_mlp"] * 2
    assert "transformer_blocks.1.img_mlp" in dict(plan.hook_specs())  # its output split by diffusers' hook


@pytest.mark.parametrize("table, error, token", [
    ('cannot = "it mixes tokens by a scan"\nsplit = [{ match = "is root", input = "x", dim = 1 }]',
     "'cannot' stands alone: a model that cannot run split has no 'split'", '[{ match'),
    ('cannot = " "', "'cannot' says why no split of this model can run", '" "'),
    ("cannot = 3", "'model[0].sequence-parallel.cannot' must be a sentence", "3"),
])
def test_a_bad_cannot_is_positioned(table, error, token):
    body = f"{SEQUENCE_TABLE}{table}\n"
    with pytest.raises(Exception) as info:
        read_rule_file(body, "sp.toml")
    assert error in str(info.value), str(info.value)
    line = body.splitlines()[info.value.line - 1]
    assert info.value.path == "sp.toml" and line[info.value.column - 1:].startswith(token), str(info.value)


@pytest.mark.parametrize("class_name, words", [
    ("QwenImage21Transformer2DModel", "the processors slice each segment's queries and keys at its place in the whole "
                                      "sequence"),
    ("RFD4ProteinaTransformer", "adds a bias for every head over all token pairs"),
    ("SanaWMTransformer3DModel", "a gated delta-rule scan over frames"),
    ("HunyuanVideo15Transformer3DModel", "build a query x key mask from the text mask over the tokens each rank"),
    ("PriorTransformer", "under a causal query x key mask that forward builds over the whole sequence"),
])
def test_a_model_the_rules_say_no_split_can_carry_is_refused_with_why(class_name, words):
    """Their processors take a parallel config, so only the rules can say why no plan fits: a split run is a typed
    error naming the class, the reason and the rule's place; plan --ulysses and rule-lint say the same."""
    import diffusers

    from shardrules.loader.build import all_on_meta

    with all_on_meta():
        model = getattr(diffusers, class_name)()
    plan = sequence_plan(model, load_rules())
    assert plan.cannot and words in plan.cannot and plan.entries == ()
    with pytest.raises(SequenceParallelError, match=rf"{class_name} cannot run sequence parallel: its .*"
                                                    rf"\(model '[a-z0-9.-]+' \(.*diffusers\.toml:\d+:\d+\)\)"):
        check_sequence(model, plan, 2, 1, world=2)
    assert plan.as_text().startswith("sequence parallel: none, its ") and plan.as_dict()["cannot"] == plan.cannot


# -- refusals before anything runs -------------------------------------------------------------------------------


def test_a_rule_that_matches_no_module_is_refused_with_its_place(tmp_path):
    rules, path = rules_with(WAN_AS_RULES.replace("name == proj_out", "name == proj_outt"), tmp_path)
    with pytest.raises(SequenceParallelError, match=r"sp.toml:\d+:\d+: the sequence-parallel gather rule "
                                                    r"'name == proj_outt' of model 'wan' matches no module"):
        sequence_plan(tiny_models.build("WanTransformer3DModel", device="meta"), rules)


def test_a_tail_count_the_forward_does_not_take_is_refused(tmp_path):
    rules, _ = rules_with(WAN_AS_RULES.replace('input = "hidden_states", dim = 1, expected-dims = 3 }',
                                               'input = "hidden_states", dim = 1, expected-dims = 3, '
                                               'tail-count = "context_length" }'), tmp_path)
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    plan = sequence_plan(model, rules)
    assert "split blocks.0 hidden_states along dim 1, 3-d, context_length counting its last tokens" in plan.as_text()
    with pytest.raises(SequenceParallelError, match=r"sp.toml:\d+:\d+: WanTransformerBlock.forward of 'blocks.0' "
                                                    r"takes no argument 'context_length'"):
        check_sequence(model, plan, 2, 1, world=2)


def test_argument_the_forward_does_not_take_is_refused(tmp_path):
    rules, _ = rules_with(WAN_AS_RULES.replace('input = "hidden_states"', 'input = "hiden_states"'), tmp_path)
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    with pytest.raises(SequenceParallelError, match="takes no argument 'hiden_states'"):
        check_sequence(model, sequence_plan(model, rules), 2, 1, world=2)


@pytest.mark.parametrize("class_name, processor", [("SanaVideoTransformer3DModel", "SanaLinearAttnProcessor3_0"),
                                                   ("SanaTransformer2DModel", None),
                                                   ("CosmosTransformer3DModel", None)])
def test_classes_without_a_plan_are_refused_by_name(class_name, processor):
    model = tiny_models.build(class_name, device="meta")
    plan = sequence_plan(model, load_rules())
    assert plan is None
    with pytest.raises(SequenceParallelError, match=f"{class_name} has no sequence-parallel plan"):
        check_sequence(model, plan, 2, 1, world=2)


def test_a_diffusers_plan_measured_to_fail_is_refused_with_why(tmp_path):
    """LTX-2's own _cp_plan leaves the audio stream whole (torch's shape error in the first block on every rank): a
    rule file whose LTX-2 model has no sequence-parallel table falls back to it and is refused; the embedded rules
    plan it."""
    import tiny_fallback

    model = tiny_fallback.build("LTX2VideoTransformer3DModel")
    rules, _ = rules_with("""\
        schema = 1
        [[model]]
        name = "ltx2-units"
        applies-to = "class == LTX2VideoTransformer3DModel"
        shard = ["container == transformer_blocks and index is digit"]
        """, tmp_path)
    with pytest.raises(SequenceParallelError, match=r"LTX2VideoTransformer3DModel._cp_plan \(diffusers\) splits the "
                                                    r"video tokens but leaves the audio tokens .* whole"):
        sequence_plan(model, rules)
    assert sequence_plan(model, load_rules()).origin.startswith("model 'ltx2' (")


def one_split_rules(tmp_path, class_name: str, container: str, gather: str):
    """A rule file that plans ``class_name`` the simplest way: its numbered ``container`` as units, hidden_states
    split where they enter the first, the output of module ``gather`` gathered."""
    return rules_with(f"""\
        schema = 1
        [[model]]
        name = "one-split"
        applies-to = "class == {class_name}"
        shard = ["container == {container} and index is digit"]
        [model.sequence-parallel]
        split = [{{ match = "name == {container}.0", input = "hidden_states", dim = 1 }}]
        gather = [{{ match = "name == {gather}", dim = 1 }}]
        """, tmp_path)[0]


def test_a_processor_that_takes_no_split_is_named(tmp_path):
    """Sana given a plan by a rule file still cannot run split: its linear attention (no softmax attention call to
    route) would attend over local tokens only."""
    rules = one_split_rules(tmp_path, "SanaTransformer2DModel", "transformer_blocks", "proj_out")
    model = tiny_models.build("SanaTransformer2DModel", device="meta")
    with pytest.raises(SequenceParallelError, match="its attention processor SanaLinearAttnProcessor2_0 .*takes no "
                                                    "parallel config"):
        check_sequence(model, sequence_plan(model, rules), 2, 1, world=2)


def test_grouped_query_attention_is_refused_under_ring_only(tmp_path):
    """ACE-Step's processor passes enable_gqa when its key/value heads are fewer than its query heads (16 and 8 as
    released), and diffusers' context-parallel attention raises on it inside the first block on every rank. Under
    Ulysses alone shardrules repeats the key/value heads (proven on 2 ranks: AceStepTransformer1DModel); ring is
    refused before anything runs, naming the module."""
    import inspect

    import diffusers.models.attention_dispatch as dispatch
    import tiny_fallback

    assert "GQA is not yet supported for templated attention" in inspect.getsource(dispatch)  # diffusers' refusal
    model = tiny_fallback.build("AceStepTransformer1DModel")  # 2 query heads, 1 key/value head
    plan = sequence_plan(model, load_rules())
    check_sequence_parallel(model, plan, 2, 1)
    with pytest.raises(SequenceParallelError, match=r"AceStepTransformer1DModel cannot run sequence parallel: "
                                                    r"'layers.0.self_attn' \(AceStepAttention\) is grouped-query "
                                                    r"attention \(enable_gqa in AceStepAttnProcessor2_0\), which "
                                                    r"diffusers' ring attention refuses"):
        check_sequence_parallel(model, plan, 1, 2)


def test_causal_attention_is_refused_under_ring_or_out_of_order(tmp_path):
    """MiniMax Music 3's depth decoder attends causally over its codebooks (is_causal=True), which diffusers'
    context-parallel attention raises on inside the first layer on every rank. Under Ulysses alone shardrules hands it
    to diffusers' Ulysses attention (proven on 2 ranks: Cosmos3OmniTransformer); under ring, or with a plan that splits
    by segments (the tokens would reach attention out of order), it is refused before anything runs. The embedded
    rules say the depth decoder's few tokens are not worth splitting."""
    import inspect

    import diffusers.models.attention_dispatch as dispatch
    import tiny_fallback

    from shardrules.engine.sequence import split_refusal

    assert "Causal attention is not yet supported for templated attention" in inspect.getsource(dispatch)
    rules = one_split_rules(tmp_path, "MiniMaxMusic3RVQDepthDecoder", "layers", "norm")
    model = tiny_fallback.build("MiniMaxMusic3RVQDepthDecoder")
    plan = sequence_plan(model, rules)
    check_sequence_parallel(model, plan, 2, 1)
    causal = r"'layers.0.attn' \(MiniMaxMusic3DepthAttention\) is causal attention \(is_causal in " \
             r"MiniMaxMusic3DepthAttnProcessor\)"
    with pytest.raises(SequenceParallelError, match=f"MiniMaxMusic3RVQDepthDecoder cannot run sequence parallel: "
                                                    f"{causal}, which diffusers' ring attention refuses"):
        check_sequence_parallel(model, plan, 1, 2)
    assert re.fullmatch(f"{causal}, and the plan splits a tensor by segments, so the tokens reach attention out "
                        f"of their order", split_refusal(attention_modules(model), segmented=True))
    with pytest.raises(SequenceParallelError, match="MiniMaxMusic3RVQDepthDecoder cannot run sequence parallel: its "
                                                    "sequence is one audio frame's codebook steps"):
        check_sequence_parallel(model, sequence_plan(model, load_rules()), 2, 1)


def test_flex_attention_is_refused_by_name(tmp_path):
    """Kandinsky 6 SR's NABLA attention dispatches on diffusers' flex backend, which diffusers registers without
    context-parallel support (its function never reads the parallel config): refused before anything runs, as are
    AnyFlow FAR's block-causal processor (the flex backend as its class default) and Wan Animate 2's."""
    import diffusers
    import tiny_fallback
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    assert "flex" not in _AttentionBackendRegistry._supports_context_parallel  # diffusers' own registry
    rules = one_split_rules(tmp_path, "Kandinsky6SRTransformer3DModel", "visual_transformer_blocks", "out_layer")
    model = tiny_fallback.build("Kandinsky6SRTransformer3DModel")
    why = (r"Kandinsky6SRTransformer3DModel cannot run sequence parallel: its attention processor "
           r"Kandinsky6SRAttnProcessor \(on Kandinsky6SRAttention 'visual_transformer_blocks.0.self_attention'\) "
           r"dispatches on diffusers' flex backend")
    with pytest.raises(SequenceParallelError, match=why):
        check_sequence(model, sequence_plan(model, rules), 2, 1, world=2)
    for name in ("AnyFlowFARTransformer3DModel", "WanAnimate2Transformer3DModel"):
        model = getattr(diffusers, name).from_config(tiny_fallback.CONFIGS[name])
        assert any(a.flex for a in attention_modules(model)), name


def test_heads_that_ulysses_cannot_divide_are_refused():
    model = tiny_models.build("WanTransformer3DModel", device="meta")  # 2 heads
    with pytest.raises(SequenceParallelError, match="has 2 attention heads, which Ulysses 4 cannot divide"):
        check_sequence(model, sequence_plan(model, load_rules()), 4, 1, world=4)


def test_ring_on_the_cpu_is_refused_naming_the_backends():
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    with pytest.raises(SequenceParallelError, match="ring attention needs an attention backend that returns the "
                                                    "log-sum-exp: flash, .*uses 'native' on cpu"):
        check_sequence(model, sequence_plan(model, load_rules()), 1, 2, world=2)


@pytest.mark.parametrize("ulysses, ring, world, guidance, message", [
    (3, 1, 4, False, "ulysses 3 x ring 1 = 3 ranks does not divide the world size 4"),
    (2, 1, 2, True, "x 2 guidance branches = 4 ranks does not divide the world size 2"),
    (0, 1, 2, False, "ulysses must be a whole number of ranks"),
    (True, 1, 2, False, "ulysses must be a whole number of ranks"),
])
def test_degrees_that_do_not_fit_the_world_are_refused(ulysses, ring, world, guidance, message):
    with pytest.raises(SequenceParallelError, match=message):
        check_degrees(ulysses, ring, world, guidance=guidance)


# -- proven on 2 ranks: Ulysses 2 with FSDP2 equals the unsharded model -------------------------------------------


def _saved(root, label: str, class_name: str, variant: str = "even", rules: list[str] | None = None,
           suite: str = "models") -> dict:
    """Save the tiny model (once per class) and its unsharded output on the variant's inputs; record how many tokens
    the attention module that should see a split sequence sees unsharded."""
    import tiny_fallback

    config = tiny_fallback.CONFIG_VARIANTS.get((class_name, variant), {})
    folder = root / (f"{class_name}-{variant}" if config else class_name)
    torch.manual_seed(0)
    model = (tiny_fallback if suite == "fallback" else tiny_models).build(class_name, **config)
    if not folder.exists():
        model.save_pretrained(folder, safe_serialization=True)
    plan = sequence_plan(model, load_rules(*(rules or [])))
    seen = tiny_models.count_tokens(model, tiny_models.split_attention(model, plan))
    if suite == "fallback":
        out = tiny_fallback.output(model, class_name, even_text=variant in ("even", "reference"), variant=variant)
    else:
        with torch.no_grad():
            out = tiny_models.first_output(model(**tiny_models.sequence_inputs(class_name, variant),
                                                 return_dict=False))
    assert out.std() > 1e-3, f"{label}: constant output; the comparison would be vacuous"
    ref = root / f"{label}.ref.safetensors"
    save_file({"out": out.contiguous()}, str(ref))
    return {"label": label, "class": class_name, "dir": str(folder), "ref": str(ref), "variant": variant,
            "rules": rules or [], "full_tokens": seen[0], "suite": suite}


def launch(tmp_path_factory):
    """One launch of 2 ranks for every multi-rank check of sequence parallel and of compiled units
    (tests/test_compiled.py), through conftest's session fixture ``launched_forward_plans``: each launch costs every
    rank its imports."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    root = tmp_path_factory.mktemp("sequence")
    rules = root / "wan_rules.toml"
    rules.write_text(WAN_AS_RULES)
    cases = [_saved(root, name, name, VARIANT.get(name, "even"), suite="fallback" if name in FALLBACK else "models")
             for name in PLANNED]
    cases += [_saved(root, "wan from a rule file", "WanTransformer3DModel", rules=[str(rules)]),
              _saved(root, "qwen padded text", "QwenImageTransformer2DModel", "padded"),
              # the joint mask built inside forward, split segment by segment
              _saved(root, "hunyuanvideo padded text", "HunyuanVideoTransformer3DModel", "padded"),
              _saved(root, "flux five text tokens", "FluxTransformer2DModel", "odd"),
              # called as diffusers' models are by default, with return_dict=True: diffusers' split hook at the root
              # refused the output dataclass
              dict(_saved(root, "flux returning its dataclass", "FluxTransformer2DModel"), return_dict=True),
              # two prompts padded to 32 tokens each, masked; the omni (edit) mode's per-token noise mask
              _saved(root, "z-image padded text", "ZImageTransformer2DModel", "padded"),
              _saved(root, "z-image omni", "ZImageTransformer2DModel", "omni"),
              # two samples packed in one sequence (a query x key mask built from segment_ids), per-token timesteps
              _saved(root, "ideogram4 packed", "Ideogram4Transformer2DModel", "packed", suite="fallback"),
              _saved(root, "prx padded text", "PRXTransformer2DModel", "padded", suite="fallback"),
              _saved(root, "krea2 padded text", "Krea2Transformer2DModel", "padded", suite="fallback"),
              # per-token timesteps, the connectors' [B, 1, 1, L] text bias, a video self-attention mask, key frames,
              # the "split" rotary tables ([B, H, T, D / 2], split along dim 2)
              _saved(root, "ltx2 image-to-video", "LTX2VideoTransformer3DModel", "image-to-video", suite="fallback"),
              # the caller's rotary pair, split at the root (rope, which the plain case splits, is not called)
              _saved(root, "cogview4 caller's rotary", "CogView4Transformer2DModel", "rotary", suite="fallback"),
              # [history | current] tokens, the history keys amplified: each rank's count of current tokens (0.26 off
              # when each was given the whole count)
              _saved(root, "helios amplified history", "HeliosTransformer3DModel", "amplified history",
                     suite="fallback"),
              # padded audio and text; the rotary table a (cos, sin) tuple, split element by element
              _saved(root, "longcat audio padded", "LongCatAudioDiTTransformer", "padded", suite="fallback"),
              # optional reference-image tokens, split like the image's (else counted once per rank)
              _saved(root, "flux3 with reference images", "Flux3Transformer2DModel", "reference", suite="fallback")]
    # an element of an argument that the caller gives as a tensor (no reference: it must not run)
    elements = root / "wan_element.toml"
    elements.write_text(WAN_AS_RULES.replace(
        ']\ngather', '  { match = "is root", input = "encoder_hidden_states", element = 0, dim = 1 },\n]\ngather'))
    cases.append(_saved(root, "wan element of a tensor", "WanTransformer3DModel", rules=[str(elements)]))
    # an argument the plan refuses (no reference: it must not run)
    kandinsky = next(c for c in cases if c["label"] == "Kandinsky5Transformer3DModel")
    cases.append(dict(kandinsky, label="kandinsky5 with sparse attention", variant="sparse"))
    # the runner's reference: the same loop over the unsharded model
    torch.manual_seed(0)
    wan = tiny_models.build("WanTransformer3DModel")
    example = example_inputs(wan, batch=1, seed=0)
    latents = DenoisingRunner(wan, FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=3, guidance_scale=4.0, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)
    save_file({"latents": latents.contiguous()}, str(root / "runner.safetensors"))
    import tiny_pipelines

    # compiled units (tests/test_compiled.py): the same Wan and the same reference loop, with dynamo's aot_eager
    runner = {"model_dir": str(root / "WanTransformer3DModel"), "ref": str(root / "runner.safetensors"), "steps": 3,
              "guidance": 4.0}
    compiled = {"backend": "aot_eager"}

    # compiled units for every class the runner drives (tests/test_compiled.py): the eager unsharded loop's latents
    from shardrules.runner.inputs import DRIVEN_CLASSES

    classes = []
    for name in DRIVEN_CLASSES:
        torch.manual_seed(0)
        model = tiny_models.build(name)
        model.save_pretrained(root / "compiled" / name)
        example = example_inputs(model, batch=1, seed=0)
        want = DenoisingRunner(model, FlowMatchEulerDiscreteScheduler(), progress=False,
                               timestep_scale=example.timestep_scale, cast_timestep=example.cast_timestep).run(
            example.latents, num_inference_steps=2, model_kwargs=example.model_kwargs,
            latent_condition=example.latent_condition)
        save_file({"latents": want.float().contiguous()}, str(root / "compiled" / f"{name}.safetensors"))
        classes.append({"class": name, "dir": str(root / "compiled" / name),
                        "ref": str(root / "compiled" / f"{name}.safetensors")})
    wan_dir = str(root / "compiled" / "WanTransformer3DModel")
    regions = root / "compile_regions.toml"  # modules outside the units compiled too, named by an expression
    regions.write_text(WAN_REGIONS)
    classes += [{"class": "WanTransformer3DModel", "label": "wan, reshard-after-forward false", "dir": wan_dir,
                 "ref": str(root / "compiled" / "WanTransformer3DModel.safetensors"),
                 "options": {"reshard_after_forward": False}},
                {"class": "WanTransformer3DModel", "label": "wan, bfloat16", "dir": wan_dir, "ref": None,
                 "options": {"dtype": "bfloat16"}},
                {"class": "WanTransformer3DModel", "label": "wan, compile regions", "dir": wan_dir,
                 "ref": str(root / "compiled" / "WanTransformer3DModel.safetensors"), "rules": [str(regions)]}]

    wan_pipe, flux_pipe = tiny_pipelines.wan(root / "wan-pipe"), tiny_pipelines.flux(root / "flux-pipe")
    results = run_several({
        "models": ("rank_checks:sequence_matches", {"cases": cases}),
        "wan pipeline": ("rank_checks:pipeline_matches", {
            "folder": str(wan_pipe), "call": dict(tiny_pipelines.WAN_CALL, height=32, width=32),
            "prompts": ["a cat", "a dog"], "ulysses": 2}),
        "flux pipeline": ("rank_checks:pipeline_matches", {
            "folder": str(flux_pipe), "call": dict(tiny_pipelines.FLUX_CALL, height=32, width=32),
            "prompts": ["a cat", "a dog"], "ulysses": 2, "output": "images", "encode": {}}),
        "runner": ("rank_checks:sequence_runner_matches", runner),
        "compiled, guidance split": ("rank_checks:compiled_runner_matches", dict(runner, compile=compiled)),
        "compiled, ulysses": ("rank_checks:compiled_runner_matches", dict(runner, compile=compiled, ulysses=2)),
        "compiled classes": ("rank_checks:compiled_classes_match", {"cases": classes, "steps": 2}),
    })
    return {c["label"]: c for c in cases}, results


@pytest.fixture
def launched(launched_forward_plans):
    return launched_forward_plans


@pytest.mark.multirank
@pytest.mark.parametrize("label", [*PLANNED, "wan from a rule file", "qwen padded text",
                                   "hunyuanvideo padded text", "flux3 with reference images",
                                   "z-image padded text", "z-image omni", "ideogram4 packed",
                                   "prx padded text", "krea2 padded text",
                                   "longcat audio padded", "flux returning its dataclass", "ltx2 image-to-video",
                                   "helios amplified history", "cogview4 caller's rotary"])
def test_ulysses_2_equals_unsharded(launched, label):
    cases, results = launched
    case = cases[label]
    for rank, result in enumerate(checked(results["models"])):
        got = result[label]
        assert "error" not in got, (rank, got)
        assert got["max_abs_diff"] <= 1e-5, (rank, got)
        # the split happened: the first attention module saw half of the tokens it sees unsharded, in every forward
        # (two for GLM-Image's edit: the condition image written to the KV cache, then the denoising call)
        calls = 2 if case["variant"] == "cached" else 1
        assert got["tokens"] == [case["full_tokens"] // 2] * calls, (rank, got, case["full_tokens"])
        assert got["plan"] == ("rules" if case["rules"] else PLANNED[case["class"]])


@pytest.mark.multirank
def test_text_the_degree_does_not_divide_is_a_typed_error_on_every_rank(launched):
    _, results = launched
    for rank, result in enumerate(checked(results["models"])):
        assert result["flux five text tokens"] == {
            "error": "SequenceParallelError: '(root)' 'encoder_hidden_states' has 5 tokens along dim 1, which "
                     "sequence parallel of degree 2 cannot split evenly"}, rank


@pytest.mark.multirank
def test_an_argument_the_plan_refuses_is_a_typed_error_on_every_rank(launched):
    """Kandinsky 5's NABLA sparse attention would build its block mask from each rank's own tokens."""
    import re

    _, results = launched
    for rank, result in enumerate(checked(results["models"])):
        error = result["kandinsky5 with sparse attention"]["error"]
        assert re.fullmatch(r"SequenceParallelError: Kandinsky5Transformer3DModel: '\(root\)' was given "
                            r"'sparse_params', which sequence parallel cannot take: NABLA sparse attention builds "
                            r"its block mask from each rank's own queries and keys \(.*diffusers\.toml:\d+:\d+\)",
                            error), (rank, error)


@pytest.mark.multirank
def test_an_element_of_an_argument_that_is_a_tensor_is_a_typed_error_on_every_rank(launched):
    _, results = launched
    for rank, result in enumerate(checked(results["models"])):
        assert result["wan element of a tensor"] == {
            "error": "SequenceParallelError: '(root)' 'encoder_hidden_states' is a Tensor of no elements, so it has "
                     "no element 0 for the plan to split"}, rank


@pytest.mark.multirank
def test_runner_over_a_split_sequence_equals_the_unsharded_loop(launched):
    _, results = launched
    for rank, result in enumerate(checked(results["runner"])):
        assert result["split"] == "none", rank  # both ranks hold one sequence: nothing left to split by guidance
        assert result["max_abs_diff"] <= 1e-5, (rank, result)


# -- the commands ------------------------------------------------------------------------------------------------


def _folder(tmp_path, class_name):
    model = tiny_models.build(class_name, device="meta")
    model.save_config(tmp_path / class_name)
    return str(tmp_path / class_name)


def test_plan_shows_split_and_gather_points(tmp_path, capsys):
    from shardrules.cli import main

    assert main(["plan", _folder(tmp_path, "WanTransformer3DModel"), "--ulysses", "2"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("sequence parallel: WanTransformer3DModel._cp_plan (diffusers)\n"
                        "  split rope output 0 along dim 1, 4-d\n"
                        "  split rope output 1 along dim 1, 4-d\n"
                        "  split blocks.0 hidden_states along dim 1, 3-d\n"
                        "  gather proj_out output 0 along dim 1, 3-d\n"
                        "  split (root) timestep along dim 1, 2-d\n")
    assert main(["plan", _folder(tmp_path, "WanVACETransformer3DModel"), "--ulysses", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["sequence_parallel"]
    assert data["source"] == "rules" and "diffusers.toml" in data["origin"]
    assert {"module": "vace_blocks.0", "kind": "split", "input": "control_hidden_states", "output": None, "dim": 1,
            "expected_dims": 3, "segments": []} in data["entries"]


@pytest.mark.parametrize("args, code, message", [
    (["plan", "{Sana}", "--ulysses", "2"], 1, "SanaTransformer2DModel has no sequence-parallel plan"),
    (["plan", "{Wan}", "--ulysses", "4", "--world-size", "4"], 1, "has 2 attention heads, which Ulysses 4 cannot"),
    (["run", "{Wan}", "--nproc", "2", "--ulysses", "3"], 2, "--ulysses 3 --ring 1 on 2 ranks: ulysses 3 x ring 1 = 3 "
                                                             "ranks does not divide the world size 2"),
    (["run", "{Wan}", "--nproc", "2", "--ulysses", "2", "--split", "guidance", "--guidance", "4"], 2,
     "x 2 guidance branches = 4 ranks does not divide the world size 2"),
    # the transformer built on meta and its plan checked before any rank starts (these failed in every rank after
    # loading)
    (["run", "{Sana weights}", "--nproc", "2", "--ulysses", "2"], 2, "--ulysses 2 --ring 1: SanaTransformer2DModel "
                                                                   "has no sequence-parallel plan"),
    (["run", "{Wan}", "--nproc", "4", "--ulysses", "4"], 2, "has 2 attention heads, which Ulysses 4 cannot divide"),
])
def test_commands_refuse_what_cannot_run_split(tmp_path, capsys, args, code, message):
    """Refused in the command's own process: no rank starts (run exits 2 before launching)."""
    from shardrules.cli import main

    folders = {"{Sana}": _folder(tmp_path, "SanaTransformer2DModel")}
    torch.manual_seed(0)
    wan = tiny_models.build("WanTransformer3DModel")
    wan.save_pretrained(tmp_path / "wan", safe_serialization=True)
    folders["{Wan}"] = str(tmp_path / "wan")
    tiny_models.build("SanaTransformer2DModel").save_pretrained(tmp_path / "sana", safe_serialization=True)
    folders["{Sana weights}"] = str(tmp_path / "sana")
    assert main([folders.get(a, a) for a in args]) == code
    assert message in capsys.readouterr().err


def test_rule_lint_checks_a_plan_against_the_model(tmp_path, capsys):
    from shardrules.lint.cli import main

    torch.manual_seed(0)
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan", safe_serialization=True)
    bad = tmp_path / "bad.toml"
    bad.write_text(WAN_AS_RULES.replace('input = "hidden_states"', 'input = "hiden_states"')
                   .replace("name == proj_out", "name == proj_outt"))
    assert main([str(bad), "--model", str(tmp_path / "wan"), "--ulysses", "4", "--select", "SR310"]) == 1
    out = capsys.readouterr().out.splitlines()
    # the table's header, then inside each expression
    assert [line.split(" SR310 ")[0].removeprefix(str(bad)) for line in out[:3]] == [":8:8:", ":12:14:", ":15:22:"]
    assert "has 2 attention heads, which Ulysses 4 cannot divide" in out[0]
    assert "WanTransformerBlock.forward of 'blocks.0' takes no argument 'hiden_states'" in out[1]
    assert "sequence-parallel gather rule matches no module of WanTransformer3DModel" in out[2]
    good = tmp_path / "good.toml"
    good.write_text(WAN_AS_RULES)
    assert main([str(good), "--model", str(tmp_path / "wan"), "--ulysses", "2", "--select", "SR310"]) == 0
    # a refusal names a forward argument too
    refusing = tmp_path / "refusing.toml"
    refusing.write_text(WAN_AS_RULES + 'refuse = [{ match = "is root", input = "sparse_params", why = "w" }]\n')
    assert main([str(refusing), "--model", str(tmp_path / "wan"), "--select", "SR310"]) == 1
    assert "WanTransformer3DModel.forward of '(root)' takes no argument 'sparse_params'" in capsys.readouterr().out
    refusing.write_text(WAN_AS_RULES + 'refuse = [{ match = "is root", input = "attention_kwargs", why = "w" }]\n')
    assert main([str(refusing), "--model", str(tmp_path / "wan"), "--select", "SR310"]) == 0
    # a gather that runs before a split: Wan's forward calls condition_embedder after rope, before the blocks
    early = tmp_path / "early.toml"
    early.write_text(WAN_AS_RULES.replace("name == proj_out", "name == condition_embedder"))
    capsys.readouterr()
    assert main([str(early), "--model", str(tmp_path / "wan"), "--select", "SR310"]) == 1
    out = [line for line in capsys.readouterr().out.splitlines() if " SR310 " in line]
    assert [line.split(" SR310 ")[0].removeprefix(str(early)) for line in out] == [":12:14:"], out
    assert "split of 'blocks.0' hidden_states reaches no gather: none runs after it" in out[0]


def test_every_embedded_plan_splits_before_it_gathers_in_forward_order():
    """rule-lint's "every split reaches a gather" reads the order a forward runs its modules in from its source:
    Z-Image registers its final layer (where its plan gathers) before its blocks (where it splits), Bria FIBO its
    caption projections (split) after proj_out, so the order of registration would flag both."""
    import tiny_fallback

    from shardrules.engine.sequence import forward_order

    rules = load_rules()
    for name in PLANNED:
        model = (tiny_fallback.build(name) if name in FALLBACK else tiny_models.build(name)).to("meta")
        plan = sequence_plan(model, rules)
        assert plan.unreached(forward_order(model)) == (), name
        if name in ("ZImageTransformer2DModel", "BriaFiboTransformer2DModel"):
            assert plan.unreached([n for n, _ in model.named_modules()]), name


@pytest.mark.multirank
@pytest.mark.parametrize("name, tokens", [("wan pipeline", 4), ("flux pipeline", 256)])
def test_stock_pipeline_runs_its_own_loop_split_by_sequence(launched, name, tokens):
    """load_pipeline(..., ulysses=2): the pipeline's own __call__ gives what the unsharded diffusers pipeline gives,
    with each rank's transformer computing half of the image tokens (seen at its output layer, before the gather)."""
    _, results = launched
    for rank, result in enumerate(checked(results[name])):
        assert result["a cat"] <= 1e-5 and result["a dog"] <= 1e-5, (rank, result)
        assert result["prompts_differ"] > 1e-3, (rank, result)  # the prompt reaches the output
        assert result["tokens_at_proj_out"] == [tokens // 2], (rank, result)


@pytest.mark.parametrize("second", ["dim = 0, expected-dims = 2", "dim = 0"])
def test_an_argument_split_twice_is_refused(tmp_path, second):
    """diffusers' hooks take one split per argument: a second for the same number of dimensions (or for any) would
    silently replace the first."""
    rules, _ = rules_with(WAN_AS_RULES.replace(
        '{ match = "is root", input = "timestep", dim = 1, expected-dims = 2 },',
        '{ match = "is root", input = "timestep", dim = 1, expected-dims = 2 },\n'
        f'  {{ match = "is root", input = "timestep", {second} }},'), tmp_path)
    plan = sequence_plan(tiny_models.build("WanTransformer3DModel", device="meta"), rules)
    with pytest.raises(SequenceParallelError, match=r"sp.toml:\d+:\d+: '\(root\)' timestep is split twice for the "
                                                    r"same number of dimensions"):
        plan.cp_plan()


def test_a_split_of_one_element_of_an_argument(tmp_path):
    """Allegro's rotary argument is ((tables), (positions)): the positions follow the tokens, the tables (indexed by
    position) do not; 'element' splits the one (proven on 2 ranks with the pipeline's argument: its 'rotary' case),
    and is an argument's only split."""
    import tiny_fallback

    plan = sequence_plan(tiny_fallback.build("AllegroTransformer3DModel"), load_rules())
    assert "  split (root) image_rotary_emb[1] along dim 1, 2-d\n" in plan.as_text()
    assert plan.cp_plan()[""]["image_rotary_emb"].element == 1
    rules, _ = rules_with(WAN_AS_RULES.replace(
        '{ match = "is root", input = "timestep", dim = 1, expected-dims = 2 },',
        '{ match = "is root", input = "timestep", dim = 1, expected-dims = 2 },\n'
        '  { match = "is root", input = "timestep", dim = 0, expected-dims = 1, element = 0 },'), tmp_path)
    plan = sequence_plan(tiny_models.build("WanTransformer3DModel", device="meta"), rules)
    with pytest.raises(SequenceParallelError, match=r"'\(root\)' timestep is split twice: a split of one of its "
                                                    r"elements \('element'\) must be its only split"):
        plan.cp_plan()


def test_one_split_for_each_number_of_dimensions():
    """LTX-2's rotary tables are [B, T, D] or, with its "split" rope, [B, H, T, D / 2]: two splits of one output,
    each with its expected-dims, become one spec the tensor's number of dimensions chooses from (proven on 2 ranks
    with the "split" tables: 'ltx2 image-to-video')."""
    import tiny_fallback

    plan = sequence_plan(tiny_fallback.build("LTX2VideoTransformer3DModel"), load_rules())
    assert "  split rope output 0 along dim 1, 3-d\n" in plan.as_text()
    assert "  split rope output 0 along dim 2, 4-d\n" in plan.as_text()
    spec = plan.cp_plan()["rope"][0]
    assert [(c.split_dim, c.expected_dims, c.split_output) for c in spec.choices] == [(1, 3, True), (2, 4, True)]
