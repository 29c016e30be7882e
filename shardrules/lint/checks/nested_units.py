"""SR305 nested-units.

## What it does
With `--model`: reports a unit inside another unit.

## Why is this bad?
Nested units are valid, but each level all-gathers on its own: worth knowing when it was not meant.

## Example
```toml
shard = ["container == blocks and index is digit", "leaf == attn"]
```

## Use instead
```toml
Keep one granularity unless the nesting is intended.
```
"""

CODE = "SR305"
NAME = "nested-units"
SEVERITY = "info"

from ..context import analyses
from ..findings import Finding


def check(ctx):
    for analysis in analyses(ctx):
        if analysis.plan is None:
            continue
        facts = analysis.facts
        for unit in analysis.plan.units_info:
            outer = analysis.unit_above(analysis.unit_positions[unit.name])
            if outer and unit.where is not None:
                line, column = unit.where.line, unit.where.column
                yield Finding(unit.where.path, line, column, line, column + 1, CODE,
                              f"unit '{unit.name}' lies inside unit '{facts.name(outer)}' ({analysis.model_dir})",
                              SEVERITY)
