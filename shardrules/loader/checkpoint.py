"""Safetensors checkpoints read by byte range: each rank reads only the rows it keeps.

A safetensors file is an 8-byte little-endian header length, a JSON header giving each tensor's dtype,
shape and byte range, then the data. :class:`Checkpoint` reads the headers of every file of a model folder,
checks them (offsets inside the file, no overlaps, bytes that match dtype x shape, no key in two files) and
reads any run of rows of a tensor with positioned reads (``os.preadv``) straight into the caller's buffer:
nothing is memory-mapped, so resident memory grows by what is read and no more.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..files import NotRegularFile, open_regular_fd
from .paths import child, no_json_constant, opened, read_json, regular_file

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
MAX_HEADER_BYTES = 100 * 2**20  # as the safetensors library limits it
# Tensors in one file: the largest checkpoints hold a few tens of thousands; a 100 MiB header of empty
# entries would otherwise cost seconds and gigabytes to parse before it is refused.
MAX_HEADER_ENTRIES = 200_000
INDEX_NAMES = ("diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json")


@dataclass(frozen=True)
class TensorEntry:
    name: str
    path: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize if self.shape else self.dtype.itemsize


class RepeatedName(ValueError):
    """A JSON object with one key twice."""


def _no_repeated_names(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads(object_pairs_hook=)``: a dict, refusing a key given twice (which json would let the last win)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedName(key)
            seen.add(key)
    return out


def read_header(path: str | Path) -> dict[str, TensorEntry]:
    """Entries of one safetensors file, checked against the file's size."""
    path = str(path)
    with opened(path, "a safetensors file") as f:
        return _read_header(f, path)


def _read_header(f, path: str) -> dict[str, TensorEntry]:
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, no header)", path=path)
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise CheckpointError(f"{path}: header length {length} runs past the end of the file ({size} "
                                  f"bytes): the file is truncated or not safetensors", path=path)
        raw = f.read(length)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror}", path=path) from None
    entries_named = raw.count(b'"data_offsets"')  # bytes.count: bounded work before any object is built
    if entries_named > MAX_HEADER_ENTRIES:
        raise CheckpointError(f"{path}: header names {entries_named} tensors, more than {MAX_HEADER_ENTRIES} in one "
                              f"file: not a model checkpoint", path=path)
    try:
        header = json.loads(raw, parse_constant=no_json_constant, object_pairs_hook=_no_repeated_names)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: header is not valid JSON ({exc})", path=path) from None
    except RepeatedName as exc:  # the safetensors library refuses these files; json.loads would keep the last
        raise CheckpointError(f"{path}: header names {str(exc)[:200]!r} twice", path=path) from None
    except (RecursionError, ValueError) as exc:  # nesting past the recursion limit; integers past 4,300 digits
        raise CheckpointError(f"{path}: header is not a safetensors header ({type(exc).__name__}: "
                              f"{str(exc)[:80]})", path=path) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object", path=path)
    base = 8 + length
    entries: dict[str, TensorEntry] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        entry = _entry(path, name, info, base, size)
        entries[name] = entry
    spans = sorted((e.start, e.end, e.name) for e in entries.values())
    for (s1, e1, n1), (s2, e2, n2) in zip(spans, spans[1:], strict=False):
        if s2 < e1:
            raise CheckpointError(f"{path}: tensors '{n1}' and '{n2}' overlap (bytes {s1}-{e1} and {s2}-{e2})",
                                  path=path, tensor=n2)
    return entries


def _entry(path: str, name: str, info, base: int, size: int) -> TensorEntry:
    try:
        dtype = DTYPES[info["dtype"]]
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        # integers only, as the safetensors library insists: no floats, strings or booleans truncated to one
        if not all(type(v) is int for v in (*shape, begin, end)):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: tensor '{name}' has a malformed header entry: {info!r}"[:300],
                              path=path, tensor=name) from None
    if any(d < 0 for d in shape) or begin < 0 or end < begin:
        raise CheckpointError(f"{path}: tensor '{name}' has a negative shape or offsets", path=path, tensor=name)
    expected = math.prod(shape) * dtype.itemsize
    if end - begin != expected:
        raise CheckpointError(f"{path}: tensor '{name}' holds {end - begin} bytes but {info['dtype']} "
                              f"{list(shape)} needs {expected}", path=path, tensor=name)
    if base + end > size:
        raise CheckpointError(f"{path}: tensor '{name}' ends at byte {base + end}, past the end of the file "
                              f"({size} bytes): the file is truncated", path=path, tensor=name)
    return TensorEntry(name, path, dtype, shape, base + begin, base + end)


