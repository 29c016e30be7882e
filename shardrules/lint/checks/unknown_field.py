"""SR002 unknown-field.

## What it does
Reports an expression that names a field the language does not have, with the closest field.

## Why is this bad?
An unknown field would make the rule test nothing; shardrules refuses it when the rule is compiled, before any model is seen.

## Example
```toml
shard = ["contaner == blocks and index is digit"]
```

## Use instead
```toml
shard = ["container == blocks and index is digit"]
```
"""

CODE = "SR002"
NAME = "unknown-field"
SEVERITY = "error"
