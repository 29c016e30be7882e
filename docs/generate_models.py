"""Writes docs/models.md: one row per model class shardrules plans. Never edit the table by hand.

    python docs/generate_models.py          # rewrite docs/models.md
    python docs/generate_models.py --check  # exit 1 if docs/models.md is stale (the test suite runs this)

Plans come from each class's default (full-size) config on the meta device, or from the small config the
suite proves where the default one does not build. The last column says whether
the test suite proves that the model, sharded over 2 ranks, computes what the unsharded model does
(tests/test_load_multirank.py for transformers with explicit rules, tests/test_model_coverage.py for text
encoders and for transformers the fallbacks plan).
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "docs" / "models.md"
ENCODERS = ["T5EncoderModel", "UMT5EncoderModel", "CLIPTextModel", "CLIPTextModelWithProjection", "LlamaModel",
            "Gemma2Model", "MistralModel", "Qwen3Model", "Qwen3ForCausalLM", "GlmModel", "Qwen2_5_VLTextModel",
            "Qwen2_5_VLForConditionalGeneration", "Mistral3ForConditionalGeneration", "Mistral3Model",
            "SmolLM3ForCausalLM", "Qwen3VLModel", "LlamaForCausalLM",
            "Gemma3ForConditionalGeneration", "T5Gemma2Encoder", "GlmImageForConditionalGeneration"]


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f} MiB" if nbytes >= 2**20 // 10 else f"{nbytes / 2**10:,.1f} KiB"


def _count(params: int) -> str:
    return f"{params / 1e6:,.1f}M" if params >= 100_000 else f"{params / 1e3:,.1f}K"


def _on_meta(build):
    from shardrules.loader.build import all_on_meta

    with all_on_meta(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


def _sequence(model, rules, name: str, proven: dict) -> str:
    """The sequence-parallel column: where the plan comes from, whether the suite proves it, or why there is none."""
    from shardrules.engine.sequence import attention_modules, inside, sequence_plan
    from shardrules.errors import SequenceParallelError

    attention = attention_modules(model)
    refused = sorted({a.processor for a in attention if not a.takes_split})
    flex = sorted({a.processor for a in attention if a.flex})
    try:
        found = sequence_plan(model, rules)
    except SequenceParallelError as exc:
        return f"plan does not fit: {exc}"
    if found is None:
        if not attention:
            return "none (no diffusers attention)"
        if refused:
            where = sorted({a.name.split(".")[0] for a in attention if not a.takes_split})  # a top-level module
            return f"none ({', '.join(refused)} take{'s' if len(refused) == 1 else ''} no split, in {', '.join(where)})"
        if flex:
            return f"none ({', '.join(flex)} dispatch{'es' if len(flex) == 1 else ''} on the flex backend: no split)"
        return "none (processors could take one)"
    if found.cannot:
        return f"none (the rules: {found.cannot})"
    where = "from diffusers" if found.source == "diffusers" else "from the rules"
    refused = sorted({a.processor for a in attention if not a.takes_split and not inside(a.name, found.whole)})
    if refused:
        return f"{where}; refused: {', '.join(refused)} take{'s' if len(refused) == 1 else ''} no split"
    return f"{where}; {'proven' if name in proven else 'not proven'}"


def rows() -> tuple[list[str], list[str]]:
    import tiny_encoders
    import tiny_fallback
    import tiny_models
    import transformers
    from diffusers.models import transformers as diffusers_transformers
    from torch import nn

    from shardrules import load_rules, plan

    rules = load_rules()
    proven = set(tiny_models.CONFIGS) | set(tiny_encoders.CONFIGS) | set(tiny_fallback.CONFIGS)
    classes = [("diffusers", name, getattr(diffusers_transformers, name))
               for name in sorted(dir(diffusers_transformers))
               if inspect.isclass(getattr(diffusers_transformers, name))
               and issubclass(getattr(diffusers_transformers, name), nn.Module)]
    classes += [("transformers", name, getattr(transformers, name)) for name in ENCODERS]
    table, skipped = [], []
    for library, name, cls in classes:
        note = ""
        try:
            model = _on_meta(lambda: cls() if library == "diffusers" else cls(cls.config_class()))
        except Exception as exc:
            small = tiny_fallback if library == "diffusers" else tiny_encoders
            if name not in small.CONFIGS:
                skipped.append(f"| {name} | {library} | default config does not build: {type(exc).__name__} |")
                continue
            # Plan the small config the suite proves instead, and say so.
            model = _on_meta(lambda: small.build(name))
            note = f" (small config: the default config does not build, {type(exc).__name__})"
        p = plan(model, rules)
        largest = max(p.units_info, key=lambda u: u.params)
        status = "yes" if name in proven else "no (plan only)"
        unit = " + ".join((largest.name, *largest.members))
        sequence = _sequence(model, rules, name, tiny_models.SEQUENCE_PROVEN) if library == "diffusers" else "n/a"
        table.append(f"| {name}{note} | {library} | {p.source} | {len(p.units)} | {unit} "
                     f"({_count(largest.params)} params, {_size(largest.bytes_per_rank(1))}) | {status} | "
                     f"{sequence} |")
    return table, skipped


def render() -> str:
    import diffusers
    import transformers

    table, skipped = rows()
    passed = sum(1 for row in table if row.split(" | ")[5] == "yes")  # the sharded == unsharded column
    small = sum("(small config" in row for row in table)
    lines = [
        "# Models",
        "",
        "Generated by `python docs/generate_models.py` from the embedded rules; do not edit by hand (the test",
        "suite fails when this file is stale). Plans use each class's default config (full size) on the meta",
        "device, or, where the default config does not build, the small config the suite proves. *Sharded ==",
        "unsharded* says whether the test suite loads a tiny instance over 2 gloo ranks and checks its forward",
        "against the unsharded model (fp32, atol 1e-5). *Sequence parallel* says where the class's plan comes",
        "from (diffusers' `_cp_plan` or the embedded rules) and whether tests/test_sequence_parallel.py proves it",
        "(Ulysses 2 with FSDP2 on 2 gloo ranks == unsharded, fp32, atol 1e-5), or why there is none: `--ulysses`",
        "refuses those.",
        "",
        f"Generated with diffusers {diffusers.__version__} and transformers {transformers.__version__}.",
        "",
        f"{len(table)} classes planned ({small} from their small config): "
        f"{sum(' explicit ' in r for r in table)} by explicit rules, "
        f"{sum(' block-class ' in r for r in table)} by block-class, "
        f"{sum(' common-numbered-block ' in r for r in table)} by common-numbered-block; "
        f"{passed} proven sharded == unsharded; {len(skipped)} skipped.",
        "",
        "| class | library | strategy | units | largest unit (fp32) | sharded == unsharded | sequence parallel |",
        "|---|---|---|---|---|---|---|",
        *table,
        "",
    ]
    if skipped:
        lines += ["## Skipped", "", "| class | library | why |", "|---|---|---|", *skipped, ""]
    return "\n".join(lines)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python docs/generate_models.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
