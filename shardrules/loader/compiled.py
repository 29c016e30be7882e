"""Compiled units: ``torch.compile`` of each FSDP unit's ``forward``, chosen by the rules.

Each unit the plan chooses (the repeated blocks) has its ``forward`` compiled, unless its shard rule says
``compile = false``. The order, and why:

* After ``fully_shard``, on the instance's ``forward``, not on the module: FSDP2 all-gathers and reshards in forward
  pre- and post-hooks, which ``Module.__call__`` runs around ``forward``. Compiling ``forward`` keeps those hooks in
  eager Python, so dynamo never traces FSDP2's hooks (they break graphs under ``fullgraph=True``), and the module
  keeps its name, class and state-dict keys (``torch.compile(module)`` would wrap it in an ``OptimizedModule``).
* Before the sequence-parallel hooks: diffusers' split hooks wrap whatever ``forward`` is at the time, so a split
  runs eagerly and hands the compiled block its share of the tokens.
* One graph per block class: every block of a class runs the same code object, and dynamo treats the parameters
  as inputs (torch >= 2.5 inlines built-in nn modules), so the first block's compile serves the others: cold
  compile time does not grow with the number of layers (measured: 1 graph for 2 and 8 Wan layers).
* ``fullgraph=True`` by default: a graph break inside a block is an error at the first step, not a silent slow path.
  Pass ``compile={"fullgraph": False}`` (any ``torch.compile`` keyword) to allow breaks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..engine.resolve import ShardPlan
from ..errors import PlanError

DEFAULTS: dict[str, Any] = {"fullgraph": True}


def compile_options(compile: bool | dict) -> dict[str, Any] | None:
    """``torch.compile`` keywords for ``compile`` (``False``: ``None``, nothing is compiled)."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return dict(DEFAULTS)
    if isinstance(compile, dict):
        return {**DEFAULTS, **compile}
    raise TypeError(f"compile must be True, False or a dict of torch.compile options, not {type(compile).__name__}")


def compile_units(model: nn.Module, plan: ShardPlan, options: dict[str, Any], regions=None,
                  region_modules: list[str] = ()) -> list[str]:
    """Compile the ``forward`` of every unit of ``plan`` whose rule does not say ``compile = false``, and of every
    module in ``region_modules``, the ones the model entry's ``compile`` expression ``regions`` (a
    :class:`~shardrules.rules.Rule`) chose (:func:`region_names`); the names. A region inside a compiled unit is
    refused (its unit's graph already holds it; compiling it again would only add a graph break at its boundary)."""
    compiled = []
    for unit in plan.units_info:
        if not unit.options.get("compile", True):
            continue
        module = model.get_submodule(unit.name)
        module.forward = torch.compile(module.forward, **options)
        compiled.append(unit.name)
    for name in region_modules:
        holder = next((u for u in compiled if name == u or name.startswith(u + ".")), None)
        if holder is not None:
            raise PlanError(f"the compile region '{name}' (rule '{regions.text}' at {regions.where}) lies inside "
                            f"the compiled unit '{holder}', whose graph holds it: choose modules outside the units")
        module = model.get_submodule(name)
        module.forward = torch.compile(module.forward, **options)
        compiled.append(name)
    return compiled


def region_names(model: nn.Module, regions) -> list[str]:
    """The modules of ``model`` the ``compile`` expression chooses, in model order (a PlanError when none)."""
    from ..engine.compile import compile_rule
    from ..engine.facts import ModuleFacts

    facts = ModuleFacts.of_model(model)
    chosen = sorted(compile_rule(regions.expr).select(facts))
    if not chosen:
        raise PlanError(f"the compile rule '{regions.text}' at {regions.where} chooses no module of "
                        f"{facts.value('class', 0)}")
    return [facts.name(i) for i in chosen]
