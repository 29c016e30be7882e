"""Command-line interface: argument parsing only; every command calls the API."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

from .errors import Interrupted, LaunchError, RankFailure, ShardRulesError, printable
from .runner.splits import PIPELINE_SPLITS, RUNNER_SPLITS


def cmd_plan(args: argparse.Namespace) -> int:
    import torch

    from .loader.planning import plan_folder
    from .rules import load_rules

    folder = check_model_folder(args.model_dir, weights=False)
    check_rule_files(args.rules)
    if args.html:
        from pathlib import Path

        html = Path(args.html)
        if html.is_dir() or not html.resolve().parent.is_dir():
            raise InputError(f"--html {args.html}: name a file in a folder that exists")
    with input_errors():
        result = plan_folder(folder, load_rules(*(args.rules or [])),
                             getattr(torch, args.dtype) if args.dtype else None, ulysses=args.ulysses, ring=args.ring,
                             world_size=args.world_size)
    if args.format == "json":
        import json

        print(json.dumps(result.as_dict(args.world_size), indent=2))
    else:
        print(result.as_text(args.world_size))
    if args.html:
        from pathlib import Path

        Path(args.html).write_text(result.as_html(args.world_size, f"shardrules plan: {args.model_dir}"),
                                   encoding="utf-8")
        print(f"plan picture written to {args.html}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .loader.pipeline import PipelineFolder
    from .loader.planning import plan_folder
    from .rules import load_rules

    folder = check_model_folder(args.model_dir, weights=False)
    check_rule_files(args.rules)
    if isinstance(folder, PipelineFolder):
        component = args.component or "transformer"
        names = [c.name for c in folder.sharded]
        if component not in names:
            raise InputError(f"--component {component}: {folder.index_path} shards {', '.join(names)}")
        folder = PipelineFolder(folder.folder, folder.class_name, tuple(c for c in folder.components
                                                                          if c.name == component))
    elif args.component is not None:
        raise InputError(f"--component is for a pipeline folder; {args.model_dir} is a model folder")
    with input_errors():
        plans = plan_folder(folder, load_rules(*(args.rules or []))).plans
    try:
        print(next(iter(plans.values())).explain(args.module))
    except KeyError as exc:
        raise InputError(exc.args[0]) from None
    return 0


def announce_backend(args: argparse.Namespace) -> str:
    """Choose the backend before any rank starts (an impossible one is an error here), and say it once."""

    from .launch import choose_backend, in_torchrun, local_ranks

    backend, why = choose_backend(args.backend, local_ranks(args.nproc))
    if not in_torchrun() or os.environ["RANK"] == "0":
        print(f"backend: {why}", flush=True)
    return backend


def cmd_run(args: argparse.Namespace) -> int:
    from .launch import run_on_ranks
    from .runner.job import run_model, run_pipeline
    from .runner.report import reports, run_report

    if args.prompt is None:
        for option in ("negative_prompt", "height", "width", "frames", "call"):
            if getattr(args, option) is not None:
                raise InputError(f"--{option.replace('_', '-')} needs --prompt")
    folder = check_run_arguments(args)  # model_index.json read here, once; the ranks take it as read
    if args.prompt is not None:
        check_prompt_arguments(args, folder)
        target = run_pipeline
        kwargs = dict(model_dir=folder, prompt=args.prompt, negative_prompt=args.negative_prompt,
                      rules=args.rules, steps=args.steps, guidance=args.guidance, height=args.height,
                      width=args.width, frames=args.frames, dtype=args.dtype, seed=args.seed, out=args.out,
                      split="none" if args.split == "auto" else args.split, ulysses=args.ulysses, ring=args.ring,
                      compile=args.compile, call=dict(args.call or []))
    else:
        target = run_model
        kwargs = dict(model_dir=folder, rules=args.rules, steps=args.steps or 4, guidance=args.guidance,
                      dtype=args.dtype, seed=args.seed, batch=args.batch, out=args.out, split=args.split,
                      ulysses=args.ulysses, ring=args.ring, compile=args.compile)
    backend = announce_backend(args)
    results = run_on_ranks(target, args.nproc, kwargs, backend=backend, collective_timeout=args.timeout)
    if results[0].rank == 0:  # under torchrun, only rank 0 prints
        ranks = reports(results)
        print(run_report(ranks))
        first = ranks[0][1]
        if args.out and args.prompt is None:
            print(f"latents written to {args.out}")
        if first.image:
            print(f"{first.output} written to {first.image}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.pipeline is None:
        for option, default in (("out", None), ("prompt", "a red cat")):
            if getattr(args, option) != default:
                raise InputError(f"--{option} needs --pipeline")
    elif args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out} is a file; name a folder for the pipeline and its output")
    if args.pipeline is not None:
        from .extras import require_encoders

        require_encoders("shardrules demo --pipeline")
    backend = announce_backend(args)
    if args.pipeline is not None:
        from .demo import run_pipeline_demo

        passed = run_pipeline_demo(args.pipeline, out=args.out, prompt=args.prompt, nproc=args.nproc,
                                   steps=args.steps or 3, backend=backend, timeout=args.timeout)
        return 0 if passed else 1
    return 0 if run_demo(nproc=args.nproc, steps=args.steps or 4, backend=backend, timeout=args.timeout) else 1


class InputError(ShardRulesError):
    """An argument or input found wrong before any rank starts: exit 2, one message."""


@contextlib.contextmanager
def input_errors():
    """A folder or file that cannot be read as a model (``CheckpointError``) is a refusal of input, exit 2, from
    ``plan`` and ``explain`` as from ``run`` (a truncated file was 2 from run and 1 from plan)."""
    from .errors import CheckpointError

    try:
        yield
    except CheckpointError as exc:
        raise InputError(str(exc)) from None


def check_model_folder(model_dir: str, weights: bool):
    """What can be checked of a model or pipeline folder in this process, before any rank starts: a folder, its
    config.json and model class (or model_index.json and each sharded component's), and with ``weights`` the
    safetensors headers. Returns the folder as read (a :class:`PipelineFolder` for a pipeline, else its path), so
    that model_index.json is read once. Raises :class:`InputError` with the loader's message."""
    from pathlib import Path

    from .loader.build import model_class, read_config
    from .loader.checkpoint import Checkpoint
    from .loader.pipeline import read_folder, sharded_parts

    folder = Path(model_dir)
    if not folder.exists():
        raise InputError(f"{model_dir}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{model_dir} is a file; give the model folder that holds config.json")
    try:
        pipeline = read_folder(folder)
        for _, part in sharded_parts(pipeline or folder):
            model_class(read_config(part), str(part / "config.json"))
            if weights:
                Checkpoint(part).close()
    except ShardRulesError as exc:
        raise InputError(str(exc)) from None
    return pipeline or folder


def check_driven(folder) -> None:
    """Seeded latents need example inputs for the transformer's class: a class the runner has none for is refused
    here, before any rank loads, with the way a pipeline folder can still run (--prompt)."""
    from pathlib import Path

    from .loader.build import read_config
    from .loader.pipeline import PipelineFolder
    from .runner.inputs import DRIVEN_CLASSES

    if isinstance(folder, PipelineFolder):
        part = folder.get("transformer")
        if part is None:
            raise InputError(f"{folder.index_path} lists no transformer for the runner to drive")
        config_dir = part.folder
    else:
        config_dir = Path(folder)
    config = read_config(config_dir)
    name = config.get("_class_name") or (config.get("architectures") or ["?"])[0]
    if name not in DRIVEN_CLASSES:
        how = ("; a pipeline folder runs its own loop with --prompt" if not isinstance(folder, PipelineFolder)
               else "; run the pipeline itself with --prompt TEXT --out FILE")
        raise InputError(f"run drives seeded latents through {', '.join(DRIVEN_CLASSES)}, not {name}{how}")


def check_rule_files(paths: list[str] | None) -> None:
    """The rule files load; else every error of every file (as rule-lint lists them), not only the first."""
    from pathlib import Path

    from .rules import check_rule_file, load_rules
    from .rules.reader import read_rule_text

    try:
        load_rules(*(paths or []))
    except ShardRulesError as first:
        errors = []
        for path in paths or []:
            try:
                errors += check_rule_file(read_rule_text(Path(path)), path)[1]
            except (OSError, ShardRulesError):
                continue
        raise InputError("\n".join(map(str, errors)) if len(errors) > 1 else str(first)) from None


def check_run_arguments(args: argparse.Namespace):
    """The run's arguments checked before any rank starts; returns the folder as :func:`check_model_folder` read it."""

    folder = check_model_folder(args.model_dir, weights=True)
    if args.prompt is None:
        check_driven(folder)
    check_rule_files(args.rules)
    models = check_plans(folder, args.rules)
    if args.split == "guidance" and args.guidance is None:
        raise InputError("--split guidance gives the guided and unguided branches to different ranks: it needs "
                         "--guidance G")
    if args.out:
        check_out(args)
    check_sequence_arguments(args, folder, models)
    return folder


def check_plans(folder, rule_files: list[str] | None) -> dict:
    """Each sharded component of ``folder`` planned by the rules on the meta device, as every rank would plan it: a
    class no rule and no fallback can shard, or a rule that chooses what fully_shard rejects, is refused here and not
    after every rank has started. Returns the meta models by component folder, for the sequence-parallel check."""
    from .engine.resolve import plan
    from .loader.build import build_model
    from .loader.pipeline import sharded_parts
    from .rules import load_rules

    rules = load_rules(*(rule_files or []))
    models = {}
    for _, part in sharded_parts(folder):
        try:
            models[part] = build_model(part, meta="all")
            with warnings.catch_warnings():  # a rule's warning is the ranks' to give, with the plan they load by
                warnings.simplefilter("ignore")
                plan(models[part], rules)
        except ShardRulesError as exc:
            raise InputError(f"{part}: {exc}") from None
    return models


# Keyword arguments of a pipeline's __call__ that run sets from its own options
RUN_SETS = {"prompt": "--prompt", "negative_prompt": "--negative-prompt", "num_inference_steps": "--steps",
            "guidance_scale": "--guidance", "height": "--height", "width": "--width", "num_frames": "--frames",
            "frames": "--frames", "video_length": "--frames",
            "generator": "--seed", "output_type": "from --out", "callback_on_step_end": "to time each step"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".gif")


def check_out(args: argparse.Namespace) -> None:
    """--out names a file this run can write, in a folder that exists; checked before any rank loads a weight. Without
    --prompt it holds the latents (safetensors), and an image decoded by the VAE goes beside it as a PNG: the two
    never share a path."""
    from pathlib import Path

    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {args.out} is a folder; name the file to write")
    if not out.resolve().parent.is_dir():
        raise InputError(f"--out {args.out}: folder {out.resolve().parent} does not exist")
    if args.prompt is None and out.suffix.lower() != ".safetensors":
        raise InputError(f"--out {args.out}: without --prompt the run writes latents, to a .safetensors file (a "
                         f"pipeline's decoded image goes beside it as {out.stem}.png)")


def check_sequence_arguments(args: argparse.Namespace, folder=None, models: dict | None = None) -> None:
    """--ulysses x --ring must divide --nproc (twice over with --split guidance), and each transformer of ``folder``
    (the model itself, or a pipeline's transformers) must be able to run split: built on the meta device, its plan
    is checked as the ranks would check it (a class without a plan, a processor that takes no split, heads the
    degree does not divide), so that it is refused here and not after every rank has loaded. ``models``: the meta
    models :func:`check_plans` built, by component folder."""

    from .launch import in_torchrun

    if (args.ulysses, args.ring) == (1, 1):
        return
    from .loader.sequence import check_degrees

    world = os.environ.get("WORLD_SIZE", "") if in_torchrun() else str(args.nproc)
    if not world.isdigit():
        return  # torchrun's own variables are checked where the ranks start
    world = int(world)
    try:
        check_degrees(args.ulysses, args.ring, world, guidance=args.split == "guidance")
    except ShardRulesError as exc:
        raise InputError(f"--ulysses {args.ulysses} --ring {args.ring} on {world} ranks: {exc}") from None
    if folder is None:
        return
    from .engine.sequence import sequence_plan
    from .loader.build import build_model
    from .loader.pipeline import TRANSFORMER, PipelineFolder
    from .loader.sequence import check_sequence
    from .rules import load_rules

    parts = [c.folder for c in folder.components if c.role == TRANSFORMER] if isinstance(folder, PipelineFolder) \
        else [folder]
    rules = load_rules(*(args.rules or []))
    for part in parts:
        try:
            model = (models or {}).get(part) or build_model(part, meta="all")
            check_sequence(model, sequence_plan(model, rules), args.ulysses, args.ring, world=world)
        except ShardRulesError as exc:
            raise InputError(f"{part}: --ulysses {args.ulysses} --ring {args.ring}: {exc}") from None


def pipeline_keywords(folder) -> set[str]:
    """The keyword arguments the ``__call__`` of the pipeline class of ``folder`` (a PipelineFolder) takes."""
    import diffusers

    from .runner.denoise import accepted_keywords

    try:
        cls = getattr(diffusers, folder.class_name or "", None)
    except ImportError as exc:  # diffusers' placeholder for a pipeline whose own dependency is missing
        raise InputError(f"{folder.index_path}: {folder.class_name}: {' '.join(str(exc).split())}") from None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise InputError(f"{folder.index_path}: diffusers {diffusers.__version__} has no pipeline class "
                         f"{folder.class_name!r}")
    return set(accepted_keywords(cls.__call__))


def pipeline_defaults(folder) -> dict:
    """The default values of the ``__call__`` keyword arguments of the pipeline class of ``folder``."""
    import inspect

    import diffusers

    call = getattr(diffusers, folder.class_name).__call__
    return {name: p.default for name, p in inspect.signature(call).parameters.items()
            if p.default is not inspect.Parameter.empty}


def check_prompt_arguments(args: argparse.Namespace, folder) -> None:
    """What a prompt-driven run needs, checked before any rank starts."""
    from pathlib import Path

    from .loader.pipeline import PipelineFolder

    if not isinstance(folder, PipelineFolder):
        raise InputError(f"--prompt needs a diffusers pipeline folder (model_index.json); {args.model_dir} "
                         f"has none")
    if args.split != "auto" and args.split not in PIPELINE_SPLITS:
        raise InputError("a pipeline splits by --split batch or none (its own loop batches the guidance)")
    if args.batch != 1:
        raise InputError("--batch is for seeded latents; a pipeline makes one output per prompt")
    if args.out is None:
        raise InputError("--prompt needs --out FILE: the image (.png, .jpg, ...) or video (.mp4, .gif) to write")
    from .runner.pipeline import (
        binning_shortfall,
        frame_keyword,
        hdr_output,
        input_shortfall,
        makes_sound,
        missing_library,
        per_step_default,
        rotary_table_shortfall,
        unbuildable_component,
        unfound_component,
    )

    keywords = pipeline_keywords(folder)
    schedule = per_step_default(folder.class_name) if "num_inference_steps" in keywords else None
    if schedule is not None and schedule[0] in dict(args.call or []):
        schedule = None  # the user's own, for the steps they ask
    if "num_inference_steps" not in keywords:
        if args.steps is not None:
            raise InputError(f"--steps: {folder.class_name}.__call__ takes no num_inference_steps (it follows its own "
                             f"schedule)")
    elif schedule is not None:
        key, count = schedule
        if args.steps not in (None, count):
            raise InputError(f"--steps {args.steps}: {folder.class_name}.__call__'s {key} holds one value for each of "
                             f"its {count} default steps; give --call {key}=[...] with {args.steps} values too, or "
                             f"leave --steps out")
        if args.guidance is not None and "guidance" in key:
            raise InputError(f"--guidance: {folder.class_name} guides by its {key} (one value per step), and takes "
                             f"one or the other; give --call {key}=null with --guidance")
        args.steps = count
    elif args.steps is None:
        args.steps = 4
    if makes_sound(folder.class_name):
        raise InputError(f"{args.model_dir}: {folder.class_name} makes sound, and run writes images and videos; "
                         f"call the pipeline from Python (shardrules.load_pipeline) and save its audios")
    if where := hdr_output(folder.class_name):
        raise InputError(f"{args.model_dir}: {folder.class_name} returns linear HDR video ({where}), which run cannot "
                         f"write as an image or a video; call the pipeline from Python (shardrules.load_pipeline)")
    frames_key = frame_keyword(keywords)
    video = frames_key is not None
    for key, _ in args.call or []:
        if key in RUN_SETS:
            raise InputError(f"--call {key}=...: run sets {key} itself ({RUN_SETS[key]})")
        if key not in keywords:
            raise InputError(f"--call {key}=...: {folder.class_name}.__call__ takes no {key!r}")
    args.call = [(key, read_media(key, value[1:]) if isinstance(value, str) and value.startswith("@") else value)
                 for key, value in args.call or []]
    given = dict(prompt=args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
                 guidance_scale=args.guidance, height=args.height, width=args.width, output_type="pil",
                 generator="seeded")
    if frames_key:
        given[frames_key] = args.frames
    given = {k: v for k, v in given.items() if v is not None and k in keywords} | dict(args.call)
    why = input_shortfall(folder.class_name, given) or missing_library(folder.class_name)
    if why:
        raise InputError(f"{args.model_dir}: {why}")
    why = unbuildable_component(folder) or unfound_component(folder) or binning_shortfall(folder, dict(args.call))
    if why:
        raise InputError(f"{args.model_dir}: {why}")
    if video:
        defaults = pipeline_defaults(folder)
        size = [asked if asked is not None else defaults.get(key)
                for asked, key in ((args.height, "height"), (args.width, "width"), (args.frames, frames_key))]
        if all(type(v) is int for v in size):
            why = rotary_table_shortfall(folder, *size)
            if why:
                raise InputError(f"{args.model_dir}: {why}")
    suffix = Path(args.out).suffix.lower()
    if not video and args.frames is not None:
        raise InputError(f"--frames: {folder.class_name} makes images, not videos")
    if not video and suffix not in IMAGE_SUFFIXES:
        raise InputError(f"--out {args.out}: {folder.class_name} makes an image; name a {', '.join(IMAGE_SUFFIXES)} "
                         f"file")
    if video and suffix not in VIDEO_SUFFIXES and not (suffix in IMAGE_SUFFIXES and args.frames == 1):
        raise InputError(f"--out {args.out}: {folder.class_name} makes a video; name a .mp4 or .gif file (or an "
                         f"image file with --frames 1)")
    if suffix == ".mp4":
        from .runner.job import can_write_mp4

        if not can_write_mp4():
            raise InputError(f"--out {args.out}: writing MP4 needs imageio and imageio-ffmpeg (pip install "
                             f"'shardrules[video]'); or give a .gif to write an animated GIF")


def read_media(key: str, path: str):
    """The picture (PIL, RGB) or, for an argument named for a video, the frames (a list of PIL images) of the file
    that ``--call KEY=@PATH`` names, read with diffusers' own ``load_image`` / ``load_video``."""
    from pathlib import Path

    from diffusers.utils import load_image, load_video

    kind = "video" if "video" in key else "image"
    if not Path(path).is_file():
        raise InputError(f"--call {key}=@{path}: no such file")
    try:
        if kind == "video":  # a GIF's frames come palettized; the pipelines' video processors take RGB
            return load_video(path, convert_method=lambda frames: [frame.convert("RGB") for frame in frames])
        return load_image(path)
    except Exception as exc:  # PIL's and imageio's errors for a file that is not a picture or a video
        raise InputError(f"--call {key}=@{path}: cannot read it as {'a' if kind == 'video' else 'an'} {kind}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def call_argument(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of --call: VALUE as JSON when it parses (true, 3, 0.5, [1, 2], null), else the text itself."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a keyword argument name, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "half": "float16"}


def dtype_name(text: str) -> str:
    """A parameter dtype by its torch name or a usual short one (bf16, fp16, fp32, half), as torch's name."""
    name = DTYPES.get(text.lower().removeprefix("torch."))
    if name is None:
        raise argparse.ArgumentTypeError(f"expected float32, bfloat16 or float16 (or fp32, bf16, fp16), got {text!r}")
    return name


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """A number that is not NaN or infinite (``--guidance nan`` would write all-NaN latents)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def seed(text: str) -> int:
    """A seed every rank can use: 0 <= S < 2**63 (the runner also seeds with S + 1; 2**64 failed inside every
    rank)."""
    value = whole_number(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, got {value}")
    return value


MAX_TIMEOUT_S = 7 * 24 * 3600  # a timedelta torch's process group accepts; more than any run needs


def timeout_seconds(text: str) -> float:
    value = positive_float(text)
    if value > MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIMEOUT_S} s (a week), got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def add_rank_options(parser: argparse.ArgumentParser) -> None:
    """--nproc, --backend and --timeout, shared by run and demo."""
    from .launch import BACKENDS, PG_TIMEOUT_S

    parser.add_argument("--nproc", type=positive_int, default=2, metavar="N",
                        help="ranks to start on this machine (default: %(default)s; ignored under torchrun)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: nccl when every rank here has a GPU, gloo on a machine without one "
                             "(default: %(default)s)")
    parser.add_argument("--timeout", type=timeout_seconds, default=PG_TIMEOUT_S, metavar="SECONDS",
                        help="how long a collective may wait for the slowest rank (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="when a rank fails, print its traceback too (or set SHARDRULES_VERBOSE=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardrules", description="FSDP2 shard rules for diffusion models")
    parser.add_argument("--version", action="version", version=f"shardrules {version()}")
    sub = parser.add_subparsers(dest="command", metavar="{plan,explain,run,demo}",
                                help="plan: which rule chose which unit; run: load sharded and denoise; "
                                     "demo: the same on an embedded tiny model")

    p = sub.add_parser("plan", help="show which rule chose which unit, and sizes per rank")
    p.add_argument("model_dir", help="a diffusers model folder (config.json)")
    p.add_argument("--rules", action="append", metavar="FILE", help="rule file layered over the defaults "
                   "(repeatable; later files win)")
    p.add_argument("--world-size", type=positive_int, default=2, metavar="N",
                   help="ranks to size the shards for (default: %(default)s)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="(default: %(default)s)")
    p.add_argument("--html", metavar="FILE", help="also write a picture of the plan: one self-contained HTML page, "
                   "the module tree as boxes sized by parameters and coloured by unit")
    p.add_argument("--ulysses", type=positive_int, default=1, metavar="U",
                   help="also show where each transformer's sequence is split and gathered for Ulysses U, checked")
    p.add_argument("--ring", type=positive_int, default=1, metavar="R", help="the same for ring attention R")
    p.add_argument("--dtype", type=dtype_name, default=None, metavar="{float32,bfloat16,float16}",
                   help="size parameters in this dtype, float32 islands kept as the library keeps them (default: "
                        "config.json's torch_dtype, else the checkpoint's dtype, else float32)")
    p.set_defaults(func=cmd_plan)

    e = sub.add_parser("explain", help="why a module is or is not a unit: the rule, where it is written, its unit")
    e.add_argument("model_dir", help="a diffusers model or pipeline folder")
    e.add_argument("module", help="a module's dotted name (as named_modules() gives it); '' for the root")
    e.add_argument("--component", metavar="NAME",
                   help="in a pipeline folder: the component (default: transformer)")
    e.add_argument("--rules", action="append", metavar="FILE", help="rule file layered over the defaults "
                   "(repeatable; later files win)")
    e.set_defaults(func=cmd_explain)

    r = sub.add_parser("run", help="load a model sharded over N ranks and denoise")
    r.add_argument("model_dir", help="a diffusers model folder (config.json + *.safetensors)")
    add_rank_options(r)
    r.add_argument("--rules", action="append", metavar="FILE", help="rule file layered over the defaults")
    r.add_argument("--steps", type=positive_int, default=None, metavar="K",
                   help="denoising steps (default: 4; with --prompt, a pipeline that takes no step count, such as "
                        "LTX-2's distilled DFR, follows its own schedule)")
    r.add_argument("--guidance", type=finite_float, default=None, metavar="G",
                   help="classifier-free guidance scale: a second, unconditional forward per step (default: off). "
                        "Guidance-distilled models (Flux-dev's guidance_embeds) are always given their embedded "
                        "guidance input (3.5); this adds true guidance on top")
    r.add_argument("--dtype", type=dtype_name, default=None, metavar="{float32,bfloat16,float16}",
                   help="parameter dtype, float32 islands kept as the model's library keeps them "
                        "(default: as built, float32)")
    r.add_argument("--seed", type=seed, default=0, help="seed of the latents and conditioning (default: %(default)s)")
    r.add_argument("--batch", type=positive_int, default=1, help="latents per run (default: %(default)s)")
    r.add_argument("--split", choices=RUNNER_SPLITS, default="auto",
                   help="how ranks share work: guidance branches, batch items, or not at all; auto splits guidance "
                        "when it is on, else the batch (default: %(default)s)")
    r.add_argument("--ulysses", type=positive_int, default=1, metavar="U",
                   help="split each transformer's sequence across U ranks (Ulysses attention; default: %(default)s)")
    r.add_argument("--ring", type=positive_int, default=1, metavar="R",
                   help="split it across R more ranks with ring attention (a GPU backend that returns the "
                        "log-sum-exp; default: %(default)s)")
    r.add_argument("--compile", action="store_true",
                   help="torch.compile each unit's forward (the repeated blocks; fullgraph); the first step "
                        "compiles and is reported apart")
    r.add_argument("--out", metavar="FILE", help="without --prompt: the final latents, a .safetensors file (a "
                   "pipeline's decoded image goes beside it as a PNG); with --prompt (required): the image "
                   "(.png, .jpg, ...) or the video (.mp4 with shardrules[video], or .gif)")
    r.add_argument("--prompt", metavar="TEXT", help="a pipeline folder: run the pipeline's own __call__ on this prompt")
    r.add_argument("--negative-prompt", metavar="TEXT", help="with --prompt: the negative prompt")
    r.add_argument("--height", type=positive_int, metavar="PX", help="with --prompt (default: the pipeline's)")
    r.add_argument("--width", type=positive_int, metavar="PX", help="with --prompt (default: the pipeline's)")
    r.add_argument("--frames", type=positive_int, metavar="N", help="with --prompt, video pipelines: frames")
    r.add_argument("--call", type=call_argument, action="append", metavar="KEY=VALUE",
                   help="with --prompt: another keyword argument of the pipeline's __call__, VALUE read as JSON when "
                        "it is JSON (true, 0.5, [1, 2]) else as text, @FILE an image (a video for an argument "
                        "named *video*); repeat for more (--call use_resolution_binning=false, --call image=@cat.png)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="shard an embedded tiny model over 2 ranks, denoise, check against unsharded")
    add_rank_options(d)
    d.add_argument("--steps", type=positive_int, default=None, metavar="K",
                   help="denoising steps (default: 4, with --pipeline 3)")
    d.add_argument("--pipeline", choices=("flux", "wan", "pixart"),
                   help="write a tiny diffusers pipeline offline and run it sharded from a prompt, checked against "
                        "diffusers' own pipeline (needs shardrules[encoders])")
    d.add_argument("--out", metavar="DIR", help="with --pipeline: keep the pipeline folder and its output here")
    d.add_argument("--prompt", metavar="TEXT", default="a red cat",
                   help="with --pipeline: the prompt (default: %(default)r)")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `shardrules`: the commands, as git and pip print them
        parser.print_help()
        return 2
    try:
        from .extras import quiet_library_notices, require_fsdp

        require_fsdp(f"shardrules {args.command}")
        quiet_library_notices()
        code = args.func(args)
        if args.command in ("run", "demo"):
            end_torchrun_rank(code)
        return code
    except BrokenPipeError:  # `shardrules plan DIR | head`: the reader left; stop quietly, as git does
        quiet_stdout()
        return 141
    except (InputError, LaunchError) as exc:  # refused before any rank starts
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the ranks started, or in the demo's own reference run
        print("interrupted", file=sys.stderr)
        return 130
    except RankFailure as exc:
        print(describe_failure(exc, verbose=getattr(args, "verbose", False)
                               or os.environ.get("SHARDRULES_VERBOSE", "") not in ("", "0")), file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"{line_start(sys.stderr)}interrupted", file=sys.stderr)
        return 128 + exc.signum
    except ShardRulesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def end_torchrun_rank(code: int) -> None:
    """Under torchrun, end this rank now, as a spawned rank ends (``os._exit`` once its output is flushed), instead of
    through the interpreter's finalization. There, gloo's C++ threads, still holding tensors of a process group that
    Python has let go of, can abort the process ("terminate called without an active exception", SIGABRT) after the
    run succeeded; torchrun then reports the rank failed, and the other nodes' agents wait out their exit barrier
    (seen: node 1 aborted at exit, node 0's agent waited past the test's 240 s)."""

    from .launch import in_torchrun

    if not in_torchrun():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def quiet_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so that Python's flush at exit raises nothing more."""

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("shardrules")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def line_start(stream) -> str:
    """What to write so that the next message starts its own line after the ranks wrote to ``stream``: rank 0's
    progress bar leaves its line open (it redraws with a carriage return), and a stopped rank never closes it. On
    a terminal the bar's line is cleared, as the bar itself does when it closes; elsewhere the line is ended."""
    return "\r\x1b[K" if stream.isatty() else "\n"


def describe_failure(failure, verbose: bool = False) -> str:
    """The cause once; another rank's line only when it says something else. ``verbose``: the failing rank's
    traceback first, as Python prints it."""
    from .launch import WAITED

    failed = [r for r in failure.results if not r.ok]
    first = failed[0]
    lines = [f"rank {first.rank} traceback:\n{first.traceback.rstrip()}"] if verbose and first.traceback else []
    lines.append(f"error: rank {first.rank} failed: {printable(first.error or '', keep=chr(10))}")
    waited = [r.rank for r in failed[1:] if (r.error or "").startswith(WAITED)]
    for r in failed[1:]:
        if r.error != first.error and r.rank not in waited:
            lines.append(f"  rank {r.rank}: {printable(r.error or '', keep=chr(10))}")
    same = [r.rank for r in failed[1:] if r.error == first.error]
    if same:
        lines.append(f"  (rank{'s' if len(same) > 1 else ''} {', '.join(map(str, same))}: the same)")
    if waited:
        lines.append(f"  (rank{'s' if len(waited) > 1 else ''} {', '.join(map(str, waited))}: finished, then "
                     f"waited for the others)")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
