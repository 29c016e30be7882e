"""SR203 duplicate-rule.

## What it does
Reports a rule written twice in one model's `shard` list.

## Why is this bad?
The second copy can never choose a unit: the first rule that holds for a module is the one that explains it.

## Example
```toml
shard = ["container == blocks and index is digit", "container == blocks and index is digit"]
```

## Use instead
```toml
shard = ["container == blocks and index is digit"]
```
"""

from ..context import canonical
from ..findings import Finding

CODE = "SR203"
NAME = "duplicate-rule"
SEVERITY = "warning"


def check(ctx):
    for rule_file in ctx.files:
        lists = [model.shard for model in rule_file.models] + [rule_file.numbered_block_rules or ()]
        for rules in lists:
            seen = {}
            for rule in rules:
                key = canonical(rule.expr)
                if key in seen:
                    first, here = seen[key].where, rule.where
                    at = f"line {first.line}" + (f", column {first.column}" if first.line == here.line else "")
                    yield Finding.at(rule.source, 0, len(rule.text), CODE, f"rule repeats the rule at {at}",
                                     SEVERITY)
                else:
                    seen[key] = rule
