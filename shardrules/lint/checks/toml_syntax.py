"""SR101 toml-syntax.

## What it does
Reports a file that is not valid TOML (or not UTF-8 text).

## Why is this bad?
Nothing in the file can be read.

## Example
```toml
shard = ["name == a"
```

## Use instead
```toml
shard = ["name == a"]
```
"""

CODE = "SR101"
NAME = "toml-syntax"
SEVERITY = "error"
