"""Tiny instances of more diffusers transformers, called through their own forward (no runner inputs).

Most have no explicit rule: the fallbacks plan them. Each entry: a small config, and the forward's keyword
arguments (seeded).
"""

from __future__ import annotations

import torch

import diffusers


def _inputs(class_name: str, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    t500, thalf = torch.tensor([500.0]), torch.tensor([0.5])
    return {
        "PixArtTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 8),
                                                 timestep=t500,
                                                 added_cond_kwargs={"resolution": None, "aspect_ratio": None}),
        "CogVideoXTransformer3DModel": lambda: dict(hidden_states=r(1, 2, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                    timestep=t500),
        "LTXVideoTransformer3DModel": lambda: dict(hidden_states=r(1, 32, 8), encoder_hidden_states=r(1, 6, 8),
                                                   timestep=t500, encoder_attention_mask=torch.ones(1, 6),
                                                   num_frames=2, height=4, width=4),
        "MochiTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                timestep=t500, encoder_attention_mask=torch.ones(1, 6)),
        "AuraFlowTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                   timestep=t500),
        "ChromaTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                                 timestep=thalf, img_ids=torch.zeros(16, 3),
                                                 txt_ids=torch.zeros(5, 3)),
        "Lumina2Transformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), timestep=thalf,
                                                  encoder_hidden_states=r(1, 6, 16),
                                                  encoder_attention_mask=torch.ones(1, 6, dtype=torch.bool)),
        "SkyReelsV2Transformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                     encoder_hidden_states=r(1, 6, 32)),
        "AllegroTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), encoder_hidden_states=r(1, 6, 8),
                                                  timestep=t500),
        "DiTTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), timestep=t500,
                                              class_labels=torch.tensor([3])),
        "LongCatImageTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                                       timestep=thalf, img_ids=torch.zeros(16, 3),
                                                       txt_ids=torch.zeros(5, 3)),
        "OvisImageTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                                    timestep=thalf, img_ids=torch.zeros(16, 3),
                                                    txt_ids=torch.zeros(5, 3)),
        "ChronoEditTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                     encoder_hidden_states=r(1, 6, 32)),
        "CogView4Transformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                   timestep=t500, original_size=torch.tensor([[8.0, 8.0]]),
                                                   target_size=torch.tensor([[8.0, 8.0]]),
                                                   crop_coords=torch.tensor([[0.0, 0.0]])),
        "StableAudioDiTModel": lambda: dict(hidden_states=r(1, 4, 16), timestep=t500,
                                            encoder_hidden_states=r(1, 6, 16), global_hidden_states=r(1, 1, 16)),
        "PriorTransformer": lambda: dict(hidden_states=r(1, 16), timestep=t500, proj_embedding=r(1, 16),
                                         encoder_hidden_states=r(1, 4, 16)),
        "ConsisIDTransformer3DModel": lambda: dict(hidden_states=r(1, 2, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                   timestep=t500),
        "Flux3Transformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                                timestep=thalf, img_ids=torch.zeros(16, 4), txt_ids=torch.zeros(5, 4)),
        "BriaTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                               timestep=thalf, img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(5, 3)),
        "CogView3PlusTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                                       timestep=t500, original_size=torch.tensor([[8.0, 8.0]]),
                                                       target_size=torch.tensor([[8.0, 8.0]]),
                                                       crop_coords=torch.tensor([[0.0, 0.0]])),
        "LatteTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                encoder_hidden_states=r(1, 6, 8)),
        "JoyImageEditTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                       encoder_hidden_states=r(1, 6, 16)),
        "T5FilmDecoder": lambda: dict(encodings_and_masks=[(r(1, 6, 16), torch.ones(1, 6, dtype=torch.bool))],
                                      decoder_input_tokens=r(1, 12, 8), decoder_noise_time=thalf),
        "Transformer2DModel": lambda: dict(hidden_states=r(1, 8, 4, 4), encoder_hidden_states=r(1, 6, 16)),
        "TransformerTemporalModel": lambda: dict(hidden_states=r(2, 8, 4, 4), num_frames=2),
        "PRXTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), timestep=thalf,
                                              encoder_hidden_states=r(1, 6, 16)),
        "MotifVideoTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                     encoder_hidden_states=r(1, 6, 16),
                                                     encoder_attention_mask=torch.ones(1, 6)),
        "HunyuanDiT2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), timestep=t500, encoder_hidden_states=r(1, 6, 16),
                                          text_embedding_mask=torch.ones(1, 6), encoder_hidden_states_t5=r(1, 6, 16),
                                          text_embedding_mask_t5=torch.ones(1, 6)),
        "LongCatAudioDiTTransformer": lambda: dict(hidden_states=r(1, 10, 8), encoder_hidden_states=r(1, 6, 16),
                                                   encoder_attention_mask=torch.ones(1, 6, dtype=torch.bool),
                                                   timestep=thalf),
        "AceStepTransformer1DModel": lambda: dict(hidden_states=r(1, 8, 4), timestep=thalf, timestep_r=thalf,
                                                  encoder_hidden_states=r(1, 6, 16), context_latents=r(1, 8, 4)),
        "StableAudio3DiTModel": lambda: dict(hidden_states=r(1, 8, 12), timestep=thalf,
                                             encoder_hidden_states=r(1, 6, 16), global_hidden_states=r(1, 16)),
        "ErnieImageTransformer2DModel": lambda: dict(hidden_states=r(1, 4, 4, 4), timestep=thalf,
                                                     text_bth=r(1, 6, 16), text_lens=torch.tensor([6])),
        "MiniMaxMusic3RVQDepthDecoder": lambda: dict(inputs_embeds=r(1, 4, 32)),
        "NucleusMoEImageTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), img_shapes=[(1, 4, 4)],
                                                          encoder_hidden_states=r(1, 6, 16),
                                                          encoder_hidden_states_mask=torch.ones(1, 6), timestep=thalf),
        "BriaFiboTransformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 5, 32),
                                                   text_encoder_layers=[r(1, 5, 16), r(1, 5, 16)], timestep=thalf,
                                                   img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(5, 3)),
        "MiniMaxMusic3Transformer1DModel": lambda: dict(hidden_states=r(1, 8, 12), timestep=thalf,
                                                        encoder_hidden_states=r(1, 12, 16)),
        "Kandinsky5Transformer3DModel": lambda: dict(
            hidden_states=r(1, 2, 8, 8, 4), encoder_hidden_states=r(1, 6, 16), timestep=t500,
            pooled_projections=r(1, 8), visual_rope_pos=(torch.arange(2), torch.arange(4), torch.arange(4)),
            text_rope_pos=torch.arange(6)),
        "HeliosTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                 encoder_hidden_states=r(1, 6, 32)),
        "Krea2Transformer2DModel": lambda: dict(hidden_states=r(1, 16, 16), encoder_hidden_states=r(1, 6, 2, 16),
                                                timestep=thalf, position_ids=_positions(6, 4, 4)),
        "GlmImageTransformer2DModel": lambda: dict(
            hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
            prior_token_id=torch.zeros(1, 16, dtype=torch.long), prior_token_drop=torch.zeros(1, dtype=torch.bool),
            timestep=t500, target_size=torch.tensor([[8.0, 8.0]]), crop_coords=torch.tensor([[0.0, 0.0]])),
        "JoyImageEditPlusTransformer3DModel": lambda: dict(
            hidden_states=r(1, 16, 4, 1, 2, 2), timestep=t500, encoder_hidden_states=r(1, 6, 16),
            encoder_hidden_states_mask=torch.ones(1, 6), shape_list=[[(1, 4, 4)]]),
    }[class_name]()


