"""The per-module fields an expression reads (SPEC §2), computed once per module."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

_FSDP_PREFIX = "FSDP"


def class_name(module: nn.Module) -> str:
    """``type(module).__name__`` without the ``FSDP`` prefix that ``fully_shard`` adds to a module's class."""
    cls = type(module)
    name = cls.__name__
    if name.startswith(_FSDP_PREFIX) and any(base.__name__ == "FSDPModule" for base in cls.__mro__[1:]):
        return name[len(_FSDP_PREFIX):]
    return name


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits (what ``str.isdigit`` means for a module name)."""
    return text.isascii() and text.isdigit()


@dataclass(slots=True)
class ModuleFacts:
    name: str
    leaf: str
    container: str
    index: int | None
    depth: int
    class_name: str
    params: int

    @classmethod
    def of(cls, name: str, module: nn.Module, params: int | None = None) -> ModuleFacts:
        """Facts of one module. ``params`` is counted from the module when not given (-1 means: not needed)."""
        if name:
            parts = name.rsplit(".", 2)
            leaf = parts[-1]
            container = parts[-2] if len(parts) >= 2 else ""
            depth = name.count(".") + 1
        else:
            leaf = container = ""
            depth = 0
        if params is None:
            params = sum(p.numel() for p in module.parameters())
        return cls(name, leaf, container, int(leaf) if is_digits(leaf) else None, depth, class_name(module), params)


def subtree_param_counts(model: nn.Module) -> dict[str, int]:
    """Parameters owned by each module and its children, for every module, in one pass over the parameters.

    A parameter shared by several modules is counted once per subtree that holds it, as ``module.parameters()``
    would.
    """
    counts: dict[str, int] = {name: 0 for name, _ in model.named_modules()}
    seen: set[tuple[str, int]] = set()
    for pname, param in model.named_parameters(remove_duplicate=False):
        numel = param.numel()
        prefix = pname
        while prefix:
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
            key = (prefix, id(param))
            if key not in seen:
                seen.add(key)
                counts[prefix] += numel
    return counts


def collect_facts(model: nn.Module, with_params: bool = True) -> list[tuple[nn.Module, ModuleFacts]]:
    """Facts for every module of ``model`` in ``named_modules()`` order (parents before children)."""
    counts = subtree_param_counts(model) if with_params else None
    return [
        (module, ModuleFacts.of(name, module, counts[name] if counts is not None else -1))
        for name, module in model.named_modules()
    ]
