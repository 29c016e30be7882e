"""Where each character of an expression came from.

An expression written in a TOML string has escapes and may span lines, so its character offsets differ
from the positions in the file. A :class:`SourceMap` maps each offset of the decoded text back to the
1-based line and column of the file, which is what every error reports.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceMap:
    path: str
    # offset in the file of each character of the decoded text, plus one for the position after its end
    offsets: Sequence[int]
    line_starts: Sequence[int]  # offset in the file where each line starts
    lines: Sequence[str]

    @classmethod
    def for_text(cls, text: str, path: str = "<expr>") -> SourceMap:
        """The map of a text that is its own source (an expression given as a Python string)."""
        return cls(path, range(len(text) + 1), line_starts(text), text.split("\n"))

    def locate(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) in the file of character ``offset`` of the decoded text."""
        position = self.offsets[min(max(offset, 0), len(self.offsets) - 1)]
        line = bisect.bisect_right(self.line_starts, position)
        return line, position - self.line_starts[line - 1] + 1

    def source_line(self, line: int) -> str | None:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else None

    def error(self, cls: type, message: str, start: int, end: int | None = None, hint: str | None = None):
        """Build an error of type ``cls`` located at the characters ``start:end`` of the decoded text."""
        line, column = self.locate(start)
        if end is None or end <= start:
            end_line, end_column = line, column + 1
        else:
            end_line, end_column = self.locate(end)
        return cls(message, path=self.path, line=line, column=column, end_line=end_line, end_column=end_column,
                   source_line=self.source_line(line), hint=hint)


def line_starts(text: str) -> list[int]:
    starts = [0]
    index = text.find("\n")
    while index != -1:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return starts
