"""[[model.rename]]: regex renames applied until stable, drops, fused parts, cycles and conflicts."""

from __future__ import annotations

import pytest

from shardrules.errors import CheckpointError
from shardrules.loader.rename import map_keys
from shardrules.rules import Location, Rename

HERE = Location("rules.toml", 1, 1)


def rename(pattern, replace, fuse=()):
    return Rename(pattern, replace, tuple(fuse), HERE)


def test_renames_apply_until_stable():
    rules = (rename(r"^model\.", ""), rename(r"^diffusion_model\.", ""), rename(r"\.gamma$", ".weight"))
    sources, targets = map_keys(["model.diffusion_model.norm.gamma", "proj.bias"], rules, "ckpt")
    assert set(sources) == {"norm.weight", "proj.bias"}
    assert sources["norm.weight"].keys == ("model.diffusion_model.norm.gamma",)
    assert targets == {"model.diffusion_model.norm.gamma": "norm.weight"}


def test_empty_replacement_drops_the_key():
    sources, targets = map_keys(["a.weight", "ema.a.weight"], (rename(r"^ema\..*$", ""),), "ckpt")
    assert set(sources) == {"a.weight"} and targets == {"ema.a.weight": ""}


def test_fuse_orders_parts_by_the_fuse_list():
    rule = rename(r"^(?P<pre>.*)\.to_(?P<part>q|k|v)\.weight$", r"\g<pre>.to_qkv.weight", fuse=["q", "k", "v"])
    sources, _ = map_keys(["b.to_v.weight", "b.to_q.weight", "b.to_k.weight"], (rule,), "ckpt")
    assert sources["b.to_qkv.weight"].keys == ("b.to_q.weight", "b.to_k.weight", "b.to_v.weight")
    assert sources["b.to_qkv.weight"].parts == ("q", "k", "v")


def test_a_cycle_is_an_error():
    rules = (rename(r"^a\.", "b."), rename(r"^b\.", "a."))
    with pytest.raises(CheckpointError, match="rename rules cycle on 'a.x': a.x -> b.x -> a.x"):
        map_keys(["a.x"], rules, "ckpt")


def test_two_keys_renamed_to_one_name_is_an_error():
    with pytest.raises(CheckpointError, match="both rename to 'w'"):
        map_keys(["x.w", "y.w"], (rename(r"^[xy]\.", ""),), "ckpt")


def test_keys_are_bounded_before_a_user_regex_sees_them():
    with pytest.raises(CheckpointError, match="key of 5000 characters"):
        map_keys(["a" * 5000], (rename("a+", "b"),), "ckpt")


def test_a_rename_that_grows_the_key_is_stopped_at_the_key_limit():
    """``^(.+)$`` -> ``\\1\\1`` doubles a key at every step: refused when the key passes the limit, not after 32
    doublings (a MemoryError)."""
    with pytest.raises(CheckpointError, match=r"gives a key of \d+ characters \(limit 1024\): rule"):
        map_keys(["blocks.0.weight"], (rename(r"^(.+)$", r"\1\1"),), "ckpt")
