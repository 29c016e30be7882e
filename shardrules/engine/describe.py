"""Plain-text and JSON views of a :class:`ShardPlan` (what ``shardrules plan`` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: resolve.py imports this module for ShardPlan.table
    from .resolve import ShardPlan


ROOT_WARNING = 0.5  # the root keeping more than this share of the parameters is flagged


def peak_unit(p: ShardPlan):
    """The unit with the most bytes when gathered (all-gathered whole on every rank during its forward)."""
    return max(reversed(p.units_info), key=lambda u: u.bytes_per_rank(1), default=None)  # ties: the first


def root_share(p: ShardPlan) -> float:
    """The share of the parameters the root holds (gathered for the whole forward)."""
    return p.root_params / p.total_params if p.total_params else 0.0


def format_count(count: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(int(count))


def format_mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f}"


def plan_as_dict(p: ShardPlan, world_size: int) -> dict:
    return {
        "model_class": p.model_class,
        "source": p.source,
        "model_rule": p.model_rule,
        "world_size": world_size,
        "total_params": p.total_params,
        "bytes_per_rank": p.bytes_per_rank(world_size),
        "root": {"params": p.root_params, "bytes_per_rank": p.root_bytes_per_rank(world_size)},
        "buffers": {"bytes_per_rank": p.buffer_bytes},
        "root_share": round(root_share(p), 6),
        "peak_unit": None if (peak := peak_unit(p)) is None else {"name": peak.name,
                                                                  "bytes_gathered": peak.bytes_per_rank(1)},
        "units": [  # in model order, as the text lists them (fully_shard's order is the reverse)
            {
                "name": u.name,
                "members": list(u.members),
                "class": u.class_name,
                "params": u.params,
                "bytes_per_rank": u.bytes_per_rank(world_size),
                "rule": u.rule,
                "where": str(u.where) if u.where else None,
                "options": dict(u.options),
            }
            for u in reversed(p.units_info)
        ],
        "attempts": [{"strategy": a.strategy, "selected": a.selected, "detail": a.detail} for a in p.attempts],
        "warnings": list(p.warnings),
    }


def _chosen_by(p: ShardPlan) -> str:
    return f"{p.source} (model '{p.model_rule}')" if p.model_rule else p.source


def plan_as_text(p: ShardPlan, world_size: int) -> str:
    """The table ``shardrules plan`` prints: units in model order, then the root, totals, strategies tried."""
    lines = [f"warning: {w}" for w in p.warnings]
    lines.append(f"{p.model_class}: {len(p.units)} units chosen by {_chosen_by(p)}, "
                 f"{format_count(p.total_params)} parameters, world size {world_size}")
    rows = [("unit", "class", "params", "MiB/rank", "rule")]
    for u in reversed(p.units_info):  # units_info is bottom-up (fully_shard's order); people read top-down
        rows.append((" + ".join((u.name, *u.members)), u.class_name, format_count(u.params),
                     format_mib(u.bytes_per_rank(world_size)), str(u.where) if u.where else u.rule))
    rows.append(("<root>", p.model_class, format_count(p.root_params), format_mib(p.root_bytes_per_rank(world_size)),
                 "everything outside the units"))
    if p.buffer_bytes:
        rows.append(("<buffers>", "", "", format_mib(p.buffer_bytes), "persistent buffers, whole on every rank"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) if i in (0, 1) else cell.rjust(w)
                                      for i, (cell, w) in enumerate(zip(row[:4], widths, strict=True))) + "  " + row[4])
    lines.append(f"total per rank: {format_mib(p.bytes_per_rank(world_size))} MiB "
                 f"(of {format_mib(p.bytes_per_rank(1))} MiB unsharded)")
    if (peak := peak_unit(p)) is not None:
        lines.append(f"peak unit: {peak.name}, {format_mib(peak.bytes_per_rank(1))} MiB gathered at a time on every "
                     f"rank")
    if root_share(p) > ROOT_WARNING:
        lines.append(f"warning: the root keeps {root_share(p):.0%} of the parameters "
                     f"({format_mib(p.root_bytes_per_rank(world_size))} MiB per rank), gathered for the whole forward; "
                     f"a rule that makes units of the large modules would shard them")
    for a in p.attempts:
        lines.append(f"tried {a.strategy}: {a.selected} units; {a.detail}")
    return "\n".join(lines)


def plan_summary(p: ShardPlan, world_size: int) -> str:
    """One line: how many units, chosen by what, and the size per rank."""
    return (f"{p.model_class}: {len(p.units)} units chosen by {_chosen_by(p)}, "
            f"{format_mib(p.bytes_per_rank(world_size))} MiB per rank of {format_mib(p.bytes_per_rank(1))} MiB")
