"""A picture of a plan: one self-contained HTML page (``shardrules plan DIR --html FILE``).

The module tree is drawn as nested boxes whose areas follow their parameter counts, each coloured by the FSDP unit
that holds its parameters (the root's are grey and hatched), with the rule that chose the unit and its MiB per
rank. The header gives what decides whether a model fits: the size per rank, the root's share (gathered for the
whole forward) and the peak unit (the largest one gathered at a time). No script, no network: inline CSS only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .describe import ROOT_WARNING, format_count, format_mib, peak_unit, root_share

if TYPE_CHECKING:
    from .resolve import ShardPlan, Unit

MIN_SHARE = 0.004  # a module under this share of the model's parameters is drawn inside its parent, not apart
MAX_DEPTH = 7
GRID_AT = 8  # more equal children than this are tiled in a grid


def _mib(nbytes: float) -> str:
    return f"{format_mib(nbytes)} MiB"


def _colour(index: int) -> str:
    """A light colour per unit, hues spread by the golden angle so neighbours differ."""
    return f"hsl({(index * 137.508) % 360:.0f} 62% 78%)"


def _component(name: str | None, p: ShardPlan, world_size: int, dtype: str) -> str:
    facts = p._sizes._facts
    units = p._sizes._units
    groups = p._sizes._groups
    owner = facts.owners(units)
    parents, names, classes, params = facts.parents, facts.names, facts.class_names, facts.params
    total = params[0] or 1
    position = {name: i for i, name in enumerate(names)}
    by_position = {position[u.name]: u for u in p.units_info}
    colour = {by_position[pos].name: _colour(i) for i, pos in enumerate(sorted(by_position))}  # in model order
    children: dict[int, list[int]] = {}
    for i in range(1, facts.size):
        children.setdefault(parents[i], []).append(i)

    def unit_of(i: int) -> Unit | None:
        holder = groups.get(owner[i], owner[i])
        return by_position.get(holder) if holder else None

    def box(i: int, depth: int) -> str:
        unit = unit_of(i)
        shown = [c for c in children.get(i, ()) if params[c] >= total * MIN_SHARE and depth < MAX_DEPTH]
        rest = params[i] - sum(params[c] for c in shown)
        label = names[i] if i in by_position else (facts.leaves[i] if i else "<root>")  # units by full name
        tip = [f"{names[i] or '<root>'} ({classes[i]}): {format_count(params[i])} parameters"]
        if unit is None:
            tip.append("held by the root: gathered for the whole forward")
            style = "background: repeating-linear-gradient(45deg, #e4e4e4 0 6px, #d2d2d2 6px 12px)"
        else:
            tip.append(f"unit {unit.name}: {_mib(unit.bytes_per_rank(world_size))} per rank, "
                       f"{_mib(unit.bytes_per_rank(1))} gathered; rule {unit.rule}"
                       + (f" ({unit.where})" if unit.where else ""))
            style = f"background: {colour[unit.name]}"
        is_unit = i in by_position
        cls = "box unit" if is_unit else "box"
        direction = "row" if depth % 2 == 0 else "column"
        sizes = [params[c] for c in shown]
        # many equal children (a list of blocks): a grid of equal cells, so that 40 blocks are 40 legible tiles
        # rather than 40 slivers; their areas still follow their (equal) parameter counts
        grid = len(shown) > GRID_AT and max(sizes) <= 1.5 * max(min(sizes), 1)
        layout = (f"display: grid; grid-template-columns: repeat({math.ceil(math.sqrt(len(shown)))}, 1fr)" if grid
                  else f"flex-direction: {direction}")
        inner = "".join(box(c, depth + 1) for c in shown)
        if shown and rest > total * MIN_SHARE:
            note = f"{format_count(rest)} parameters in smaller modules or held directly"
            inner += f'<div class="box rest" style="flex-grow: {rest}" title="{_e(note)}"></div>'
        heading = (f'<span class="name">{_e(label)}</span> '
                   f'<span class="meta">{_e(classes[i])} · {format_count(params[i])}')
        if is_unit:
            heading += f" · {_e(_mib(unit.bytes_per_rank(world_size)))}/rank · {_e(unit.rule)}"
        heading += "</span>"
        return (f'<div class="{cls}" style="flex-grow: {max(params[i], 1)}; {style}" title="{_e(chr(10).join(tip))}"'
                f' data-name="{_e(names[i])}"><div class="label">{heading}</div>'
                + (f'<div class="kids" style="{layout}">{inner}</div>' if inner else "")
                + "</div>")

    peak = peak_unit(p)
    share = root_share(p)
    facts_rows = [
        ("model", f"{p.model_class}, {len(p.units)} units chosen by {p.source}"
                  + (f" (model '{p.model_rule}')" if p.model_rule else "")),
        ("parameters", f"{format_count(p.total_params)} in {dtype}"),
        ("per rank", f"{_mib(p.bytes_per_rank(world_size))} of {_mib(p.bytes_per_rank(1))} unsharded, "
                     f"world size {world_size}"),
        ("root", f"{share:.1%} of the parameters ({_mib(p.root_bytes_per_rank(world_size))} per rank), gathered for "
                 f"the whole forward"),
    ]
    if peak is not None:
        facts_rows.append(("peak unit", f"{peak.name} ({peak.class_name}): {_mib(peak.bytes_per_rank(1))} gathered "
                                        f"at a time on every rank"))
    warnings = list(p.warnings)
    if share > ROOT_WARNING:
        warnings.append(f"the root keeps {share:.0%} of the parameters: every rank holds them whole during the "
                        f"forward; a rule that makes units of the large modules would shard them")
    legend = "".join(
        f'<tr><td><span class="swatch" style="background: {colour[u.name]}"></span>{_e(u.name)}</td>'
        f'<td>{_e(u.class_name)}</td><td class="num">{format_count(u.params)}</td>'
        f'<td class="num">{_e(_mib(u.bytes_per_rank(world_size)))}</td>'
        f'<td><code>{_e(u.rule)}</code>{_e(f" ({u.where})" if u.where else "")}</td></tr>'
        for u in sorted(p.units_info, key=lambda u: position[u.name]))
    return (
        f'<section class="component" data-component="{_e(name or "")}">'
        + (f"<h2>{_e(name)}</h2>" if name else "")
        + "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts_rows) + "</dl>"
        + "".join(f'<p class="warning">warning: {_e(w)}</p>' for w in warnings)
        + f'<div class="tree">{box(0, 0)}</div>'
        + '<table class="legend"><tr><th>unit</th><th>class</th><th>params</th><th>per rank</th><th>rule</th></tr>'
        + legend + "</table></section>")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 15px; margin: 20px 0 6px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0 0 8px; }
dt { color: #666; } dd { margin: 0; }
.warning { color: #8a3b00; background: #fff1e0; padding: 4px 8px; border-left: 3px solid #e08000; }
.tree { display: flex; height: 520px; border: 1px solid #888; }
.box { display: flex; flex-direction: column; flex-basis: 0; min-width: 0; min-height: 0; overflow: hidden;
       border: 1px solid rgba(0,0,0,.25); box-sizing: border-box; }
.box.unit { border: 2px solid rgba(0,0,0,.6); }
.box.rest { background: rgba(255,255,255,.35); border-style: dashed; }
.kids { display: flex; flex: 1; min-height: 0; min-width: 0; }
.label { padding: 1px 3px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 11px; }
.name { font-weight: 600; } .meta { color: #444; }
.legend { border-collapse: collapse; margin-top: 8px; } .legend td, .legend th { padding: 2px 8px; text-align: left; }
.legend .num { text-align: right; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border: 1px solid #555; }
"""


def plan_as_html(components: Iterable[tuple[str | None, ShardPlan, str]], world_size: int, title: str) -> str:
    """The page for ``components`` (each: its name in the pipeline or None, its plan, the dtype it is sized in)."""
    body = "".join(_component(name, p, world_size, dtype) for name, p, dtype in components)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>\n")
