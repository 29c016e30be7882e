"""What a check reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import SourceError, shorten
from ..grammar import SourceMap

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str
    severity: str = ERROR

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_error(cls, error: SourceError, severity: str = ERROR) -> Finding:
        message = shorten(error.message) + (f" ({shorten(error.hint)})" if error.hint else "")
        return cls(error.path, error.line, error.column, error.end_line, error.end_column, error.code, message,
                   severity)

    @classmethod
    def at(cls, source: SourceMap, start: int, end: int, code: str, message: str, severity: str) -> Finding:
        """A finding on the characters ``start:end`` of an expression."""
        line, column = source.locate(start)
        end_line, end_column = source.locate(max(end, start + 1))
        return cls(source.path, line, column, end_line, end_column, code, message, severity)
