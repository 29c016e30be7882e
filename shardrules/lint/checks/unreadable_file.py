"""SR100 unreadable-file.

## What it does
Reports a path given to rule-lint that cannot be read as a rule file: it does not exist, it cannot be opened, or it
is not a regular file (a FIFO or a device, which would never end). Every other path is still linted.

## Why is this bad?
Nothing in it is checked, and a pre-commit hook or CI job that names a moved file would otherwise pass.

## Example
```console
$ rule-lint rules/old-name.toml
rules/old-name.toml:1:1: SR100 cannot read: No such file or directory
```

## Use instead
Name files that exist, or a folder: rule-lint lints every `*.toml` file beneath it.
"""

CODE = "SR100"
NAME = "unreadable-file"
SEVERITY = "error"
