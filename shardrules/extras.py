"""What each part needs installed. ``pip install shardrules`` gives the rule language and ``rule-lint`` (lark only);
planning against a model, loading and running need ``pip install 'shardrules[fsdp]'`` (torch, safetensors,
diffusers, tqdm), text encoders and pipelines ``shardrules[encoders]`` (adds transformers)."""

from __future__ import annotations

import importlib.util

from .errors import ShardRulesError

FSDP_LIBRARIES = ("torch", "safetensors", "diffusers", "tqdm")


class MissingExtraError(ShardRulesError):
    """A command needs libraries that this install does not have."""


def require_fsdp(what: str) -> None:
    """Raise a :class:`MissingExtraError` naming the extra to install when the model libraries are missing."""
    missing = [name for name in FSDP_LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, which this install lacks: "
                                f"pip install 'shardrules[fsdp]'")


def require_encoders(what: str) -> None:
    """The same for text encoders and pipelines: transformers (and the fsdp extra)."""
    require_fsdp(what)
    if importlib.util.find_spec("transformers") is None:
        raise MissingExtraError(f"{what} needs transformers, which this install lacks: "
                                f"pip install 'shardrules[encoders]'")


class _TorchvisionNotice:
    """Drops transformers' notice that an image processor falls back to its PIL twin without torchvision: the
    pipelines' image processors work the same either way, and it came once per rank and per class on every run."""

    def filter(self, record) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


def quiet_library_notices() -> None:
    """Keep the libraries' notices that say nothing about this run out of the commands' output."""
    import logging

    logger = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _TorchvisionNotice) for f in logger.filters):
        logger.addFilter(_TorchvisionNotice())
