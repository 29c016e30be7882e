"""Diffusers pipeline folders (``model_index.json``): which components shardrules shards.

Each transformer (``transformer``, ``transformer_2``) and each text encoder (``text_encoder``,
``text_encoder_2``, ...) is sharded by its own rules; VAEs, schedulers and tokenizers are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from .paths import child, read_json

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
    index = read_json(path, "the pipeline index")
    if not isinstance(index, dict):
        raise CheckpointError(f"{path}: the pipeline index is not a JSON object", path=str(path))
    found = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        if "/" in name or "\\" in name:
            raise CheckpointError(f"{path}: component {name!r} is not a plain folder name", path=str(path))
        found.append(Component(name, str(value[0]), str(value[1]), child(folder, name, "component", str(path))))
    return found


def sharded_folders(folder: str | Path) -> list[Path]:
    """The model folders shardrules shards: each transformer's and text encoder's of a pipeline, else ``folder``."""
    return [c.folder for c in components(folder) if c.sharded] if is_pipeline(folder) else [Path(folder)]
