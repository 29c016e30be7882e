"""Half precision as the model's own library loads it: ``from_pretrained(torch_dtype=...)`` keeps some modules in
float32 (``_keep_in_fp32_modules``), and a loader that casts the whole model would lose those islands.

* diffusers (``ModelMixin``): every floating parameter and persistent buffer takes ``dtype``, except those with a
  name in ``_keep_in_fp32_modules`` as one of the segments of their dotted name, which stay float32 (for float16
  and bfloat16 alike). Non-persistent buffers (RoPE tables) keep the dtype they were built in.
* transformers (``PreTrainedModel``): names in ``_keep_in_fp32_modules`` stay float32 when loading in float16 only;
  names in ``_keep_in_fp32_modules_strict`` in float16 and bfloat16. transformers searches those names anywhere in
  the parameter's name; the names its models declare are plain identifiers (T5's ``wo``), matched here as
  ``*name*`` globs.
* Any other module: every floating parameter and persistent buffer takes ``dtype``.

Casting happens while parameters are still on the meta device, so it costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..engine.glob import compile_glob
from ..errors import CheckpointError, shorten
from ..torch_internals import like_parameter, own_parameters, own_persistent_buffers, set_buffer, set_parameter

_HALF = (torch.float16, torch.bfloat16)


def _library(model: nn.Module) -> str:
    for cls in type(model).__mro__:
        if cls.__name__ == "ModelMixin" and cls.__module__.startswith("diffusers."):
            return "diffusers"
        if cls.__name__ == "PreTrainedModel" and cls.__module__.startswith("transformers."):
            return "transformers"
    return "torch"


def keeps_float32(model: nn.Module, dtype: torch.dtype) -> Callable[[str], bool]:
    """Whether the tensor of this dotted name stays float32 when ``model`` is loaded in ``dtype``."""
    library = _library(model)
    if dtype not in _HALF or library == "torch":
        return lambda name: False
    if library == "diffusers":
        keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
        return lambda name: bool(keep.intersection(name.split(".")))
    names = set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    if dtype == torch.float16:
        names |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    globs = [compile_glob(f"*{n}*") for n in sorted(names)]
    return lambda name: any(glob(name) for glob in globs)


def cast_like_library(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Give every floating parameter and persistent buffer of ``model`` the dtype its library's
    ``from_pretrained(torch_dtype=dtype)`` gives it. Parameters keep their class and attributes (``weight_loader``);
    a parameter shared by several modules stays one parameter. Returns ``model``."""
    keep = keeps_float32(model, dtype)
    done: dict[int, tuple[nn.Parameter, nn.Parameter]] = {}  # id -> (the original, kept alive; its cast)
    for module_name, module in model.named_modules(remove_duplicate=False):
        prefix = f"{module_name}." if module_name else ""
        for key, param in list(own_parameters(module)):
            if id(param) in done:
                set_parameter(module, key, done[id(param)][1])
                continue
            want = torch.float32 if keep(prefix + key) else dtype
            new = param
            if param.is_floating_point() and param.dtype != want:
                new = like_parameter(param, param.data.to(want))
            done[id(param)] = (param, new)
            set_parameter(module, key, new)
        for key, buf in list(own_persistent_buffers(module)):
            if buf.is_floating_point():
                set_buffer(module, key, buf.to(torch.float32 if keep(prefix + key) else dtype))
    return model


def stored_dtype(model_dir, config: dict) -> tuple[torch.dtype, str]:
    """The dtype a model folder is meant to run in, and where that was read: the config's ``torch_dtype`` (or
    transformers 5's ``dtype``), else the floating dtype holding most bytes of the checkpoint's headers (no tensor
    data is read), else float32."""
    for key in ("torch_dtype", "dtype"):
        value = config.get(key)
        if value is None or value == "auto":
            continue
        dtype = getattr(torch, value, None) if isinstance(value, str) and value.isidentifier() else None
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            path = str(Path(model_dir) / "config.json")
            raise CheckpointError(f"{path}: {key} is {shorten(repr(value), 80)}, not a floating-point torch dtype "
                                  f"(float32, bfloat16, float16)", path=path)
        return dtype, f"config.json {key}"
    if any(Path(model_dir).glob("*.safetensors")):
        from .checkpoint import Checkpoint

        with Checkpoint(model_dir) as checkpoint:
            totals: dict[torch.dtype, int] = {}
            for entry in checkpoint.entries.values():
                if entry.dtype.is_floating_point:
                    totals[entry.dtype] = totals.get(entry.dtype, 0) + entry.end - entry.start
        if totals:
            return max(totals, key=totals.get), "the checkpoint's"
    return torch.float32, "no weights or config dtype: float32"
