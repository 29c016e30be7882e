"""Tiny text encoders from transformers, built from a config with random weights, and their inputs."""

from __future__ import annotations

import torch
import transformers as T
from tiny_models import randomize_zeros

SMALL = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
CONFIGS = {
    "T5EncoderModel": lambda: T.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2),
    "UMT5EncoderModel": lambda: T.UMT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2),
    "CLIPTextModel": lambda: T.CLIPTextConfig(**SMALL, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                                              pad_token_id=1),
    "CLIPTextModelWithProjection": lambda: T.CLIPTextConfig(**SMALL, max_position_embeddings=16, projection_dim=8,
                                                            bos_token_id=0, eos_token_id=1, pad_token_id=1),
    "LlamaModel": lambda: T.LlamaConfig(**SMALL, num_key_value_heads=1),
    "Gemma2Model": lambda: T.Gemma2Config(**SMALL, num_key_value_heads=1, head_dim=8),
    "MistralModel": lambda: T.MistralConfig(**SMALL, num_key_value_heads=1),
    "Qwen2_5_VLTextModel": lambda: T.Qwen2_5_VLTextConfig(**SMALL, num_key_value_heads=1,
                                                          rope_scaling={"type": "default", "mrope_section": [2, 1, 1]}),
    "Qwen3Model": lambda: T.Qwen3Config(**SMALL, num_key_value_heads=1, head_dim=8),
    "GlmModel": lambda: T.GlmConfig(**SMALL, num_key_value_heads=1, head_dim=8, pad_token_id=0),
    # Flux 2 Klein's, its embedding and head one tied parameter
    "Qwen3ForCausalLM": lambda: T.Qwen3Config(**SMALL, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True),
    # the whole vision-language model, as Qwen-Image ships its text encoder: a one-block vision tower
    "Qwen2_5_VLForConditionalGeneration": lambda: T.Qwen2_5_VLConfig(
        text_config=dict(**SMALL, num_key_value_heads=1, rope_scaling={"type": "default", "mrope_section": [2, 1, 1]}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=16, patch_size=2,
                           temporal_patch_size=1, spatial_merge_size=1, window_size=4, fullatt_block_indexes=[0])),
    # Flux 2's text encoder, the whole Mistral 3 model (a Pixtral vision tower), saved by transformers in the older
    # 'language_model.*' / 'vision_tower.*' layout
    "Mistral3ForConditionalGeneration": lambda: T.Mistral3Config(
        text_config=dict(model_type="mistral", **SMALL, num_key_value_heads=1, head_dim=8),
        vision_config=dict(model_type="pixtral", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, head_dim=8, patch_size=2, image_size=8), spatial_merge_size=1),
}
# Krea 2's text encoder: Qwen 3 VL's base model (its language model's layers' states, stacked)
CONFIGS["Qwen3VLModel"] = lambda: T.Qwen3VLConfig(
    text_config=dict(**SMALL, num_key_value_heads=1, head_dim=8,
                     rope_scaling={"rope_type": "default", "mrope_section": [2, 1, 1]}),
    vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=16, patch_size=2,
                       temporal_patch_size=1, spatial_merge_size=1, num_position_embeddings=16,
                       deepstack_visual_indexes=[0]))
# HiDream's fourth text encoder (every layer's states)
CONFIGS["LlamaForCausalLM"] = lambda: T.LlamaConfig(**SMALL, num_key_value_heads=1)
# LTX-2's text encoder: the whole Gemma 3 model (a SigLIP vision tower), every layer's states stacked
CONFIGS["Gemma3ForConditionalGeneration"] = lambda: T.Gemma3Config(
    text_config=dict(**SMALL, num_key_value_heads=1, head_dim=8),
    vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       image_size=8, patch_size=2), mm_tokens_per_image=4)
# Motif-Video's text encoder: T5Gemma 2's encoder (a SigLIP vision tower beside it)
CONFIGS["T5Gemma2Encoder"] = lambda: T.T5Gemma2EncoderConfig(
    text_config=dict(**SMALL, num_key_value_heads=1, head_dim=8, dropout_rate=0.0),
    vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       image_size=8, patch_size=2), mm_tokens_per_image=4)
