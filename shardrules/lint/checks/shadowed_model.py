"""SR201 shadowed-model.

## What it does
Reports an explicit `[[model]]` that can never be chosen because an entry tried before it has the same `applies-to`.

## Why is this bad?
Explicit entries are tried later files first, then in file order; the first whose `applies-to` holds wins, so the shadowed entry is dead.

## Example
```toml
[[model]]
name = "a"
applies-to = "class == Mine"
...
[[model]]
name = "b"
applies-to = "class == Mine"
```

## Use instead
```toml
Merge the two entries, or give the user entry the name of the entry it means to replace.
```
"""

from ..context import canonical
from ..findings import Finding

CODE = "SR201"
NAME = "shadowed-model"
SEVERITY = "warning"


def check(ctx):
    if ctx.ruleset is None:
        return
    linted = {f.path for f in ctx.files}
    first: dict = {}
    for model in ctx.ruleset.models:  # in the order explicit entries are tried
        key = canonical(model.applies_to.expr)
        winner = first.setdefault(key, model)
        if winner is model:
            continue
        rule = model.applies_to
        if model.where.path in linted:
            yield Finding.at(rule.source, 0, len(rule.text), CODE,
                             f"model '{model.name}' is never chosen: '{winner.name}' ({winner.where}) has the same "
                             f"applies-to and is tried first", SEVERITY)
        elif winner.where.path in linted:  # a user entry hides an embedded one under another name
            rule = winner.applies_to
            yield Finding.at(rule.source, 0, len(rule.text), CODE,
                             f"model '{winner.name}' hides '{model.name}' ({model.where}), which has the same "
                             f"applies-to; name it '{model.name}' to replace that entry", SEVERITY)
