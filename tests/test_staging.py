"""Reads through the two staging buffers (the GPU path; its logic runs on the CPU here, unpinned)."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from shardrules.loader.checkpoint import Checkpoint
from shardrules.loader.staging import Staging


def test_chunked_reads_through_two_buffers_equal_the_rows(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {"big": torch.randn(37, 5, generator=g).to(torch.bfloat16), "wide": torch.randn(3, 300, generator=g),
               "scalar": torch.tensor(2.5), "ids": torch.arange(11)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with Checkpoint(tmp_path) as checkpoint:
        # 64-byte buffers: 'big' takes 6 rows a chunk; a 'wide' row (1200 bytes) is larger than a buffer
        staging = Staging(torch.device("cpu"), row_bytes=0, chunk_bytes=64)
        for name, (start, stop), dtype in [("big", (3, 30), torch.float32), ("big", (0, 37), torch.bfloat16),
                                           ("wide", (1, 3), torch.float32), ("scalar", (0, 1), torch.float32),
                                           ("ids", (2, 9), torch.int64)]:
            whole = tensors[name]
            want = whole[start:stop] if whole.dim() else whole
            dest = torch.full(want.shape, -1, dtype=dtype)
            if name == "wide":
                staging = Staging(torch.device("cpu"), row_bytes=checkpoint.entries[name].row_bytes, chunk_bytes=64)
            staging.fill(checkpoint, name, start, stop, dest)
            staging.finish()
            assert torch.equal(dest, want.to(dtype)), name
        assert checkpoint.bytes_read == (27 + 37) * 10 + 2 * 1200 + 4 + 7 * 8
