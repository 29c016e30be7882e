"""SR107 missing-schema.

## What it does
Reports a rule file without `schema = 1`.

## Why is this bad?
The schema version says which format the file follows; without it a future format could be misread.

## Example
```toml
[[model]]
name = "mine"
```

## Use instead
```toml
schema = 1

[[model]]
name = "mine"
```
"""

CODE = "SR107"
NAME = "missing-schema"
SEVERITY = "error"
