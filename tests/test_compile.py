"""Compiled predicates: drop-in for seed-style conditions, and the meaning of every operator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shardrules import compile_rule
from shardrules.engine.facts import ModuleFacts, class_name
from shardrules.engine.glob import compile_glob


# The seed's conditions, as inference engines write them today.
def is_module_list_entry(name: str, container: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] == container and parts[-1].isdigit()


def is_module_list_entry_in(name: str, containers: list[str]) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] in containers and parts[-1].isdigit()


SEGMENTS = ["blocks", "layers", "transformer_blocks", "single_transformer_blocks", "refiner_blocks", "attn",
            "ff", "net", "norm", "input_layernorm", "proj_out", "0", "1", "2", "10", "37", "007", "x1", "1x",
            "block", "to_q", "encoder", "a-b", "_", "blocks0"]


def generated_names(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = [""]
    while len(names) < count:
        depth = rng.randint(1, 7)
        names.append(".".join(rng.choice(SEGMENTS) for _ in range(depth)))
    return names


MODULE = nn.Linear(2, 2)


@pytest.mark.parametrize(("container", "seed"), [("blocks", 1), ("layers", 2), ("transformer_blocks", 3),
                                               ("refiner_blocks", 4)])
def test_agrees_with_is_module_list_entry_on_10k_names(container, seed):
    rule = compile_rule(f"container in [{container}] and index is digit")
    names = generated_names(12_000, seed=seed)
    disagreements = [n for n in names if rule(n, MODULE) != is_module_list_entry(n, container)]
    assert disagreements == []
    assert sum(rule(n, MODULE) for n in names) > 50  # the generator does produce matches


def test_agrees_with_is_module_list_entry_in_on_10k_names():
    containers = ["transformer_blocks", "single_transformer_blocks"]
    rule = compile_rule("container in [transformer_blocks, single_transformer_blocks]")
    entry_rule = compile_rule("container in [transformer_blocks, single_transformer_blocks] and index is digit")
    names = generated_names(12_000, seed=7)
    assert [n for n in names if entry_rule(n, MODULE) != is_module_list_entry_in(n, containers)] == []
    parts = [n.split(".") for n in names]
    assert [n for n, p in zip(names, parts, strict=True)
            if rule(n, MODULE) != (len(p) >= 2 and p[-2] in containers)] == []


name_segment = st.from_regex(r"[a-z_]{1,6}|[0-9]{1,3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(name_segment, min_size=1, max_size=6), st.sampled_from(["blocks", "layers"]))
def test_property_numbered_entry(parts, container):
    name = ".".join(parts)
    rule = compile_rule(f"container in [{container}] and index is digit")
    assert rule(name, MODULE) == is_module_list_entry(name, container)


FIELDS = ("name", "leaf", "container", "index", "depth", "class", "params")


def row(name: str, module: nn.Module = MODULE) -> tuple:
    facts = ModuleFacts.of(name, module)
    return tuple(facts.value(field, 0) for field in FIELDS)


def test_fields_of_a_deep_name():
    assert row("context_embedder.token_refiner.refiner_blocks.3") == (
        "context_embedder.token_refiner.refiner_blocks.3", "3", "refiner_blocks", 3, 4, "Linear", 6)


def test_fields_of_root_and_top_level():
    assert row("") == ("", "", "", None, 0, "Linear", 6)
    assert row("proj_out") == ("proj_out", "proj_out", "", None, 1, "Linear", 6)


def test_model_facts_equal_per_module_facts():
    """The walk over a model computes the same fields as splitting each name, in named_modules() order."""
    import tiny_models

    model = tiny_models.build("HunyuanVideoTransformer3DModel", device="meta")
    model.extra = nn.ModuleDict({"shared": model.proj_out})  # a module reachable twice is listed once
    facts = ModuleFacts.of_model(model)
    named = list(model.named_modules())
    assert facts.names == [n for n, _ in named]
    for i, (name, module) in enumerate(named):
        assert tuple(facts.value(f, i) for f in FIELDS) == row(name, module)


def test_rindex_counts_back_from_the_last_entry():
    """rindex is len(container) - 1 - index for every entry of a ModuleList or Sequential (checked against the
    containers' own lengths), nothing elsewhere, and nothing for a module evaluated alone."""
    import tiny_models

    model = tiny_models.build("HunyuanVideoTransformer3DModel", device="meta")
    facts = ModuleFacts.of_model(model)
    named = dict(model.named_modules())
    checked = 0
    for i, name in enumerate(facts.names):
        parent = named[name.rpartition(".")[0]] if name else None
        leaf = name.rpartition(".")[2]
        if isinstance(parent, (nn.ModuleList, nn.Sequential)):
            assert facts.value("rindex", i) == len(parent) - 1 - int(leaf), name
            checked += 1
        elif not leaf.isdigit():
            assert facts.value("rindex", i) is None, name
    assert checked > 10
    last = len(model.transformer_blocks) - 1
    assert compile_rule("container == transformer_blocks and rindex == 0").select(facts) == {
        facts.names.index(f"transformer_blocks.{last}")}
    assert ModuleFacts.of(f"transformer_blocks.{last}", MODULE).value("rindex", 0) is None
    assert not compile_rule("rindex == 0")(f"transformer_blocks.{last}", MODULE)


RULES = ["container in [transformer_blocks, refiner_blocks] and index is digit", "index is digit",
         "not (leaf is digit) and depth >= 3", "name == proj_out or class == Linear", "container == ''",
         "index in [0, 1] and params > 100", 'name matches "*.attn.*" and leaf != to_q', "index not in [0]",
         "name is root", "container != blocks", "leaf is not digit and index is digit", "class != Linear"]


@pytest.mark.parametrize("text", RULES)
def test_select_equals_testing_every_module(text):
    """A rule's indexed selection over a model gives exactly the modules the drop-in condition accepts."""
    import tiny_models

    model = tiny_models.build("HunyuanVideoTransformer3DModel", device="meta")
    rule = compile_rule(text)
    facts = ModuleFacts.of_model(model)
    expected = {i for i, (name, module) in enumerate(model.named_modules()) if rule(name, module)}
    assert rule.select(facts) == expected


CASES = [
    ("name == blocks.0", "blocks.0", True),
    ("name != blocks.0", "blocks.0", False),
    ("depth == 2", "blocks.0", True),
    ("depth > 2", "blocks.0", False),
    ("index >= 3", "blocks.3", True),
    ("index >= 3", "blocks.norm", False),  # index is none: ordering is false
    ("index < 3", "blocks.norm", False),
    ("index == 3", "blocks.3", True),
    ("index in [1, 3]", "blocks.3", True),
    ("index not in [1, 3]", "blocks.3", False),
    ("leaf is digit", "blocks.03", True),
    ("leaf is not digit", "blocks.03", False),
    ("index is not digit", "blocks.norm", True),
    ("name is root", "", True),
    ("name is root", "blocks", False),
    ("name is not root", "blocks", True),
    ('name matches "blocks.*.attn"', "blocks.1.attn", True),
    ('name matches "blocks.*.attn"', "x.blocks.1.attn", False),  # anchored
    ('name matches "blocks.?"', "blocks.12", False),
    ('name matches "blocks.[0-4]"', "blocks.3", True),
    ('name matches "blocks.+"', "blocks.1", False),  # no regex: + is a literal
    ("name startswith blocks", "blocks.1.norm", True),
    ("name endswith norm", "blocks.1.input_layernorm", True),
    ('name endswith ".norm"', "blocks.1.input_layernorm", False),
    ("name contains token_refiner", "a.token_refiner.b", True),
    ("class == Linear", "x", True),
    ("class in [Conv2d, Linear]", "x", True),
    ("params >= 6", "x", True),
    ("params > 6", "x", False),
    ("not (name == a or name == b) and depth == 1", "c", True),
    ("name == a or name == b and depth == 5", "a", True),  # and binds tighter than or
]


@pytest.mark.parametrize(("text", "name", "expected"), CASES)
def test_operator(text, name, expected):
    assert compile_rule(text)(name, MODULE) is expected


def test_glob_with_many_stars_is_fast():
    import time

    rule = compile_rule('name matches "' + "*" * 1000 + 'x"')
    start = time.perf_counter()
    assert not rule("a" * 10_000, MODULE)
    assert time.perf_counter() - start < 1.0  # microseconds; a backtracking matcher would never finish


def test_class_name_drops_the_fsdp_prefix():
    from torch.distributed.fsdp import FSDPModule

    # fully_shard swaps a module's class for one named FSDP<Name> deriving from FSDPModule and the class
    fsdp_linear = type("FSDPLinear", (FSDPModule, nn.Linear), {})
    module = nn.Linear(2, 2)
    module.__class__ = fsdp_linear
    assert class_name(module) == "Linear"
    assert compile_rule("class == Linear")("x", module)

    class FSDPNative(nn.Module):  # a user class whose own name starts with FSDP keeps it
        pass

    assert class_name(FSDPNative()) == "FSDPNative"


def test_params_counts_the_subtree():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert compile_rule("params == 13")("", model)
    assert compile_rule("params == 9")("0", model[0])


def test_params_not_counted_when_unused():
    class Exploding(nn.Module):
        def parameters(self, recurse=True):
            raise AssertionError("params was computed")

    assert compile_rule("name == x")("x", Exploding())


def test_glob_agrees_with_fnmatch():
    import fnmatch

    rng = random.Random(5)
    for _ in range(20_000):
        pattern = "".join(rng.choice("ab.1*?[]!") for _ in range(rng.randint(0, 7)))
        text = "".join(rng.choice("ab.1") for _ in range(rng.randint(0, 8)))
        assert compile_glob(pattern)(text) == fnmatch.fnmatchcase(text, pattern), (pattern, text)
