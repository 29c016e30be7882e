"""Reading rows into device shards: through two pinned host buffers, so the next read overlaps the last copy.

A positioned read cannot land in GPU memory, and a copy from pageable memory is synchronous. Each rank's rows are
read into one of two pinned host buffers and copied to the shard with ``non_blocking=True``; before a buffer is
filled again, the copy that last read from it must be done (a CUDA event per buffer). No tensor is ever whole on
the host: a read larger than a buffer goes in chunks of whole rows.
"""

from __future__ import annotations

import torch

from .checkpoint import Checkpoint

CHUNK_BYTES = 64 * 2**20  # each of the two host buffers (a single row larger than this gets a buffer of its size)


class Staging:
    """Two host buffers for copies into ``device`` shards; pinned, with events, when ``device`` is a GPU."""

    def __init__(self, device: torch.device, row_bytes: int = 0, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.device = device
        self.accelerated = device.type == "cuda"
        self.chunk_bytes = max(chunk_bytes, row_bytes)
        self.buffers = [torch.empty(self.chunk_bytes, dtype=torch.uint8, pin_memory=self.accelerated)
                        for _ in range(2)]
        self.events: list = [None, None]
        self.turn = 0

    def _buffer(self) -> torch.Tensor:
        self.turn ^= 1
        event = self.events[self.turn]
        if event is not None:
            event.synchronize()  # the copy that last read this buffer is done
        return self.buffers[self.turn]

    def fill(self, checkpoint: Checkpoint, key: str, start: int, stop: int, dest: torch.Tensor) -> None:
        """Rows ``start:stop`` of checkpoint tensor ``key`` into ``dest`` (on the device, its own dtype)."""
        entry = checkpoint.entries[key]
        if not entry.shape:
            start, stop = 0, 1
        rows_per_chunk = max(1, self.chunk_bytes // max(1, entry.row_bytes))
        for lo in range(start, stop, rows_per_chunk):
            hi = min(stop, lo + rows_per_chunk)
            host = self._buffer()[:(hi - lo) * entry.row_bytes].view(entry.dtype)
            host = host.view(hi - lo, *entry.shape[1:]) if entry.shape else host.view(())
            checkpoint.read_rows(key, lo, hi, host)
            target = dest[lo - start:hi - start] if entry.shape else dest
            target.copy_(host.reshape(target.shape), non_blocking=self.accelerated)
            if self.accelerated:
                event = torch.cuda.Event()
                event.record()
                self.events[self.turn] = event

    def finish(self) -> None:
        """Wait for the last copies (before the shards are used or the buffers freed)."""
        for event in self.events:
            if event is not None:
                event.synchronize()
        self.events = [None, None]
