"""SR304 tied-parameter.

## What it does
With `--model`: reports a parameter shared by two units (or a unit and the root).

## Why is this bad?
FSDP2 shards a parameter in one place; the other unit would use a sharded tensor.

## Example
```toml
shard = ["container == parts and index is digit"]  # parts.0 and parts.1 share a weight
```

## Use instead
```toml
Make the module holding both one unit.
```
"""

from ...errors import TiedParameterError
from ..context import analyses
from ..findings import Finding

CODE = "SR304"
NAME = "tied-parameter"
SEVERITY = "error"


def check(ctx):
    for analysis in analyses(ctx):
        if isinstance(analysis.error, TiedParameterError):
            rules = analysis.rules_of_source()
            if rules:
                rule = rules[0]
                yield Finding.at(rule.source, 0, len(rule.text), CODE, str(analysis.error), SEVERITY)
            else:
                yield analysis.finding(CODE, str(analysis.error), SEVERITY)
