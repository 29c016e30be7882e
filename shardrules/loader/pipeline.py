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
# Components in one model_index.json: the largest diffusers pipelines list about a dozen. A folder listing hundreds
# of encoders would make every rank build and load each.
MAX_COMPONENTS = 64
# GLM-Image's vision_language_encoder is its autoregressive model (9 B parameters), an encoder of the prompt that
# generates the image's prior tokens: sharded like a text encoder
_ROLE_BY_PREFIX = (("transformer", TRANSFORMER), ("text_encoder", TEXT_ENCODER),
                   ("vision_language_encoder", TEXT_ENCODER), ("tokenizer", TOKENIZER), ("scheduler", SCHEDULER))


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
            if not any(isinstance(v, str) for v in value):  # a config value of the pipeline's: Krea 2's two layers
                continue
            if "/" in name or "\\" in name or not name.isprintable():
                raise CheckpointError(f"{path}: component {name!r} is not a plain folder name", path=str(path))
            if not all(isinstance(v, str) and v.isprintable() for v in value):
                raise CheckpointError(f"{path}: component {name!r} names {value!r}, not a library and a class",
                                      path=str(path))
            found.append(Component(name, value[0], value[1], child(folder, name, "component", str(path))))
            if len(found) > MAX_COMPONENTS:
                raise CheckpointError(f"{path}: more than {MAX_COMPONENTS} components: not a diffusers pipeline",
                                      path=str(path))
        class_name = index.get("_class_name")
        if class_name is not None and not (isinstance(class_name, str) and class_name.isprintable()):
            raise CheckpointError(f"{path}: '_class_name' {class_name!r} is not a class name", path=str(path))
        return cls(folder, class_name if isinstance(class_name, str) else None, tuple(found))

    @property
    def index_path(self) -> Path:
        return self.folder / "model_index.json"

    @property
    def sharded(self) -> list[Component]:
        return [c for c in self.components if c.sharded]

    def get(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)


# A scheduler's table sizes: real configs train on 1,000 timesteps; 10**8 took 2.3 GiB on every rank.
MAX_TRAIN_TIMESTEPS = 100_000


def scheduler_config(part: Component) -> tuple[type, dict]:
    """The scheduler class and config of the pipeline component ``part``, checked before anything is built: both the
    class ``model_index.json`` names and the config's ``_class_name`` must be diffusers schedulers (a "scheduler"
    naming a transformer would build one), and the sizes of its tables bounded."""
    import diffusers

    path = part.folder / "scheduler_config.json"
    config = read_json(path, "the scheduler config", infinities=True)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the scheduler config is not a JSON object", path=str(path))
    names = [(part.class_name, f"{part.folder.parent / 'model_index.json'} names")]
    if "_class_name" in config:
        names.append((config["_class_name"], f"{path}: '_class_name' is"))
    classes = []
    for name, where in names:
        cls = getattr(diffusers, name, None) if isinstance(name, str) else None
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            raise CheckpointError(f"{where} {name!r}, which is not a diffusers {diffusers.__version__} scheduler",
                                  path=str(path))
        classes.append(cls)
    steps = config.get("num_train_timesteps", 1000)
    if type(steps) is not int or not 1 <= steps <= MAX_TRAIN_TIMESTEPS:
        raise CheckpointError(f"{path}: num_train_timesteps is {steps!r}; a scheduler trains on 1 to "
                              f"{MAX_TRAIN_TIMESTEPS:,}", path=str(path))
    for key, value in config.items():
        if isinstance(value, list) and len(value) > MAX_TRAIN_TIMESTEPS:
            raise CheckpointError(f"{path}: {key!r} lists {len(value):,} values, more than {MAX_TRAIN_TIMESTEPS:,}",
                                  path=str(path))
    return classes[-1], config


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
