"""The diffusers pipeline adapter: ``load_pipeline`` returns the pipeline itself, its transformers and text encoders
sharded, so the pipeline's own ``__call__`` (tokenizers, prompts, guidance, VAE) runs unchanged on every rank."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ..errors import CheckpointError
from ..loader.paths import regular_files
from ..loader.pipeline import SCHEDULER, TEXT_ENCODER, TRANSFORMER, PipelineFolder, is_pipeline, scheduler_config
from .splits import PIPELINE_SPLITS

SPLITS = PIPELINE_SPLITS


def reshard_after_each_forward(model) -> None:
    """Free the gathered root parameters after every forward of an FSDP2 ``model``.

    FSDP2 leaves the root group unsharded after forward (it expects a backward). A transformer is called again at
    the next step, but an encoder runs once per prompt: its root (UMT5-XXL's 1.05 G-parameter embedding) would stay
    gathered on every rank for the whole denoising loop.
    """
    model.register_forward_hook(lambda module, args, output: module.reshard())


def split_batch(model) -> None:
    """Each rank computes its share of every forward's batch; the outputs are all-gathered, so the caller (the
    pipeline's own loop, which batches the guided and unguided branches) sees the whole batch.

    An argument is per-item when it is a tensor (or list) whose first dimension is the batch of ``hidden_states``;
    a batch that does not divide by the world size is padded with its last item and the padding dropped again.
    """
    import torch

    from .denoise import gather_rows, rank_rows, split_world

    inner = model.forward
    rank, world, group = split_world(model)

    def forward(*args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        batch = hidden.shape[0]
        rows = -(-batch // world)
        out = inner(*[rank_rows(a, batch, world, rank) for a in args],
                    **{k: rank_rows(v, batch, world, rank) for k, v in kwargs.items()})

        def gather(value):
            if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == rows:
                return gather_rows(value, world, batch, group=group)
            return value

        if isinstance(out, tuple):
            return tuple(gather(v) for v in out)
        if hasattr(out, "sample"):  # Transformer2DModelOutput
            out.sample = gather(out.sample)
            return out
        return gather(out)

    model.forward = forward


@contextlib.contextmanager
def progress_bars_off(*libraries):
    """The progress bars of ``libraries`` (diffusers, transformers: ``utils.logging``) off for the block, as they
    were afterwards."""
    before = [library.utils.logging.is_progress_bar_enabled() for library in libraries]
    for library in libraries:
        library.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        for library, enabled in zip(libraries, before, strict=True):
            if enabled:
                library.utils.logging.enable_progress_bar()


def _whole(value, default: int) -> int:
    return value if type(value) is int and value > 0 else default


def binning_shortfall(folder: PipelineFolder, call: dict) -> str | None:
    """Why the pipeline's resolution binning would refuse its transformer, or None. PixArt and Sana pipelines bin
    the asked size to an aspect-ratio table chosen by the transformer's ``sample_size``, and raise "Invalid sample
    size" inside ``__call__``, on every rank after loading, for any other; the sizes they know are read off
    ``__call__``'s own source (``self.transformer.config.sample_size == N``)."""
    import inspect
    import re

    import diffusers

    from ..loader.paths import read_json

    cls = getattr(diffusers, folder.class_name or "", None)
    try:
        parameter = inspect.signature(cls.__call__).parameters.get("use_resolution_binning")
        call_function = inspect.unwrap(cls.__call__)  # under torch.no_grad()
        lines, first = inspect.getsourcelines(call_function)
    except (TypeError, ValueError, OSError):
        return None
    if parameter is None or not call.get("use_resolution_binning", parameter.default):
        return None
    known = {int(m.group(1)): first + i for i, line in enumerate(lines)
             for m in re.finditer(r"self\.transformer\.config\.sample_size == (\d+)", line)}
    part = folder.get("transformer")
    if not known or part is None:
        return None
    path = part.folder / "config.json"
    config = read_json(path, "the model config")
    size = config.get("sample_size") if isinstance(config, dict) else None
    if size in known:
        return None
    where = f"{Path(inspect.getsourcefile(call_function)).name}:{min(known.values())}"
    return (f"{folder.class_name} bins resolutions only for a transformer sample_size of "
            f"{', '.join(map(str, known))} (diffusers' {where}), and {path} says {size!r}; run it with --call "
            f"use_resolution_binning=false")


def rotary_table_shortfall(folder: PipelineFolder, height: int, width: int, frames: int) -> str | None:
    """Why a video of ``height`` x ``width`` pixels and ``frames`` frames cannot go through the pipeline's
    transformers, or None. Wan-family transformers (Wan, SkyReels V2, AnyFlow, ...) hold a rotary table of
    ``rope_max_seq_len`` positions per axis of the patched latent grid; a longer axis fails inside the first forward
    on every rank with torch's "shape '[1, 1, 52, -1]' is invalid". The grid is worked out as diffusers' Wan pipelines
    do: the VAE's ``scale_factor_spatial`` / ``scale_factor_temporal`` (8 and 4 when the config has none), sizes
    rounded down to a whole number of patches, ``(frames - 1) // temporal + 1`` latent frames."""
    from ..loader.paths import read_json

    vae = folder.get("vae")
    vae_config = read_json(vae.folder / "config.json", "the VAE config") if vae else {}
    vae_config = vae_config if isinstance(vae_config, dict) else {}
    spatial = _whole(vae_config.get("scale_factor_spatial"), 8)
    temporal = _whole(vae_config.get("scale_factor_temporal"), 4)
    latent_frames = (max(frames, 1) - 1) // temporal + 1
    for part in folder.components:
        if part.role != TRANSFORMER:
            continue
        path = part.folder / "config.json"
        config = read_json(path, "the model config")
        if not isinstance(config, dict) or "rope_max_seq_len" not in config:
            continue
        table, patch = config["rope_max_seq_len"], config.get("patch_size")
        if type(table) is not int or not (isinstance(patch, list) and len(patch) == 3
                                          and all(_whole(p, 0) for p in patch)):
            continue
        axes = {"frames": (latent_frames // patch[0], frames, temporal * patch[0]),
                "rows": ((height // (spatial * patch[1])), height, spatial * patch[1]),
                "columns": ((width // (spatial * patch[2])), width, spatial * patch[2])}
        for axis, (length, asked, per_position) in axes.items():
            if length > table:
                unit = "frames" if axis == "frames" else "px"
                return (f"{part.name}: {part.class_name}'s rotary table has {table} positions per axis "
                        f"(rope_max_seq_len in {path}), and {asked} {unit} make {length} latent {axis} after "
                        f"patching; ask for at most {table * per_position} {unit} on that axis, or use a model "
                        f"whose table is longer")
    return None


def load_pipeline(folder: str | Path | PipelineFolder, rules=None, mesh=None, dtype=None, *, split: str = "none",
                  mp_policy=None, reshard_after_forward=None, offload=None, stats=None, progress: bool = True,
                  ulysses: int = 1, ring: int = 1, compile: bool | dict = False):
    """The diffusers pipeline of ``folder`` (the class ``model_index.json`` names), with every transformer and
    every text encoder sharded with FSDP2 by ``rules`` and loaded with per-rank reads; tokenizers,
    scheduler, VAE and the rest are loaded the ordinary diffusers way (the VAE whole on every rank) and moved to
    this rank's device. Call it on every rank inside an initialised process group; call the pipeline on every
    rank with the same arguments (and the same seeded ``generator``), as FSDP's collectives must match.

    Works on the sharded modules: ``config``, ``dtype``, ``device``, the pipeline's ``_execution_device``,
    ``encode_prompt`` and ``__call__``. ``split="batch"`` has each rank compute its share of the transformers'
    batch (pipelines that batch the guided and unguided branches into one forward: PixArt, Sana, SD3), see
    :func:`split_batch`. ``ulysses`` / ``ring`` above 1 split each transformer's sequence across that many ranks
    (see :func:`shardrules.load_sharded`); the pipeline still passes whole inputs and gets whole outputs, and with
    ``split="batch"`` the batch is shared among the ranks that hold the same tokens. ``compile`` compiles each
    transformer's units (see :func:`shardrules.load_sharded`); text encoders, which run once per prompt, stay eager.
    Does not: ``pipe.save_pretrained`` (FSDP2 cannot flatten unevenly sharded tensors) and diffusers' CPU offload
    hooks (``enable_model_cpu_offload`` moves whole modules; use
    ``offload=True``, FSDP2's own CPU offload, instead); ``pipe.config`` records the sharded components' classes
    as FSDP classes.
    """
    import diffusers

    from ..loader.load import load_sharded
    from ..loader.shard import default_device

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if isinstance(folder, PipelineFolder):
        pipeline = folder
    elif is_pipeline(folder):
        pipeline = PipelineFolder.read(folder)  # a regular file holding a JSON object, or an error
    else:
        raise CheckpointError(f"{folder}: no model_index.json, so not a diffusers pipeline folder",
                              path=str(Path(folder) / "model_index.json"))
    parts = pipeline.components
    name = pipeline.class_name
    cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(f"{pipeline.index_path}: diffusers {diffusers.__version__} has no pipeline "
                              f"class {name!r}", path=str(pipeline.index_path))
    missing = [c for c in parts if not c.folder.is_dir()]
    if missing:
        raise CheckpointError(f"{pipeline.index_path} lists '{missing[0].name}', which has no folder",
                              path=str(missing[0].folder))
    for part in parts:
        if part.role == SCHEDULER:
            scheduler_config(part)  # a diffusers scheduler with bounded tables, before any rank loads anything
        elif not part.sharded:
            regular_files(part.folder)
    sharded = {}
    for part in parts:
        if not part.sharded:
            continue
        encoder = part.role == TEXT_ENCODER
        model = load_sharded(part.folder, rules, mesh, dtype, mp_policy=mp_policy,
                             reshard_after_forward=reshard_after_forward, offload=offload, stats=stats,
                             progress=progress, ulysses=1 if encoder else ulysses, ring=1 if encoder else ring,
                             compile=False if encoder else compile)
        if encoder:
            reshard_after_each_forward(model)
        elif split == "batch":
            split_batch(model)
        sharded[part.name] = model
    import warnings

    import torch.distributed as dist

    rank0 = not dist.is_initialized() or dist.get_rank() == 0  # one progress bar for the job, from rank 0
    with warnings.catch_warnings(), contextlib.nullcontext() if rank0 else progress_bars_off(diffusers):
        # diffusers 0.42 renamed from_pretrained's torch_dtype to dtype and warns on every rank; earlier releases
        # the package supports take only torch_dtype
        warnings.filterwarnings("ignore", message="`torch_dtype` is deprecated", category=FutureWarning)
        pipe = cls.from_pretrained(str(pipeline.folder), **sharded,
                                   **({"torch_dtype": dtype} if dtype is not None else {}))
    device = default_device()
    for part in parts:
        module = getattr(pipe, part.name, None)
        if part.name not in sharded and hasattr(module, "to") and hasattr(module, "parameters"):
            module.to(device)
    return pipe


# The frame count of a video pipeline's __call__, by the names diffusers' pipelines give it (Sana Video: frames;
# Latte and Text2Video-Zero: video_length)
FRAME_KEYWORDS = ("num_frames", "frames", "video_length")


def frame_keyword(keywords) -> str | None:
    """The keyword a pipeline's ``__call__`` takes its frame count by, or None for a pipeline of images."""
    return next((k for k in FRAME_KEYWORDS if k in keywords), None)


def makes_sound(class_name: str) -> bool:
    """Whether the pipeline class returns audio (diffusers' ``AudioPipelineOutput``: Stable Audio, ACE-Step, LongCat
    audio DiT, AudioLDM, ...), which ``run`` does not write."""
    import inspect

    import diffusers

    call = getattr(diffusers, class_name).__call__
    return "AudioPipelineOutput" in str(inspect.signature(call).return_annotation) or \
        re.search(r"Audio|Music|DanceDiffusion", class_name) is not None


def per_step_default(class_name: str) -> tuple[str, int] | None:
    """The ``__call__`` argument whose default holds one value per step of the pipeline's default step count, with
    that count, or None: Ideogram 4's ``guidance_schedule`` has 48 values for its 48 steps, and the pipeline raises
    when the step count is another."""
    import inspect

    import diffusers

    parameters = inspect.signature(getattr(diffusers, class_name).__call__).parameters
    steps = parameters.get("num_inference_steps")
    if steps is None or type(steps.default) is not int or steps.default < 3:
        return None
    return next(((name, steps.default) for name, p in parameters.items()
                 if isinstance(p.default, (list, tuple)) and len(p.default) == steps.default), None)


def hdr_output(class_name: str) -> str | None:
    """Where the pipeline turns its frames into linear HDR values ([0, inf), torch or NumPy arrays only: LTX-2's HDR
    pipeline), as file:line, or None: ``run`` writes 8-bit images and videos, and failed on rank 0 after denoising
    ("'numpy.ndarray' object has no attribute 'save'")."""
    import diffusers

    return _line_matching(getattr(diffusers, class_name).__call__, re.compile(r"postprocess_hdr_video\("))


def _line_matching(function, pattern: re.Pattern) -> str | None:
    """The first line of ``function``'s source that ``pattern`` matches, as file:line, or None (no match, or no
    source to read)."""
    import inspect

    function = inspect.unwrap(function)  # under torch.no_grad and diffusers' docstring decorators
    try:
        lines, first = inspect.getsourcelines(function)
        where = Path(inspect.getsourcefile(function)).name
    except (OSError, TypeError):
        return None
    return next((f"{where}:{first + i}" for i, line in enumerate(lines) if pattern.search(line)), None)


# __call__ arguments that take a picture, a video or a sound: `run` reads them from a file (--call NAME=@FILE)
MEDIA_ARGUMENTS = ("image", "mask_image", "control_image", "video", "control_video", "pose_video", "face_video",
                   "reference_image", "example_image", "audio")
# Pipeline classes whose name says they transform or are steered by a picture, a video or a sound: they need one
CONDITIONED = re.compile(r"Img2Img|Inpaint|ImageToVideo|Image2Video|I2V|I2I|VideoToVideo|VideoToWorld|Control|Fill|"
                         r"Edit|Redux|Refiner|Upscale|Variation|AudioToAudio|Depth2Img|Pix2Pix|Animate")


def _none_tested(test, op=None) -> list[str] | None:
    """The names of ``a is None`` or ``a is None and b is None ...`` (``or`` for ``op=ast.Or``); None for any
    other test."""
    import ast

    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, op or ast.And) else [test]
    names = []
    for part in parts:
        if not (isinstance(part, ast.Compare) and isinstance(part.left, ast.Name) and len(part.ops) == 1
                and isinstance(part.ops[0], ast.Is) and isinstance(part.comparators[0], ast.Constant)
                and part.comparators[0].value is None):
            return None
        names.append(part.left.id)
    return names


def _raised_when_none(cls) -> list[tuple[list[str], str]]:
    """What the pipeline class raises on by its own code: each ``if a is None [and b is None ...]: raise`` at the
    top level of its ``__call__`` or ``check_inputs`` (not under another condition), with its file:line; ``if a is
    None or b is None: raise`` gives each name alone."""
    import ast
    import inspect
    import textwrap

    found = []
    for name in ("__call__", "check_inputs"):
        function = inspect.unwrap(getattr(cls, name, None) or (lambda: None))
        try:
            lines, first = inspect.getsourcelines(function)
            where = Path(inspect.getsourcefile(function)).name
        except (OSError, TypeError):
            continue
        tree = ast.parse(textwrap.dedent("".join(lines)))
        if not tree.body or not isinstance(tree.body[0], ast.FunctionDef):
            continue
        statements = list(tree.body[0].body)
        while statements:
            statement = statements.pop(0)
            if isinstance(statement, (ast.With, ast.Try)):
                statements[:0] = statement.body
            elif isinstance(statement, ast.If) and any(isinstance(s, ast.Raise) for s in statement.body):
                names = _none_tested(statement.test)
                if names:
                    found.append((names, f"{where}:{first + statement.lineno - 1}"))
                elif either := _none_tested(statement.test, ast.Or):  # each one required (LTX-2's refine pass)
                    found += [([name], f"{where}:{first + statement.lineno - 1}") for name in either]
    return found


def _takes_tensor(parameter) -> bool:
    """An argument annotated as tensors and not as pictures: nothing on a command line can say it."""
    text = str(parameter.annotation)
    return parameter.annotation is not parameter.empty and ("Tensor" in text or "ndarray" in text) \
        and "Image" not in text


def input_shortfall(class_name: str, given: dict) -> str | None:
    """Why the pipeline class would refuse a call with ``given`` (keyword: value, what ``run`` passes), before
    anything loads, or None: ``__call__`` arguments without a default; arguments its own code raises on when
    they are None (read off its ``__call__`` and ``check_inputs``); or, for a class that transforms or is steered
    by a picture, video or sound (an image-to-image, inpainting, control, edit, image-to-video ... pipeline, by its
    name), none of its picture, video or sound arguments."""
    import inspect

    import diffusers

    cls = getattr(diffusers, class_name)
    parameters = {name: p for name, p in inspect.signature(cls.__call__).parameters.items()
                  if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def how(names):
        """How each of ``names`` is given: a picture or video from a file, text or JSON on the command line; a
        tensor or a sound only from Python."""
        ways, python = [], []
        for name in names:
            if name == "audio" or (name not in MEDIA_ARGUMENTS and _takes_tensor(parameters[name])):
                python.append(name)
            elif name in MEDIA_ARGUMENTS:
                ways.append(f"--call {name}=@FILE ({'a video' if 'video' in name else 'an image'} file)")
            else:
                ways.append(f"--call {name}=VALUE (JSON or text)")
        if python:
            ways.append(f"{', '.join(python)} from Python (shardrules.load_pipeline; run reads no "
                        f"{'sound' if python == ['audio'] else 'tensor'} from the command line)")
        return ways

    missing = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty and name not in given]
    if missing:
        return (f"{class_name}.__call__ needs {', '.join(missing)} (no default); give "
                f"{'; '.join(how(missing))}")

    def value(name):
        return given[name] if name in given else parameters[name].default

    for names, where in _raised_when_none(cls):
        if all(n in parameters for n in names) and all(value(n) is None for n in names):
            return (f"{class_name} raises when {' and '.join(names)} {'is' if len(names) == 1 else 'are'} None "
                    f"(diffusers' {where}); give {' or '.join(how(names))}")
    media = [name for name in MEDIA_ARGUMENTS if name in parameters]
    if media and CONDITIONED.search(class_name) and all(value(n) is None for n in media):
        return f"{class_name} works from {', '.join(media)}, and none is given; give {'; '.join(how(media))}"
    return None


def unbuildable_component(folder) -> str | None:
    """A transformers component of the pipeline folder that this install cannot build, or None: a class transformers
    exports only as a placeholder for a library it lacks (PixtralProcessor without torchvision), or a processor with
    a video processor, which transformers looks up among torchvision's (Qwen2VLProcessor for LongCat-Image, Qwen 3
    VL's for Qwen-Image 2.1: "type object 'VIDEO_PROCESSOR_MAPPING' has no attribute '_extra_content'" raised on
    every rank after loading)."""
    import importlib.util

    import transformers

    for component in folder.components:
        if component.library != "transformers":
            continue
        cls = getattr(transformers, component.class_name, None)
        missing = [b for b in (vars(cls).get("_backends") or ()) if importlib.util.find_spec(b) is None] \
            if cls is not None else []
        if not missing and cls is not None and "video_processor" in _attributes(cls) and \
                importlib.util.find_spec("torchvision") is None:
            missing = ["torchvision"]
        if missing:
            return (f"its {component.name} is a {component.class_name}, which transformers builds only with "
                    f"{' and '.join(missing)}, and this install lacks it: pip install {' '.join(missing)}")
    return None


def unfound_component(folder) -> str | None:
    """A component whose class diffusers' ``from_pretrained`` will not find where model_index.json says, or None:
    the lookup diffusers makes (a pipeline module by its folder's name, else the library's own attribute, after
    diffusers' renames of transformers classes), so that the folder is refused before the ranks start instead of
    failing on every rank. VQ-Diffusion is one: its learned embeddings' class lives in a deprecated pipeline's module,
    which diffusers 0.42.1 neither saves nor loads by name."""
    import importlib

    import diffusers
    from diffusers import pipelines
    from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES

    try:
        from diffusers.pipelines.pipeline_loading_utils import _maybe_remap_transformers_class as remap
    except ImportError:  # a diffusers without renames
        def remap(name):
            return None
    for component in folder.components:
        if hasattr(pipelines, component.library):
            found = hasattr(getattr(pipelines, component.library), component.class_name)
        elif component.library not in LOADABLE_CLASSES:
            continue  # custom code (in the folder, or a module the folder names): not imported here
        else:
            try:
                library = importlib.import_module(component.library)
            except ImportError:
                return (f"its {component.name} is a {component.class_name} of {component.library!r}, which this "
                        f"install lacks")
            name = (remap(component.class_name) if component.library == "transformers" else None) \
                or component.class_name
            found = hasattr(library, name)
        if not found:
            return (f"its {component.name} is declared as [\"{component.library}\", \"{component.class_name}\"] in "
                    f"model_index.json, and diffusers {diffusers.__version__} finds no such class there, so its "
                    f"from_pretrained cannot load the folder")
    return None


def _attributes(cls) -> list[str]:
    """What a transformers processor class is made of (tokenizer, image_processor, video_processor, ...)."""
    try:
        return list(cls.get_attributes()) if hasattr(cls, "get_attributes") else []
    except (AttributeError, ImportError, TypeError):  # a class that is not a processor, or a placeholder
        return []


def decodes_only_tiled(vae) -> str | None:
    """Where the VAE's own code refuses to decode without tiling, as file:line, or None. Allegro's VAE raises
    NotImplementedError("Decoding without tiling has not been implemented yet") unless ``enable_tiling()`` was
    called, which its pipeline does not do; every rank would fail after denoising."""
    decode = getattr(type(vae), "_decode", None)
    return _line_matching(decode, re.compile(r"raise NotImplementedError\(.*without tiling")) if decode else None


def missing_library(class_name: str) -> str | None:
    """A library the pipeline needs that this install lacks, or None: cosmos_guardrail, for the Cosmos pipelines'
    safety checker (their ``__init__`` builds one, and raises ImportError on every rank after loading); a library
    under whose ``is_..._available()`` the module imports a class its ``__init__`` builds unconditionally
    (torchvision, for OmniGen's multimodal processor: NameError on every rank after loading); ftfy, when the
    pipeline's own module calls it without checking for it.
    diffusers imports ftfy under ``if is_ftfy_available(): import ftfy``; Wan's pipeline then checks again before
    ``ftfy.fix_text``, but SkyReels V2 and 13 other pipelines clean every prompt with it unchecked, so a run without
    ftfy failed with "name 'ftfy' is not defined" inside every rank after loading. (Other optional libraries are
    checked by the pipelines' own code paths: Beautiful Soup only for ``clean_caption``, with a warning; XLA under a
    flag.)"""
    import ast
    import importlib.util
    import inspect
    import sys
    import textwrap

    import diffusers

    cls = getattr(diffusers, class_name)
    try:
        lines, first = inspect.getsourcelines(cls.__init__)
    except (OSError, TypeError):
        lines, first = [], 0
    # the Cosmos pipelines build their safety checker when the folder has none
    where = _line_matching(cls.__init__, re.compile(r"CosmosSafetyChecker\(\)"))
    if where and importlib.util.find_spec("cosmos_guardrail") is None:
        return (f"{class_name} builds Cosmos' safety checker ({where}), which needs cosmos_guardrail, and this "
                f"install lacks it: pip install cosmos_guardrail")
    module = sys.modules[cls.__module__]
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return None
    # names the module imports only when a library is there (OmniGen's multimodal processor, under
    # ``if is_torchvision_available():``), which its __init__ then uses: from_pretrained raises NameError
    optional = {}
    for statement in tree.body:
        if isinstance(statement, ast.If) and isinstance(statement.test, ast.Call) and isinstance(
                statement.test.func, ast.Name) and re.fullmatch(r"is_\w+_available", statement.test.func.id):
            library = statement.test.func.id.removeprefix("is_").removesuffix("_available")
            for node in (n for s in statement.body for n in ast.walk(s) if isinstance(n, ast.ImportFrom | ast.Import)):
                optional.update({(alias.asname or alias.name).split(".")[0]: library for alias in node.names})
    try:
        init = ast.parse(textwrap.dedent("".join(lines))).body[0] if lines else None
    except SyntaxError:
        init = None
    conditional = {id(n) for branch in (ast.walk(init) if init else ()) if isinstance(branch, ast.If)
                   for s in branch.body + branch.orelse for n in ast.walk(s)}  # SDXL: if add_watermarker: ...
    for node in ast.walk(init) if init else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in optional and \
                id(node) not in conditional and importlib.util.find_spec(optional[node.func.id]) is None:
            library = optional[node.func.id]
            return (f"{class_name} builds {node.func.id} ({Path(inspect.getsourcefile(cls)).name}:"
                    f"{first + node.lineno - 1}), which diffusers imports only with {library}, and this install "
                    f"lacks it: pip install {library}")
    if hasattr(module, "ftfy"):
        return None
    # the module's own functions (basic_clean, which every prompt goes through); the pipelines' _clean_caption
    # methods call ftfy too, but only for clean_caption=True, which they turn off without Beautiful Soup
    functions = [statement for statement in tree.body if isinstance(statement, ast.FunctionDef)]
    guarded = set()
    for node in (n for function in functions for n in ast.walk(function)):
        if isinstance(node, ast.If) and any(isinstance(n, ast.Name) and n.id == "is_ftfy_available"
                                            for n in ast.walk(node.test)):
            guarded |= {id(n) for statement in node.body for n in ast.walk(statement)}
    for node in (n for function in functions for n in ast.walk(function)):
        if isinstance(node, ast.Name) and node.id == "ftfy" and id(node) not in guarded:
            return (f"{class_name} cleans prompts with ftfy ({Path(module.__file__).name}:{node.lineno}, unchecked), "
                    f"which this install lacks: pip install ftfy")
    return None
