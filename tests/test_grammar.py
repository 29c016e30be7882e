"""The expression language of SPEC §2: what parses, and the errors found when a rule is compiled."""

from __future__ import annotations

import pytest

from shardrules import RuleSyntaxError, RuleTypeError, UnknownFieldError, compile_rule
from shardrules.errors import RuleError, RuleLimitError
from shardrules.grammar import MAX_EXPRESSION_CHARS, MAX_NESTING, parse_expression
from shardrules.grammar.tree import And, Compare, InList, IsDigit, IsRoot, Matches, Not, Or, StringTest
from shardrules.rules import load_rules

SPEC_EXAMPLES = [
    "container in [blocks, layers] and index is digit",
    "class in [FluxTransformerBlock, FluxSingleTransformerBlock]",
    "name == txt_in",
    "params >= 10M and not (name endswith norm)",
]


@pytest.mark.parametrize("text", SPEC_EXAMPLES)
def test_spec_examples_parse(text):
    parse_expression(text)


def test_tree_is_typed():
    tree = parse_expression('container in [blocks, "layers"] and (index is digit or name is root) and not leaf == x')
    assert isinstance(tree, And)
    first, second, third = tree.operands
    assert isinstance(first, InList) and first.values == ("blocks", "layers") and not first.negated
    assert isinstance(second, Or) and isinstance(second.operands[0], IsDigit) and isinstance(second.operands[1], IsRoot)
    assert isinstance(third, Not) and isinstance(third.operand, Compare)


@pytest.mark.parametrize(
    ("text", "node", "value"),
    [
        ("params >= 10M", Compare, 10_000_000),
        ("params < 1.5K", Compare, 1500),
        ("params > 2G", Compare, 2_000_000_000),
        # exact decimal arithmetic: in binary floating point these are 2009.99..., 1000999.99..., 300.00...04 and
        # 2**53 (the odd integer above it has no float)
        ("params >= 2.01K", Compare, 2010),
        ("params >= 1.001M", Compare, 1_001_000),
        ("params > 0.3K", Compare, 300),
        ("params > 9007199254740993", Compare, 9_007_199_254_740_993),
        ("depth <= 3", Compare, 3),
        ('name matches "blocks.*.attn"', Matches, "blocks.*.attn"),
        ("name startswith context_embedder", StringTest, "context_embedder"),
        ("name contains 'token_refiner'", StringTest, "token_refiner"),
        ("index not in [0, 1]", InList, (0, 1)),
        ('name == "a \\"quoted\\" name"', Compare, 'a "quoted" name'),
    ],
)
def test_values(text, node, value):
    tree = parse_expression(text)
    assert isinstance(tree, node)
    got = tree.values if isinstance(tree, InList) else getattr(tree, "value", getattr(tree, "pattern", None))
    assert got == value


def test_keywords_are_lower_case():
    with pytest.raises(RuleSyntaxError):
        parse_expression("container IN [blocks]")


def test_identifiers_may_start_with_a_keyword():
    assert parse_expression("name == notes").value == "notes"
    assert parse_expression("name == index_map").value == "index_map"


# Bad expressions: (text, error type, the token the error must point at).
BAD_EXPRESSIONS = [
    ("contaner in [blocks]", UnknownFieldError, "contaner"),
    ("Name == a", UnknownFieldError, "Name"),
    ("leaf is digit and indx is digit", UnknownFieldError, "indx"),
    ('depth matches "x"', RuleTypeError, "matches"),
    ("depth < blocks", RuleTypeError, "blocks"),
    ("name < a", RuleTypeError, "<"),
    ("leaf == 3", RuleTypeError, "3"),
    ("params startswith a", RuleTypeError, "startswith"),
    ("depth is digit", RuleTypeError, "depth"),
    ("index is root", RuleTypeError, "index"),
    ("index in [1, blocks]", RuleTypeError, "blocks"),
    ("params > 1.5", RuleTypeError, "1.5"),
    ("name ==", RuleSyntaxError, None),
    ('name == "abc', RuleSyntaxError, '"'),
    ("(name == a", RuleSyntaxError, None),
    ("name = a", RuleSyntaxError, "="),
    ("name in [a,,b]", RuleSyntaxError, ","),
    ("name == a b", RuleSyntaxError, "b"),
    ("name in blocks", RuleSyntaxError, "blocks"),
    ("and name == a", RuleSyntaxError, "and"),
    ("name @ x", RuleSyntaxError, "@"),
    ("", RuleSyntaxError, None),
    ("params >= 10Mb", RuleSyntaxError, None),
    ("params >= 2.0001K", RuleTypeError, "2.0001K"),  # 2000.1: not a whole number of parameters
]


@pytest.mark.parametrize(("text", "error", "token"), BAD_EXPRESSIONS)
def test_bad_expression_points_into_the_toml_file(tmp_path, text, error, token):
    """Each bad expression, written inside a rule file, names file:line:col of the token in the TOML text."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    path = tmp_path / "bad.toml"
    path.write_text(
        "schema = 1\n\n[[model]]\nname = \"m\"\napplies-to = \"class == M\"\n"
        f"shard = [\n  \"name == ok\",\n  \"{quoted}\",\n]\n"
    )
    with pytest.raises(error) as info:
        load_rules(path, embedded=False)
    exc = info.value
    assert exc.path == str(path)
    assert exc.line == 8
    assert str(exc).startswith(f"{path}:8:{exc.column}: ")
    line = path.read_text().splitlines()[exc.line - 1]
    if token is not None:
        # the column is in the file, past the opening quote of the TOML string
        assert line[exc.column - 1:].startswith(token.replace('"', '\\"')), (line, exc.column)
    else:
        assert 3 <= exc.column <= len(line)
    if error is UnknownFieldError:
        assert "did you mean" in str(exc) or "fields are" in str(exc)


def test_unknown_field_suggests_the_close_one():
    with pytest.raises(UnknownFieldError, match="did you mean 'container'"):
        compile_rule("contaner in [blocks]")


def test_error_prints_the_line_with_a_caret():
    with pytest.raises(RuleError) as info:
        compile_rule("depth matches 'x'")
    assert info.value.get_context() == "  depth matches 'x'\n        ^^^^^^^"


def test_errors_are_found_at_compile_time_not_evaluation():
    # a rule that is wrong is rejected before it meets any module
    with pytest.raises(RuleTypeError):
        compile_rule("index matches '3'")


def test_expression_length_limit():
    with pytest.raises(RuleLimitError):
        parse_expression("name == a or " * (MAX_EXPRESSION_CHARS // 13) + "name == b")


def test_nesting_limit():
    text = "(" * (MAX_NESTING + 5) + "name == a" + ")" * (MAX_NESTING + 5)
    with pytest.raises(RuleLimitError):
        parse_expression(text)
    parse_expression("(" * 10 + "name == a" + ")" * 10)


def test_bare_is_root_means_name_is_root():
    import torch

    module = torch.nn.Linear(1, 1)
    assert compile_rule("is root")("", module) and not compile_rule("is root")("blocks.0", module)
    assert compile_rule("is not root")("blocks.0", module) and not compile_rule("is not root")("", module)


@pytest.mark.parametrize("text, hint", [
    ("params > 1T", "numbers take the suffixes K, M and G"),
    ("params >= 10k", "numbers take the suffixes K, M and G"),
    ("name startswith layers.", 'must be quoted: "layers."'),
    ("name in []", "name at least one value"),
    ("name not in []", "name at least one value"),
])
def test_hints_for_common_mistakes(text, hint):
    with pytest.raises(RuleSyntaxError) as caught:
        compile_rule(text)
    assert hint in str(caught.value)
