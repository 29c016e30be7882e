"""Building a model from its ``config.json`` without reading or allocating its weights."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import CheckpointError, ShardRulesError, shorten
from ..torch_internals import like_parameter, parameters_registered_as
from .dtypes import cast_like_library
from .paths import read_json


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Create every parameter on the meta device while buffers and plain tensors stay real.

    Non-persistent buffers (RoPE tables) and tensor attributes (Qwen-Image's ``pos_freqs``) are computed in
    ``__init__`` and are not in checkpoints, so they must survive; building under ``torch.device("meta")``
    would lose them. Each parameter is moved to meta as it is registered, so its initialiser runs on meta.
    """
    def on_meta(param: nn.Parameter) -> nn.Parameter:
        return param if param.device.type == "meta" else like_parameter(param, param.to("meta"))

    available = available_memory()
    with parameters_registered_as(on_meta), _EmptyOnMeta(None if available is None else available // 4):
        yield


_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                        torch.arange, torch.linspace, torch.logspace, torch.eye})


# Uninitialised and random storage is a parameter's (nn.Linear, Conv, Embedding; diffusers' scale_shift_table =
# randn(...)): made on meta. Buffers are computed (arange, zeros, ...) and must stay real.
_ON_META = frozenset({torch.empty, torch.rand, torch.randn, torch.randint})


