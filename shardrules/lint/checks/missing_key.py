"""SR103 missing-key.

## What it does
Reports a table without a key it needs (`[[model]]` without `applies-to`, a `{ ... }` rule without `match`).

## Why is this bad?
An entry without its required keys cannot be used.

## Example
```toml
[[model]]
name = "mine"
shard = ["name == a"]
```

## Use instead
```toml
[[model]]
name = "mine"
applies-to = "class == Mine"
shard = ["name == a"]
```
"""

CODE = "SR103"
NAME = "missing-key"
SEVERITY = "error"
