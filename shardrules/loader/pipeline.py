"""Diffusers pipeline folders (``model_index.json``): which components shardrules shards.

Each transformer (``transformer``, ``transformer_2``) and each text encoder (``text_encoder``,
``text_encoder_2``, ...) is sharded by its own rules; VAEs, schedulers and tokenizers are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

SHARDED_PREFIXES = ("transformer", "text_encoder")


@dataclass(frozen=True)
class Component:
    name: str  # the key in model_index.json, also the subfolder
    library: str
    class_name: str
    folder: Path

    @property
    def sharded(self) -> bool:
        return self.name.startswith(SHARDED_PREFIXES)


def is_pipeline(folder: str | Path) -> bool:
    return (Path(folder) / "model_index.json").exists()


def components(folder: str | Path) -> list[Component]:
    """The components a pipeline folder lists, in model_index.json order."""
    folder = Path(folder)
    path = folder / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the pipeline index ({exc})", path=str(path)) from None
    found = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        found.append(Component(name, value[0], value[1], folder / name))
    return found

