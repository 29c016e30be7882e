"""Seeded example inputs for the transformers the embedded rules cover: latents and random conditioning
shaped from the model's config, for ``shardrules run`` / ``demo`` and for tests. No text encoder is run:
the conditioning is random, which is enough to check that a sharded model computes what the unsharded
one does, and to time it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine.facts import class_name
from ..engine.wrapped import get_wrapped_attr
from ..errors import ShardRulesError


@dataclass
class ExampleInputs:
    latents: torch.Tensor
    model_kwargs: dict[str, Any]
    negative_model_kwargs: dict[str, Any]  # the unconditional branch: the same shapes, other values
    timestep_scale: float = 1.0  # the pipeline's convention (Flux and Qwen-Image feed t / 1000)
    cast_timestep: bool = False  # the pipeline casts the timestep to the latents' dtype (Flux) or keeps it (Wan)
    # channels the pipeline appends to the latents before every forward (HunyuanVideo 1.5: condition latents and mask)
    latent_condition: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


def _cfg(config: Any, key: str, default: Any = None) -> Any:
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def example_inputs(model: torch.nn.Module, batch: int = 1, seed: int = 0) -> ExampleInputs:
    """Latents and conditioning for one denoising run of ``model`` (a diffusers transformer)."""
    config = get_wrapped_attr(model, "config")
    name = class_name(model) if not isinstance(model, type) else model.__name__
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ShardRulesError(f"no example inputs for {name}; known: {', '.join(sorted(_BUILDERS))}")
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    latents, conditioning, scale, *condition = builder(config, batch, rand)
    negative = {k: (rand(*v.shape) if isinstance(v, torch.Tensor) and v.is_floating_point() and k in _TEXT else v)
                for k, v in conditioning.items()}
    return ExampleInputs(latents, conditioning, negative, scale, cast_timestep=name in _CASTS_TIMESTEP,
                         latent_condition=condition[0] if condition else None)


_TEXT = {"encoder_hidden_states", "pooled_projections"}
# Classes whose diffusers pipeline casts the timestep to the latents' (or transformer's) dtype before the forward;
# the others (Wan, SD3, Sana) pass the scheduler's float32 timestep.
_CASTS_TIMESTEP = {"FluxTransformer2DModel", "Flux2Transformer2DModel", "HunyuanVideoTransformer3DModel",
                   "HunyuanVideo15Transformer3DModel", "HunyuanImageTransformer2DModel", "QwenImageTransformer2DModel",
                   "CosmosTransformer3DModel"}


def _flux(config, batch, rand):
    h = w = 4
    channels = _cfg(config, "in_channels")
    text = _cfg(config, "joint_attention_dim")
    grid = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(h).float(), torch.arange(w).float(),
                                      indexing="ij"), -1).reshape(-1, 3)
    kwargs = dict(encoder_hidden_states=rand(batch, 5, text), pooled_projections=rand(batch, _cfg(config,
                  "pooled_projection_dim")), img_ids=grid, txt_ids=torch.zeros(5, 3))
    if _cfg(config, "guidance_embeds"):
        kwargs["guidance"] = torch.full((batch,), 3.5)
    return rand(batch, h * w, channels), kwargs, 1 / 1000


def _wan(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 2, 8, 8),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "text_dim"))), 1.0)


def _hunyuan_video(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 1, 4, 4),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "text_embed_dim")),
                 encoder_attention_mask=torch.ones(batch, 6), pooled_projections=rand(batch, _cfg(
                     config, "pooled_projection_dim")), guidance=torch.full((batch,), 3500.0)), 1.0)


def _qwen_image(config, batch, rand):
    return (rand(batch, 16, _cfg(config, "in_channels")),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "joint_attention_dim")),
                 encoder_hidden_states_mask=torch.ones(batch, 6), img_shapes=[(1, 4, 4)] * batch), 1 / 1000)


def _sana(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 8, 8),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "caption_channels"))), 1.0)


def _sd3(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 8, 8),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "joint_attention_dim")),
                 pooled_projections=rand(batch, _cfg(config, "pooled_projection_dim"))), 1.0)


def _flux2(config, batch, rand):
    h = w = 4
    # per-item position ids (batch, tokens, 4: t, h, w, l), as Flux2Pipeline passes them
    grid = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(h).float(), torch.arange(w).float(),
                                      torch.zeros(1), indexing="ij"), -1).reshape(1, -1, 4)
    text_ids = torch.zeros(1, 5, 4)
    text_ids[..., 3] = torch.arange(5).float()
    kwargs = dict(encoder_hidden_states=rand(batch, 5, _cfg(config, "joint_attention_dim")),
                  img_ids=grid.expand(batch, -1, -1).clone(), txt_ids=text_ids.expand(batch, -1, -1).clone())
    if _cfg(config, "guidance_embeds", True):
        kwargs["guidance"] = torch.full((batch,), 3.5)
    return rand(batch, h * w, _cfg(config, "in_channels")), kwargs, 1 / 1000


def _wan_vace(config, batch, rand):
    latents, kwargs, scale = _wan(config, batch, rand)
    kwargs["control_hidden_states"] = rand(batch, _cfg(config, "vace_in_channels"), *latents.shape[2:])
    return latents, kwargs, scale


def _sana_video(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 2, 8, 8),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "caption_channels"))), 1.0)


def _hunyuan_video_15(config, batch, rand):
    # text-to-video, as its pipeline runs it: the latents have out_channels; zero condition latents and a zero mask
    # (prepare_cond_latents_and_mask) fill the rest of in_channels before every forward
    out_channels = _cfg(config, "out_channels")
    condition = torch.zeros(batch, _cfg(config, "in_channels") - out_channels, 1, 4, 4)
    return (rand(batch, out_channels, 1, 4, 4),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "text_embed_dim")),
                 encoder_attention_mask=torch.ones(batch, 6),
                 encoder_hidden_states_2=rand(batch, 4, _cfg(config, "text_embed_2_dim")),
                 encoder_attention_mask_2=torch.ones(batch, 4),
                 image_embeds=rand(batch, 4, _cfg(config, "image_embed_dim"))), 1.0, condition)


def _hunyuan_image(config, batch, rand):
    kwargs = dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "text_embed_dim")),
                  encoder_attention_mask=torch.ones(batch, 6))
    if _cfg(config, "text_embed_2_dim"):
        kwargs.update(encoder_hidden_states_2=rand(batch, 4, _cfg(config, "text_embed_2_dim")),
                      encoder_attention_mask_2=torch.ones(batch, 4))
    if _cfg(config, "guidance_embeds"):
        kwargs["guidance"] = torch.full((batch,), 3500.0)
    return rand(batch, _cfg(config, "in_channels"), 4, 4), kwargs, 1.0


def _cosmos(config, batch, rand):
    return (rand(batch, _cfg(config, "in_channels"), 2, 8, 8),
            dict(encoder_hidden_states=rand(batch, 6, _cfg(config, "text_embed_dim"))), 1 / 1000)


_BUILDERS = {
    "CosmosTransformer3DModel": _cosmos,
    "HunyuanVideo15Transformer3DModel": _hunyuan_video_15,
    "HunyuanImageTransformer2DModel": _hunyuan_image,
    "Flux2Transformer2DModel": _flux2,
    "WanVACETransformer3DModel": _wan_vace,
    "SanaVideoTransformer3DModel": _sana_video,
    "FluxTransformer2DModel": _flux,
    "WanTransformer3DModel": _wan,
    "HunyuanVideoTransformer3DModel": _hunyuan_video,
    "QwenImageTransformer2DModel": _qwen_image,
    "SanaTransformer2DModel": _sana,
    "SD3Transformer2DModel": _sd3,
}
# The classes `shardrules run` drives from seeded latents (a pipeline folder with --prompt runs any pipeline).
DRIVEN_CLASSES = tuple(sorted(_BUILDERS))
