"""SR105 duplicate-model.

## What it does
Reports a `[[model]]` whose name is already used earlier in the same file.

## Why is this bad?
Names identify entries (a user file replaces an embedded entry by name); two entries with one name in a file are ambiguous.

## Example
```toml
[[model]]
name = "flux"
...
[[model]]
name = "flux"
```

## Use instead
```toml
Give each entry its own name.
```
"""

CODE = "SR105"
NAME = "duplicate-model"
SEVERITY = "error"
