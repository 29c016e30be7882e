"""SR302 no-unit.

## What it does
With `--model`: reports that no strategy selects a unit for the model.

## Why is this bad?
A model with no unit is not sharded; shardrules refuses to plan it rather than run it unsharded.

## Example
```toml
(a model whose blocks live in a container no rule names)
```

## Use instead
```toml
Add a [[model]] entry for its class.
```
"""

from ...errors import NoUnitError
from ..context import analyses

CODE = "SR302"
NAME = "no-unit"
SEVERITY = "error"


def check(ctx):
    for analysis in analyses(ctx):
        if isinstance(analysis.error, NoUnitError):
            yield analysis.finding(CODE, str(analysis.error), SEVERITY)
