"""Reading attributes of a model through the wrappers around it."""

from __future__ import annotations

from typing import Any

# Where wrappers keep the module they wrap: FSDP1 / checkpoint wrappers, DDP and DataParallel,
# torch.compile's OptimizedModule.
WRAPPER_ATTRS = ("_fsdp_wrapped_module", "module", "_orig_mod")
_MISSING = object()


def get_wrapped_attr(module: Any, name: str, default: Any = _MISSING) -> Any:
    """``getattr(module, name)``, looking through wrappers when the outer object lacks it.

    Follows ``_fsdp_wrapped_module``, ``module`` and ``_orig_mod`` (breadth-first, each object visited
    once, so a wrapper that points back at itself cannot loop). Raises ``AttributeError`` naming every
    object searched unless ``default`` is given.
    """
    seen: set[int] = set()
    queue = [module]
    searched = []
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        searched.append(type(current).__name__)
        try:
            return _own_attr(current, name)
        except AttributeError:
            pass
        for attr in WRAPPER_ATTRS:
            try:
                inner = _own_attr(current, attr)
            except AttributeError:
                continue
            if inner is not None:
                queue.append(inner)
    if default is not _MISSING:
        return default
    raise AttributeError(f"'{name}' not found on {' -> '.join(searched)}")


def _own_attr(obj: Any, name: str) -> Any:
    # nn.Module.__getattr__ finds submodules, parameters and buffers; plain attributes come first.
    return getattr(obj, name)
