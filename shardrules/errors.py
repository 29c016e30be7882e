"""The one exception hierarchy of shardrules.

Every error that comes from text a user wrote (a rule expression, a rule file) carries the file, line and
column of the offending token, and prints the source line with a caret under it, as compilers do.
"""

from __future__ import annotations


def printable(value: str, keep: str = "") -> str:
    """``value`` with every control character (an escape sequence, a newline, a NUL) but those in ``keep`` written as
    its Python escape: a name read from a file can neither drive the terminal nor forge another line of output."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() or c == " " or c in keep else repr(c)[1:-1] for c in value)


CONTEXT_WIDTH = 120  # characters of a source line shown under an error
MAX_MESSAGE = 400  # characters of a message: a key or name of a megabyte is cut, and says how long it was


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to about ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit - 40]}… ({len(text):,} characters)"


class ShardRulesError(Exception):
    """Base class of every error shardrules raises on purpose. Its text has no control characters but the
    newlines between lines it composes itself (a name from a file is escaped)."""

    def __str__(self) -> str:
        return printable(super().__str__(), keep="\n")


class SourceError(ShardRulesError):
    """An error located in a text a user wrote.

    ``line`` and ``column`` are 1-based and point into ``path`` (the TOML file for rules read from a file,
    ``<expr>`` for an expression given as a Python string).
    """

    code = "SR000"

    def __init__(
        self,
        message: str,
        *,
        path: str = "<expr>",
        line: int = 1,
        column: int = 1,
        end_line: int | None = None,
        end_column: int | None = None,
        source_line: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.end_line = end_line if end_line is not None else line
        self.end_column = end_column if end_column is not None else column + 1
        self.source_line = source_line
        self.hint = hint
        super().__init__(str(self))

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def get_context(self) -> str:
        """The offending source line with a caret under the token, or ``""`` when the line is unknown."""
        if self.source_line is None:
            return ""
        raw = self.source_line.rstrip("\n")
        column = self.column
        if len(raw) > CONTEXT_WIDTH:  # a window of a long line around the column: one error never prints megabytes
            start = max(0, min(column - 1 - CONTEXT_WIDTH // 2, len(raw) - CONTEXT_WIDTH))
            end = start + CONTEXT_WIDTH
            raw = ("…" if start else "") + raw[start:end] + ("…" if end < len(raw) else "")
            column = column - start + (1 if start else 0)
        text = printable(raw, keep="\t")  # an escape sequence in the file is shown escaped, never sent raw
        width = max(1, self.end_column - self.column) if self.end_line == self.line else 1
        width = min(width, len(raw) - column + 1) if len(raw) >= column else 1
        # the caret's indent keeps the line's own tabs, so it lines up however wide a terminal draws a tab
        indent = "".join(c if c == "\t" else " " for c in printable(raw[:column - 1], keep="\t"))
        return f"  {text}\n  {indent}{'^' * width}"

    def __str__(self) -> str:
        out = printable(f"{shorten(self.path)}:{self.line}:{self.column}: {shorten(self.message)}")
        if self.hint:
            out += f" ({printable(shorten(self.hint))})"
        context = self.get_context()
        return f"{out}\n{context}" if context else out


class RuleError(SourceError):
    """Base class of errors in rule expressions and rule files."""


class RuleSyntaxError(RuleError):
    """An expression that does not parse."""

    code = "SR001"


class UnknownFieldError(RuleError):
    """An expression names a field that does not exist."""

    code = "SR002"


class RuleTypeError(RuleError):
    """An operator applied to a field of the wrong type (``depth matches "x"``)."""

    code = "SR003"


class RuleLimitError(RuleError):
    """An expression or rule file over a documented size limit."""

    code = "SR004"


class RuleFileError(RuleError):
    """A rule file that is not valid TOML or does not follow the rule-file schema."""

    code = "SR100"


class TomlSyntaxError(RuleFileError):
    code = "SR101"


class UnknownKeyError(RuleFileError):
    code = "SR102"


class MissingKeyError(RuleFileError):
    code = "SR103"


class WrongValueError(RuleFileError):
    code = "SR104"


class DuplicateModelError(RuleFileError):
    code = "SR105"


class UnknownStrategyError(RuleFileError):
    code = "SR106"


class MissingSchemaError(RuleFileError):
    code = "SR107"


class PlanError(ShardRulesError):
    """A model for which no valid shard plan exists (no unit, a container unit, a weight tied across units)."""


class NoUnitError(PlanError):
    """No strategy selected any unit."""


class ContainerUnitError(PlanError):
    """A ModuleList or ModuleDict chosen as a unit: fully_shard rejects containers."""


class TiedParameterError(PlanError):
    """A parameter reachable from two units."""


class SequenceParallelError(PlanError):
    """A model that cannot run with its sequence split across ranks as asked: no plan, an attention processor that
    takes no split, heads or a sequence length the degree does not divide, a backend without ring attention."""


class CheckpointError(ShardRulesError):
    """A checkpoint that does not fit the model: names the file and the tensor."""

    def __init__(self, message: str, *, path: str | None = None, tensor: str | None = None,
                 failed_rank: int | None = None) -> None:
        self.path = path
        self.tensor = tensor
        self.failed_rank = failed_rank  # set when raised because that other rank failed (a launcher names it)
        super().__init__(message)

    def __str__(self) -> str:  # one line: a newline in a tensor, component or class name is escaped too
        return printable(Exception.__str__(self))


class UsageError(ShardRulesError):
    """A problem with a command line, not with a rule file or a model (rule-lint exits 2)."""


class LaunchError(ShardRulesError):
    """The ranks cannot be started as asked (a backend without GPUs, part of torchrun's variables): a refusal before
    any rank starts (the commands exit 2)."""


class RankFailure(ShardRulesError, RuntimeError):
    """A rank failed; every rank has been stopped. ``results`` holds each rank's outcome, the cause first."""

    def __init__(self, results: list) -> None:
        self.results = results
        failed = [r for r in results if not r.ok]
        first = failed[0]
        super().__init__(f"rank {first.rank} failed: {first.error}" +
                         (f" ({len(failed) - 1} other rank(s) stopped)" if len(failed) > 1 else ""))


class Interrupted(ShardRulesError):
    """The launcher got SIGINT or SIGTERM; every rank has been stopped and the temporary folder removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
