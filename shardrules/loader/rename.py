"""``[[model.rename]]``: checkpoint keys -> parameter names, with drops and fused parameters."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CheckpointError
from ..rules import Rename
from ..rules.regex import compile_pattern

MAX_KEY_CHARS = 1024  # rename patterns are user regexes: bound what they run on
MAX_STEPS = 32


@dataclass(frozen=True)
class Source:
    """Where a parameter's value comes from: one checkpoint key, or the parts fused along dim 0."""

    keys: tuple[str, ...]
    parts: tuple[str | None, ...]  # the fuse part of each key (None when not fused)


def map_keys(keys, renames: tuple[Rename, ...], path: str,
             library: dict[str, str] | None = None) -> tuple[dict[str, Source], dict[str, str]]:
    """Apply the rename rules to every checkpoint key until no rule changes it. ``library``: the names the model's
    own library gives some keys first (:func:`library_renames`); the rules then apply to those names.

    Returns (parameter name -> source, original key -> target for every renamed or dropped key, "" = dropped).
    """
    library = library or {}
    compiled = [(compile_pattern(r.pattern), r) for r in renames]  # RE2: linear in the key, checked at load
    fused: dict[str, list[tuple[int, str, str]]] = {}
    targets: dict[str, str] = {}
    plain: dict[str, str] = {}
    for key in keys:
        if len(key) > MAX_KEY_CHARS:
            raise CheckpointError(f"{path}: key of {len(key)} characters (limit {MAX_KEY_CHARS})", path=path,
                                  tensor=key[:80])
        name, part, fuse_rule = library.get(key, key), None, None
        seen = [name]
        for _ in range(MAX_STEPS):
            for pattern, rule in compiled:
                found = pattern.search(name)
                if found is None:
                    continue
                renamed = pattern.sub(rule.replace, name, count=1)
                if renamed == name:
                    continue
                if len(renamed) > MAX_KEY_CHARS:  # a rename like ^(.+)$ -> \1\1 doubles the key at every step
                    raise CheckpointError(f"{path}: renaming '{key[:80]}' gives a key of {len(renamed)} characters "
                                          f"(limit {MAX_KEY_CHARS}): rule '{rule.pattern}' at {rule.where}",
                                          path=path, tensor=key[:80])
                if rule.fuse:
                    part, fuse_rule = found.group("part"), rule
                name = renamed
                break
            else:
                break
            if name in seen:
                raise CheckpointError(f"rename rules cycle on '{key}': {' -> '.join(seen + [name])}", path=path,
                                      tensor=key)
            seen.append(name)
            if not name:
                break
        else:
            raise CheckpointError(f"rename rules do not settle on '{key}' after {MAX_STEPS} steps: "
                                  f"{' -> '.join(seen[:6])} ...", path=path, tensor=key)
        if name != key:
            targets[key] = name
        if not name:
            continue  # dropped
        if fuse_rule is not None:
            if part not in fuse_rule.fuse:
                raise CheckpointError(f"'{key}' has fuse part '{part}', not one of {list(fuse_rule.fuse)} "
                                      f"({fuse_rule.where})", path=path, tensor=key)
            fused.setdefault(name, []).append((fuse_rule.fuse.index(part), part, key))
        else:
            if name in plain or name in fused:
                other = plain.get(name) or fused[name][0][2]
                raise CheckpointError(f"checkpoint keys '{other}' and '{key}' both rename to '{name}'", path=path,
                                      tensor=key)
            plain[name] = key
    sources = {name: Source((key,), (None,)) for name, key in plain.items()}
    for name, items in fused.items():
        if name in plain:
            raise CheckpointError(f"'{name}' is both fused and renamed from '{plain[name]}'", path=path, tensor=name)
        items.sort()
        parts = [p for _, p, _ in items]
        if len(set(parts)) != len(parts):
            raise CheckpointError(f"two checkpoint keys give part '{parts[0]}' of '{name}'", path=path, tensor=name)
        sources[name] = Source(tuple(k for _, _, k in items), tuple(parts))
    return sources, targets


def library_renames(model, keys) -> dict[str, str]:
    """transformers' own key renames for ``model``: checkpoint key -> parameter name, for each key they change.
    transformers maps older checkpoint layouts onto its modules when it loads (Qwen2.5-VL's 'visual.*' and
    'model.layers.*', Llava-style 'language_model.*', ...), and writes those layouts when it saves, so the
    checkpoints pipelines ship hold them. Only its renamings are applied: a checkpoint that needs one of its tensor
    conversions (experts fused into one tensor, ...) fails on the keys it lacks, by name. Empty for a model that is
    not a transformers model, or a transformers release without the mapping."""
    try:
        from transformers import PreTrainedModel
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming, rename_source_key
    except ImportError:
        return {}
    if not isinstance(model, PreTrainedModel):
        return {}
    renamings = [t for t in get_model_conversion_mapping(model) if isinstance(t, WeightRenaming)]
    if not renamings:
        return {}
    found = {}
    for key in keys:
        name, _ = rename_source_key(key, renamings, [])
        if name != key:
            found[key] = name
    return found
