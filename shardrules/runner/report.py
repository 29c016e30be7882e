"""What ``shardrules run`` prints once every rank has reported."""

from __future__ import annotations


def run_report(values: list[tuple[int, dict]]) -> str:
    """What ``shardrules run`` prints: the plan, how the work was split, and each rank's figures."""
    first = values[0][1]
    lines = [first["plan"], f"split: {first['split']}; world size {first['world_size']}; " + "; ".join(first["notes"])]
    for rank, v in values:
        compiled = v.get("first_step_s")  # with --compile: the first step compiles; ms/step is over the others
        cold = f", first step {compiled:.2f} s (compiling)" if compiled is not None else ""
        lines.append(f"rank {rank}: load {v['load_s']:.2f} s, read {v['read_mib']:.2f} MiB, VmRSS {v['vmrss_mib']:.0f} "
                     f"MiB (peak {v['maxrss_mib']:.0f} MiB), {v['step_s'] * 1000:.1f} ms/step{cold}")
    return "\n".join(lines)
