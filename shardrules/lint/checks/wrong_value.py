"""SR104 wrong-value.

## What it does
Reports a value of the wrong type or range (a string where an array is needed, `reshard-after-forward = 0`, a bad regular expression in a rename).

## Why is this bad?
The entry cannot be used as written.

## Example
```toml
shard = "container == blocks"
```

## Use instead
```toml
shard = ["container == blocks"]
```
"""

CODE = "SR104"
NAME = "wrong-value"
SEVERITY = "error"
