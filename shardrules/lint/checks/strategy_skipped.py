"""SR307 strategy-skipped.

## What it does
With `--model`: reports a strategy later in the order that would also have selected units, but was skipped because an earlier one won.

## Why is this bad?
Shows what the fallbacks would do, so a broken explicit entry is noticed before it is relied on.

## Example
```toml
(the model has an explicit entry; block-class would choose the same blocks)
```

## Use instead
```toml
Nothing to change; this is information.
```
"""

from ...rules import RuleSet
from ..context import analyses

CODE = "SR307"
NAME = "strategy-skipped"
SEVERITY = "info"


def check(ctx):
    if not ctx.models:
        return
    from ...engine.resolve import plan
    from ...errors import PlanError

    for analysis in analyses(ctx):
        if analysis.plan is None:
            continue
        order = analysis.ruleset.order
        later = order[order.index(analysis.plan.source) + 1:]
        for strategy in later:
            alone = RuleSet((strategy,), analysis.ruleset.order_where, analysis.ruleset.block_class_attrs,
                            analysis.ruleset.numbered_block_rules, analysis.ruleset.models, analysis.ruleset.files)
            try:
                other = plan(analysis.model, alone)
            except PlanError:
                continue
            yield analysis.finding(CODE, f"{strategy} would choose {len(other.units)} units; skipped because "
                                         f"{analysis.plan.source} chose {len(analysis.plan.units)}", SEVERITY)
