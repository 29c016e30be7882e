"""SR301 rule-matches-nothing.

## What it does
With `--model`: reports a rule of the entry that applies to the model, or of the strategy that planned it, which matches no module of that model.

## Why is this bad?
A rule that matches nothing is dead or names modules the model does not have (a renamed container after a library upgrade).

## Example
```toml
shard = ["container == transformer_block and index is digit"]
```

## Use instead
```toml
shard = ["container == transformer_blocks and index is digit"]
```
"""

from ..context import analyses
from ..findings import Finding

CODE = "SR301"
NAME = "rule-matches-nothing"
SEVERITY = "warning"


def check(ctx):
    for analysis in analyses(ctx):
        for rule in analysis.rules_of_source():
            if not analysis.selected(rule):
                yield Finding.at(rule.source, 0, len(rule.text), CODE,
                                 f"rule matches no module of {analysis.facts.value('class', 0)} "
                                 f"({analysis.model_dir})", SEVERITY)
