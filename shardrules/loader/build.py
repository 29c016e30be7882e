"""Building a model from its ``config.json`` without reading or allocating its weights."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..errors import CheckpointError
from .dtypes import cast_like_library
from .paths import regular_file


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Create every parameter on the meta device while buffers and plain tensors stay real.

    Non-persistent buffers (RoPE tables) and tensor attributes (Qwen-Image's ``pos_freqs``) are computed in
    ``__init__`` and are not in checkpoints, so they must survive; building under ``torch.device("meta")``
    would lose them. Each parameter is moved to meta as it is registered, so its initialiser runs on meta.
    """
    original = nn.Module.register_parameter

    def register_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(self, name, param)
        if param is not None and param.device.type != "meta":
            kwargs = dict(param.__dict__)
            meta = type(param)(param.to("meta"), requires_grad=param.requires_grad)
            meta.__dict__.update(kwargs)  # keeps weight_loader and similar attributes
            self._parameters[name] = meta

    nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def read_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not os.path.lexists(path):
        raise CheckpointError(f"{path} not found: a model folder holds config.json and *.safetensors",
                              path=str(path))
    regular_file(path, "the model config")
    try:
        config = json.loads(path.read_bytes())
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}", path=str(path)) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a JSON config ({type(exc).__name__})", path=str(path)) from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object", path=str(path))
    return config


def model_class(config: dict, path: str = "config.json") -> type[nn.Module]:
    """The class a ``config.json`` describes: diffusers' ``_class_name`` or transformers' ``architectures``."""
    if "_class_name" in config:
        import diffusers

        name = config["_class_name"]
        if not isinstance(name, str):
            raise CheckpointError(f"{path}: '_class_name' is {name!r}, not a class name", path=path)
        cls = getattr(diffusers, name, None)
        if cls is None:
            raise CheckpointError(f"{path}: diffusers {diffusers.__version__} has no class '{name}'", path=path)
        return cls
    if config.get("architectures"):
        try:
            import transformers
        except ImportError:
            raise CheckpointError(f"{path} describes a transformers model; install shardrules[encoders]",
                                  path=path) from None
        names = config["architectures"]
        name = names[0] if isinstance(names, list) else None
        if not isinstance(name, str):
            raise CheckpointError(f"{path}: 'architectures' is {names!r}, not a list of class names", path=path)
        cls = getattr(transformers, name, None)
        if cls is None:
            raise CheckpointError(f"{path}: transformers has no class '{name}'", path=path)
        return cls
    raise CheckpointError(f"{path} names no model class ('_class_name' or 'architectures')", path=path)


def build_model(model_dir: str | Path, *, meta: str = "params", dtype: torch.dtype | None = None) -> nn.Module:
    """Build the model of ``model_dir`` from its config. ``meta="all"`` puts buffers on meta too (planning
    only); ``meta="params"`` keeps buffers real (loading)."""
    config = read_config(model_dir)
    cls = model_class(config, str(Path(model_dir) / "config.json"))
    context = torch.device("meta") if meta == "all" else parameters_on_meta()
    with context:
        if "_class_name" in config:
            model = cls.from_config(config)
        else:
            import transformers

            model = cls(transformers.AutoConfig.from_pretrained(str(model_dir)))
    if dtype is not None:
        cast_like_library(model, dtype)
    return model.eval()


def load_plain(model_dir: str | Path) -> nn.Module:
    """The whole model of ``model_dir`` in this process, unsharded: built from its config, weights loaded
    strictly from its safetensors files (for references, VAEs and other small components)."""
    from safetensors.torch import load_file

    model = build_model(model_dir, meta="params")
    state: dict = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        state.update(load_file(str(path)))
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
