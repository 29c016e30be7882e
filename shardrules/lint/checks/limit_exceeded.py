"""SR004 limit-exceeded.

## What it does
Reports an expression or file over a documented size limit (expression length, nesting depth, file size).

## Why is this bad?
The limits keep parsing and evaluation bounded; see SECURITY.md.

## Example
```toml
applies-to = "((((((... 100 levels ...))))))"
```

## Use instead
```toml
Flatten the expression: `and` and `or` chain without nesting.
```
"""

CODE = "SR004"
NAME = "limit-exceeded"
SEVERITY = "error"
