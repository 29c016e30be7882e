"""SR303 container-unit.

## What it does
With `--model`: reports a unit that is a `ModuleList` or `ModuleDict`.

## Why is this bad?
`fully_shard` rejects containers that do not implement `forward`.

## Example
```toml
shard = ["name == transformer_blocks"]
```

## Use instead
```toml
shard = ["container == transformer_blocks and index is digit"]
```
"""

from ...errors import ContainerUnitError
from ..context import analyses
from ..findings import Finding

CODE = "SR303"
NAME = "container-unit"
SEVERITY = "error"


def check(ctx):
    if not ctx.models:
        return
    from torch import nn

    containers = (nn.ModuleList, nn.ModuleDict)
    for analysis in analyses(ctx):
        if isinstance(analysis.error, ContainerUnitError):
            for rule in analysis.rules_of_source():
                if any(isinstance(analysis.facts.modules[i], containers) for i in analysis.selected(rule)):
                    yield Finding.at(rule.source, 0, len(rule.text), CODE, f"{analysis.error}", SEVERITY)
