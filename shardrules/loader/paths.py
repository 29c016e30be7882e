"""Names a model folder gives for its own files (index ``weight_map`` entries, pipeline components), and the files
themselves, checked before anything is opened: nothing is read outside the folder the user named, and nothing that
is not a regular file (a FIFO would block ``open`` forever, a device would be read without end).

Symbolic links are followed: the Hugging Face cache links every snapshot file to a blob outside the snapshot
folder. What is refused is a *name* that climbs out (``..``) or is absolute.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import CheckpointError


def child(folder: str | Path, name: object, what: str, source: str) -> Path:
    """``folder / name`` for a relative ``name`` that stays inside ``folder``; ``source`` is the file naming it."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{source}: {what} {name!r} is not a file name", path=source)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts or "\x00" in name:
        raise CheckpointError(f"{source}: {what} {name!r} points outside {folder}", path=source)
    return Path(folder) / name


def regular_file(path: str | Path, what: str) -> Path:
    """``path`` when it is a regular file (after links); a clear error for a missing file, a folder, a FIFO or a
    device."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found ({what})", path=str(path)) from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what}: {exc.strerror}", path=str(path)) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise CheckpointError(f"{path}: {what} is {kind}", path=str(path))
    return Path(path)


def no_json_constant(name: str):
    """For json.loads(parse_constant=): Infinity and NaN are not numbers a file format can hold."""
    raise ValueError(f"{name} is not a JSON number")


MAX_JSON_BYTES = 64 << 20  # config.json, model_index.json, a safetensors index: a real one is under a few MiB


def read_json(path: str | Path, what: str) -> object:
    """The JSON value of a regular file (``what`` names it in errors). Every way the file can fail to be JSON is
    a ``CheckpointError`` naming it: over ``MAX_JSON_BYTES`` (read no further: a 2 GiB sparse config.json took a
    load to 2.8 GB), unreadable, not UTF-8, invalid (with line and column), nested past the recursion limit,
    ``Infinity``/``NaN``, integers of more than 4,300 digits."""
    path = regular_file(path, what)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)  # bounded even if the file grows after the check
        if len(data) > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: {what} is larger than {MAX_JSON_BYTES >> 20} MiB", path=str(path))
        return json.loads(data, parse_constant=no_json_constant)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what}: {exc.strerror}", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}",
                              path=str(path)) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # ValueError: Infinity, 5,000-digit integers
        raise CheckpointError(f"{path}: {what} is not JSON this loader reads ({type(exc).__name__}: "
                              f"{str(exc)[:80]})", path=str(path)) from None
