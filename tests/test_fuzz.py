"""Fuzzing with a small budget (bench/fuzz_rules.py runs the large one): only typed rule errors, each with a
position, may come out of parsing, compiling and linting."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_targets as ft

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


CRASHERS: list[tuple[str, str]] = []  # (kind, input) found by the fuzzers; each stays a regression test


@pytest.mark.parametrize(("kind", "text"), CRASHERS or [("expression", "name == a")])
def test_regressions(kind, text):
    (ft.check_expression if kind == "expression" else ft.check_document)(text)
