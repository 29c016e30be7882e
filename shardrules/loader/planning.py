"""The plan of a model or pipeline folder, without loading weights: each sharded component built on the meta device,
planned by the rules and sized in the dtype it would load in. ``shardrules plan`` prints it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.describe import plan_as_dict, plan_as_text
from ..engine.resolve import ShardPlan, plan
from .pipeline import PipelineFolder, sharded_parts


@dataclass(frozen=True)
class FolderPlan:
    """One :class:`ShardPlan` per sharded component (the key None for a model folder), with the dtype each is sized
    in and why that dtype."""

    plans: dict[str | None, ShardPlan]
    dtypes: dict[str | None, tuple[str, str]]

    def as_dict(self, world_size: int) -> dict:
        data = {name: dict(plan_as_dict(p, world_size), dtype=self.dtypes[name][0]) for name, p in self.plans.items()}
        return data[None] if None in data else data

    def as_text(self, world_size: int) -> str:
        tables = [(f"[{name}]\n" if name else "") + f"dtype: {self.dtypes[name][0]} ({self.dtypes[name][1]})\n"
                  + plan_as_text(p, world_size) for name, p in self.plans.items()]
        if len(self.plans) > 1:
            mib = [sum(p.bytes_per_rank(w) for p in self.plans.values()) / 2**20 for w in (world_size, 1)]
            tables.append(f"pipeline total per rank: {mib[0]:.2f} MiB (of {mib[1]:.2f} MiB unsharded) for "
                          f"{', '.join(map(str, self.plans))}; the other components load whole on every rank")
        return "\n\n".join(tables)


def plan_folder(folder: str | Path | PipelineFolder, rules=None, dtype=None) -> FolderPlan:
    """Plan every sharded component of ``folder`` by ``rules`` (the embedded defaults when None), sized in ``dtype``
    (else config.json's ``torch_dtype``, else the checkpoint's, else float32)."""
    from ..rules import load_rules
    from .build import build_model, read_config
    from .dtypes import stored_dtype

    rules = rules if rules is not None else load_rules()
    plans, dtypes = {}, {}
    for name, part in sharded_parts(folder):
        chosen, why = (dtype, "--dtype") if dtype is not None else stored_dtype(part, read_config(part))
        plans[name] = plan(build_model(part, meta="all", dtype=chosen), rules)
        dtypes[name] = (str(chosen).removeprefix("torch."), why)
    return FolderPlan(plans, dtypes)
