"""Reading and layering rule files (README, "Rules").

Each file is parsed with ``tomllib`` and checked against the rule-file schema; every error names the file,
line and column of the offending key or value, and for an expression the character inside the string.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import (
    DuplicateModelError,
    MissingKeyError,
    MissingSchemaError,
    RuleError,
    RuleFileError,
    RuleLimitError,
    TomlSyntaxError,
    UnknownKeyError,
    UnknownStrategyError,
    WrongValueError,
)
from ..files import NotRegularFile, open_regular
from ..grammar import SourceMap, parse_expression
from ..grammar.source import line_starts
from .positions import Positions, Span, locate
from .regex import check_template, compile_pattern
from .ruleset import STRATEGIES, Location, ModelRules, Rename, Rule, RuleSet, SequencePlanRules, SequenceRule

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 1 << 20  # a rule file over 1 MiB is refused (SECURITY.md)
MAX_DOTS = 1000  # dots outside strings and comments (dotted keys), refused before tomllib parses (SECURITY.md)
# Strings and comments of a TOML document, each matched without backtracking (disjoint alternatives).
_STRINGS_AND_COMMENTS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*')

_TOP_KEYS = ("schema", "resolution", "strategy", "model")
_MODEL_KEYS = ("name", "applies-to", "shard", "rename", "allow-init", "description", "sequence-parallel", "compile")
_SEQUENCE_KEYS = ("split", "gather", "whole", "refuse", "cannot")
_SPLIT_KEYS = ("match", "input", "output", "dim", "expected-dims", "segments", "layout", "tail-count", "element")
_GATHER_KEYS = ("match", "input", "output", "dim", "expected-dims")
_REFUSE_KEYS = ("match", "input", "why")
_SHARD_TABLE_KEYS = ("match", "reshard-after-forward", "one-unit", "compile")
_RENAME_KEYS = ("pattern", "replace", "fuse")
_STRATEGY_KEYS = {"block-class": ("from",), "common-numbered-block": ("shard",)}
_INIT_VALUES = ("zeros", "ones")


@dataclass(frozen=True)
class RuleFile:
    """One parsed and checked rule file, before layering."""

    path: str
    schema: int
    order: tuple[str, ...] | None
    order_where: Location | None
    block_class_attrs: tuple[str, ...] | None
    numbered_block_rules: tuple[Rule, ...] | None
    models: tuple[ModelRules, ...]


class _FileReader:
    """Reads one rule file. With ``collect``, an error in one key, rule or model entry is recorded and
    the reader goes on with the next (what the linter wants); otherwise the first error is raised."""

    def __init__(self, text: str, path: str, collect: bool = False) -> None:
        self.path = path
        self.text = text
        self.collect = collect
        self.errors: list[RuleError] = []
        self._positions: Positions | None = None

    @property
    def positions(self) -> Positions:
        if self._positions is None:
            try:
                self._positions = locate(self.text, self.path)
            except Exception:  # the scan lost its way (a bug, or a nesting too deep): point at the file start
                self._positions = Positions(self.path, self.text.split("\n"), line_starts=line_starts(self.text))
        return self._positions

    def guard(self, read, *args):
        """``read(*args)``; in collect mode an error is recorded and ``None`` returned instead."""
        try:
            return read(*args)
        except RuleError as exc:
            if not self.collect:
                raise
            self.errors.append(exc)
            return None

    def _error(self, cls, message: str, span: Span, hint: str | None = None):
        lines = self.positions.lines
        return cls(message, path=self.path, line=span.line, column=span.column, end_line=span.end_line,
                   end_column=span.end_column, hint=hint,
                   source_line=lines[span.line - 1] if span.line <= len(lines) else None)

    def key_error(self, cls, message: str, path: tuple, hint: str | None = None):
        return self._error(cls, message, self.positions.key(path), hint)

    def value_error(self, cls, message: str, path: tuple, hint: str | None = None):
        return self._error(cls, message, self.positions.value(path), hint)

    def where(self, path: tuple) -> Location:
        span = self.positions.value(path)
        return Location(self.path, span.line, span.column)

    # -- typed accessors ---------------------------------------------------------------------------

    def check_keys(self, table: dict, allowed: Iterable[str], path: tuple, what: str) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
                error = self.key_error(UnknownKeyError, f"unknown key '{key}' in {what}", path + (key,), hint)
                if not self.collect:
                    raise error
                self.errors.append(error)  # an unknown key is ignored; the rest of the table is still read

    def require(self, table: dict, key: str, path: tuple, what: str) -> Any:
        if key not in table:
            raise self.value_error(MissingKeyError, f"{what} has no '{key}'", path)
        return table[key]

    def typed(self, value: Any, types: type | tuple, path: tuple, expected: str) -> Any:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise self.value_error(WrongValueError, f"'{_dotted(path)}' must be {expected}, "
                                   f"not {_toml_type(value)}", path)
        return value

    def string_list(self, value: Any, path: tuple) -> tuple[str, ...]:
        self.typed(value, list, path, "an array of strings")
        for i, item in enumerate(value):
            self.typed(item, str, path + (i,), "a string")
        return tuple(value)

    def rule(self, text: Any, path: tuple, options: dict | None = None) -> Rule:
        self.typed(text, str, path, "an expression string")
        source: SourceMap = self.positions.string(path, text)
        expr = parse_expression(text, source)
        line, column = source.locate(0)
        return Rule(text, expr, Location(self.path, line, column), source, MappingProxyType(options or {}))

    def shard_list(self, value: Any, path: tuple) -> tuple[Rule, ...]:
        self.typed(value, list, path, "an array of expressions or {match = ...} tables")
        if not value:
            raise self.value_error(WrongValueError, f"'{_dotted(path)}' is empty", path)
        rules = [self.guard(self.shard_item, item, path + (i,)) for i, item in enumerate(value)]
        return tuple(rule for rule in rules if rule is not None)

    def shard_item(self, item: Any, item_path: tuple) -> Rule:
        if isinstance(item, dict):
            self.check_keys(item, _SHARD_TABLE_KEYS, item_path, "a shard rule table")
            match = self.require(item, "match", item_path, "a shard rule table")
            options = {}
            if "reshard-after-forward" in item:
                option_path = item_path + ("reshard-after-forward",)
                option = self.typed(item["reshard-after-forward"], (bool, int), option_path,
                                    "true, false or a number of ranks")
                if not isinstance(option, bool) and option < 1:
                    raise self.value_error(WrongValueError, "'reshard-after-forward' must be a positive "
                                           "number of ranks", option_path)
                options["reshard_after_forward"] = option
            if "one-unit" in item:  # every module the rule matches joins one FSDP unit (fully_shard of a list)
                if self.typed(item["one-unit"], bool, item_path + ("one-unit",), "true or false"):
                    options["one_unit"] = True
            if "compile" in item:  # with load_sharded(compile=...): whether these units' forward is compiled
                options["compile"] = self.typed(item["compile"], bool, item_path + ("compile",), "true or false")
            return self.rule(match, item_path + ("match",), options)
        self.typed(item, str, item_path, "an expression string or a {match = ...} table")
        return self.rule(item, item_path)

    # -- sections ----------------------------------------------------------------------------------

    def read(self) -> RuleFile | None:
        """The checked file; in collect mode ``None`` when it could not be read at all."""
        return self.guard(self._read)

    def _check_dots(self) -> None:
        """Refuse more than ``MAX_DOTS`` dots outside strings and comments before ``tomllib`` reads the text:
        dotted keys nest tables, and tomllib takes time quadratic in their depth (13,000 dots: seconds)."""
        total = self.text.count(".")
        if total <= MAX_DOTS:
            return
        spans = [m.span() for m in _STRINGS_AND_COMMENTS.finditer(self.text)]
        if total - sum(self.text.count(".", start, end) for start, end in spans) <= MAX_DOTS:
            return
        seen, k, offset = 0, 0, -1
        while seen <= MAX_DOTS:  # the offset of the first dot past the limit, outside strings
            offset = self.text.index(".", offset + 1)
            while k < len(spans) and spans[k][1] <= offset:
                k += 1
            if not (k < len(spans) and spans[k][0] <= offset):
                seen += 1
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        raise RuleLimitError(f"more than {MAX_DOTS} dots outside strings (dotted keys nest tables); a rule file "
                             f"needs a few", path=self.path, line=line, column=column, end_line=line,
                             end_column=column + 1, source_line=self.text.split("\n")[line - 1][:200])

    def _read(self) -> RuleFile:
        if len(self.text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise RuleLimitError(f"rule file is larger than {MAX_FILE_BYTES} bytes", path=self.path)
        if self.text.startswith("\ufeff"):  # a UTF-8 byte order mark, as editors on Windows write: whitespace
            self.text = " " + self.text[1:]  # (one column, so every position stays where the editor shows it)
            self._positions = None
        self._check_dots()
        try:
            doc = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            raise _toml_error(exc, self.text, self.path) from None
        except RecursionError:
            raise RuleLimitError("TOML document nested too deeply", path=self.path) from None
        self.check_keys(doc, _TOP_KEYS, (), "a rule file")
        if "schema" not in doc:
            raise MissingSchemaError("rule file has no 'schema' key", path=self.path, line=1, column=1,
                                     hint=f"add 'schema = {SCHEMA_VERSION}' as the first line",
                                     source_line=self.text.split("\n", 1)[0])
        schema = self.typed(doc["schema"], int, ("schema",), "an integer")
        if schema != SCHEMA_VERSION:
            raise self.value_error(WrongValueError, f"unsupported schema {schema}; this version reads "
                                   f"schema {SCHEMA_VERSION}", ("schema",))
        order = self.guard(self.resolution, doc) if "resolution" in doc else None
        strategies = self.guard(self.strategies, doc) if "strategy" in doc else None
        attrs, numbered = strategies if strategies else (None, None)
        models = self.guard(self.models, doc) if "model" in doc else ()
        return RuleFile(self.path, schema, order[0] if order else None, order[1] if order else None, attrs,
                        numbered, tuple(models or ()))

    def resolution(self, doc: dict) -> tuple[tuple[str, ...], Location]:
        resolution = self.typed(doc["resolution"], dict, ("resolution",), "a table")
        self.check_keys(resolution, ("order",), ("resolution",), "[resolution]")
        path = ("resolution", "order")
        order = self.string_list(self.require(resolution, "order", ("resolution",), "[resolution]"), path)
        if not order:
            raise self.value_error(WrongValueError, "'resolution.order' is empty", path)
        for i, name in enumerate(order):
            if name not in STRATEGIES:
                close = difflib.get_close_matches(name, STRATEGIES, n=1, cutoff=0.5)
                hint = f"did you mean '{close[0]}'?" if close else f"strategies are: {', '.join(STRATEGIES)}"
                raise self.value_error(UnknownStrategyError, f"unknown strategy '{name}'", path + (i,), hint)
        return order, self.where(path)

    def strategies(self, doc: dict) -> tuple[tuple[str, ...] | None, tuple[Rule, ...] | None]:
        attrs = numbered = None
        strategies = self.typed(doc["strategy"], dict, ("strategy",), "a table")
        self.check_keys(strategies, _STRATEGY_KEYS, ("strategy",), "[strategy]")
        for name, table in strategies.items():
            if name not in _STRATEGY_KEYS:
                continue
            path = ("strategy", name)
            self.typed(table, dict, path, "a table")
            self.check_keys(table, _STRATEGY_KEYS[name], path, f"[strategy.{name}]")
            key = _STRATEGY_KEYS[name][0]
            value = self.require(table, key, path, f"[strategy.{name}]")
            if name == "block-class":
                attrs = self.string_list(value, path + (key,))
            else:
                numbered = self.shard_list(value, path + (key,))
        return attrs, numbered

    def models(self, doc: dict) -> list[ModelRules]:
        entries = self.typed(doc["model"], list, ("model",), "an array of tables ([[model]])")
        models: list[ModelRules] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            model = self.guard(self.model, entry, ("model", i))
            if model is None:
                continue
            if model.name in seen:
                self.guard(self._duplicate, model, models[seen[model.name]], i)
                continue
            seen[model.name] = len(models)
            models.append(model)
        return models

    def _duplicate(self, model: ModelRules, first: ModelRules, i: int) -> None:
        raise self.value_error(DuplicateModelError, f"model '{model.name}' is defined twice in this file (first "
                               f"at line {first.where.line})", ("model", i, "name"))

    def model(self, entry: Any, path: tuple) -> ModelRules | None:
        self.typed(entry, dict, path, "a table")
        self.check_keys(entry, _MODEL_KEYS, path, "[[model]]")
        name = self.typed(self.require(entry, "name", path, "[[model]]"), str, path + ("name",), "a string")
        if not name:
            raise self.value_error(WrongValueError, "model name is empty", path + ("name",))
        # Each part on its own: in collect mode an error in applies-to does not hide those of the shard list.
        applies_to = self.guard(lambda: self.rule(self.require(entry, "applies-to", path, f"model '{name}'"),
                                                  path + ("applies-to",)))
        shard = self.guard(lambda: self.shard_list(self.require(entry, "shard", path, f"model '{name}'"),
                                                   path + ("shard",)))
        if "description" in entry:
            self.typed(entry["description"], str, path + ("description",), "a string")
        renames = []
        if "rename" in entry:
            self.typed(entry["rename"], list, path + ("rename",), "an array of tables ([[model.rename]])")
            for i, item in enumerate(entry["rename"]):
                renames.append(self.rename(item, path + ("rename", i)))
        allow_init = {}
        if "allow-init" in entry:
            table = self.typed(entry["allow-init"], dict, path + ("allow-init",), "a table of name = \"zeros\"")
            for key, value in table.items():
                vpath = path + ("allow-init", key)
                if value not in _INIT_VALUES:
                    raise self.value_error(WrongValueError, f"'allow-init.{key}' must be \"zeros\" or \"ones\"",
                                           vpath)
                allow_init[key] = value
        # with load_sharded(compile=...): modules outside the units whose forward is compiled too
        regions = self.guard(lambda: self.rule(entry["compile"], path + ("compile",))) if "compile" in entry else None
        sequence = None
        if "sequence-parallel" in entry:
            sequence = self.guard(self.sequence_parallel, entry["sequence-parallel"], path + ("sequence-parallel",))
            if sequence is None:
                return None
        if applies_to is None or shard is None:  # collect mode: the errors are recorded; the entry is left out
            return None
        span = self.positions.key(path)
        return ModelRules(name, applies_to, shard, tuple(renames), MappingProxyType(allow_init),
                          Location(self.path, span.line, span.column), sequence, regions)

    def sequence_parallel(self, table: Any, path: tuple) -> SequencePlanRules:
        """``[model.sequence-parallel]``: ``split`` and ``gather``, each a non-empty array of tables."""
        self.typed(table, dict, path, "a table with 'split' and 'gather'")
        self.check_keys(table, _SEQUENCE_KEYS, path, "[model.sequence-parallel]")
        if "cannot" in table:  # a model no plan can split: why, and nothing else
            others = [key for key in table if key != "cannot"]
            if others:
                raise self.value_error(WrongValueError, f"'cannot' stands alone: a model that cannot run split has no "
                                       f"'{others[0]}'", path + (others[0],))
            why = self.typed(table["cannot"], str, path + ("cannot",), "a sentence")
            if not why.strip():
                raise self.value_error(WrongValueError, "'cannot' says why no split of this model can run",
                                       path + ("cannot",))
            return SequencePlanRules((), (), self.where(path + ("cannot",)), cannot=why.strip())
        lists = {}
        for kind in ("split", "gather"):
            items = self.require(table, kind, path, "[model.sequence-parallel]")
            self.typed(items, list, path + (kind,), "an array of tables")
            if not items:
                raise self.value_error(WrongValueError, f"'{_dotted(path + (kind,))}' is empty", path + (kind,))
            lists[kind] = tuple(self.sequence_item(kind, item, path + (kind, i)) for i, item in enumerate(items))
        whole = self.rule(table["whole"], path + ("whole",)) if "whole" in table else None
        refuse: tuple[SequenceRule, ...] = ()
        if "refuse" in table:
            items = self.typed(table["refuse"], list, path + ("refuse",), "an array of tables")
            refuse = tuple(self.refusal(item, path + ("refuse", i)) for i, item in enumerate(items))
        return SequencePlanRules(lists["split"], lists["gather"], self.where(path), whole, refuse)

    def refusal(self, item: Any, path: tuple) -> SequenceRule:
        """A ``refuse`` entry: a forward argument that a split run cannot take, and why (all three keys required)."""
        self.typed(item, dict, path, "a table")
        what = "a sequence-parallel refuse table"
        self.check_keys(item, _REFUSE_KEYS, path, what)
        match = self.rule(self.require(item, "match", path, what), path + ("match",))
        name = self.typed(self.require(item, "input", path, what), str, path + ("input",), "a forward argument's name")
        if not name.isidentifier():
            raise self.value_error(WrongValueError, f"'input' must be a forward argument's name, not {name!r}",
                                   path + ("input",))
        why = self.typed(self.require(item, "why", path, what), str, path + ("why",), "a sentence")
        if not why.strip():
            raise self.value_error(WrongValueError, "'why' says why a split run cannot take the argument",
                                   path + ("why",))
        return SequenceRule("refuse", match, name, None, 0, None, self.where(path + ("match",)), why=why.strip())

    def sequence_item(self, kind: str, item: Any, path: tuple) -> SequenceRule:
        self.typed(item, dict, path, "a table")
        what = f"a sequence-parallel {kind} table"
        self.check_keys(item, _SPLIT_KEYS if kind == "split" else _GATHER_KEYS, path, what)
        match = self.rule(self.require(item, "match", path, what), path + ("match",))
        dim = self.typed(self.require(item, "dim", path, what), int, path + ("dim",), "an integer")
        expected = None
        if "expected-dims" in item:
            expected = self.typed(item["expected-dims"], int, path + ("expected-dims",), "an integer")
            if expected < 1:
                raise self.value_error(WrongValueError, "'expected-dims' must be at least 1", path + ("expected-dims",))
            if not -expected <= dim < expected:
                raise self.value_error(WrongValueError, f"'dim' {dim} is outside a tensor of {expected} dimensions",
                                       path + ("dim",))
        name = output = None
        if kind == "split":
            if ("input" in item) == ("output" in item):
                raise self.value_error(MissingKeyError, f"{what} names either 'input' (a forward argument) or "
                                       "'output' (an index into the module's outputs), not both or neither", path)
            if "input" in item:
                name = self.typed(item["input"], str, path + ("input",), "a forward argument's name")
                if not name.isidentifier():
                    raise self.value_error(WrongValueError, f"'input' must be a forward argument's name, not "
                                           f"{name!r}", path + ("input",))
        elif "input" in item:  # a gather of a forward argument, before the module runs (a split's converse)
            if "output" in item:
                raise self.value_error(MissingKeyError, f"{what} names either 'input' (a forward argument, gathered "
                                       "before the module runs) or 'output' (an index into its outputs), not both",
                                       path)
            name = self.typed(item["input"], str, path + ("input",), "a forward argument's name")
            if not name.isidentifier():
                raise self.value_error(WrongValueError, f"'input' must be a forward argument's name, not {name!r}",
                                       path + ("input",))
        if "output" in item or (kind == "gather" and name is None):
            output = self.typed(item.get("output", 0), int, path + ("output",), "an integer")
            if output < 0:
                raise self.value_error(WrongValueError, "'output' must be 0 or more", path + ("output",))
        segments: tuple[str, ...] = ()
        if "segments" in item:
            segments = self.string_list(item["segments"], path + ("segments",))
            if name is None or len(segments) < 2 or not all(s.isidentifier() for s in segments):
                raise self.value_error(WrongValueError, "'segments' names two or more forward arguments whose "
                                       "tokens the 'input' concatenates", path + ("segments",))
        layout = "local"
        if "layout" in item:
            layout = self.typed(item["layout"], str, path + ("layout",), "'local' or 'gathered'")
            if layout not in ("local", "gathered") or not segments:
                raise self.value_error(WrongValueError, "'layout' goes with 'segments': \"local\" (each rank keeps "
                                       "its pieces) or \"gathered\" (the whole tensor, in the order the attention "
                                       "sees the tokens after Ulysses' exchange)", path + ("layout",))
        tail_count = None
        if "tail-count" in item:
            tail_count = self.typed(item["tail-count"], str, path + ("tail-count",), "a forward argument's name")
            if name is None or kind != "split" or segments or not tail_count.isidentifier():
                raise self.value_error(WrongValueError, "'tail-count' goes with the split of an 'input' (not by "
                                       "segments): the name of a forward argument that counts the tokens at the end "
                                       "of that tensor, which each rank is given its share of", path + ("tail-count",))
        element = None
        if "element" in item:
            element = self.typed(item["element"], int, path + ("element",), "an integer")
            if name is None or kind != "split" or segments or element < 0:
                raise self.value_error(WrongValueError, "'element' goes with the split of an 'input' (not by "
                                       "segments): the index, 0 or more, of the element of that tuple or list "
                                       "argument which is split, the others passed as they are", path + ("element",))
        return SequenceRule(kind, match, name, output, dim, expected, self.where(path + ("match",)), segments,
                            layout=layout, tail_count=tail_count, element=element)

    def rename(self, item: Any, path: tuple) -> Rename:
        self.typed(item, dict, path, "a table")
        self.check_keys(item, _RENAME_KEYS, path, "[[model.rename]]")
        pattern = self.typed(self.require(item, "pattern", path, "[[model.rename]]"), str, path + ("pattern",),
                             "a regular expression string")
        replace = self.typed(self.require(item, "replace", path, "[[model.rename]]"), str, path + ("replace",),
                             "a string")
        try:
            compiled = compile_pattern(pattern)
        except ValueError as exc:
            raise self.value_error(WrongValueError, f"bad regular expression: {exc}", path + ("pattern",)) from None
        try:
            check_template(replace, compiled.groups, set(compiled.groupindex))
        except ValueError as exc:
            raise self.value_error(WrongValueError, f"bad replace template: {exc}", path + ("replace",)) from None
        fuse: tuple[str, ...] = ()
        if "fuse" in item:
            fuse = self.string_list(item["fuse"], path + ("fuse",))
            if "part" not in compiled.groupindex:
                raise self.value_error(WrongValueError, "a fusing rename needs a group named 'part' in its "
                                       "pattern, e.g. (?P<part>q|k|v)", path + ("pattern",))
        return Rename(pattern, replace, fuse, self.where(path + ("pattern",)))


def read_rule_file(text: str, path: str) -> RuleFile:
    """Parse and check one rule file's text. Raises a :class:`~shardrules.errors.RuleError` on bad input."""
    return _FileReader(text, path).read()


