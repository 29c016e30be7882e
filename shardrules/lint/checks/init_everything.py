"""SR205 init-everything.

## What it does
Reports an `[model.allow-init]` glob that matches every parameter name (`"*"`, `"*.*"` and the like).

## Why is this bad?
`allow-init` lets named parameters be missing from a checkpoint and starts them at zeros or ones. A glob that
matches every name lets a checkpoint with no tensor at all load without an error: an all-zero model that runs and
produces nothing useful.

## Example
```toml
[model.allow-init]
"*" = "zeros"
```

## Use instead
```toml
[model.allow-init]
"blocks.*.attn.norm_added_k.weight" = "ones"
```
"""

from ...engine.glob import compile_glob
from ..findings import Finding

CODE = "SR205"
NAME = "init-everything"
SEVERITY = "warning"

# Names of every shape a parameter can have: a glob matching them all matches any parameter.
_PROBES = ("weight", "bias", "x", "blocks.0.attn1.to_q.weight", "encoder.block.11.layer.0.SelfAttention.q.weight",
           "a.b", "scale_shift_table")


def check(ctx):
    for rule_file in ctx.files:
        for model in rule_file.models:
            for glob in model.allow_init:
                matches = compile_glob(glob)
                if all(matches(name) for name in _PROBES):
                    where = model.where
                    yield Finding(where.path, where.line, where.column, where.line, where.column + 1, CODE,
                                  f"model '{model.name}': allow-init '{glob}' matches every parameter name, so a "
                                  f"checkpoint with none of them loads as an initialised model", SEVERITY)
