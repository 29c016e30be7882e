"""Text -> typed expression tree, with every semantic check the language defines.

Parsing is LALR (Lark) over ``shard.lark``. All errors an expression can have are found here, when a rule
is compiled, never when it is evaluated: syntax, unknown fields (with a "did you mean"), operators applied
to a field of the wrong type, and the size limits.
"""

from __future__ import annotations

import difflib
import functools
import re
from decimal import Decimal
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import RuleLimitError, RuleSyntaxError, RuleTypeError, UnknownFieldError
from .source import SourceMap
from .tree import (
    FIELDS,
    INT,
    STR,
    And,
    Compare,
    Expr,
    InList,
    IsDigit,
    IsRoot,
    Matches,
    Not,
    Or,
    Span,
    StringTest,
)

# Limits: an expression is a one-line condition, not a program. See SECURITY.md.
MAX_EXPRESSION_CHARS = 8192
MAX_NESTING = 64

_SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9}

# How the parser's terminal names read in an error message.
_TERMINAL_WORDS = {
    "IDENT": "a field or value",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "CMP": "a comparison (== != < <= > >=)",
    "NOT": "'not'",
    "IN": "'in'",
    "IS": "'is'",
    "AND": "'and'",
    "OR": "'or'",
    "MATCHES": "'matches'",
    "STROP": "'startswith', 'endswith' or 'contains'",
    "DIGIT": "'digit'",
    "ROOT": "'root'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "$END": "the end of the expression",
}


@functools.cache
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("shard.lark")).read_text()
    # Spans come from the tokens (which always carry their offsets): propagating positions onto every tree
    # node would cost a third of the parse time.
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False)


def parse_expression(text: str, source: SourceMap | None = None) -> Expr:
    """Parse and check one expression. ``source`` maps offsets in ``text`` to positions in its file."""
    if source is None:
        source = SourceMap.for_text(text)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise source.error(
            RuleLimitError,
            f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}",
            0,
            1,
        )
    if not text.strip():
        raise source.error(RuleSyntaxError, "empty expression", 0, 1)
    depth = _paren_depth(text)
    if depth > MAX_NESTING:
        raise source.error(RuleLimitError, f"expression nested {depth} parentheses deep; the limit is {MAX_NESTING}",
                           0, 1)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, source) from None
    return _Builder(text, source).build(tree, 0)


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


_WORD = re.compile(r"[A-Za-z0-9_.\-]+")


def _expected_words(expected) -> str:
    words = sorted({_TERMINAL_WORDS.get(name, name) for name in expected})
    return ", ".join(words[:8])


def _quote_hint(text: str, pos: int) -> str | None:
    """For a '.' right after a bare value (`startswith layers.`): say to quote the value."""
    if not text.startswith(".", pos):
        return None
    start = pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        start -= 1
    end = pos
    while end < len(text) and not text[end].isspace() and text[end] not in ",])":
        end += 1
    if start == pos:
        return None
    return f'a value with a trailing or repeated dot must be quoted: "{text[start:end]}"'


def _syntax_error(exc: UnexpectedInput, text: str, source: SourceMap) -> RuleSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos] if pos < len(text) else ""
        if char in "\"'":
            return source.error(RuleSyntaxError, "unterminated string", pos, pos + 1)
        word = _WORD.match(text, pos)
        if word:
            start = pos  # a number the lexer cut short (`1.5X` lexes as `1`, then `.5X`): the whole of it
            while start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
                start -= 1
            number = _WORD.match(text, start)
            if number and number.group()[:1].isdigit() and number.group()[-1:].isalpha():
                return source.error(RuleSyntaxError, f"{number.group()!r} is not a number", start, number.end(),
                                    hint="numbers take the suffixes K, M and G (thousands, millions, billions): "
                                         "10K, 1.5M, 2G")
            hint = _quote_hint(text, pos) or (f"expected {_expected_words(exc.allowed)}" if exc.allowed else None)
            return source.error(RuleSyntaxError, f"unexpected {word.group()!r}", pos, word.end(), hint=hint)
        return source.error(RuleSyntaxError, f"unexpected character {char!r}", pos, pos + 1,
                            hint=_quote_hint(text, pos) or
                            (f"expected {_expected_words(exc.allowed)}" if exc.allowed else None))
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            pos = len(text.rstrip())
            return source.error(RuleSyntaxError, "unexpected end of expression", pos, pos + 1,
                                hint=f"expected {_expected_words(exc.expected)}")
        pos = token.start_pos
        return source.error(RuleSyntaxError, f"unexpected {str(token)!r}", pos, token.end_pos,
                            hint=_quote_hint(text, pos) or f"expected {_expected_words(exc.expected)}")
    if isinstance(exc, UnexpectedEOF):
        pos = len(text.rstrip())
        return source.error(RuleSyntaxError, "unexpected end of expression", pos, pos + 1)
    return source.error(RuleSyntaxError, str(exc).splitlines()[0], 0, 1)  # pragma: no cover


def _span(node: Tree | Token) -> Span:
    """Characters a node covers: from its first token to its last (an empty list has none of its own). Walked
    without recursion: a chain of 2,000 ``not`` is refused by depth, not by Python's stack."""
    first, last = _edge_token(node, first=True), _edge_token(node, first=False)
    return None if first is None else Span(first.start_pos, last.end_pos)


