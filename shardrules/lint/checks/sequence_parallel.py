"""SR310 sequence-parallel.

## What it does
With `--model`: checks the `[model.sequence-parallel]` table of the entry that applies to the model: every split,
gather and refuse rule matches a module, every `input` (of a split, a gather or a refusal, and every `segments`
argument) is an argument of that module's `forward`, every split reaches a gather (one runs after it, in the order
the forwards run the modules, read from their source: the order they name them in), every attention processor
outside the `whole` modules takes diffusers' parallel config (else it would attend over its own share of the tokens
only), and with `--ulysses U` every attention module's heads divide by U. A table that says `cannot` has nothing to
check: a split run is refused with its reason.

## Why is this bad?
Each of these fails at the first forward on every rank, or, for a processor that takes no split, runs and gives a
wrong answer; a split no gather follows returns each rank's share of the sequence instead of the whole output.

## Example
```toml
[model.sequence-parallel]
split = [{ match = "name == blocks.0", input = "hiden_states", dim = 1 }]
gather = [{ match = "name == proj_out", dim = 1 }]
```

## Use instead
```toml
[model.sequence-parallel]
split = [{ match = "name == blocks.0", input = "hidden_states", dim = 1 }]
gather = [{ match = "name == proj_out", dim = 1 }]
```
"""

from ..context import analyses
from ..findings import Finding

CODE = "SR310"
NAME = "sequence-parallel"
SEVERITY = "error"


def check(ctx):
    if not analyses(ctx):  # only with --model: rule-lint on files alone runs without torch
        return
    from ...engine.resolve import compiled_rule
    from ...engine.sequence import (
        attention_modules,
        forward_order,
        forward_parameters,
        inside,
        plan_from_rules,
        split_refusal,
    )
    from ...errors import SequenceParallelError

    for analysis in analyses(ctx):
        entry = analysis.entry
        if entry is None or entry.sequence_parallel is None:
            continue
        table, facts, model = entry.sequence_parallel, analysis.facts, analysis.model
        if table.cannot:  # no plan to check: a split run is refused with the rule's reason
            continue
        name = facts.value("class", 0)
        for rule in (*table.split, *table.gather, *table.refuse):
            source, text = rule.match.source, rule.match.text
            chosen = sorted(compiled_rule(rule.match).select(facts))
            if not chosen:
                yield Finding.at(source, 0, len(text), CODE, f"sequence-parallel {rule.kind} rule matches no module "
                                 f"of {name} ({analysis.model_dir})", SEVERITY)
            for i in chosen:
                module = facts.modules[i]
                for argument in rule.arguments:
                    if argument not in forward_parameters(module):
                        yield Finding.at(source, 0, len(text), CODE, f"{type(module).__name__}.forward of "
                                         f"'{facts.name(i) or '(root)'}' takes no argument '{argument}' "
                                         f"({analysis.model_dir})", SEVERITY)
        try:
            resolved = plan_from_rules(facts, entry.name, table)
        except SequenceParallelError:  # a rule that matches no module: reported above
            resolved = None
        if resolved is not None:
            unreached = {e.where: e for e in resolved.unreached(forward_order(model))}
            for rule in table.split:
                if rule.where in unreached:
                    source, text = rule.match.source, rule.match.text
                    yield Finding.at(source, 0, len(text), CODE, f"sequence-parallel split of "
                                     f"'{unreached[rule.where].module or '(root)'}' {unreached[rule.where].what} "
                                     f"reaches no gather: none runs after it, so {name} would return each rank's "
                                     f"share ({analysis.model_dir})", SEVERITY)
        where = table.where
        whole = tuple(facts.name(i) for i in compiled_rule(table.whole).select(facts)) if table.whole else ()
        attention = [a for a in attention_modules(model) if not inside(a.name, whole)]
        segmented = any(rule.segments for rule in table.split)
        why = split_refusal(attention, segmented=segmented) if attention else "it has no diffusers attention module"
        if why:
            yield Finding(where.path, where.line, where.column, where.line, where.column + 1, CODE,
                          f"{name} cannot run sequence parallel: {why} ({analysis.model_dir})", SEVERITY)
        if ctx.ulysses > 1:
            for a in attention:
                if a.heads is not None and a.heads % ctx.ulysses:
                    yield Finding(where.path, where.line, where.column, where.line, where.column + 1, CODE,
                                  f"'{a.name}' of {name} has {a.heads} attention heads, which Ulysses {ctx.ulysses} "
                                  f"cannot divide ({analysis.model_dir})", SEVERITY)
                    break
