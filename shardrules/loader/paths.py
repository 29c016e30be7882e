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
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import CheckpointError
from ..files import NotRegularFile, kind_of, open_regular


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
    device. A check of the name, for listing a folder's files early: reads go through :func:`opened`, which checks
    the file it opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found ({what})", path=str(path)) from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what}: {exc.strerror}", path=str(path)) from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: {what} is {kind_of(mode)}", path=str(path))
    return Path(path)


MAX_FOLDER_FILES = 10_000


def regular_files(folder: Path) -> None:
    """Every file of a component folder that a library loads itself (the VAE, tokenizers) is a regular file or a
    folder: a FIFO among them would block the library's ``open`` forever. A check of the names, before the library
    reads them; shardrules' own reads check the file opened."""
    count = 0
    for root, _, files in os.walk(folder):
        count += len(files)
        if count > MAX_FOLDER_FILES:
            raise CheckpointError(f"{folder}: more than {MAX_FOLDER_FILES:,} files in a component folder",
                                  path=str(folder))
        for name in files:
            regular_file(Path(root) / name, f"a file of {folder.name}")


@contextmanager
def opened(path: str | Path, what: str):
    """``path`` open for binary reading when it is a regular file, checked on the file opened (a name swapped for
    a FIFO after an earlier check is refused, never waited on); every failure a ``CheckpointError``."""
    try:
        f: BinaryIO = open_regular(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found ({what})", path=str(path)) from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: {what} is a folder", path=str(path)) from None
    except NotRegularFile as exc:
        raise CheckpointError(f"{path}: {what} is {exc.strerror}", path=str(path)) from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what}: {exc.strerror}", path=str(path)) from None
    with f:
        yield f


def no_json_constant(name: str):
    """For json.loads(parse_constant=): Infinity and NaN are not numbers a file format can hold."""
    raise ValueError(f"{name} is not a JSON number")


MAX_JSON_BYTES = 64 << 20  # config.json, model_index.json, a safetensors index: a real one is under a few MiB


def read_json(path: str | Path, what: str, *, infinities: bool = False) -> object:
    """The JSON value of a regular file (``what`` names it in errors). Every way the file can fail to be JSON is
    a ``CheckpointError`` naming it: over ``MAX_JSON_BYTES`` (read no further: a 2 GiB sparse config.json took a
    load to 2.8 GB), unreadable, not UTF-8, invalid (with line and column), nested past the recursion limit,
    ``Infinity``/``NaN`` (unless ``infinities``: diffusers writes ``-Infinity`` into scheduler configs, as
    ``lambda_min_clipped``), integers of more than 4,300 digits."""
    try:
        with opened(path, what) as f:
            data = f.read(MAX_JSON_BYTES + 1)  # bounded even if the file grows after the check
        if len(data) > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: {what} is larger than {MAX_JSON_BYTES >> 20} MiB", path=str(path))
        return json.loads(data, parse_constant=None if infinities else no_json_constant)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what}: {exc.strerror}", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}",
                              path=str(path)) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # ValueError: Infinity, 5,000-digit integers
        raise CheckpointError(f"{path}: {what} is not JSON this loader reads ({type(exc).__name__}: "
                              f"{str(exc)[:80]})", path=str(path)) from None
