"""SR003 type-error.

## What it does
Reports an operator applied to a field of the wrong type (`depth matches "x"`, `leaf == 3`, `name < a`).

## Why is this bad?
Comparing a string field with a number, or ordering strings, never means what was intended.

## Example
```toml
shard = ["leaf == 3"]
```

## Use instead
```toml
shard = ["index == 3"]  # or: leaf == "3"
```
"""

CODE = "SR003"
NAME = "type-error"
SEVERITY = "error"
