"""Command-line interface: argument parsing only; every command calls the public API."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from .errors import ShardRulesError


def _rules(files: list[str] | None):
    from .rules import load_rules

    return load_rules(*(files or []))


def cmd_plan(args: argparse.Namespace) -> int:
    from .engine.build import build_model
    from .engine.report import plan_as_json, plan_as_text
    from .engine.resolve import plan

    model = build_model(args.model_dir, meta="all")
    result = plan(model, _rules(args.rules))
    print(plan_as_json(result, args.world_size) if args.format == "json" else plan_as_text(result, args.world_size))
    return 0


def demo_model_dir() -> Path:
    """The folder of the embedded tiny model's config."""
    return Path(str(resources.files("shardrules.demo")))


def cmd_demo(args: argparse.Namespace) -> int:
    from .engine.build import build_model
    from .engine.report import plan_as_text
    from .engine.resolve import plan

    model = build_model(demo_model_dir(), meta="all")
    print(plan_as_text(plan(model, _rules(None)), args.world_size))
    print("demo: the plan above is what 2 ranks would shard; sharded loading and denoising are not built yet")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardrules", description="FSDP2 shard rules for diffusion models")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="show which rule chose which unit, and sizes per rank")
    p.add_argument("model_dir", help="a diffusers model folder (config.json)")
    p.add_argument("--rules", action="append", metavar="FILE", help="rule file layered over the defaults")
    p.add_argument("--world-size", type=int, default=2, metavar="N")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_plan)

    d = sub.add_parser("demo", help="plan an embedded tiny model (no download)")
    d.add_argument("--world-size", type=int, default=2, metavar="N")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ShardRulesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
