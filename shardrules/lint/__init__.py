"""rule-lint: checks for rule files, in the manner of ruff."""

from .findings import Finding
from .registry import CHECKS, explain
from .run import lint

__all__ = ["CHECKS", "Finding", "explain", "lint"]
