"""The one table from code to check: each module of ``checks`` names its code, and is listed here once."""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = (
    "syntax_error", "unknown_field", "type_error", "limit_exceeded",
    "unreadable_file", "toml_syntax", "unknown_key", "missing_key", "wrong_value", "duplicate_model",
    "unknown_strategy", "missing_schema",
    "shadowed_model", "never_holds", "duplicate_rule", "glob_never_matches", "init_everything",
    "rule_matches_nothing", "no_unit", "container_unit", "tied_parameter", "nested_units", "catches_per_layer",
    "strategy_skipped", "sequence_parallel",
)

CHECKS: dict[str, ModuleType] = {}
for _name in _MODULES:
    _module = importlib.import_module(f"{__package__}.checks.{_name}")
    CHECKS[_module.CODE] = _module
CHECKS = dict(sorted(CHECKS.items()))


def explain(code: str) -> str:
    return CHECKS[code].__doc__.strip()
