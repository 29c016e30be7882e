"""Each rank's shards in one allocation, read while ``fully_shard`` runs.

Which rows of each parameter a rank will hold is known before sharding: FSDP2 cuts dim 0 into chunks of
``ceil(rows / size)`` rows, one per rank of the mesh's last dimension (the shard dimension; the first of a 2-D
mesh replicates). Every parameter whose rows divide evenly gets a view into one buffer per dtype, and a
background thread reads its rows into it while the main thread runs ``fully_shard`` (Python work that holds the
interpreter; the positioned reads release it). The views then become the parameters' local shards in the one
pass ``to_empty`` would make (``Module._apply``): FSDP2 keeps a local shard that needs no padding as its own
storage, so nothing is allocated or copied again. Parameters with uneven rows, a ``weight_loader`` or an
``allow-init`` entry, and buffers, are filled after sharding as before.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Shard

from ..errors import CheckpointError, ShardRulesError
from ..torch_internals import apply_to_tensors, dtensor_with_spec

ALIGN_BYTES = 64  # each view starts on a cache line


@dataclass
class Early:
    """A parameter read before sharding: rows ``start:stop`` of its source into ``view``."""

    name: str
    view: torch.Tensor
    start: int
    stop: int


def shard_coordinate(mesh: DeviceMesh) -> tuple[int, int]:
    """(this rank's index, number of ranks) along the dimension FSDP2 shards over: the mesh's last."""
    dim = mesh.ndim - 1
    return mesh.get_local_rank(dim), mesh.size(dim)


def plan_early(params: dict[str, tuple[tuple[int, ...], torch.dtype]], mesh: DeviceMesh) -> list[Early]:
    """Views for every parameter in ``params`` (name -> (shape, dtype)) whose rows divide evenly over the
    shard dimension, in one buffer per dtype allocated here (uninitialised: every byte is read)."""
    rank, size = shard_coordinate(mesh)
    chosen = [(name, shape, dtype) for name, (shape, dtype) in params.items()
              if shape and shape[0] > 0 and shape[0] % size == 0]
    offsets: dict[str, int] = {}
    totals: dict[torch.dtype, int] = {}
    for name, shape, dtype in chosen:
        align = max(1, ALIGN_BYTES // dtype.itemsize)
        offset = -(-totals.get(dtype, 0) // align) * align
        offsets[name] = offset
        totals[dtype] = offset + shape[0] // size * math.prod(shape[1:])
    buffers = {dtype: torch.empty(total, dtype=dtype) for dtype, total in totals.items()}
    early = []
    for name, shape, dtype in chosen:
        rows = shape[0] // size
        numel = rows * math.prod(shape[1:])
        view = buffers[dtype][offsets[name]:offsets[name] + numel].view(rows, *shape[1:])
        early.append(Early(name, view, rank * rows, (rank + 1) * rows))
    return early


class Reader:
    """Runs ``read(early)`` for each item in a background thread; ``join`` waits and raises its error."""

    def __init__(self, early: list[Early], read) -> None:
        self.early = early
        self._read = read
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.seconds = 0.0  # the thread's time from start to its last read
        self.thread = threading.Thread(target=self._run, name="shardrules-reader", daemon=True)

    def start(self) -> Reader:
        self.thread.start()
        return self

    def _run(self) -> None:
        began = time.perf_counter()
        try:
            for item in self.early:
                if self._stop.is_set():
                    return
                self._read(item)
        except BaseException as exc:  # raised in the loading thread by join()
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - began

    def cancel(self) -> None:
        """Stop after the read in progress (the load failed elsewhere) and wait for it."""
        self._stop.set()
        self.thread.join()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def materialise(model: nn.Module, device: torch.device, early: list[Early], filled: set[str]) -> None:
    """``to_empty`` for a sharded model, except that parameters read early take their views as local shards,
    real buffers are kept, and a buffer on meta that the checkpoint does not fill (not in ``filled``) stays
    there to be named as unloaded. Each early view's rows are checked against the rows FSDP2 gave it."""
    current = dict(model.named_parameters())
    fillable = {id(buf) for name, buf in model.named_buffers() if name in filled}
    views: dict[int, Early] = {}
    for item in early:
        param = current.get(item.name)
        if not isinstance(param, DTensor):
            raise ShardRulesError(f"'{item.name}' was not sharded by FSDP2 although the plan covers every parameter")
        views[id(param)] = item

    def fn(tensor: torch.Tensor) -> torch.Tensor:
        item = views.get(id(tensor))
        if item is not None:
            # the meta parameter's spec (mesh, placements, global shape and stride) is the real one's: built
            # directly, a DTensor costs a tenth of from_local, which re-derives the spec per parameter
            return dtensor_with_spec(item.view, tensor)
        if tensor.is_meta and (isinstance(tensor, nn.Parameter) or id(tensor) in fillable):
            return torch.empty_like(tensor, device=device)
        return tensor

    apply_to_tensors(model, fn)  # what to_empty does, with fn in place of empty_like; FSDP2 re-registers the shards
    for item in early:
        param = current[item.name]
        local = param.to_local()
        if rows_of(param) != (item.start, item.stop):
            raise CheckpointError(f"'{item.name}': FSDP2 gave this rank rows {rows_of(param)}, not the rows "
                                  f"{(item.start, item.stop)} read for it", tensor=item.name)
        if local.data_ptr() != item.view.data_ptr():  # a torch whose FSDP2 copies local shards: still correct
            with torch.no_grad():
                local.copy_(item.view)


def rows_of(param: DTensor) -> tuple[int, int]:
    """The rows ``start:stop`` of dim 0 that this rank holds of an FSDP2-sharded parameter."""
    dim0 = param.shape[0] if param.dim() else 1
    start, size = 0, dim0
    coordinate = param.device_mesh.get_coordinate()
    for mesh_dim, placement in enumerate(param.placements):
        if isinstance(placement, Shard):
            if placement.dim != 0:
                raise CheckpointError(f"sharding on dim {placement.dim} is not supported")
            chunk = math.ceil(size / param.device_mesh.size(mesh_dim))
            start += coordinate[mesh_dim] * chunk
            size = max(0, min(chunk, dim0 - start))
    return start, start + size
