"""The denoising runner: a diffusers scheduler loop over a sharded (or plain) transformer.

Keyword arguments reach ``transformer.forward`` and ``scheduler.step`` only when the function that finally
receives them names them. The rule, and why:

* Follow the call to the function that does the work: ``__wrapped__`` chains (``functools.wraps``, and diffusers'
  hooks, which wrap ``forward`` in a partial that names the forward it wraps) to the innermost function, bound
  methods to their function, ``functools.partial`` to its target (less the arguments it already binds).
* An argument passes when that function has a parameter of that name that can be given by keyword.
* ``**kwargs`` accepts nothing by itself. A ``**kwargs`` wrapper that forwards to a function which rejects
  ``eta`` (``DPMSolverMultistepScheduler.step``) therefore never receives ``eta``: passing everything
  through to ``**kwargs`` is the bug that broke Sana in other engines. This is the rule diffusers' own
  pipelines apply (``"eta" in signature(scheduler.step).parameters``).
* A dropped argument is reported with a ``UserWarning`` naming the function and the argument, never
  silently (Python's default filter shows each such message once).
* The arguments the runner itself supplies (``hidden_states``, ``timestep``, ``return_dict`` to the
  transformer; the model output, timestep and sample to ``step``) are always passed.

Signatures are inspected once per function and cached.
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..engine.wrapped import get_wrapped_attr
from .splits import RUNNER_SPLITS

SPLITS = RUNNER_SPLITS
_FORWARD_OWN = frozenset({"hidden_states", "timestep", "return_dict"})
_STEP_OWN = frozenset({"model_output", "timestep", "sample", "return_dict"})


def _target(fn: Callable) -> tuple[Callable, frozenset[str]]:
    """The function that does the work behind ``fn``, and the keyword names already bound on the way."""
    bound: set[str] = set()
    seen: set[int] = set()
    while id(fn) not in seen:
        seen.add(id(fn))
        if hasattr(fn, "__wrapped__"):  # first, as inspect.signature does: a wrapper declares what it wraps
            fn = fn.__wrapped__
        elif isinstance(fn, functools.partial):
            bound.update(fn.keywords)
            fn = fn.func
        elif inspect.ismethod(fn):
            fn = fn.__func__
        else:
            break
    return fn, frozenset(bound)


@functools.lru_cache(maxsize=1024)
def _keywords_of(fn: Callable) -> frozenset[str]:
    target, bound = _target(fn)
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass nothing we cannot see
        return frozenset()
    names = {p.name for p in parameters
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return frozenset(names - bound)


def accepted_keywords(fn: Callable) -> frozenset[str]:
    """Keyword names ``fn`` accepts under the rule above. Cached per function (a bound method is keyed by
    its function, so every instance of a scheduler class shares one entry)."""
    if inspect.ismethod(fn):
        fn = fn.__func__
    return _keywords_of(fn)


accepted_keywords.cache_info = _keywords_of.cache_info  # type: ignore[attr-defined]
accepted_keywords.cache_clear = _keywords_of.cache_clear  # type: ignore[attr-defined]

def filter_kwargs(fn: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The part of ``kwargs`` that ``fn`` accepts; a ``UserWarning`` names each argument it drops (Python's
    default warning filter shows each message once)."""
    accepted = accepted_keywords(fn)
    kept = {k: v for k, v in kwargs.items() if k in accepted}
    if len(kept) != len(kwargs):
        target = _target(fn.__func__ if inspect.ismethod(fn) else fn)[0]
        for name in sorted(kwargs.keys() - kept.keys()):
            warnings.warn(f"{getattr(target, '__qualname__', target)!s} does not accept '{name}'; not passed",
                          UserWarning, stacklevel=3)
    return kept


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def split_world(model: nn.Module) -> tuple[int, int, Any]:
    """This rank's place among the ranks that share work by guidance branch or batch item: (rank, size, group).
    Every rank, unless ``model`` splits its sequence: then the ranks holding the same tokens (the mesh's ``split``
    dimension), since the ranks of one sequence-parallel group compute one forward together."""
    sequence = get_wrapped_attr(model, "sequence_parallel", None)
    if sequence is None:
        return (*_world(), None)
    return sequence.split_rank, sequence.split_size, sequence.split_group


