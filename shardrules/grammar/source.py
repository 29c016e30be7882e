"""Where each character of an expression came from.

An expression written in a TOML string has escapes and may span lines, so its character offsets differ
from the positions in the file. A :class:`SourceMap` maps each offset of the decoded text back to the
1-based line and column of the file, which is what every error reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class SourceMap:
    path: str
    # (line, column) of each character of the decoded text, plus one entry for the position after its end.
    positions: tuple[tuple[int, int], ...]
    lines: Sequence[str]

    @classmethod
    def for_text(cls, text: str, path: str = "<expr>") -> SourceMap:
        """The map of a text that is its own source (an expression given as a Python string)."""
        positions = []
        line, column = 1, 1
        for char in text:
            positions.append((line, column))
            if char == "\n":
                line, column = line + 1, 1
            else:
                column += 1
        positions.append((line, column))
        return cls(path, tuple(positions), text.split("\n"))

    def locate(self, offset: int) -> tuple[int, int]:
        offset = min(max(offset, 0), len(self.positions) - 1)
        return self.positions[offset]

    def source_line(self, line: int) -> str | None:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else None

    def error(self, cls: type, message: str, start: int, end: int | None = None, hint: str | None = None):
        """Build an error of type ``cls`` located at the characters ``start:end`` of the decoded text."""
        line, column = self.locate(start)
        end_line, end_column = self.locate(end if end is not None and end > start else start + 1)
        if end is None or end <= start:
            end_line, end_column = line, column + 1
        return cls(
            message,
            path=self.path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            source_line=self.source_line(line),
            hint=hint,
        )
