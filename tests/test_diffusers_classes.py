"""Every transformer class diffusers exports that builds from its default config gets a valid plan."""

from __future__ import annotations

import inspect

import pytest
import torch
from diffusers.models import transformers as diffusers_transformers
from torch import nn

from shardrules import load_rules, plan
from shardrules.loader.build import all_on_meta


def exported_classes() -> list[str]:
    return sorted(name for name in dir(diffusers_transformers)
                  if inspect.isclass(getattr(diffusers_transformers, name))
                  and issubclass(getattr(diffusers_transformers, name), nn.Module))


def test_every_exported_transformer_class_plans():
    rules = load_rules()
    covered, failures = [], []
    for name in exported_classes():
        cls = getattr(diffusers_transformers, name)
        try:
            with all_on_meta():
                model = cls()
        except Exception:  # needs arguments its default config lacks: tests/test_model_coverage.py builds it small
            continue
        try:
            p = plan(model, rules)
        except Exception as exc:
            failures.append(f"{name}: {exc}")
            continue
        modules = dict(model.named_modules())
        containers = [u for u in p.units if isinstance(modules[u], (nn.ModuleList, nn.ModuleDict))]
        if not p.units or containers:
            failures.append(f"{name}: units {p.units[:3]}, containers {containers}")
        covered.append(f"{name}: {p.source}, {len(p.units)} units")
    assert failures == []
    assert len(covered) >= 50


@pytest.mark.parametrize("name", ["FluxTransformer2DModel", "WanTransformer3DModel", "SD3Transformer2DModel"])
def test_full_size_defaults_plan_explicitly(name):
    with torch.device("meta"):
        model = getattr(diffusers_transformers, name)()
    assert plan(model).source == "explicit"