def check_rule_file(text: str, path: str) -> tuple[RuleFile | None, list[RuleError]]:
    """Parse one rule file, recording every error instead of stopping at the first (for the linter).
    Returns what could be read (entries with errors left out) and the errors, in file order."""
    reader = _FileReader(text, path, collect=True)
    result = reader.read()
    return result, sorted(reader.errors, key=lambda e: (e.line, e.column))


def _embedded_files() -> list[tuple[str, str]]:
    root = resources.files("shardrules.rules")
    found = [("defaults.toml", root / "defaults.toml")]
    models = root / "models"
    found += sorted((f"models/{item.name}", item) for item in models.iterdir() if item.name.endswith(".toml"))
    return [(f"shardrules/rules/{name}", item.read_text(encoding="utf-8")) for name, item in found]


def load_rules(*paths: str | os.PathLike, embedded: bool = True) -> RuleSet:
    """The embedded rules, with each user file in ``paths`` layered over them in order.

    A user ``[[model]]`` with the name of an earlier one replaces it; a user ``[resolution]`` or
    ``[strategy.*]`` replaces the earlier one. Explicit models are tried later files first.
    """
    texts = [(str(path), _read_user_file(Path(path))) for path in paths]  # user files first: fail fast
    files: list[RuleFile] = []
    if embedded:
        files += [read_rule_file(text, name) for name, text in _embedded_files()]
    files += [read_rule_file(text, path) for path, text in texts]
    return layer(files)


