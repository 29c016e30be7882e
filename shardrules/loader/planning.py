"""The plan of a model or pipeline folder, without loading weights: each sharded component built on the meta device,
planned by the rules and sized in the dtype it would load in. ``shardrules plan`` prints it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.describe import plan_as_dict, plan_as_text
from ..engine.resolve import ShardPlan, plan
from ..engine.sequence import SequencePlan
from .pipeline import TEXT_ENCODER, WHOLE, PipelineFolder, read_folder, sharded_parts


@dataclass(frozen=True)
class FolderPlan:
    """One :class:`ShardPlan` per sharded component (the key None for a model folder), with the dtype each is sized
    in and why that dtype."""

    plans: dict[str | None, ShardPlan]
    dtypes: dict[str | None, tuple[str, str]]
    sequences: dict[str | None, SequencePlan] = None  # with ulysses / ring: each transformer's split and gathers
    whole: dict[str, int] = None  # a pipeline's components loaded whole on every rank (the VAE): bytes as stored

    def totals(self, world_size: int) -> dict:
        """A pipeline's bytes per rank: the sharded components', the whole ones', and both."""
        sharded = sum(p.bytes_per_rank(world_size) for p in self.plans.values())
        whole = sum((self.whole or {}).values())
        return {"sharded_bytes_per_rank": sharded, "whole": dict(self.whole or {}), "bytes_per_rank": sharded + whole,
                "unsharded_bytes": sum(p.bytes_per_rank(1) for p in self.plans.values()) + whole}

    def as_dict(self, world_size: int) -> dict:
        data = {name: dict(plan_as_dict(p, world_size), dtype=self.dtypes[name][0], dtype_source=self.dtypes[name][1])
                for name, p in self.plans.items()}
        for name, sequence in (self.sequences or {}).items():
            data[name]["sequence_parallel"] = sequence.as_dict()
        if None in data:
            return data[None]
        data["_total"] = self.totals(world_size)  # a key no component has: model_index.json's own start with "_"
        return data

    def as_text(self, world_size: int) -> str:
        sequences = self.sequences or {}
        tables = [(f"[{name}]\n" if name else "") + f"dtype: {self.dtypes[name][0]} ({self.dtypes[name][1]})\n"
                  + plan_as_text(p, world_size) + (f"\n{sequences[name].as_text()}" if name in sequences else "")
                  for name, p in self.plans.items()]
        if None not in self.plans:
            totals = self.totals(world_size)
            whole = ", ".join(f"{name} {size / 2**20:.2f} MiB" for name, size in totals["whole"].items())
            tables.append(f"pipeline total per rank: {totals['bytes_per_rank'] / 2**20:.2f} MiB (of "
                          f"{totals['unsharded_bytes'] / 2**20:.2f} MiB unsharded): sharded "
                          f"{', '.join(map(str, self.plans))} {totals['sharded_bytes_per_rank'] / 2**20:.2f} MiB"
                          + (f"; loaded whole on every rank: {whole}" if whole else ""))
        return "\n\n".join(tables)


    def as_html(self, world_size: int, title: str) -> str:
        """One self-contained page picturing every component's plan (see :mod:`shardrules.engine.picture`)."""
        from ..engine.picture import plan_as_html

        return plan_as_html([(name, p, self.dtypes[name][0]) for name, p in self.plans.items()], world_size, title)


def plan_folder(folder: str | Path | PipelineFolder, rules=None, dtype=None, *, ulysses: int = 1, ring: int = 1,
                world_size: int | None = None) -> FolderPlan:
    """Plan every sharded component of ``folder`` by ``rules`` (the embedded defaults when None), sized in ``dtype``
    (else config.json's ``torch_dtype``, else the checkpoint's, else float32). With ``ulysses`` / ``ring``, also each
    transformer's sequence-parallel plan, checked as ``load_sharded`` checks it on ``world_size`` ranks (the degree
    when not given); a model that cannot run split raises :class:`~shardrules.errors.SequenceParallelError`."""
    from ..engine.sequence import sequence_plan
    from ..rules import load_rules
    from .build import build_model, read_config
    from .dtypes import stored_dtype
    from .sequence import check_sequence

    rules = rules if rules is not None else load_rules()
    plans, dtypes, sequences = {}, {}, {}
    pipeline = folder if isinstance(folder, PipelineFolder) else read_folder(folder)
    roles = {part.name: part.role for part in pipeline.components} if pipeline is not None else {}
    for name, part in sharded_parts(pipeline or folder):
        chosen, why = (dtype, "--dtype") if dtype is not None else stored_dtype(part, read_config(part))
        model = build_model(part, meta="all", dtype=chosen)
        plans[name] = plan(model, rules)
        dtypes[name] = (str(chosen).removeprefix("torch."), why)
        if (ulysses, ring) != (1, 1) and roles.get(name) != TEXT_ENCODER:
            sequences[name] = sequence_plan(model, rules)
            check_sequence(model, sequences[name], ulysses, ring, world=world_size or ulysses * ring)
    whole = {}
    for part in pipeline.components if pipeline is not None else ():
        if part.role == WHOLE and any(part.folder.glob("*.safetensors")):
            from .checkpoint import Checkpoint

            with Checkpoint(part.folder) as checkpoint:  # headers only: the bytes each rank holds whole
                whole[part.name] = sum(e.end - e.start for e in checkpoint.entries.values())
    return FolderPlan(plans, dtypes, sequences, whole)
