"""Shell-style globs over module names, matched without regular expressions.

``*`` matches any run of characters (dots included), ``?`` one character, ``[abc]``, ``[a-z]`` and
``[!abc]`` one character of (or not of) a set. Matching is anchored at both ends and case-sensitive.
The pattern is split at its stars into segments; the first segment must match at the start, the last at
the end, and each middle segment is matched at its leftmost place after the previous one, which is correct
for globs and takes time linear in the name for each segment: no pattern can make it backtrack.
"""

from __future__ import annotations

from collections.abc import Callable

# A segment is a list of atoms: a literal character, None for "?", or (negated, chars, ranges) for a class.


def _parse_class(pattern: str, i: int, last_close: int):
    """Parse ``[...]`` starting at ``pattern[i] == "["``; (atom, next index), or None if it is not a class.
    ``last_close`` is the index of the pattern's last ``]``: a ``[`` with none after it is a literal, decided
    without a scan (8,000 unclosed ``[`` would otherwise cost quadratic time)."""
    j = i + 1
    negated = j < len(pattern) and pattern[j] == "!"
    if negated:
        j += 1
    start = j
    if last_close <= start:  # a "]" right after "[" or "[!" is a member, not the end
        return None
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    while j < len(pattern) and (pattern[j] != "]" or j == start):
        if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
            ranges.append((pattern[j], pattern[j + 2]))
            j += 3
        else:
            chars.add(pattern[j])
            j += 1
    if j >= len(pattern):
        return None  # no closing bracket: "[" is a literal, as in fnmatch
    return (negated, frozenset(chars), tuple(ranges)), j + 1


def _segments(pattern: str) -> list[list]:
    segments: list[list] = [[]]
    last_close = pattern.rfind("]")
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if segments[-1] or len(segments) == 1:
                segments.append([])
            i += 1
        elif char == "?":
            segments[-1].append(None)
            i += 1
        elif char == "[" and (parsed := _parse_class(pattern, i, last_close)) is not None:
            segments[-1].append(parsed[0])
            i = parsed[1]
        else:
            segments[-1].append(char)
            i += 1
    return segments


def _atom_matches(atom, char: str) -> bool:
    if atom is None:
        return True
    if isinstance(atom, str):
        return atom == char
    negated, chars, ranges = atom
    inside = char in chars or any(low <= char <= high for low, high in ranges)
    return inside != negated


def _matches_at(segment: list, text: str, position: int) -> bool:
    if position + len(segment) > len(text):
        return False
    return all(_atom_matches(atom, text[position + k]) for k, atom in enumerate(segment))


def _find(segment: list, text: str, start: int) -> int:
    """Leftmost position >= start where ``segment`` matches, or -1."""
    if all(isinstance(atom, str) for atom in segment):
        return text.find("".join(segment), start)
    for position in range(start, len(text) - len(segment) + 1):
        if _matches_at(segment, text, position):
            return position
    return -1


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A function telling whether a whole string matches ``pattern``."""
    segments = _segments(pattern)
    if len(segments) == 1:  # no star
        only = segments[0]
        return lambda text: len(text) == len(only) and _matches_at(only, text, 0)
    first, middle, last = segments[0], segments[1:-1], segments[-1]

    def match(text: str) -> bool:
        if len(text) < len(first) + len(last) or not _matches_at(first, text, 0):
            return False
        end = len(text) - len(last)
        if not _matches_at(last, text, end):
            return False
        position = len(first)
        for segment in middle:
            found = _find(segment, text, position)
            if found == -1 or found + len(segment) > end:
                return False
            position = found + len(segment)
        return True

    return match