# Functions that only write values into an existing tensor: on a meta parameter they do nothing but cost the
# dispatch (nn.Linear's kaiming_uniform_ decomposes into a dozen meta ops), about a third of building a model.
_FILLS = frozenset({
    *(getattr(nn.init, name) for name in ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
                                          "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                          "kaiming_normal_", "orthogonal_", "sparse_") if hasattr(nn.init, name)),
    *(getattr(torch.Tensor, name) for name in ("uniform_", "normal_", "fill_", "zero_", "random_", "bernoulli_",
                                               "exponential_", "geometric_", "log_normal_", "cauchy_")),
})


class _EmptyOnMeta(TorchFunctionMode):
    """While a model is built: ``torch.empty`` and the random factories without a device give meta tensors, so the
    storage of parameters is never allocated, and initialisers that fill a meta tensor are skipped; any other new
    tensor is sized on meta first and refused (``CheckpointError``) when it alone would take more than a quarter
    of this machine's available memory, so a config asking for huge widths fails with a typed error instead of an
    allocator error or the out-of-memory killer. Buffers, computed with other functions, stay real; any left on
    meta are caught after loading."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FILLS:
            filled = args[0] if args else kwargs.get("tensor")  # nn.init passes its tensor by keyword
            if isinstance(filled, torch.Tensor) and filled.is_meta:
                return filled
        if func in _FACTORIES and kwargs.get("device") is None:
            try:
                sized = func(*args, **dict(kwargs, device="meta"))
            except RuntimeError as exc:  # sizes whose byte count overflows 64 bits
                if "overflow" not in str(exc):
                    raise
                raise CheckpointError(f"the config asks for a tensor too large to size ({exc}) while building "
                                      f"the model: check its widths and sizes") from None
            if func in _ON_META:
                return sized
            if self.limit is not None:
                wanted = sized.numel() * sized.element_size()
                if wanted > self.limit:
                    raise CheckpointError(f"the config asks for a tensor of shape {list(sized.shape)} "
                                          f"({wanted / 2**30:.1f} GiB) while building the model, more than a "
                                          f"quarter of this machine's available memory "
                                          f"({self.limit / 2**30:.1f} GiB): check its widths and sizes")
        return func(*args, **kwargs)


class _SkipFillsOnMeta(TorchFunctionMode):
    """Initialisers that only fill a meta tensor are skipped (they do nothing there but cost the dispatch)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FILLS:
            filled = args[0] if args else kwargs.get("tensor")
            if isinstance(filled, torch.Tensor) and filled.is_meta:
                return filled
        return func(*args, **kwargs)


@contextlib.contextmanager
def all_on_meta() -> Iterator[None]:
    """Build everything on the meta device (parameters and buffers: for planning), skipping the initialisers, about
    a third of the time a model takes to build under ``torch.device("meta")`` alone."""
    with torch.device("meta"), _SkipFillsOnMeta():
        yield


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not os.path.lexists(path):
        raise CheckpointError(f"{path} not found: a model folder holds config.json and *.safetensors",
                              path=str(path))
    config = read_json(path, "the model config")
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
        return _a_model(cls, path)
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
        return _a_model(cls, path)
    raise CheckpointError(f"{path} names no model class ('_class_name' or 'architectures')", path=path)


def _a_model(cls: object, path: str) -> type[nn.Module]:
    """``cls`` when it is a model class; a scheduler, a pipeline or a function named as the model is refused
    before anything is built from the config."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        kind = type(cls).__name__ if not isinstance(cls, type) else f"class {cls.__name__}"
        raise CheckpointError(f"{path}: '{getattr(cls, '__name__', cls)}' is not a model ({kind}, not an "
                              f"nn.Module): a model folder's config.json names a model class", path=path)
    return cls


def transformers_config(cls: type, config: dict, path: str):
    """The transformers config of ``cls`` from the ``config.json`` already read: the class's own ``config_class``,
    never ``AutoConfig``, which follows ``model_type`` and ``auto_map`` to code shipped in the folder (and asks on the
    terminal whether to run it). Nothing in a model folder runs (SECURITY.md)."""
    config_class = getattr(cls, "config_class", None)
    if not isinstance(config_class, type) or not hasattr(config_class, "from_dict"):
        raise CheckpointError(f"{path}: transformers class '{cls.__name__}' names no config class", path=path)
    try:
        return config_class.from_dict({k: v for k, v in config.items() if k != "auto_map"})
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not a {config_class.__name__}: {type(exc).__name__}: {exc}",
                              path=path) from None


# What a config can make the builder do. Real models have at most about a hundred layers and a few thousand
# modules (HunyuanVideo about 2,000; a 7 B text encoder under 1,000); 10,000,000 layers took hours to refuse.
MAX_LAYERS = 1_000
MAX_MODULES = 20_000
_LAYER_KEY = re.compile(r"layers|depth|(^|_)blocks$")


def check_sizes(config: dict, path: str) -> None:
    """Refuse, before building, a config whose layer counts no real model has (``num_layers``, ``depth``, ...)."""
    for key, value in config.items():
        if isinstance(key, str) and _LAYER_KEY.search(key) and type(value) is int and value > MAX_LAYERS:
            raise CheckpointError(f"{path}: {key!r} is {value:,}; the builder takes at most {MAX_LAYERS:,} layers",
                                  path=path)
        if isinstance(value, dict):  # transformers' nested text_config / vision_config
            check_sizes(value, path)


@contextlib.contextmanager
def bounded_modules(path: str) -> Iterator[None]:
    """Stop a build past ``MAX_MODULES`` submodules (a config can ask for any number, under any key)."""
    from torch.nn.modules.module import register_module_module_registration_hook

    count = 0

    def count_module(module, name, submodule):
        nonlocal count
        count += 1
        if count > MAX_MODULES:
            raise CheckpointError(f"{path}: the config builds more than {MAX_MODULES:,} modules: check its layer "
                                  f"counts", path=path)

    handle = register_module_module_registration_hook(count_module)
    try:
        yield
    finally:
        handle.remove()


def _for_init(cls: type, config: dict) -> dict:
    """``config`` less the dtype keys a diffusers class's ``__init__`` does not take: shardrules reads them itself
    (:func:`~shardrules.loader.dtypes.stored_dtype`), and diffusers would warn on every rank that they are
    ignored."""
    import inspect

    taken = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in config.items() if k not in ("torch_dtype", "dtype") or k in taken}


def build_model(model_dir: str | Path, *, meta: str = "params", dtype: torch.dtype | None = None) -> nn.Module:
    """Build the model of ``model_dir`` from its config. ``meta="all"`` puts buffers on meta too (planning
    only); ``meta="params"`` keeps buffers real (loading). A config the class cannot be built from (a string where a
    number belongs, zero heads, an unknown dtype) is a ``CheckpointError`` naming the file and the class's complaint."""
    config = read_config(model_dir)
    path = str(Path(model_dir) / "config.json")
    cls = model_class(config, path)
    check_sizes(config, path)
    context = all_on_meta() if meta == "all" else parameters_on_meta()
    try:
        with context, bounded_modules(path):
            if "_class_name" in config:
                model = cls.from_config(_for_init(cls, config))
            else:
                model = cls(transformers_config(cls, config, path))
    except ShardRulesError:
        raise
    except Exception as exc:  # the class's own checks of its config, in whatever type it raises them
        raise CheckpointError(f"{path}: cannot build {cls.__name__} from this config: {type(exc).__name__}: "
                              f"{shorten(str(exc), 300)}", path=path) from exc
    if dtype is not None:
        cast_like_library(model, dtype)
    return model.eval()


def load_plain(model_dir: str | Path) -> nn.Module:
    """The whole model of ``model_dir`` in this process, unsharded: built from its config, weights loaded
    strictly from its safetensors files (for references, VAEs and other small components), through the same checked
    reader as sharded loads (its index, header checks, no FIFO waited on)."""
    from .checkpoint import Checkpoint

    model = build_model(model_dir, meta="params")
    with Checkpoint(model_dir) as checkpoint:
        state = {name: checkpoint.read(name) for name in checkpoint.entries}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
