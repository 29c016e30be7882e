"""Rule files (SPEC §3): layering, strict keys, and errors that point into the TOML text."""

from __future__ import annotations

import textwrap

import pytest

from shardrules.errors import (
    DuplicateModelError,
    MissingKeyError,
    RuleFileError,
    RuleLimitError,
    RuleSyntaxError,
    TomlSyntaxError,
    UnknownFieldError,
    UnknownKeyError,
    UnknownStrategyError,
    WrongValueError,
)
from shardrules.rules import MAX_FILE_BYTES, load_rules

GOOD = """\
schema = 1

[[model]]
name = "mine"
applies-to = "class == Mine"
shard = ["container == blocks and index is digit"]
"""


def write(tmp_path, text, name="rules.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_embedded_rules_load():
    rules = load_rules()
    assert rules.order == ("explicit", "block-class", "common-numbered-block")
    assert rules.block_class_attrs == ("_repeated_blocks", "_no_split_modules")
    names = [m.name for m in rules.models]
    for expected in ["flux", "wan", "hunyuanvideo", "qwen-image", "sana", "sd3"]:
        assert expected in names
    assert all(f.startswith("shardrules/rules/") for f in rules.files)


def test_user_file_is_layered_over_the_defaults(tmp_path):
    rules = load_rules(write(tmp_path, GOOD))
    assert rules.models[0].name == "mine"  # later files are tried first
    assert {"flux", "wan"} <= {m.name for m in rules.models}


def test_user_model_with_an_embedded_name_replaces_it(tmp_path):
    path = write(tmp_path, GOOD.replace('"mine"', '"flux"'))
    rules = load_rules(path)
    flux = [m for m in rules.models if m.name == "flux"]
    assert len(flux) == 1 and flux[0].where.path == str(path)


def test_user_resolution_replaces_the_order(tmp_path):
    path = write(tmp_path, 'schema = 1\n[resolution]\norder = ["common-numbered-block"]\n')
    assert load_rules(path).order == ("common-numbered-block",)


def test_later_user_file_wins(tmp_path):
    first = write(tmp_path, GOOD, "a.toml")
    second = write(tmp_path, GOOD.replace("container == blocks", "container == layers"), "b.toml")
    rules = load_rules(first, second)
    assert [m.name for m in rules.models].count("mine") == 1
    assert rules.model("mine").shard[0].text.startswith("container == layers")


def test_rule_options_from_inline_table(tmp_path):
    path = write(tmp_path, GOOD.replace('shard = ["container == blocks and index is digit"]',
                                        'shard = [{ match = "name == proj_out", reshard-after-forward = false }]'))
    rule = load_rules(path).model("mine").shard[0]
    assert rule.options == {"reshard_after_forward": False}
    assert (rule.where.line, rule.where.column) == (6, 21)


def test_rule_location_in_a_multiline_string(tmp_path):
    text = GOOD.replace('shard = ["container == blocks and index is digit"]',
                        'shard = [\n  """\n  container == blocks\n    and indx is digit"""\n]')
    with pytest.raises(UnknownFieldError) as info:
        load_rules(write(tmp_path, text))
    assert (info.value.line, info.value.column) == (9, 9)
    assert info.value.source_line == "    and indx is digit\"\"\""


def test_rule_location_after_escapes(tmp_path):
    text = GOOD.replace('"container == blocks and index is digit"', r'"name == \"a\\b\" and dept == 1"')
    with pytest.raises(UnknownFieldError) as info:
        load_rules(write(tmp_path, text))
    line = (tmp_path / "rules.toml").read_text().splitlines()[info.value.line - 1]
    assert line[info.value.column - 1:].startswith("dept")


# Bad rule files: (text, error type, line, the token at line:col, a word the message must hold).
BAD_FILES = [
    ("[[model]]\nname = 'x'\n", RuleFileError, 1, None, "schema"),
    ("schema = 1\nschemas = 2\n", UnknownKeyError, 2, "schemas", "did you mean 'schema'"),
    ("schema = 2\n", WrongValueError, 1, "2", "unsupported schema"),
    ("schema = '1'\n", WrongValueError, 1, "'1'", "must be an integer"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies_to = 'class == X'\nshard = ['name == a']\n",
     UnknownKeyError, 4, "applies_to", "did you mean 'applies-to'"),
    ("schema = 1\n[[model]]\nname = 'x'\nshard = ['name == a']\n", MissingKeyError, 2, "[[model]]", "applies-to"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = 'name == a'\n",
     WrongValueError, 5, "'name == a'", "must be an array"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = []\n", WrongValueError, 5, "[]", "empty"),
    ("schema = 1\n[resolution]\norder = ['explicit', 'block_class']\n", UnknownStrategyError, 3, "'block_class'",
     "did you mean 'block-class'"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a']\n"
     "[[model]]\nname = 'x'\napplies-to = 'class == Y'\nshard = ['name == b']\n", DuplicateModelError, 7, "'x'",
     "defined twice"),
    ("schema = 1\n[[model]]\nname = 'x'\n", MissingKeyError, 2, "[[model]]", "applies-to"),
    ("schema = 1\nmodel = [\n", TomlSyntaxError, 3, None, "invalid TOML"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\n"
     "shard = [{ match = 'name == a', reshard_after_forward = false }]\n", UnknownKeyError, 5,
     "reshard_after_forward", "did you mean 'reshard-after-forward'"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\n"
     "shard = [{ match = 'name == a', reshard-after-forward = 0 }]\n", WrongValueError, 5, "0", "positive"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a']\n"
     "[[model.rename]]\npattern = '(unclosed'\nreplace = 'x'\n", WrongValueError, 7, "'(unclosed'",
     "regular expression"),
    ("schema = 1\n[strategy.block-classes]\nfrom = ['_no_split_modules']\n", UnknownKeyError, 2, "block-classes",
     "did you mean 'block-class'"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'clas == X'\nshard = ['name == a']\n", UnknownFieldError, 4,
     "clas", "did you mean 'class'"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name == a', 3]\n", WrongValueError, 5,
     "3", "expression string"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = [{ reshard-after-forward = true }]\n",
     MissingKeyError, 5, "{", "match"),
    ("schema = 1\n[[model]]\nname = 'x'\napplies-to = 'class == X'\nshard = ['name ==']\n", RuleSyntaxError, 5,
     None, "unexpected end"),
]


@pytest.mark.parametrize(("text", "error", "line", "token", "words"), BAD_FILES)
def test_bad_rule_file(tmp_path, text, error, line, token, words):
    path = write(tmp_path, text)
    with pytest.raises(error) as info:
        load_rules(path, embedded=False)
    exc = info.value
    assert (exc.path, exc.line) == (str(path), line)
    assert str(exc).startswith(f"{path}:{line}:{exc.column}: ")
    assert words in str(exc)
    if token is not None:
        assert path.read_text().splitlines()[line - 1][exc.column - 1:].startswith(token)


def test_file_size_limit(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text("schema = 1\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(RuleLimitError):
        load_rules(path)


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")
    binary = tmp_path / "junk.toml"
    binary.write_bytes(b"schema = 1\n\xff\xfe\x00junk")
    with pytest.raises(TomlSyntaxError, match="UTF-8") as info:
        load_rules(binary)
    assert info.value.line == 2


def test_no_resolution_anywhere_is_an_error(tmp_path):
    with pytest.raises(RuleFileError, match="resolution"):
        load_rules(write(tmp_path, GOOD), embedded=False)
