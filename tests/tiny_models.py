"""Tiny diffusers transformers built from a config with random weights, and inputs for their forward."""

from __future__ import annotations

import contextlib

import diffusers
import torch

from shardrules.demo.pipelines import FLUX_TRANSFORMER, WAN_TRANSFORMER, randomize_zeros  # noqa: F401

CONFIGS: dict[str, dict] = {
    "FluxTransformer2DModel": FLUX_TRANSFORMER,
    "WanTransformer3DModel": WAN_TRANSFORMER,
    "HunyuanVideoTransformer3DModel": dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=2,
        num_single_layers=2, num_refiner_layers=2, patch_size=1, patch_size_t=1, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
    ),
    "QwenImageTransformer2DModel": dict(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(8, 4, 4),
    ),
    "SanaTransformer2DModel": dict(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
        sample_size=8,
    ),
    "SD3Transformer2DModel": dict(
        sample_size=8, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        caption_projection_dim=16, joint_attention_dim=16, pooled_projection_dim=8, out_channels=4,
    ),
    "Flux2Transformer2DModel": dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4),
    ),
    "WanVACETransformer3DModel": dict(
        patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, rope_max_seq_len=32, vace_layers=[0],
        vace_in_channels=8,
    ),
    "SanaVideoTransformer3DModel": dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=8,
        sample_size=8, patch_size=(1, 2, 2),
    ),
    "HunyuanVideo15Transformer3DModel": dict(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_refiner_layers=1, text_embed_dim=16, text_embed_2_dim=8, image_embed_dim=8, rope_axes_dim=(4, 6, 6),
        target_size=32,
    ),
    "HunyuanImageTransformer2DModel": dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=(1, 1), text_embed_dim=16, rope_axes_dim=(8, 8),
    ),
    # Cosmos resizes its padding mask with torchvision, which does not install beside the CPU torch wheel here;
    # without the padding-mask channel the blocks, and so the shard plan, are the same
    "CosmosTransformer3DModel": dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, text_embed_dim=16,
        adaln_lora_dim=8, max_size=(4, 16, 16), patch_size=(1, 2, 2), concat_padding_mask=False,
        rope_scale=(1.0, 1.0, 1.0),
    ),
    "ZImageTransformer2DModel": dict(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=2, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6], axes_lens=[64, 32, 32],
        siglip_feat_dim=8,  # the omni mode's SigLIP image features and refiner
    ),
}

# The units the embedded explicit rules must choose, bottom-up.
EXPECTED_UNITS: dict[str, list[str]] = {
    "FluxTransformer2DModel": ["single_transformer_blocks.1", "single_transformer_blocks.0",
                               "transformer_blocks.1", "transformer_blocks.0"],
    "WanTransformer3DModel": ["blocks.1", "blocks.0"],
    "HunyuanVideoTransformer3DModel": ["single_transformer_blocks.1", "single_transformer_blocks.0",
                                       "transformer_blocks.1", "transformer_blocks.0",
                                       "context_embedder.token_refiner.refiner_blocks.1",
                                       "context_embedder.token_refiner.refiner_blocks.0"],
    "QwenImageTransformer2DModel": ["transformer_blocks.1", "transformer_blocks.0"],
    "SanaTransformer2DModel": ["transformer_blocks.1", "transformer_blocks.0"],
    "SD3Transformer2DModel": ["transformer_blocks.1", "transformer_blocks.0"],
    "Flux2Transformer2DModel": ["single_transformer_blocks.0", "transformer_blocks.0"],
    "WanVACETransformer3DModel": ["vace_blocks.0", "blocks.1", "blocks.0"],
    "SanaVideoTransformer3DModel": ["transformer_blocks.1", "transformer_blocks.0"],
    "HunyuanVideo15Transformer3DModel": ["transformer_blocks.1", "transformer_blocks.0",
                                         "context_embedder.token_refiner.refiner_blocks.0"],
    "HunyuanImageTransformer2DModel": ["single_transformer_blocks.0", "transformer_blocks.0",
                                       "context_embedder.token_refiner.refiner_blocks.0"],
    "ZImageTransformer2DModel": ["layers.1", "layers.0", "siglip_refiner.0", "context_refiner.0", "noise_refiner.0"],
    "CosmosTransformer3DModel": ["transformer_blocks.1", "transformer_blocks.0"],
}


def build(class_name: str, device: str | None = None) -> torch.nn.Module:
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = getattr(diffusers, class_name).from_config(CONFIGS[class_name])
    return randomize_zeros(model).eval()


