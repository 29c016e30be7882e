"""What a hostile rule file or header could still do (each was a hang, a quadratic cost or an untyped error):
typed errors with file and position, or bounds in time."""

from __future__ import annotations

import json
import struct
import time

import pytest
from commands import lint_cli

from shardrules import compile_rule, load_rules
from shardrules.errors import CheckpointError, RuleLimitError, WrongValueError
from shardrules.loader import checkpoint
from shardrules.loader.checkpoint import read_header
from shardrules.loader.rename import map_keys

MODEL = 'schema = 1\n[[model]]\nname = "x"\napplies-to = "class == X"\nshard = ["index is digit"]\n'


def header_file(tmp_path, text: str):
    raw = text.encode()
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 128)
    return path


@pytest.mark.parametrize("text, words", [
    ('{"a":' * 5000 + "1" + "}" * 5000, "RecursionError"),
    ('{"t": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 128]}}', "Infinity is not a JSON number"),
    ('{"t": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 128]}}', "NaN is not a JSON number"),
    ('{"t": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 128]}}', "malformed header entry"),
    ('{"t": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 128]}}', "digits"),
], ids=["deep", "infinity", "nan", "1e400", "5000-digits"])
def test_headers_that_json_cannot_hold_are_checkpoint_errors(tmp_path, text, words):
    with pytest.raises(CheckpointError, match=words):
        read_header(header_file(tmp_path, text))


def test_entries_per_header_are_bounded_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_HEADER_ENTRIES", 1000)
    entries = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(1001)}
    with pytest.raises(CheckpointError, match="header names 1001 tensors, more than 1000"):
        read_header(header_file(tmp_path, json.dumps(entries)))
    entries.pop("t1000")
    assert len(read_header(header_file(tmp_path, json.dumps(entries)))) == 1000


def rules_with_rename(tmp_path, pattern: str, replace: str = ""):
    path = tmp_path / "r.toml"
    path.write_text(MODEL + f"[[model.rename]]\npattern = '{pattern}'\nreplace = '{replace}'\n")
    return load_rules(str(path))


@pytest.mark.parametrize("pattern, key", [(r"^([a-z_]+\.?)+$", "a" * 1023 + "!"), (r"(a+)+$", "a" * 1023 + "!"),
                                          (r"^(.*a){20}$", "a" * 1024), (r"^.*a.*a.*a.*a.*b$", "a" * 1024)],
                         ids=["nested-plus", "nested-plus-unanchored", "repeated-star-group", "five-stars"])
def test_renames_take_linear_time_on_any_pattern(tmp_path, pattern, key):
    """Each of these backtracks for minutes to days in Python's re; renames run on RE2."""
    rules = rules_with_rename(tmp_path, pattern)
    renames = rules.models[-1].rename
    keys = [f"blocks.{i}.attn.to_q.weight" for i in range(2000)] + [key]
    start = time.perf_counter()
    map_keys(keys, renames, "m")
    assert (time.perf_counter() - start) / len(keys) < 0.05  # well within 50 ms per key (SECURITY.md)


@pytest.mark.parametrize("pattern, replace, words, column", [
    (r"^(a)\1$", "", "bad regular expression: invalid escape sequence: \\1", 11),
    (r"^a(?=b)$", "", "bad regular expression: invalid perl operator: (?=", 11),
    (r"^a(b)$", r"\g<2>", "bad replace template: group reference \\g<2> at position 0: the pattern has 1 group", 11),
    (r"^a(b)$", r"\g<0", "bad replace template: '\\g' at position 0 is not a group reference", 11),
    (r"^a(?P<x>b)$", r"\g<y>", "the pattern has no group named 'y' (it has x)", 11),
], ids=["backreference", "lookahead", "missing-group", "unterminated", "unknown-name"])
def test_rename_patterns_and_templates_are_checked_when_read(tmp_path, pattern, replace, words, column):
    with pytest.raises(WrongValueError) as error:
        rules_with_rename(tmp_path, pattern, replace)
    assert words in error.value.message, error.value.message
    line = 8 if "template" in words or "group" in words else 7
    assert (error.value.line, error.value.column) == (line, column), str(error.value)


def test_a_long_chain_of_not_is_a_limit_error():
    with pytest.raises(RuleLimitError, match="nested deeper than 64 levels"):
        compile_rule("not " * 2000 + "name == a")


def test_globs_with_thousands_of_unclosed_brackets_compile_at_once():
    start = time.perf_counter()
    for pattern in ("[" * 8000, "[!" * 4000, "[" * 4000 + "a]" + "[" * 4000):
        assert not compile_rule(f'name matches "{pattern}"')("blocks.1", None)
    assert time.perf_counter() - start < 1


def test_dotted_keys_are_bounded_before_tomllib(tmp_path):
    path = tmp_path / "dots.toml"
    path.write_text("schema = 1\n" + "a." * 13000 + "b = 1\n")
    start = time.perf_counter()
    with pytest.raises(RuleLimitError, match="more than 1000 dots outside strings") as error:
        load_rules(str(path))
    assert time.perf_counter() - start < 1
    assert (error.value.line, error.value.column) == (2, 2002)  # the 1,001st dot
    path.write_text(MODEL.replace('name = "x"', 'name = "x"\ndescription = "' + "a." * 3000 + '"') + "# " + "." * 3000)
    assert load_rules(str(path)).model("x")  # dots in strings and comments are not keys


def test_a_byte_order_mark_is_whitespace_and_carets_keep_tabs(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MODEL.encode())
    assert load_rules(str(path)).model("x")
    path.write_text(MODEL.replace('applies-to = "class', 'applies-to =\t\t"clas'))
    with pytest.raises(Exception) as error:
        load_rules(str(path))
    assert str(error.value).endswith('  applies-to =\t\t"clas == X"\n              \t\t ^^^^')


def test_control_characters_cannot_forge_a_finding(tmp_path):
    (tmp_path / "forge.toml").write_text('schema = 1\n["a\\nforge.toml:1:1: SR001 forged"]\n')
    result = lint_cli(str(tmp_path / "forge.toml"))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 2 and "unknown key 'a\\nforge.toml:1:1: SR001 forged'" in result.stdout


@pytest.mark.parametrize("value", [123, None, b"name == a", ["name == a"]])
def test_compile_rule_of_a_non_string_is_a_type_error(value):
    with pytest.raises(TypeError, match="expression string or a parsed Expr"):
        compile_rule(value)
