"""The one table from code to check."""

from __future__ import annotations

from types import ModuleType

from .checks import (
    syntax_error,
    unknown_field,
    type_error,
    limit_exceeded,
    toml_syntax,
    unknown_key,
    missing_key,
    wrong_value,
    duplicate_model,
    unknown_strategy,
    missing_schema,
    shadowed_model,
    never_holds,
    duplicate_rule,
    glob_never_matches,
    rule_matches_nothing,
    no_unit,
    container_unit,
    tied_parameter,
    nested_units,
    catches_per_layer,
    strategy_skipped,
)

CHECKS: dict[str, ModuleType] = {module.CODE: module for module in (
    syntax_error,
    unknown_field,
    type_error,
    limit_exceeded,
    toml_syntax,
    unknown_key,
    missing_key,
    wrong_value,
    duplicate_model,
    unknown_strategy,
    missing_schema,
    shadowed_model,
    never_holds,
    duplicate_rule,
    glob_never_matches,
    rule_matches_nothing,
    no_unit,
    container_unit,
    tied_parameter,
    nested_units,
    catches_per_layer,
    strategy_skipped,
)}


def explain(code: str) -> str:
    module = CHECKS[code]
    return module.__doc__.strip()