# Bria FIBO's text encoder
CONFIGS["SmolLM3ForCausalLM"] = lambda: T.SmolLM3Config(**SMALL, num_key_value_heads=1, pad_token_id=0)
# ERNIE-Image's text encoder: Mistral 3's base model, the same configuration
CONFIGS["Mistral3Model"] = CONFIGS["Mistral3ForConditionalGeneration"]
# GLM-Image's vision_language_encoder: its autoregressive model (language model, vision tower, VQ codebook)
CONFIGS["GlmImageForConditionalGeneration"] = lambda: T.GlmImageConfig(
    text_config=dict(SMALL, num_key_value_heads=1, vision_vocab_size=64, pad_token_id=0, eos_token_id=None,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1],
                                      "partial_rotary_factor": 1.0}),
    vision_config=dict(depth=1, hidden_size=16, num_heads=2, intermediate_size=32, patch_size=2, image_size=32),
    vq_config=dict(embed_dim=8, num_embeddings=64, latent_channels=16), image_token_id=61, image_start_token_id=62,
    image_end_token_id=63)
EXPECTED_UNITS = {
    "GlmImageForConditionalGeneration": ["lm_head", "model.language_model.layers.1", "model.language_model.layers.0",
                                         "model.language_model.embed_tokens", "model.visual.blocks.0"],
    "T5EncoderModel": ["encoder.block.1", "encoder.block.0", "shared"],  # shared + encoder.embed_tokens: one unit
    "UMT5EncoderModel": ["encoder.block.1", "encoder.block.0", "shared"],
    "CLIPTextModel": ["encoder.layers.1", "encoder.layers.0"],
    "CLIPTextModelWithProjection": ["text_model.encoder.layers.1", "text_model.encoder.layers.0"],
    "LlamaModel": ["layers.1", "layers.0", "embed_tokens"],
    "Gemma2Model": ["layers.1", "layers.0", "embed_tokens"],
    "MistralModel": ["layers.1", "layers.0", "embed_tokens"],
    "Qwen2_5_VLTextModel": ["layers.1", "layers.0", "embed_tokens"],
    "Qwen3Model": ["layers.1", "layers.0", "embed_tokens"],
    "GlmModel": ["layers.1", "layers.0", "embed_tokens"],
    "Qwen3ForCausalLM": ["model.layers.1", "model.layers.0", "model.embed_tokens"],
    "Qwen2_5_VLForConditionalGeneration": ["model.language_model.layers.1", "model.language_model.layers.0",
                                           "model.language_model.embed_tokens", "model.visual.blocks.0"],
    "Mistral3ForConditionalGeneration": ["model.language_model.layers.1", "model.language_model.layers.0",
                                         "model.language_model.embed_tokens",
                                         "model.vision_tower.transformer.layers.0"],
    "Qwen3VLModel": ["language_model.layers.1", "language_model.layers.0", "language_model.embed_tokens",
                     "visual.blocks.0"],
    "LlamaForCausalLM": ["model.layers.1", "model.layers.0", "model.embed_tokens"],
    "Gemma3ForConditionalGeneration": ["model.language_model.layers.1", "model.language_model.layers.0",
                                       "model.language_model.embed_tokens", "model.vision_tower.encoder.layers.0"],
    "T5Gemma2Encoder": ["vision_tower.encoder.layers.0", "text_model.layers.1", "text_model.layers.0",
                        "text_model.embed_tokens"],
    "SmolLM3ForCausalLM": ["model.layers.1", "model.layers.0", "model.embed_tokens"],
    "Mistral3Model": ["language_model.layers.1", "language_model.layers.0", "language_model.embed_tokens",
                      "vision_tower.transformer.layers.0"],
}


def build(class_name: str) -> torch.nn.Module:
    config = CONFIGS[class_name]()
    config.architectures = [class_name]
    return randomize_zeros(getattr(T, class_name)(config)).eval()


def inputs(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(2, 64, (2, 6), generator=g)}


def output(model, seed: int = 0) -> torch.Tensor:
    """The first output and every layer's hidden states (which pipelines take: Lumina 2 and SD3 the second-to-last),
    flattened into one tensor."""
    with torch.no_grad():
        out = model(**inputs(seed), output_hidden_states=True)
    return torch.cat([out[0].flatten(), *(states.flatten() for states in out.hidden_states)])
