"""Rename patterns run on RE2, a linear-time matcher: no pattern can make matching a checkpoint key backtrack.

Python's ``re`` backtracks: ``^([a-z_]+\\.?)+$`` takes minutes on a model's keys, ``(a+)+$`` a day on a
40-character key. RE2 (``google-re2``) matches in time linear in the key for every pattern it accepts; it
refuses back-references and lookaround, which a rename never needs. ``replace`` is a template of group
references only (``\\1``, ``\\g<1>``, ``\\g<name>``), checked against the pattern's groups when the file is read.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# A template is literal text and group references; any other backslash is refused (one meaning everywhere).
_TEMPLATE_PART = re.compile(r"\\(?:g<([^<>]*)>|(\d{1,2}))|\\(.?)")


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The RE2 pattern of ``pattern``, compiled once (when the rule file is read; a load reuses it);
    ``ValueError`` with RE2's reason when it is not a pattern RE2 runs."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"{reason} (rename patterns run on a linear-time matcher, RE2: no back-references or "
                         f"lookaround)") from None


def check_template(template: str, groups: int, names: set[str]) -> None:
    """``ValueError`` unless every backslash in ``template`` is a reference to a group the pattern has."""
    for found in _TEMPLATE_PART.finditer(template):
        name, number, other = found.groups()
        if other is not None:
            raise ValueError(f"'\\{other}' at position {found.start()} is not a group reference (write \\1, "
                             f"\\g<1> or \\g<name>)")
        ref = name if name is not None else number
        if ref.isdigit():
            if not 0 < int(ref) <= groups:
                raise ValueError(f"group reference {found.group()} at position {found.start()}: the pattern has "
                                 f"{groups} group(s)" + ("" if int(ref) else "; \\g<0> is not supported"))
        elif ref not in names:
            raise ValueError(f"group reference {found.group()} at position {found.start()}: the pattern has no "
                             f"group named {ref!r}" + (f" (it has {', '.join(sorted(names))})" if names else ""))
