"""shardrules: FSDP2 shard conditions as data, for diffusion transformers and their text encoders."""

from .engine.compile import CompiledRule, compile_rule
from .engine.denoise import DenoisingRunner
from .engine.load import LoadStats, load_sharded
from .engine.resolve import ShardPlan, Unit, plan
from .engine.shard import shard
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
from .rules import RuleSet, load_rules

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CompiledRule",
    "DenoisingRunner",
    "LoadStats",
    "PlanError",
    "RuleError",
    "RuleFileError",
    "RuleSet",
    "RuleSyntaxError",
    "RuleTypeError",
    "ShardPlan",
    "ShardRulesError",
    "Unit",
    "UnknownFieldError",
    "compile_rule",
    "get_wrapped_attr",
    "load_rules",
    "load_sharded",
    "plan",
    "shard",
]
