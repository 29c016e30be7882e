"""shardrules: FSDP2 shard conditions as data, for diffusion transformers and their text encoders.

The public API, re-exported. Names are imported on first use, so that ``rule-lint`` and the rule parser
start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "CompiledRule": "shardrules.engine.compile",
    "compile_rule": "shardrules.engine.compile",
    "DenoisingRunner": "shardrules.runner.denoise",
    "LoadStats": "shardrules.loader.load",
    "load_sharded": "shardrules.loader.load",
    "load_pipeline": "shardrules.runner.pipeline",
    "ShardPlan": "shardrules.engine.resolve",
    "Unit": "shardrules.engine.resolve",
    "plan": "shardrules.engine.resolve",
    "shard": "shardrules.loader.shard",
    "get_wrapped_attr": "shardrules.engine.wrapped",
    "CheckpointError": "shardrules.errors",
    "PlanError": "shardrules.errors",
    "RuleError": "shardrules.errors",
    "RuleFileError": "shardrules.errors",
    "RuleSyntaxError": "shardrules.errors",
    "RuleTypeError": "shardrules.errors",
    "ShardRulesError": "shardrules.errors",
    "UnknownFieldError": "shardrules.errors",
    "RuleSet": "shardrules.rules",
    "load_rules": "shardrules.rules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shardrules' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # pragma: no cover
    from .engine.compile import CompiledRule, compile_rule
    from .engine.resolve import ShardPlan, Unit, plan
    from .engine.wrapped import get_wrapped_attr
    from .errors import (
        CheckpointError,
        PlanError,
        RuleError,
        RuleFileError,
        RuleSyntaxError,
        RuleTypeError,
        ShardRulesError,
        UnknownFieldError,
    )
    from .loader.load import LoadStats, load_sharded
    from .loader.shard import shard
    from .rules import RuleSet, load_rules
    from .runner.denoise import DenoisingRunner
    from .runner.pipeline import load_pipeline
