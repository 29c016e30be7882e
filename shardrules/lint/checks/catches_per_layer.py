"""SR306 catches-per-layer.

## What it does
With `--model`: reports a rule that selects modules at the top level and also per-layer modules inside units (the `name endswith norm` trap that also catches every `input_layernorm`).

## Why is this bad?
The rule changes granularity by accident: per-layer modules become units of their own.

## Example
```toml
shard = ["container == layers and index is digit", "name endswith norm"]
```

## Use instead
```toml
shard = ["container == layers and index is digit", "name == norm"]
```
"""

from ..context import analyses
from ..findings import Finding

CODE = "SR306"
NAME = "catches-per-layer"
SEVERITY = "warning"


def check(ctx):
    for analysis in analyses(ctx):
        if analysis.plan is None:
            continue
        for rule in analysis.rules_of_source():
            inside, top = [], []
            for i in sorted(analysis.selected(rule)):
                (inside if analysis.unit_above(i) else top).append(i)
            if inside and top:
                example = analysis.facts.name(inside[0])
                yield Finding.at(rule.source, 0, len(rule.text), CODE,
                                 f"rule selects {len(top)} module(s) at the top level but also {len(inside)} inside "
                                 f"other units (e.g. '{example}'): it changes granularity", SEVERITY)
