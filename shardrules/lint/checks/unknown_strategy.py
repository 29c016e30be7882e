"""SR106 unknown-strategy.

## What it does
Reports a name in `[resolution] order` that is not a strategy.

## Why is this bad?
The order can only name `explicit`, `block-class` and `common-numbered-block`.

## Example
```toml
order = ["explicit", "block_class"]
```

## Use instead
```toml
order = ["explicit", "block-class"]
```
"""

CODE = "SR106"
NAME = "unknown-strategy"
SEVERITY = "error"
