"""The shard-condition language: grammar, parser and typed tree. Knows nothing of torch."""

from .parser import MAX_EXPRESSION_CHARS, MAX_NESTING, parse_expression
from .source import SourceMap
from .tree import FIELDS, Expr

__all__ = ["FIELDS", "MAX_EXPRESSION_CHARS", "MAX_NESTING", "Expr", "SourceMap", "parse_expression"]