def inputs(class_name: str, batch: int = 1, seed: int = 0, dtype: torch.dtype | None = None) -> dict:
    """Keyword arguments for one forward call of the tiny model (floating tensors in ``dtype`` if given),
    from the package's example inputs at timestep 500."""
    from shardrules.runner.inputs import example_inputs

    if class_name == "ZImageTransformer2DModel":  # lists of per-image tensors, not a batch; no runner support
        g = torch.Generator().manual_seed(seed)
        kwargs = dict(x=[torch.randn(4, 1, 8, 8, generator=g) for _ in range(batch)], t=torch.full((batch,), 0.5),
                      cap_feats=[torch.randn(6, 16, generator=g) for _ in range(batch)])
        if dtype is not None:
            kwargs = {k: [v.to(dtype) for v in vs] if isinstance(vs, list) else vs.to(dtype)
                      for k, vs in kwargs.items()}
        return kwargs
    example = example_inputs(build(class_name, device="meta"), batch=batch, seed=seed)
    latents = example.latents
    if example.latent_condition is not None:  # what the pipeline feeds the model: latents and condition channels
        latents = torch.cat([latents, example.latent_condition], dim=1)
    kwargs = dict(example.model_kwargs, hidden_states=latents,
                  timestep=torch.full((batch,), 500.0 * example.timestep_scale))
    if dtype is not None:
        kwargs = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in kwargs.items()}
    return kwargs


def first_output(out) -> torch.Tensor:
    """The first output of a forward with ``return_dict=False`` (Z-Image returns a list per image)."""
    first = out[0]
    return torch.stack(first) if isinstance(first, list) else first


# The classes whose sequence-parallel plan tests/test_sequence_parallel.py proves (Ulysses 2 == unsharded), and
# where each plan comes from.
SEQUENCE_PROVEN = {"WanTransformer3DModel": "diffusers", "FluxTransformer2DModel": "diffusers",
                   "QwenImageTransformer2DModel": "diffusers", "Flux2Transformer2DModel": "diffusers",
                   "WanVACETransformer3DModel": "rules", "ChronoEditTransformer3DModel": "diffusers",
                   "MiniMaxH3Transformer3DModel": "diffusers", "BriaTransformer2DModel": "rules",
                   "LongCatImageTransformer2DModel": "rules", "OvisImageTransformer2DModel": "rules",
                   "SkyReelsV2Transformer3DModel": "rules", "HunyuanVideoTransformer3DModel": "rules",
                   "Flux3Transformer2DModel": "rules", "ZImageTransformer2DModel": "rules",
                   "BriaFiboTransformer2DModel": "rules", "Ideogram4Transformer2DModel": "rules",
                   "PRXTransformer2DModel": "rules", "Krea2Transformer2DModel": "rules",
                   "LongCatAudioDiTTransformer": "rules", "WanAnimateTransformer3DModel": "rules",
                   "AnyFlowTransformer3DModel": "rules", "LTXVideoTransformer3DModel": "diffusers",
                   "ErnieImageTransformer2DModel": "rules", "BriaFibo2Transformer2DModel": "rules",
                   "Kandinsky5Transformer3DModel": "rules", "JoyImageEditTransformer3DModel": "rules",
                   "ChromaTransformer2DModel": "rules", "StableAudio3DiTModel": "rules",
                   "MiniMaxMusic3Transformer1DModel": "rules", "JoyImageEditPlusTransformer3DModel": "rules",
                   "Kandinsky6Transformer3DModel": "rules", "SanaWMLTX2RefinerTransformer3DModel": "rules",
                   "GlmImageTransformer2DModel": "rules", "MotifVideoTransformer3DModel": "rules",
                   "NucleusMoEImageTransformer2DModel": "rules", "HeliosTransformer3DModel": "rules",
                   "LTX2VideoTransformer3DModel": "rules", "AceStepTransformer1DModel": "rules",
                   "Cosmos3OmniTransformer": "rules", "HunyuanImageTransformer2DModel": "rules",
                   "HunyuanVideoFramepackTransformer3DModel": "rules", "SD3Transformer2DModel": "rules",
                   "PixArtTransformer2DModel": "rules", "CogVideoXTransformer3DModel": "rules",
                   "AuraFlowTransformer2DModel": "rules", "CogView4Transformer2DModel": "rules",
                   "Lumina2Transformer2DModel": "rules", "ConsisIDTransformer3DModel": "rules",
                   "CogView3PlusTransformer2DModel": "rules", "DiTTransformer2DModel": "rules",
                   "HunyuanDiT2DModel": "rules", "StableAudioDiTModel": "rules",
                   "Transformer2DModel": "rules", "TransformerTemporalModel": "rules",
                   "EasyAnimateTransformer3DModel": "rules", "OmniGenTransformer2DModel": "rules",
                   "DreamLiteTransformer2DModel": "rules", "AllegroTransformer3DModel": "rules"}

