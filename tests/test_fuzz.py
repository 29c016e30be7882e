"""Fuzzing with a small budget (bench/fuzz_rules.py runs the large one): only typed rule errors, each with a
position, may come out of parsing, compiling and linting."""

from __future__ import annotations

import random

import fuzz_targets as ft
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ft.WORDS + list("abz_.-09\"'()[],=<>!*? \t")), max_size=25))
def test_expressions_from_hypothesis(pieces):
    ft.check_expression(" ".join(pieces))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_as_an_expression(text):
    ft.check_expression(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_documents_from_hypothesis(rng):
    ft.check_document(ft.document(rng))


def test_seeded_mutations():
    rng = random.Random(1234)
    for _ in range(2000):
        ft.check_expression(ft.expression(rng))
    for _ in range(300):
        ft.check_document(ft.document(rng))


# Inputs that once went wrong; each stays a regression test. bench/fuzz_rules.py (200,000 inputs) has found
# none so far; these were found while building the parser, the file reader and the linter.
REGRESSIONS = [
    ("expression", "and name == a"),  # a keyword was lexed as a field name, and the error pointed past it
    ("expression", "params > 1.1K"),  # 1.1 * 1000 in floating point is not a whole number
    ("expression", "name in []"),  # an empty list has no tokens to take a position from
    ("expression", "(" * 70 + "name == a" + ")" * 70),  # nesting beyond the limit
    ("document", "schema = 1\n" + "a = [" * 3000 + "]" * 3000 + "\n"),  # nesting deeper than the scanner goes
    ("document", 'schema = 1\n[[model]]\nname = "\\ud800"\n'),  # a lone surrogate escape
    ("document", "schema = 1\n[strategy.block-classes]\nfrom = ['x']\n"),  # unknown strategy table
]


@pytest.mark.parametrize(("kind", "text"), REGRESSIONS)
def test_regressions(kind, text):
    (ft.check_expression if kind == "expression" else ft.check_document)(text)
