"""SR305 nested-units.

## What it does
With `--model`: reports the units of a rule that lie inside other units, once per rule with a count.

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

from ..context import analyses
from ..findings import Finding

CODE = "SR305"
NAME = "nested-units"
SEVERITY = "info"


def check(ctx):
    for analysis in analyses(ctx):
        if analysis.plan is None:
            continue
        facts = analysis.facts
        nested: dict = {}  # rule location -> [(unit, the unit it lies in)], one finding per rule
        for unit in reversed(analysis.plan.units_info):  # model order
            outer = analysis.unit_above(analysis.unit_positions[unit.name])
            if outer and unit.where is not None:
                nested.setdefault(unit.where, []).append((unit.name, facts.name(outer)))
        for where, pairs in nested.items():
            inner, outer = pairs[0]
            count = (f"{len(pairs)} units of this rule lie inside other units" if len(pairs) > 1
                     else "1 unit of this rule lies inside another unit")
            more = f" and {len(pairs) - 1} more" if len(pairs) > 1 else ""
            yield Finding(where.path, where.line, where.column, where.line, where.column + 1, CODE,
                          f"{count}: '{inner}' inside '{outer}'{more} ({analysis.model_dir})", SEVERITY)