def _positions(text: int, height: int, width: int) -> torch.Tensor:
    """(t, h, w) rotary coordinates: zeros for the text tokens, the latent grid for the image tokens."""
    grid = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(float(height)), torch.arange(float(width)),
                                      indexing="ij"), -1).reshape(-1, 3)
    return torch.cat([torch.zeros(text, 3), grid]).long()


# Classes here that need an explicit rule: DiT reuses a block's submodule outside the block (see diffusers.toml).
EXPLICIT = {"DiTTransformer2DModel", "T5FilmDecoder"}  # T5FilmDecoder: its blocks sit in 'decoders'


CONFIGS: dict[str, dict] = {
    "PixArtTransformer2DModel": dict(sample_size=8, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                                     in_channels=4, out_channels=8, cross_attention_dim=16, caption_channels=8,
                                     patch_size=2, use_additional_conditions=False, norm_num_groups=4),
    "CogVideoXTransformer3DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                        num_layers=2, text_embed_dim=16, time_embed_dim=8, sample_width=8,
                                        sample_height=8, sample_frames=5, patch_size=2, max_text_seq_length=6),
    "LTXVideoTransformer3DModel": dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=8,
                                       cross_attention_dim=16, num_layers=2, caption_channels=8),
    "MochiTransformer3DModel": dict(patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                                    pooled_projection_dim=8, in_channels=4, text_embed_dim=16, time_embed_dim=8),
    "AuraFlowTransformer2DModel": dict(sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1,
                                       num_single_dit_layers=1, attention_head_dim=8, num_attention_heads=2,
                                       joint_attention_dim=16, caption_projection_dim=16, out_channels=4,
                                       pos_embed_max_size=64),
    "ChromaTransformer2DModel": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                     attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                     axes_dims_rope=(4, 6, 6), approximator_num_channels=8,
                                     approximator_hidden_dim=16, approximator_layers=1),
    "Lumina2Transformer2DModel": dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=32, num_layers=2,
                                      num_refiner_layers=1, num_attention_heads=2, num_kv_heads=2, cap_feat_dim=16,
                                      axes_dim_rope=(4, 6, 6), axes_lens=(32, 32, 32)),
    "SkyReelsV2Transformer3DModel": dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12,
                                         in_channels=4, out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64,
                                         num_layers=2, rope_max_seq_len=32),
    "AllegroTransformer3DModel": dict(patch_size=2, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
                                      in_channels=4, out_channels=4, num_layers=2, cross_attention_dim=16,
                                      caption_channels=8, sample_height=8, sample_width=8, sample_frames=2),
    "DiTTransformer2DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                  num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=10,
                                  norm_num_groups=4),
    "LongCatImageTransformer2DModel": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                           attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                           pooled_projection_dim=32, axes_dims_rope=(4, 6, 6)),
    "OvisImageTransformer2DModel": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                        axes_dims_rope=(4, 6, 6)),
    "ChronoEditTransformer3DModel": dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12,
                                         in_channels=4, out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64,
                                         num_layers=2, rope_max_seq_len=32),
    "CogView4Transformer2DModel": dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                                       num_attention_heads=2, out_channels=4, text_embed_dim=16, time_embed_dim=8,
                                       condition_dim=4, pos_embed_max_size=16, sample_size=8, rope_axes_dim=(4, 4)),
    "StableAudioDiTModel": dict(sample_size=16, in_channels=4, num_layers=2, attention_head_dim=8,
                                num_attention_heads=2, num_key_value_attention_heads=1, out_channels=4,
                                cross_attention_dim=16, time_proj_dim=16, global_states_input_dim=16,
                                cross_attention_input_dim=16),
    "PriorTransformer": dict(num_attention_heads=2, attention_head_dim=8, num_layers=2, embedding_dim=16,
                             num_embeddings=4, additional_embeddings=4),
    "ConsisIDTransformer3DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                       num_layers=2, text_embed_dim=16, time_embed_dim=8, sample_width=8,
                                       sample_height=8, sample_frames=5, patch_size=2, max_text_seq_length=6,
                                       is_train_face=False),
    "Flux3Transformer2DModel": dict(in_channels=16, cond_in_channels=16, num_layers=1, num_single_layers=1,
                                    attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                    timestep_channels=32, axes_dims_rope=(4, 4, 4, 4)),
    "BriaTransformer2DModel": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                   attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                   axes_dims_rope=[4, 6, 6]),
    "CogView3PlusTransformer2DModel": dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                                           num_attention_heads=2, out_channels=4, text_embed_dim=16,
                                           time_embed_dim=8, condition_dim=4, pos_embed_max_size=16, sample_size=8),
    "LatteTransformer3DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                    num_layers=2, cross_attention_dim=16, sample_size=8, patch_size=2,
                                    num_embeds_ada_norm=1000, norm_type="ada_norm_single", caption_channels=8,
                                    video_length=2),
    "JoyImageEditTransformer3DModel": dict(patch_size=[1, 2, 2], in_channels=4, out_channels=4, hidden_size=32,
                                           num_attention_heads=2, text_dim=16, num_layers=2, rope_dim_list=[4, 6, 6]),
    "T5FilmDecoder": dict(input_dims=8, targets_length=12, d_model=16, num_layers=2, num_heads=2, d_kv=8, d_ff=32,
                          dropout_rate=0.0),
    "Transformer2DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, num_layers=2,
                               cross_attention_dim=16, norm_num_groups=4, norm_type="layer_norm"),
    "TransformerTemporalModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, num_layers=2,
                                     norm_num_groups=4),
    "PRXTransformer2DModel": dict(in_channels=4, patch_size=2, context_in_dim=16, hidden_size=32, num_heads=2,
                                  depth=2, axes_dim=[8, 8]),
    "MotifVideoTransformer3DModel": dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16,
                                         num_layers=1, num_single_layers=1, patch_size=2, text_embed_dim=16,
                                         rope_axes_dim=(4, 6, 6)),
    "HunyuanDiT2DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, patch_size=2, sample_size=8,
                              hidden_size=16, num_layers=2, cross_attention_dim=16, cross_attention_dim_t5=16,
                              pooled_projection_dim=16, text_len=6, text_len_t5=6,
                              use_style_cond_and_image_meta_size=False),
    "LongCatAudioDiTTransformer": dict(dit_dim=32, dit_depth=2, dit_heads=2, dit_text_dim=16, latent_dim=8),
    "AceStepTransformer1DModel": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=1, head_dim=16, in_channels=8, audio_acoustic_hidden_dim=4,
                                      patch_size=2, sliding_window=8, encoder_hidden_size=16),
    "StableAudio3DiTModel": dict(io_channels=8, embed_dim=32, depth=2, num_heads=2, cond_token_dim=16,
                                 global_cond_dim=16, local_add_cond_dim=4, timestep_features_dim=16,
                                 num_memory_tokens=2),
    "ErnieImageTransformer2DModel": dict(hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=64,
                                         in_channels=4, out_channels=4, text_in_dim=16, rope_axes_dim=(4, 6, 6)),
    "MiniMaxMusic3RVQDepthDecoder": dict(hidden_size=32, num_layers=2, num_attention_heads=2, intermediate_size=64,
                                         audio_vocab_size=16, num_codebooks=2, max_position_embeddings=8),
    "NucleusMoEImageTransformer2DModel": dict(patch_size=2, in_channels=16, num_layers=2, attention_head_dim=16,
                                              num_attention_heads=2, joint_attention_dim=16, axes_dims_rope=(8, 4, 4),
                                              moe_enabled=False),
    "BriaFiboTransformer2DModel": dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                       attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                       axes_dims_rope=[4, 6, 6], text_encoder_dim=16),
    "MiniMaxMusic3Transformer1DModel": dict(in_channels=8, condition_dim=16, num_layers=2, num_attention_heads=2,
                                            attention_head_dim=8, ff_inner_dim=32, rotary_dim=4,
                                            fourier_embedding_dim=16),
    "Kandinsky5Transformer3DModel": dict(in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16,
                                         out_visual_dim=4, patch_size=(1, 2, 2), model_dim=32, ff_dim=64,
                                         num_text_blocks=1, num_visual_blocks=2, axes_dims=(4, 6, 6)),
    "HeliosTransformer3DModel": dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12,
                                     in_channels=4, out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2,
                                     rope_dim=(4, 4, 4)),
    "Krea2Transformer2DModel": dict(in_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2,
                                    num_key_value_heads=1, intermediate_size=64, timestep_embed_dim=16,
                                    text_hidden_dim=16, num_text_layers=2, text_num_attention_heads=2,
                                    text_num_key_value_heads=2, text_intermediate_size=32, num_layerwise_text_blocks=1,
                                    num_refiner_text_blocks=1, axes_dims_rope=(4, 6, 6)),
    "GlmImageTransformer2DModel": dict(patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                                       num_attention_heads=2, text_embed_dim=16, time_embed_dim=8, condition_dim=4,
                                       prior_vq_quantizer_codebook_size=8),
    "JoyImageEditPlusTransformer3DModel": dict(patch_size=[1, 2, 2], in_channels=4, out_channels=4, hidden_size=32,
                                               num_attention_heads=2, text_dim=16, num_layers=2,
                                               rope_dim_list=[4, 6, 6]),
}


def build(class_name: str) -> torch.nn.Module:
    from diffusers.models import transformers

    cls = getattr(diffusers, class_name, None) or getattr(transformers, class_name)
    return cls.from_config(CONFIGS[class_name]).eval()


def output(model, class_name: str) -> torch.Tensor:
    with torch.no_grad():
        if class_name in ("T5FilmDecoder", "MiniMaxMusic3RVQDepthDecoder"):  # return a tensor; no return_dict
            return model(**_inputs(class_name))
        return model(**_inputs(class_name), return_dict=False)[0]