TEXT_DIMS = {"encoder_hidden_states": 1, "txt_ids": -2, "encoder_attention_mask": 1, "encoder_hidden_states_mask": 1,
             "text_encoder_layers": 1}


def even_text_inputs(class_name: str, batch: int = 1) -> dict:
    """:func:`inputs` with an even number of text tokens (the last one repeated where there are five), so that a
    sequence split over two ranks divides them."""
    return pad_text(inputs(class_name, batch=batch))


def pad_text(kwargs: dict) -> dict:
    """``kwargs`` with an even number of text tokens: the last one repeated in every text-length argument."""
    text = kwargs.get("encoder_hidden_states")
    if text is None or text.shape[1] % 2 == 0:
        return kwargs
    def padded(value: torch.Tensor, dim: int) -> torch.Tensor:
        dim = dim % value.dim()
        return torch.cat([value, value.narrow(dim, value.shape[dim] - 1, 1)], dim=dim)

    for key, dim in TEXT_DIMS.items():
        value = kwargs.get(key)
        if isinstance(value, torch.Tensor):
            kwargs[key] = padded(value, dim)
        elif isinstance(value, list):  # per-block text features (Bria FIBO's text_encoder_layers)
            kwargs[key] = [padded(v, dim) for v in value]
    return kwargs


MASKS = ("encoder_attention_mask", "encoder_hidden_states_mask")


def sequence_inputs(class_name: str, variant: str = "even") -> dict:
    """Inputs for a sequence-parallel check: ``"even"`` text tokens, the model's own (``"odd"``: Flux's five), or
    ``"padded"``: even, with all but the first two text tokens masked out, as a tokenizer pads a short prompt (more
    than a rank's share of the text: a mask split as one tensor instead of by segments then masks other tokens);
    ``"controlnet"``: SD3 with a ControlNet's per-block residuals."""
    if variant == "odd":
        return inputs(class_name)
    if class_name == "ZImageTransformer2DModel" and variant == "padded":
        # two prompts of 6 and 30 tokens, each padded to 32 with masked pad tokens (as is the image: 16 + 16)
        g = torch.Generator().manual_seed(3)
        return dict(x=[torch.randn(4, 1, 8, 8, generator=g) for _ in range(2)], t=torch.full((2,), 0.5),
                    cap_feats=[torch.randn(n, 16, generator=g) for n in (6, 30)])
    if class_name == "ZImageTransformer2DModel" and variant == "omni":
        # edit mode: a clean reference image and the noisy one, a caption each, SigLIP features of the reference;
        # per-token modulation by the noise mask
        g = torch.Generator().manual_seed(4)
        return dict(x=[[torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)]],
                    t=torch.full((1,), 0.5), cap_feats=[[torch.randn(n, 16, generator=g) for n in (6, 5)]],
                    siglip_feats=[[torch.randn(4, 4, 8, generator=g), None]], image_noise_mask=[[0, 1]])
    kwargs = even_text_inputs(class_name)
    if class_name == "SD3Transformer2DModel" and variant == "controlnet":
        # a ControlNet's residual for each block, added to the image tokens after it: split as they are
        g = torch.Generator().manual_seed(5)
        kwargs["block_controlnet_hidden_states"] = [torch.randn(1, 64, 16, generator=g) for _ in range(2)]
    if variant == "padded":
        mask = next(k for k in MASKS if k in kwargs)
        kwargs[mask] = kwargs[mask].clone()
        kwargs[mask][:, 2:] = 0
    return kwargs


def split_attention(model, plan) -> str:
    """The attention module that should see a split sequence: the first inside the first module whose forward
    argument the plan splits (the root's: the model's first attention module)."""
    from shardrules.engine.sequence import attention_modules

    names = [a.name for a in attention_modules(model)]
    inside = [e.module for e in plan.splits if e.input is not None and e.module]
    if inside and inside[0] in names:  # the attention module itself splits its input (Helios): its query
        return f"{inside[0]}.to_q"  # projection sees what the split hook hands the forward
    if inside:
        return next((n for n in names if n.startswith(inside[0] + ".")), names[0])
    return names[0]


def count_tokens(model, name: str) -> list:
    """Hooks module ``name``: the returned list receives the token count of each call's ``hidden_states`` (its first
    argument): dim 1 of ``[B, S, D]``, dim 0 of a packed ``[S, D]`` (Cosmos 3's pathways)."""
    seen = []

    def record(module, args, kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        seen.append(hidden.shape[0] if hidden.dim() == 2 else hidden.shape[1])

    model.get_submodule(name).register_forward_pre_hook(record, with_kwargs=True)
    return seen
