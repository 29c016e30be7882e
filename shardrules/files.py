"""Opening a file a user named, only when it is a regular file.

Checking a *name* first (``os.stat``) and opening it afterwards leaves a window: the file can be swapped for a FIFO
in between, and ``open`` of a FIFO blocks until a writer comes, past every timeout. :func:`open_regular` opens
first, without blocking (``O_NONBLOCK`` makes opening a FIFO return at once), then checks *the file it opened*
(``fstat``), so what is checked is what is read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


class NotRegularFile(OSError):
    """The path names a FIFO, a device or a socket; ``strerror`` says which."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_fd(path: str | os.PathLike) -> int:
    """A read-only descriptor of ``path`` when it is a regular file (links followed). A folder raises
    ``IsADirectoryError``; a FIFO, device or socket ``NotRegularFile``; neither blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, kind_of(mode), str(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading, checked as :func:`open_regular_fd` checks it."""
    return os.fdopen(open_regular_fd(path), "rb")
