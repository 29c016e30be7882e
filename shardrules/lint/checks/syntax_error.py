"""SR001 syntax-error.

## What it does
Reports an expression that does not parse.

## Why is this bad?
A rule that does not parse cannot be compiled; every model that relies on the file fails to plan.

## Example
```toml
shard = ["container in [blocks,, layers]"]
```

## Use instead
```toml
shard = ["container in [blocks, layers]"]
```
"""

CODE = "SR001"
NAME = "syntax-error"
SEVERITY = "error"