class Checkpoint:
    """Every tensor of a model folder's safetensors files, readable by rows."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self.files = self._files()
        self.entries: dict[str, TensorEntry] = {}
        for path in self.files:
            for name, entry in read_header(path).items():
                if name in self.entries:
                    raise CheckpointError(f"tensor '{name}' is in two files: {self.entries[name].path} and {path}",
                                          path=str(path), tensor=name)
                self.entries[name] = entry
        self.bytes_read = 0
        self._fds: dict[str, int] = {}

    def _files(self) -> list[Path]:
        for index_name in INDEX_NAMES:
            index_path = self.model_dir / index_name
            if os.path.lexists(index_path):
                index = read_json(index_path, "the safetensors index")
                try:
                    weight_map = index["weight_map"]
                    names = set(weight_map.values())
                except (KeyError, TypeError, AttributeError) as exc:
                    raise CheckpointError(f"{index_path}: not a safetensors index ({type(exc).__name__})",
                                          path=str(index_path)) from None
                if not isinstance(weight_map, dict):
                    raise CheckpointError(f"{index_path}: weight_map is not an object", path=str(index_path))
                # a set of paths: "x" and "./x" name one file, which is read once
                shards = sorted({child(self.model_dir, n, "shard file", str(index_path)) for n in
                                 sorted(names, key=str)})
                missing = [s for s in shards if not os.path.lexists(s)]
                if missing:
                    raise CheckpointError(f"{index_path} names shard file {missing[0].name}, which does not exist",
                                          path=str(missing[0]))
                return [regular_file(s, "a safetensors file") for s in shards]
        files = sorted(self.model_dir.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{self.model_dir}: no *.safetensors file", path=str(self.model_dir))
        return files

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_rows(self, name: str, start: int, stop: int, out: torch.Tensor) -> None:
        """Read rows ``start:stop`` of tensor ``name`` into ``out`` (contiguous, CPU, the tensor's dtype)."""
        entry = self.entries[name]
        nbytes = (stop - start) * entry.row_bytes if entry.shape else entry.row_bytes
        if nbytes == 0:
            return
        if out.dtype != entry.dtype or not out.is_contiguous() or out.device.type != "cpu" \
                or out.numel() * out.element_size() != nbytes:
            raise ValueError(f"buffer for '{name}' rows {start}:{stop} does not fit")  # a bug, not user input
        offset = entry.start + (start * entry.row_bytes if entry.shape else 0)
        fd = self._fds.get(entry.path)
        if fd is None:
            try:  # the file may have been swapped since its header was read: never block on a FIFO
                fd = self._fds[entry.path] = open_regular_fd(entry.path)
            except (NotRegularFile, OSError) as exc:
                raise CheckpointError(f"{entry.path}: cannot read tensor '{name}': {exc.strerror}",
                                      path=entry.path, tensor=name) from None
        # the tensor's own memory as a writable buffer (it stays alive, and contiguous, while we read)
        view = memoryview((ctypes.c_char * nbytes).from_address(out.data_ptr())).cast("B")
        done = 0
        while done < nbytes:
            count = os.preadv(fd, [view[done:]], offset + done)
            if count <= 0:
                raise CheckpointError(f"{entry.path}: tensor '{name}' ends early (file truncated while reading)",
                                      path=entry.path, tensor=name)
            done += count
        self.bytes_read += nbytes

    def read(self, name: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` of tensor ``name`` as a new CPU tensor."""
        entry = self.entries[name]
        if not entry.shape:
            out = torch.empty((), dtype=entry.dtype)
            self.read_rows(name, 0, 1, out)
            return out
        stop = entry.shape[0] if stop is None else stop
        out = torch.empty((stop - start, *entry.shape[1:]), dtype=entry.dtype)
        self.read_rows(name, start, stop, out)
        return out
