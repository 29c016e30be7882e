"""Positions of keys and values in a TOML document.

``tomllib`` returns values without positions, yet every error about a rule file must name the line and
column of the offending token, and an error inside an expression must point at the character inside the
string. :func:`locate` scans a document that ``tomllib`` already accepted and records, for every key path
(``("model", 0, "shard", 1, "match")``), the span of the key and of the value, and for every string value a
:class:`SourceMap` from each decoded character back to the file.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..grammar import SourceMap
from ..grammar.source import line_starts

KeyPath = tuple  # of str (keys) and int (array and array-of-tables indices); not a file path

_BARE_KEY = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass
class Positions:
    path: str
    lines: list[str]
    keys: dict[KeyPath, Span] = field(default_factory=dict)
    values: dict[KeyPath, Span] = field(default_factory=dict)
    strings: dict[KeyPath, SourceMap] = field(default_factory=dict)

    def key(self, path: KeyPath) -> Span:
        """Span of the key at ``path``, or of the nearest enclosing one that was written out."""
        while path:
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return Span(1, 1, 1, 2)

    def value(self, path: KeyPath) -> Span:
        return self.values.get(path) or self.key(path)

    line_starts: list[int] = field(default_factory=lambda: [0])

    def string(self, path: KeyPath, text: str) -> SourceMap:
        """The map of the string value at ``path``; its start for every offset if the scan lost track."""
        smap = self.strings.get(path)
        if smap is not None and len(smap.offsets) == len(text) + 1:
            return smap
        span = self.value(path)
        start = self.line_starts[span.line - 1] + span.column - 1 if span.line <= len(self.line_starts) else 0
        return SourceMap(self.path, (start,) * (len(text) + 1), self.line_starts, self.lines)


class _Scanner:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = line_starts(text)
        self.out = Positions(path, text.split("\n"), line_starts=self.line_starts)
        self.tables_of_arrays: dict[KeyPath, int] = {}

    # -- positions ---------------------------------------------------------------------------------

    def where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def span(self, start: int, end: int) -> Span:
        return Span(*self.where(start), *self.where(max(end, start + 1)))

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def skip_blank(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                while self.pos < len(text) and text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    # -- document ----------------------------------------------------------------------------------

    def document(self) -> Positions:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.out
            if self.peek(2) == "[[":
                start = self.pos
                self.pos += 2
                keys = self.dotted_key()
                self.skip_blank(False)
                self.pos += 2  # ]]
                concrete = self.resolve(keys[:-1]) + (keys[-1][0],)
                index = self.tables_of_arrays.get(concrete, 0)
                self.tables_of_arrays[concrete] = index + 1
                table = concrete + (index,)
                self.out.keys[table] = self.span(start, self.pos)
                self.out.keys.setdefault(concrete, self.span(start, self.pos))
            elif self.peek() == "[":
                start = self.pos
                self.pos += 1
                keys = self.dotted_key()
                self.skip_blank(False)
                self.pos += 1  # ]
                table = self.resolve(keys)
                self.out.keys[table] = keys[-1][1]
            else:
                self.key_value(table)

    def resolve(self, keys: list[tuple[str, Span]]) -> KeyPath:
        """The concrete path of a header's keys: an array of tables stands for its last element."""
        path: KeyPath = ()
        for name, span in keys:
            path = path + (name,)
            self.out.keys.setdefault(path, span)
            if path in self.tables_of_arrays:
                path = path + (self.tables_of_arrays[path] - 1,)
        return path

    def dotted_key(self) -> list[tuple[str, Span]]:
        keys = []
        while True:
            self.skip_blank(False)
            start = self.pos
            c = self.peek()
            if c == '"':
                name = self.basic_string(start, multiline=False)[0]
            elif c == "'":
                end = self.text.index("'", start + 1)
                name = self.text[start + 1:end]
                self.pos = end + 1
            else:
                while self.pos < len(self.text) and self.text[self.pos] in _BARE_KEY:
                    self.pos += 1
                name = self.text[start:self.pos]
            keys.append((name, self.span(start, self.pos)))
            self.skip_blank(False)
            if self.peek() != ".":
                return keys
            self.pos += 1

    def key_value(self, table: KeyPath) -> None:
        keys = self.dotted_key()
        path = table
        for name, span in keys:
            path = path + (name,)
            self.out.keys[path] = span
        self.skip_blank(False)
        self.pos += 1  # =
        self.skip_blank(False)
        self.value(path)

    # -- values ------------------------------------------------------------------------------------

    def value(self, path: KeyPath) -> None:
        start = self.pos
        c = self.peek()
        if self.peek(3) in ('"""', "'''"):
            _, positions = (self.basic_string if c == '"' else self.literal_string)(start, multiline=True)
            self.record_string(path, start, positions)
        elif c == '"':
            _, positions = self.basic_string(start, multiline=False)
            self.record_string(path, start, positions)
        elif c == "'":
            _, positions = self.literal_string(start, multiline=False)
            self.record_string(path, start, positions)
        elif c == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() == "]":
                    self.pos += 1
                    break
                self.value(path + (index,))
                index += 1
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        elif c == "{":
            self.pos += 1
            while True:
                self.skip_blank(newlines=True)
                if self.peek() == "}":
                    self.pos += 1
                    break
                self.key_value(path)
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.pos += 1
            while self.pos > start and self.text[self.pos - 1] in " \t\r":
                self.pos -= 1
        self.out.values[path] = self.span(start, self.pos)

    def record_string(self, path: KeyPath, start: int, positions: list[int]) -> None:
        self.out.strings[path] = SourceMap(self.out.path, positions, self.line_starts, self.out.lines)

    def literal_string(self, start: int, multiline: bool) -> tuple[str, list[int]]:
        quote = "'''" if multiline else "'"
        i = start + len(quote)
        if multiline and self.text.startswith("\n", i):
            i += 1
        elif multiline and self.text.startswith("\r\n", i):
            i += 2
        end = self.text.index(quote, i)
        if multiline:
            while self.text.startswith("'", end + 3):  # up to two quotes may close the content
                end += 1
        self.pos = end + len(quote)
        return self.text[i:end], range(i, end + 1)

    def basic_string(self, start: int, multiline: bool) -> tuple[str, list[int]]:
        text = self.text
        quote = '"""' if multiline else '"'
        i = start + len(quote)
        if multiline and text.startswith("\n", i):
            i += 1
        elif multiline and text.startswith("\r\n", i):
            i += 2
        chars: list[str] = []
        positions: list[int] = []
        while True:
            if text.startswith(quote, i):
                if multiline and text.startswith('"', i + 3):
                    chars.append('"')
                    positions.append(i)
                    i += 1
                    continue
                break
            c = text[i]
            if c == "\\":
                nxt = text[i + 1]
                if nxt in _ESCAPES:
                    chars.append(_ESCAPES[nxt])
                    positions.append(i)
                    i += 2
                elif nxt in "uU":
                    width = 4 if nxt == "u" else 8
                    chars.append(chr(int(text[i + 2:i + 2 + width], 16)))
                    positions.append(i)
                    i += 2 + width
                else:  # line-ending backslash: drop the newline and the whitespace after it
                    i += 1
                    while text[i] in " \t\r\n":
                        i += 1
            elif c == "\r" and text.startswith("\r\n", i):
                chars.append("\n")
                positions.append(i)
                i += 2
            else:
                chars.append(c)
                positions.append(i)
                i += 1
        positions.append(i)
        self.pos = i + len(quote)
        return "".join(chars), positions


def locate(text: str, path: str) -> Positions:
    """Positions of every key and value of ``text``, a document that ``tomllib`` has already parsed."""
    return _Scanner(text, path).document()
