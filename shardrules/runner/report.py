"""What one rank of ``shardrules run`` reports (:class:`RunResult`), and what the command prints once every rank
has reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class RunResult:
    """One rank's figures. A rank hands it to the launcher as a JSON object (:meth:`as_dict`); the launcher reads it
    back with :meth:`from_dict`, which refuses a field it does not know or one that is missing."""

    plan: str | None  # rank 0: the plan's summary line; the other ranks: None
    split: str  # how a step's work was split, with why when chosen automatically
    world_size: int
    load_s: float
    read_mib: float
    vmrss_mib: float
    maxrss_mib: float
    step_s: float  # with compile, over the steps after the first
    notes: list[str] = field(default_factory=list)
    image: str | None = None  # the file rank 0 wrote, when one was
    output: str = "image"  # "image" or "video"
    first_step_s: float | None = None  # with compile: the first step, which compiles

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict) -> RunResult:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"a rank reported fields this launcher does not know: {', '.join(unknown)}")
        return cls(**value)


def run_report(values: list[tuple[int, RunResult]]) -> str:
    """What ``shardrules run`` prints: the plan, how the work was split, and each rank's figures."""
    first = values[0][1]
    lines = [first.plan or "", f"split: {first.split}; world size {first.world_size}; " + "; ".join(first.notes)]
    for rank, v in values:
        cold = f", first step {v.first_step_s:.2f} s (compiling)" if v.first_step_s is not None else ""
        lines.append(f"rank {rank}: load {v.load_s:.2f} s, read {v.read_mib:.2f} MiB, VmRSS {v.vmrss_mib:.0f} "
                     f"MiB (peak {v.maxrss_mib:.0f} MiB), {v.step_s * 1000:.1f} ms/step{cold}")
    return "\n".join(lines)


def reports(results) -> list[tuple[int, RunResult]]:
    """(rank, RunResult) of the launcher's results."""
    return [(r.rank, RunResult.from_dict(r.value)) for r in results]