def read_rule_text(path: Path) -> str:
    """A rule file's text. Raises ``OSError`` when it cannot be read, a rule error when it is over the size
    limit or not UTF-8."""
    try:  # checked on the file opened: /dev/zero, a FIFO or stdin report st_size 0 and never end
        f = open_regular(path)
    except NotRegularFile as exc:
        raise RuleFileError(f"not a regular file ({exc.strerror})", path=str(path)) from None
    with f:
        data = f.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows after the check
    if len(data) > MAX_FILE_BYTES:
        raise RuleLimitError(f"rule file is larger than {MAX_FILE_BYTES} bytes", path=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TomlSyntaxError("rule file is not UTF-8 text", path=str(path), line=line, column=column) from None


def _read_user_file(path: Path) -> str:
    try:
        return read_rule_text(path)
    except OSError as exc:
        raise RuleFileError(f"cannot read rule file: {exc.strerror}", path=str(path)) from None


def layer(files: list[RuleFile]) -> RuleSet:
    """Layer parsed rule files, first file lowest."""
    order = order_where = attrs = numbered = None
    models: list[ModelRules] = []
    for rule_file in files:
        if rule_file.order is not None:
            order, order_where = rule_file.order, rule_file.order_where
        if rule_file.block_class_attrs is not None:
            attrs = rule_file.block_class_attrs
        if rule_file.numbered_block_rules is not None:
            numbered = rule_file.numbered_block_rules
        replaced = {m.name for m in rule_file.models}
        # this file's entries come first (later files first), in file order
        models = list(rule_file.models) + [m for m in models if m.name not in replaced]
    if order is None:
        raise RuleFileError("no rule file gives a [resolution] order", path=files[0].path if files else "<rules>")
    return RuleSet(order, order_where, attrs or (), numbered or (), tuple(models), tuple(f.path for f in files))


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _toml_error(exc: Exception, text: str, path: str) -> TomlSyntaxError:
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    message = getattr(exc, "msg", None) or str(exc)
    if line is None:  # Python < 3.14 puts the position in the message only
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            line, column = int(found.group(1)), int(found.group(2))
            message = message[:found.start()].strip()
        elif "end of document" in message:
            line = text.count("\n") + 1
            column = len(text.rsplit("\n", 1)[-1]) + 1
            message = re.sub(r"\s*\(at end of document\)", "", message)
    line, column = line or 1, column or 1
    lines = text.split("\n")
    return TomlSyntaxError(f"invalid TOML: {message}", path=path, line=line, column=column,
                           source_line=lines[line - 1] if line <= len(lines) else None)