def _batch_slice(value: Any, batch: int, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a per-item argument (a tensor or list whose length is the batch)."""
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch:
        return value[start:stop]
    if isinstance(value, (list, tuple)) and len(value) == batch:
        return type(value)(value[start:stop])
    return value


def _pad_rows(value: Any, batch: int, rows: int) -> Any:
    """Pad a per-item argument to ``rows`` items by repeating its last item."""
    if batch == rows:
        return value
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch:
        return torch.cat([value, value[-1:].expand(rows - batch, *value.shape[1:])])
    if isinstance(value, (list, tuple)) and len(value) == batch:
        return type(value)(list(value) + [value[-1]] * (rows - batch))
    return value


def _to(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """A tensor (or the tensors of a list or tuple) on ``device``; floating tensors also in ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_to(v, device, dtype) for v in value)
    return value


def rank_rows(value: Any, batch: int, world: int, rank: int) -> Any:
    """This rank's rows of a per-item argument when a batch of ``batch`` items is split over ``world`` ranks (padded
    with its last item to a multiple of ``world``)."""
    rows = -(-batch // world)
    return _batch_slice(_pad_rows(value, batch, rows * world), rows * world, rank * rows, (rank + 1) * rows)


def gather_rows(mine: torch.Tensor, world: int, batch: int | None = None,
                group=None) -> list[torch.Tensor] | torch.Tensor:
    """Every rank's ``mine`` (of ``group``'s ``world`` ranks), all-gathered: as a list, or with ``batch``
    concatenated and the padding dropped."""
    parts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(parts, mine.contiguous(), group=group)
    return parts if batch is None else torch.cat(parts)[:batch]


class DenoisingRunner:
    """Runs ``scheduler`` over ``transformer`` (sharded with FSDP2 or not).

    ``split`` chooses how ranks share work when more than one runs: ``"guidance"`` gives the conditional and
    unconditional branches of classifier-free guidance to different ranks, ``"batch"`` gives each rank a
    share of the batch, ``"none"`` has every rank compute everything. ``"auto"`` (the default) splits the
    guidance branches when guidance is on, else the batch when it has at least one item per rank.
    Every rank makes the same transformer calls in the same order, so FSDP's collectives match.

    Devices and dtypes: ``run`` moves the latents and every tensor in ``model_kwargs`` / ``negative_model_kwargs``
    to the transformer's device, floating ones also to its compute dtype (diffusers' ``dtype``, which skips the
    float32 islands), and calls ``scheduler.set_timesteps(..., device=)`` when the scheduler accepts ``device``.
    The timestep keeps the scheduler's dtype (float32), as diffusers' Wan, SD3 and Sana pipelines pass it;
    ``cast_timestep=True`` casts it to the latents' dtype, as the Flux, Qwen-Image and HunyuanVideo pipelines do.
    """

    def __init__(self, transformer: nn.Module, scheduler: Any, *, split: str = "auto", progress: bool = True,
                 timestep_scale: float = 1.0, cast_timestep: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.transformer = transformer
        self.scheduler = scheduler
        self.split = split
        self.progress = progress
        self.timestep_scale = timestep_scale
        self.cast_timestep = cast_timestep
        self.step_seconds: list[float] = []  # of the last run

    # -- one transformer call ----------------------------------------------------------------------

    def _forward(self, latents: torch.Tensor, t: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
        timestep = t.expand(latents.shape[0])
        if self.cast_timestep:
            timestep = timestep.to(latents.dtype)
        if self.timestep_scale != 1.0:
            timestep = timestep * self.timestep_scale
        out = self.transformer(hidden_states=latents, timestep=timestep, return_dict=False, **kwargs)
        return out[0] if isinstance(out, (tuple, list)) else getattr(out, "sample", out)

    def _predict(self, latents: torch.Tensor, t: torch.Tensor, model_kwargs: dict, negative: dict | None,
                 guidance_scale: float | None, split: str) -> torch.Tensor:
        rank, world, group = split_world(self.transformer)
        guided = guidance_scale is not None and negative is not None
        if split == "guidance":
            branch = negative if rank % 2 else model_kwargs
            parts = gather_rows(self._forward(latents, t, branch), world, group=group)
            cond, uncond = parts[0], parts[1]
        elif split == "batch":
            batch = latents.shape[0]

            def share(kwargs: dict) -> torch.Tensor:
                mine = {k: rank_rows(v, batch, world, rank) for k, v in kwargs.items()}
                return gather_rows(self._forward(rank_rows(latents, batch, world, rank), t, mine), world, batch,
                                   group=group)

            cond = share(model_kwargs)
            uncond = share(negative) if guided else None
        else:
            cond = self._forward(latents, t, model_kwargs)
            uncond = self._forward(latents, t, negative) if guided else None
        if not guided:
            return cond
        return uncond + guidance_scale * (cond - uncond)

    # -- the loop ----------------------------------------------------------------------------------

    def _placement(self, latents: torch.Tensor) -> tuple[torch.device, torch.dtype]:
        """The transformer's device and compute dtype (the latents' own where it has no parameters)."""
        param = next(self.transformer.parameters(), None)
        device = param.device if param is not None else latents.device
        return torch.device(device), get_wrapped_attr(self.transformer, "dtype", latents.dtype)

    def resolve_split(self, batch: int, guided: bool) -> str:
        _, world, _ = split_world(self.transformer)
        if world == 1 or self.split == "none":
            return "none"
        if self.split == "guidance" and not guided:
            raise ValueError("split='guidance' needs guidance (guidance_scale and negative_model_kwargs)")
        if self.split != "auto":
            return self.split
        if guided:
            return "guidance"
        return "batch" if batch >= world else "none"

    def explain_split(self, batch: int, guided: bool) -> str:
        """The split :meth:`resolve_split` chooses, with why when ``split="auto"`` chose it."""
        chosen = self.resolve_split(batch, guided)
        _, world, _ = split_world(self.transformer)
        if self.split != "auto" or world == 1:
            return chosen
        if chosen == "guidance":
            return "guidance (auto: the guided and unguided forwards on different ranks)"
        if chosen == "batch":
            return f"batch (auto: {batch} latents over {world} ranks)"
        return (f"none (auto: no guidance to split, and a batch of {batch} is smaller than the {world} ranks; "
                f"--batch {world} or --guidance G would split the work)")

    @torch.no_grad()
    def run(self, latents: torch.Tensor, num_inference_steps: int = 4, guidance_scale: float | None = None,
            model_kwargs: dict[str, Any] | None = None, negative_model_kwargs: dict[str, Any] | None = None,
            step_kwargs: dict[str, Any] | None = None, timesteps_kwargs: dict[str, Any] | None = None,
            latent_condition: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise ``latents`` for ``num_inference_steps`` and return them. With ``guidance_scale`` and
        ``negative_model_kwargs`` it applies classifier-free guidance. ``latent_condition`` is appended to the
        latents along the channels before every forward (HunyuanVideo 1.5's condition latents and mask); the
        scheduler steps the latents alone."""
        from tqdm.auto import tqdm

        # the runner passes these itself: hidden_states, timestep and return_dict to the transformer;
        # model_output, timestep, sample and return_dict to the scheduler
        if (guidance_scale is None) != (negative_model_kwargs is None):
            raise ValueError("classifier-free guidance needs both guidance_scale and negative_model_kwargs")
        device, dtype = self._placement(latents)
        forward = self.transformer.forward

        def prepare(kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
            # filtered once per run, not per step: the step is bound by Python launch work on a GPU
            if kwargs is None:
                return None
            kept = filter_kwargs(forward, {k: v for k, v in kwargs.items() if k not in _FORWARD_OWN})
            return {k: _to(v, device, dtype) for k, v in kept.items()}

        model_kwargs = prepare(model_kwargs or {})
        negative_model_kwargs = prepare(negative_model_kwargs)
        step_kwargs = {k: v for k, v in (step_kwargs or {}).items() if k not in _STEP_OWN}
        rank, _ = _world()
        split = self.resolve_split(latents.shape[0], guidance_scale is not None)
        latents = latents.to(device=device, dtype=dtype)
        if latent_condition is not None:
            latent_condition = latent_condition.to(device=device, dtype=dtype)
        timesteps_kwargs = dict(timesteps_kwargs or {})
        if "device" in accepted_keywords(self.scheduler.set_timesteps):
            timesteps_kwargs.setdefault("device", device)
        self.scheduler.set_timesteps(num_inference_steps, **filter_kwargs(self.scheduler.set_timesteps,
                                                                          timesteps_kwargs))
        steps = self.scheduler.timesteps
        step = self.scheduler.step
        extra_step = filter_kwargs(step, step_kwargs)
        self.step_seconds = []  # wall time of each step (the first includes any compilation)
        for t in tqdm(steps, desc="denoising", disable=not (self.progress and rank == 0), leave=False):
            began = time.perf_counter()
            model_input = latents
            if hasattr(self.scheduler, "scale_model_input"):
                model_input = self.scheduler.scale_model_input(latents, t)
            if latent_condition is not None:
                model_input = torch.cat([model_input, latent_condition], dim=1)
            noise = self._predict(model_input, t, model_kwargs, negative_model_kwargs, guidance_scale, split)
            latents = step(noise, t, latents, return_dict=False, **extra_step)[0]
            self.step_seconds.append(time.perf_counter() - began)
        reshard = getattr(self.transformer, "reshard", None)
        if callable(reshard):  # FSDP2 keeps the root unsharded after forward; free it once the loop is over
            reshard()
        return latents
