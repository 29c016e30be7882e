"""load_sharded over 2 gloo ranks (SPEC §5): sharded forward equals unsharded, each rank reads its rows."""

from __future__ import annotations

import pytest
import tiny_models
import torch
from multirank import checked, run_several
from safetensors.torch import save_file

MODELS = list(tiny_models.CONFIGS)


def save_case(root, class_name, max_shard_size=None, dtype=None):
    torch.manual_seed(0)
    model = tiny_models.build(class_name)
    model_dir = root / class_name
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(model_dir, safe_serialization=True, **kwargs)
    if dtype is not None:
        model = model.to(dtype)
    with torch.no_grad():
        out = tiny_models.first_output(model(**tiny_models.inputs(class_name, batch=1, dtype=dtype),
                                             return_dict=False))
    save_file({"out": out.contiguous()}, str(root / f"{class_name}.ref.safetensors"))
    return {"class": class_name, "dir": str(model_dir), "ref": str(root / f"{class_name}.ref.safetensors")}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return [save_case(root, name) for name in MODELS]


@pytest.fixture(scope="module")
def launched(saved):
    """The explicit plans and the fallback plans in one launch of the ranks."""
    return run_several({"explicit": ("rank_checks:forward_matches", {"cases": saved}),
                        "fallback": ("rank_checks:forward_matches", {"cases": saved, "fallback": True})})


@pytest.fixture
def loaded(launched):
    return checked(launched["explicit"])


@pytest.mark.parametrize("class_name", MODELS)
def test_sharded_forward_equals_unsharded(loaded, class_name):
    for rank, result in enumerate(loaded):
        got = result[class_name]
        assert got["close"], f"rank {rank}: max abs diff {got['max_abs_diff']}"
        assert got["source"] == "explicit"
        assert got["units"] == tiny_models.EXPECTED_UNITS[class_name]
        assert got["meta_left"] == []


@pytest.mark.parametrize("class_name", MODELS)
def test_each_rank_reads_only_its_rows(loaded, class_name):
    per_rank = [result[class_name] for result in loaded]
    checkpoint = per_rank[0]["checkpoint_bytes"]
    replicated = per_rank[0]["bytes_replicated"]  # persistent buffers (SD3's pos_embed): whole on every rank
    sharded = checkpoint - replicated
    assert sum(r["bytes_sharded"] for r in per_rank) == sharded  # the ranks' rows tile each parameter once
    for r in per_rank:
        assert r["bytes_replicated"] == replicated
        assert r["bytes_sharded"] <= sharded / 2 * 1.05, r
        assert r["bytes_read"] == r["bytes_sharded"] + r["bytes_replicated"]


@pytest.mark.parametrize("class_name", MODELS)
def test_evenly_sharded_parameters_share_one_allocation_per_dtype(loaded, class_name):
    """Rows of evenly sharded parameters are read beside fully_shard into one buffer per dtype, which the
    parameters keep as their local shards (FSDP2 copies none of them)."""
    for rank, result in enumerate(loaded):
        got = result[class_name]
        assert got["even"] > 0
        assert got["early_tensors"] == got["even"], (rank, got)
        assert got["even_storages"] == got["even_dtypes"], (rank, got)


def test_fallback_plans_shard_correctly_too(launched):
    """Without the explicit entries, block-class and numbered-block plans give the unsharded output."""
    for result in checked(launched["fallback"]):
        for class_name, got in result.items():
            assert got["source"] in ("block-class", "common-numbered-block"), (class_name, got["source"])
            assert got["close"], (class_name, got["max_abs_diff"])
