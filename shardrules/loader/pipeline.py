"""Model and pipeline folders: which components shardrules shards, and how every other one is loaded.

A diffusers pipeline folder is read once into a :class:`PipelineFolder` (its ``model_index.json``): each component
with its role. Each transformer (``transformer``, ``transformer_2``) and each text encoder (``text_encoder``,
``text_encoder_2``, ...) is sharded by its own rules; tokenizers and the scheduler are not models; the VAE and the
rest load whole the ordinary diffusers way. ``plan``, ``run``, ``load_pipeline`` and ``rule-lint --model`` all take
the components from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from .paths import child, read_json

# roles, in the words the commands print
TRANSFORMER = "sharded transformer"
TEXT_ENCODER = "sharded text encoder"
TOKENIZER = "tokenizer"
SCHEDULER = "scheduler"
WHOLE = "loaded whole"
SHARDED_ROLES = (TRANSFORMER, TEXT_ENCODER)
_ROLE_BY_PREFIX = (("transformer", TRANSFORMER), ("text_encoder", TEXT_ENCODER), ("tokenizer", TOKENIZER),
                   ("scheduler", SCHEDULER))


def role_of(name: str) -> str:
    """The role of a component from its key in ``model_index.json``."""
    return next((role for prefix, role in _ROLE_BY_PREFIX if name.startswith(prefix)), WHOLE)


@dataclass(frozen=True)
class Component:
    name: str  # the key in model_index.json, also the subfolder
    library: str
    class_name: str
    folder: Path

    @property
    def role(self) -> str:
        return role_of(self.name)

    @property
    def sharded(self) -> bool:
        return self.role in SHARDED_ROLES


@dataclass(frozen=True)
class PipelineFolder:
    """A diffusers pipeline folder, read once: the pipeline class ``model_index.json`` names and its components in
    the index's order."""

    folder: Path
    class_name: str | None
    components: tuple[Component, ...]

    @classmethod
    def read(cls, folder: str | Path) -> PipelineFolder:
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
        class_name = index.get("_class_name")
        return cls(folder, class_name if isinstance(class_name, str) else None, tuple(found))

    @property
    def index_path(self) -> Path:
        return self.folder / "model_index.json"

    @property
    def sharded(self) -> list[Component]:
        return [c for c in self.components if c.sharded]

    def get(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)


def is_pipeline(folder: str | Path) -> bool:
    return (Path(folder) / "model_index.json").exists()


def read_folder(folder: str | Path) -> PipelineFolder | None:
    """The pipeline of ``folder`` when it holds a ``model_index.json``, else None (a model folder)."""
    return PipelineFolder.read(folder) if is_pipeline(folder) else None


def sharded_parts(folder: str | Path | PipelineFolder) -> list[tuple[str | None, Path]]:
    """(component name, folder) of each model shardrules shards: every transformer and text encoder of a pipeline,
    else the model folder itself (named None)."""
    pipeline = folder if isinstance(folder, PipelineFolder) else read_folder(folder)
    if pipeline is None:
        return [(None, Path(folder))]
    return [(c.name, c.folder) for c in pipeline.sharded]
