"""Every use of PyTorch's private API in shardrules, in one place, each with the reason no public API serves.

A torch upgrade that changes one of these breaks here, and the suite's sharded == unsharded checks say so. Nothing
else in the package reads ``Module._parameters`` or ``_buffers``, patches ``nn.Module``, calls ``Module._apply`` or
builds a ``DTensor`` from its spec.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn


def own_persistent_buffers(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, buffer) of ``module``'s own persistent buffers, the ones saved with the weights. ``named_buffers``
    gives persistent and non-persistent alike; which is which is only in ``_non_persistent_buffers_set``."""
    for key, buf in module._buffers.items():
        if buf is not None and key not in module._non_persistent_buffers_set:
            yield key, buf


def set_buffer(module: nn.Module, key: str, value: torch.Tensor) -> None:
    """Replace a buffer in place, keeping it persistent or not as it was (``register_buffer`` would make it
    persistent unless told, and refuses names that already exist as attributes)."""
    module._buffers[key] = value


def own_parameters(module: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """(key, parameter) of ``module``'s own parameters, a parameter shared by modules appearing under each
    (``named_parameters`` removes duplicates, and the casts must re-point every module that holds one)."""
    for key, param in module._parameters.items():
        if param is not None:
            yield key, param


def set_parameter(module: nn.Module, key: str, param: nn.Parameter) -> None:
    """Replace a parameter in place. ``register_parameter`` would run the patched registration of
    :func:`parameters_registered_as` again, and ``setattr`` its hooks."""
    module._parameters[key] = param


def like_parameter(param: nn.Parameter, data: torch.Tensor, requires_grad: bool | None = None) -> nn.Parameter:
    """A parameter of ``param``'s own class holding ``data``, with its attributes (vLLM-style ``weight_loader``,
    ``output_dim``, ...): ``nn.Parameter(data)`` would lose both."""
    new = type(param)(data, requires_grad=param.requires_grad if requires_grad is None else requires_grad)
    new.__dict__.update(param.__dict__)
    return new


@contextlib.contextmanager
def parameters_registered_as(transform: Callable[[nn.Parameter], nn.Parameter]) -> Iterator[None]:
    """While a model is built, every parameter registered (by ``nn.Module.__setattr__`` or ``register_parameter``)
    is replaced by ``transform(param)`` at once. There is no public hook on parameter registration (the global
    module registration hooks see modules and buffers, and run after the fact); building under
    ``torch.device("meta")`` instead would also put on meta the buffers computed in ``__init__``."""
    original = nn.Module.register_parameter

    def register_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(self, name, param)
        if param is not None:
            self._parameters[name] = transform(param)

    nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def apply_to_tensors(model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``model._apply(fn)``: what ``to_empty`` and ``to`` do, with ``fn`` choosing per tensor. FSDP2 hooks
    ``_apply`` to re-register its sharded parameters afterwards; no public method takes a per-tensor function."""
    model._apply(fn)


def dtensor_with_spec(local: torch.Tensor, like) -> torch.Tensor:
    """A DTensor holding ``local`` with the spec (mesh, placements, global shape and stride) of the DTensor
    ``like``. ``DTensor.from_local`` re-derives the spec and checks it per call, about ten times the cost, for a
    spec that is already known to be right."""
    from torch.distributed.tensor import DTensor

    return DTensor(local, like._spec, requires_grad=False)