def _edge_token(node: Tree | Token, first: bool) -> Token | None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            return item
        stack.extend(reversed(item.children) if first else item.children)
    return None


class _Builder:
    """Turns Lark's parse tree into the typed tree, checking fields and types on the way."""

    def __init__(self, text: str, source: SourceMap) -> None:
        self.text = text
        self.source = source

    def error(self, cls, message: str, span: Span, hint: str | None = None):
        return self.source.error(cls, message, span.start, span.end, hint=hint)

    def build(self, node: Tree, depth: int) -> Expr:
        if depth > MAX_NESTING:
            raise self.error(RuleLimitError, f"expression nested deeper than {MAX_NESTING} levels", _span(node))
        kind = node.data
        if kind == "or_expr":
            return Or(tuple(self.build(child, depth + 1) for child in node.children), _span(node))
        if kind == "and_expr":
            return And(tuple(self.build(child, depth + 1) for child in node.children), _span(node))
        if kind == "not_":
            return Not(self.build(node.children[1], depth + 1), _span(node))
        return self.test(node)

    # -- values ------------------------------------------------------------------------------------

    def value(self, node: Tree) -> tuple[str, str | int | float]:
        """(kind, value) of a value node: kind is 'bare', 'quoted' or 'number'."""
        token = node.children[0]
        if node.data == "bare":
            return "bare", str(token)
        if node.data == "quoted":
            raw = str(token)
            if raw[0] == "'":
                return "quoted", raw[1:-1]
            return "quoted", _unescape(raw[1:-1])
        raw = str(token)
        scale = _SUFFIX.get(raw[-1], 1)
        digits = raw[:-1] if raw[-1] in _SUFFIX else raw
        number = Decimal(digits) * scale
        if number != number.to_integral_value():
            raise self.error(RuleTypeError, f"{raw} is not a whole number", _span(node))
        return "number", int(number)

    def field(self, token: Token) -> str:
        name = str(token)
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"fields are: {', '.join(FIELDS)}"
            raise self.error(UnknownFieldError, f"unknown field '{name}'", _span(token), hint=hint)
        return name

    def typed_value(self, field: str, node: Tree, op: str):
        kind, value = self.value(node)
        ftype = FIELDS[field]
        if ftype == STR and kind == "number":
            raise self.error(RuleTypeError, f"'{field}' is a string and cannot be compared ({op}) with the number "
                             f"{self.text[_span(node).start:_span(node).end]}", _span(node),
                             hint=f'quote it: "{self.text[_span(node).start:_span(node).end]}"')
        if ftype == INT and kind != "number":
            raise self.error(RuleTypeError, f"'{field}' is a number and cannot be compared ({op}) with the "
                             f"string {value!r}", _span(node))
        return value

    # -- tests -------------------------------------------------------------------------------------

    def test(self, node: Tree):
        kind = node.data
        children = node.children
        if kind in ("bare_is_root", "bare_is_not_root"):  # `is root` alone: the root module, by its name
            span = _span(node)
            return IsRoot("name", kind == "bare_is_not_root", span, span)
        field_token = children[0]
        field = self.field(field_token)
        fspan, span = _span(field_token), _span(node)
        ftype = FIELDS[field]
        if kind == "compare":
            op = str(children[1])
            if op not in ("==", "!=") and ftype != INT:
                raise self.error(RuleTypeError, f"'{op}' needs a number but '{field}' is a string", _span(children[1]),
                                 hint="use ==, !=, in, matches, startswith, endswith or contains")
            value = self.typed_value(field, children[2], op)
            return Compare(field, op, value, span, fspan, _span(children[2]))
        if kind in ("in_list", "not_in_list"):
            items = [i for i in children[-1].children if i is not None]
            if not items:
                word = "not in" if kind == "not_in_list" else "in"
                raise self.error(RuleSyntaxError, f"an empty list: '{field} {word} []' "
                                 f"{'always' if word == 'not in' else 'never'} holds", span,
                                 hint="name at least one value")
            values = tuple(self.typed_value(field, item, "in") for item in items)
            return InList(field, values, kind == "not_in_list", span, fspan, tuple(_span(i) for i in items))
        if kind in ("matches", "string_test"):
            op = str(children[1])
            if ftype != STR:
                raise self.error(RuleTypeError, f"'{op}' needs a string field but '{field}' is a number",
                                 _span(children[1]))
            value = self.typed_value(field, children[2], op)
            if kind == "matches":
                return Matches(field, value, span, fspan, _span(children[2]))
            return StringTest(field, op, value, span, fspan, _span(children[2]))
        if kind in ("is_digit", "is_not_digit"):
            if ftype != STR and field != "index":
                raise self.error(RuleTypeError, f"'is digit' applies to 'index' or a string field, not '{field}'",
                                 fspan)
            return IsDigit(field, kind == "is_not_digit", span, fspan)
        if kind in ("is_root", "is_not_root"):
            if field != "name":
                raise self.error(RuleTypeError, f"'is root' applies to 'name', not '{field}'", fspan,
                                 hint="write 'name is root'")
            return IsRoot(field, kind == "is_not_root", span, fspan)
        raise AssertionError(f"unknown parse node {kind}")  # pragma: no cover


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)
