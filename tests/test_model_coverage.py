"""Every model family with an explicit rule, proven on a tiny instance: sharded forward == unsharded."""

from __future__ import annotations

import pytest
import tiny_encoders
import torch
from multirank import checked, run_several
from safetensors.torch import save_file


def saved_cases(root, names, build, output, save=None) -> list[dict]:
    """Save each tiny model and its unsharded output; the cases a rank check loads and compares.

    A reference that is constant (a zero-initialised output layer) would make the comparison vacuous, so it
    fails here."""
    cases = []
    for name in names:
        torch.manual_seed(0)
        model = build(name)
        if save is None:
            model.save_pretrained(root / name, safe_serialization=True)
        else:
            save(model, name, root / name)
        reference = output(model, name).contiguous()
        assert reference.float().std() > 1e-3, f"{name}: the unsharded output is constant; the check would be vacuous"
        save_file({"out": reference}, str(root / f"{name}.ref.safetensors"))
        cases.append({"class": name, "dir": str(root / name), "ref": str(root / f"{name}.ref.safetensors")})
    return cases


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The text encoders and the fallback-planned transformers in one launch of the ranks."""
    import tiny_fallback

    encoders = saved_cases(tmp_path_factory.mktemp("encoders"), tiny_encoders.CONFIGS, tiny_encoders.build,
                           lambda model, name: tiny_encoders.output(model))
    more = saved_cases(tmp_path_factory.mktemp("more"), tiny_fallback.CONFIGS, tiny_fallback.build,
                       tiny_fallback.output, tiny_fallback.save)
    return run_several({"encoders": ("rank_checks:encoder_matches", {"cases": encoders}),
                        "fallbacks": ("rank_checks:fallback_matches", {"cases": more})})


@pytest.fixture
def encoders(launched):
    return checked(launched["encoders"])


@pytest.mark.parametrize("class_name", list(tiny_encoders.CONFIGS))
def test_text_encoder_sharded_equals_unsharded(encoders, class_name):
    for rank, result in enumerate(encoders):
        got = result[class_name]
        assert got["max_abs_diff"] <= 1e-5, (rank, got)
        assert got["source"] == "explicit"
        assert got["units"] == tiny_encoders.EXPECTED_UNITS[class_name]


@pytest.fixture
def fallbacks(launched):
    return checked(launched["fallbacks"])


def test_more_transformers_shard_correctly(fallbacks):
    """Transformers planned by the fallbacks (or, for DiT, an explicit rule): sharded == unsharded."""
    import diffusers
    import tiny_fallback
    import tiny_models
    from diffusers.models import transformers as diffusers_transformers

    for rank, result in enumerate(fallbacks):
        for name, got in result.items():
            expected = ("explicit",) if name in tiny_fallback.EXPLICIT else ("block-class", "common-numbered-block")
            assert got["source"] in expected, (rank, name, got)
            assert got["units"] >= 1 and got["max_abs_diff"] <= 1e-5, (rank, name, got)
    exported = sorted(n for n in dir(diffusers_transformers) if n.endswith(("Model", "Transformer", "Decoder")))
    covered = set(tiny_fallback.CONFIGS) | set(tiny_models.CONFIGS)
    uncovered = [n for n in exported if n not in covered]
    assert not uncovered, f"exported by diffusers {diffusers.__version__} but not covered: {uncovered}"
