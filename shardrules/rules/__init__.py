"""Rule files: the embedded defaults, the reader that checks them and layers user files over them. Knows nothing of
FSDP."""

from .reader import MAX_FILE_BYTES, SCHEMA_VERSION, RuleFile, check_rule_file, layer, load_rules, read_rule_file
from .ruleset import STRATEGIES, Location, ModelRules, Rename, Rule, RuleSet, SequencePlanRules, SequenceRule

__all__ = [
    "MAX_FILE_BYTES",
    "SCHEMA_VERSION",
    "STRATEGIES",
    "Location",
    "ModelRules",
    "Rename",
    "Rule",
    "RuleFile",
    "RuleSet",
    "SequencePlanRules",
    "SequenceRule",
    "check_rule_file",
    "layer",
    "load_rules",
    "read_rule_file",
]
