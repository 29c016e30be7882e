"""SR102 unknown-key.

## What it does
Reports a key the rule-file schema does not define, with the closest key.

## Why is this bad?
A misspelt key (`applies_to`, `reshard_after_forward`) would otherwise be ignored and its intent silently lost.

## Example
```toml
applies_to = "class == FluxTransformer2DModel"
```

## Use instead
```toml
applies-to = "class == FluxTransformer2DModel"
```
"""

CODE = "SR102"
NAME = "unknown-key"
SEVERITY = "error"
