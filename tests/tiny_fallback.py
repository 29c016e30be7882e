"""Tiny instances of every other diffusers transformer, called through their own forward (no runner inputs).

Most have no explicit rule: the fallbacks plan them. Each entry: a small config, and the forward's keyword
arguments (seeded), written from the model's forward signature (pipeline-specific inputs such as packed
layouts, caches and camera conditions included).
"""

from __future__ import annotations

import diffusers
import torch
from tiny_models import randomize_zeros


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
                                                   img_ids=r(16, 3), txt_ids=r(5, 3)),
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
        "DreamLiteTransformer2DModel": lambda: dict(hidden_states=r(1, 8, 4, 4), encoder_hidden_states=r(1, 6, 16),
                                                    timestep=t500),
        "BriaFibo2Transformer2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), timestep=thalf,
                                                    encoder_hidden_states=r(1, 2, 6, 16)),
        "AnyFlowTransformer3DModel": lambda: dict(hidden_states=r(1, 2, 4, 8, 8), timestep=torch.tensor([[500.0] * 2]),
                                                  r_timestep=torch.tensor([[400.0] * 2]),
                                                  encoder_hidden_states=r(1, 6, 32)),
        "AnyFlowFARTransformer3DModel": lambda: dict(hidden_states=r(1, 2, 4, 8, 8),
                                                     timestep=torch.tensor([[500.0] * 2]),
                                                     r_timestep=torch.tensor([[400.0] * 2]),
                                                     encoder_hidden_states=r(1, 6, 32), chunk_partition=[1, 1]),
        "HiDreamImageTransformer2DModel": lambda: dict(
            hidden_states=r(1, 4, 8, 8), timesteps=torch.tensor([500]), encoder_hidden_states_t5=r(1, 6, 8),
            encoder_hidden_states_llama3=r(2, 1, 6, 4), pooled_embeds=r(1, 8)),  # llama3: (layer, batch, seq, dim)
        "OmniGenTransformer2DModel": lambda: dict(
            hidden_states=r(1, 4, 8, 8), timestep=thalf, input_ids=torch.randint(0, 10, (1, 20), generator=g),
            input_img_latents=[r(1, 4, 8, 8)], input_image_sizes={0: [[0, 16]]},  # 16 image tokens in the text
            attention_mask=torch.ones(1, 37, 37), position_ids=torch.arange(37)[None]),  # 20 text + time + 16
        "EasyAnimateTransformer3DModel": lambda: dict(hidden_states=r(1, 4, 2, 8, 8), timestep=t500,
                                                      encoder_hidden_states=r(1, 6, 16)),
        "LuminaNextDiT2DModel": lambda: dict(hidden_states=r(1, 4, 8, 8), encoder_hidden_states=r(1, 6, 16),
                                             timestep=thalf, encoder_mask=torch.ones(1, 6),
                                             image_rotary_emb=r(16, 16, 4), cross_attention_kwargs={}),
        "HunyuanVideoFramepackTransformer3DModel": lambda: dict(
            hidden_states=r(1, 4, 3, 4, 4), timestep=t500, encoder_hidden_states=r(1, 6, 16),
            pooled_projections=r(1, 8), encoder_attention_mask=torch.ones(1, 6), guidance=t500,
            image_embeds=r(1, 6, 16), indices_latents=torch.arange(3.0), latents_clean=r(1, 4, 2, 4, 4),
            indices_latents_clean=torch.arange(2.0), latents_history_2x=r(1, 4, 2, 4, 4),
            indices_latents_history_2x=torch.arange(2.0), latents_history_4x=r(1, 4, 8, 4, 4),
            indices_latents_history_4x=torch.arange(8.0)),
        "LTX2VideoTransformer3DModel": lambda: dict(
            hidden_states=r(1, 32, 4), audio_hidden_states=r(1, 5, 4), encoder_hidden_states=r(1, 6, 16),
            audio_encoder_hidden_states=r(1, 6, 16), timestep=t500, encoder_attention_mask=torch.ones(1, 6).bool(),
            num_frames=2, height=4, width=4, audio_num_frames=5, fps=25.0),
        "QwenImage21Transformer2DModel": lambda: dict(
            hidden_states=r(1, 4, 4), encoder_hidden_states=r(1, 4, 8),
            encoder_hidden_states_mask=torch.ones(1, 4, dtype=torch.long), timestep=torch.tensor([1.0]),
            img_shapes=[[(1, 2, 2)]], img_mask=torch.tensor([[False] * 4 + [True]])),  # one slot per 2x2 latents
        "Kandinsky6Transformer3DModel": lambda: dict(
            hidden_states=r(1, 2, 4, 4, 9), encoder_hidden_states=r(1, 6, 8), pooled_projections=r(1, 8),
            timestep=t500, audio_hidden_states=r(1, 5, 4)),  # 9 = noisy + condition latents + mask
        "Kandinsky6SRTransformer3DModel": lambda: dict(hidden_states=r(1, 2, 16, 16, 9), timestep=t500),
        "MiniMaxH3Transformer3DModel": lambda: dict(hidden_states=r(1, 8, 16), audio_hidden_states=r(1, 6, 6),
                                                    encoder_hidden_states=r(1, 4, 8), **_packed_h3(4, 6, 8)),
        "SanaWMTransformer3DModel": lambda: dict(
            hidden_states=r(1, 4, 4, 8, 8), timestep=torch.full((1, 1, 4), 500.0), encoder_hidden_states=r(1, 1, 6, 8),
            encoder_attention_mask=torch.ones(1, 6, dtype=torch.long), camera_conditions=_camera(4, 8, 8),
            chunk_plucker=r(1, 8, 4, 8, 8)),
        "SanaWMLTX2RefinerTransformer3DModel": lambda: dict(
            hidden_states=r(1, 32, 4), encoder_hidden_states=r(1, 6, 16), timestep=torch.full((1, 32), 500.0),
            video_rotary_emb=_refiner_rope(2, 4, 4), encoder_attention_mask=torch.ones(1, 6)),
        "WanAnimateTransformer3DModel": lambda: dict(
            hidden_states=r(1, 12, 21, 16, 16), timestep=t500, encoder_hidden_states=r(1, 6, 16),
            encoder_hidden_states_image=r(1, 6, 16), pose_hidden_states=r(1, 4, 20, 16, 16),
            face_pixel_values=r(1, 3, 77, 16, 16)),  # the shapes the model's segment arithmetic needs
        "WanAnimate2Transformer3DModel": lambda: dict(
            hidden_states=[r(16, 2, 4, 4)], timestep=torch.tensor([1.0]), encoder_hidden_states=[r(8, 32)],
            condition_latents=[r(20, 2, 4, 4)], encoder_hidden_states_image=r(1, 4, 1280),
            kv_cache=_wan_animate2_cache(2), kv_cache_mode="extract", seq_len=8,
            offset_grid_sizes=torch.tensor([[2, 2, 2]])),  # the reference pass, which fills a fresh cache
        "Ideogram4Transformer2DModel": lambda: _ideogram4(r, text=4, image=(2, 2)),
        "Cosmos3OmniTransformer": lambda: dict(
            input_ids=torch.tensor([1, 2]), text_indexes=torch.tensor([0, 1]),
            position_ids=torch.zeros(3, 6, dtype=torch.long), und_len=2, sequence_length=6,
            vision_tokens=[r(1, 2, 1, 2, 2)], vision_token_shapes=[(1, 2, 2)],
            vision_sequence_indexes=torch.arange(2, 6), vision_mse_loss_indexes=torch.arange(2, 6),
            vision_timesteps=torch.full((4,), 0.5), vision_noisy_frame_indexes=[torch.tensor([0])]),
        "RFD4ProteinaTransformer": lambda: dict(
            bb_ca=r(1, 6, 3), local_latents=r(1, 6, 4), bb_ca_time=thalf, local_latents_time=torch.tensor([0.3]),
            padding_mask=torch.ones(1, 6, dtype=torch.bool),
            conditioning={"is_in_context_conditioning": torch.zeros(1, 6, dtype=torch.bool),
                          "supports_local_latent": torch.ones(1, 6, dtype=torch.bool)}),
        "DualTransformer2DModel": lambda: dict(hidden_states=r(1, 8, 4, 4), encoder_hidden_states=r(1, 6, 16)),
    }[class_name]()


def _packed_h3(text: int, audio: int, video: int) -> dict:
    """MiniMax-H3's packed layout: text rows, then audio rows, then video rows, each tagged with its modality
    (0 video, 1 text, 2 audio) and its timestep (audio steps its own schedule)."""
    length = text + audio + video
    text_rows, audio_rows = torch.arange(text), torch.arange(text, text + audio)
    video_rows = torch.arange(text + audio, length)
    tags = torch.zeros(length, dtype=torch.long)
    tags[text_rows], tags[audio_rows] = 1, 2
    timestep_indices = torch.zeros(length, dtype=torch.long)
    timestep_indices[audio_rows] = 1
    positions = torch.zeros(length, 3)
    positions[:, 0] = torch.arange(float(length))
    positions[video_rows, 1] = (torch.arange(video) % 4).float()
    positions[video_rows, 2] = (torch.arange(video) % 2).float()
    return dict(timestep=torch.tensor([0.7, 0.3]), timestep_indices=timestep_indices, token_tags=tags,
                position_ids=positions, video_indices=video_rows, audio_indices=audio_rows, text_indices=text_rows)


def _camera(frames: int, height: int, width: int) -> torch.Tensor:
    """SANA-WM camera conditions (B, F, 20): a flat 4x4 camera-to-world moving forward, then fx, fy, cx, cy."""
    c2w = torch.eye(4).repeat(1, frames, 1, 1)
    c2w[..., 2, 3] = torch.arange(float(frames)) * 0.1
    intrinsics = torch.tensor([float(width), float(height), width / 2, height / 2]).expand(1, frames, 4)
    return torch.cat([c2w.flatten(start_dim=-2), intrinsics], dim=-1)


def _refiner_rope(frames: int, height: int, width: int):
    """The video rotary embedding the SANA-WM refiner takes from its caller (2 heads of 8)."""
    from diffusers.models.transformers.transformer_sana_wm_refiner import SanaWMLTX2AudioVideoRotaryPosEmbed

    rope = SanaWMLTX2AudioVideoRotaryPosEmbed(dim=16, patch_size=1, patch_size_t=1, base_num_frames=20,
                                              base_height=2048, base_width=2048, scale_factors=(8, 32, 32),
                                              modality="video", double_precision=False, num_attention_heads=2)
    cpu = torch.device("cpu")
    return rope(rope.prepare_video_coords(1, frames, height, width, device=cpu, fps=24.0), device=cpu)


def _wan_animate2_cache(layers: int):
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    return WanAnimate2KVCache(layers)


def _ideogram4(r, text: int, image: tuple[int, int]) -> dict:
    """One packed Ideogram 4 sequence: text tokens (LLM features), then the image grid (latents)."""
    from diffusers.models.transformers.transformer_ideogram4 import (
        IMAGE_POSITION_OFFSET,
        LLM_TOKEN_INDICATOR,
        OUTPUT_IMAGE_INDICATOR,
    )

    rows, cols = image
    length = text + rows * cols
    hidden, features = torch.zeros(1, length, 16), torch.zeros(1, length, 24)
    hidden[:, text:], features[:, :text] = r(1, rows * cols, 16), r(1, text, 24)
    positions = torch.zeros(1, length, 3, dtype=torch.long)
    positions[:, :text] = torch.arange(text)[:, None]
    positions[:, text:, 0] = IMAGE_POSITION_OFFSET
    positions[:, text:, 1] = torch.arange(rows).repeat_interleave(cols) + IMAGE_POSITION_OFFSET
    positions[:, text:, 2] = torch.arange(cols).repeat(rows) + IMAGE_POSITION_OFFSET
    indicator = torch.full((1, length), OUTPUT_IMAGE_INDICATOR, dtype=torch.long)
    indicator[:, :text] = LLM_TOKEN_INDICATOR
    return dict(hidden_states=hidden, encoder_hidden_states=features, timestep=torch.tensor([0.5]),
                position_ids=positions, segment_ids=torch.ones(1, length, dtype=torch.long), indicator=indicator)


def _positions(text: int, height: int, width: int) -> torch.Tensor:
    """(t, h, w) rotary coordinates: zeros for the text tokens, the latent grid for the image tokens."""
    grid = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(float(height)), torch.arange(float(width)),
                                      indexing="ij"), -1).reshape(-1, 3)
    return torch.cat([torch.zeros(text, 3), grid]).long()


# Classes here that need an explicit rule: DiT reuses a block's submodule outside the block (see diffusers.toml).
# T5FilmDecoder: its blocks sit in 'decoders'; the others have explicit entries for their sequence-parallel plans
# (or, the last four, for the reason no plan can split them)
EXPLICIT = {"DiTTransformer2DModel", "T5FilmDecoder", "BriaTransformer2DModel", "LongCatImageTransformer2DModel",
            "OvisImageTransformer2DModel", "SkyReelsV2Transformer3DModel", "Flux3Transformer2DModel",
            "BriaFiboTransformer2DModel", "Ideogram4Transformer2DModel", "PRXTransformer2DModel",
            "Krea2Transformer2DModel", "LongCatAudioDiTTransformer", "WanAnimateTransformer3DModel",
            "AnyFlowTransformer3DModel", "ErnieImageTransformer2DModel", "BriaFibo2Transformer2DModel",
            "Kandinsky5Transformer3DModel", "JoyImageEditTransformer3DModel", "ChromaTransformer2DModel",
            "StableAudio3DiTModel", "MiniMaxMusic3Transformer1DModel", "JoyImageEditPlusTransformer3DModel",
            "Kandinsky6Transformer3DModel", "SanaWMLTX2RefinerTransformer3DModel",
            "GlmImageTransformer2DModel", "MotifVideoTransformer3DModel", "QwenImage21Transformer2DModel",
            "NucleusMoEImageTransformer2DModel", "RFD4ProteinaTransformer", "SanaWMTransformer3DModel",
            "HeliosTransformer3DModel", "LTX2VideoTransformer3DModel", "AceStepTransformer1DModel",
            "Cosmos3OmniTransformer", "MiniMaxMusic3RVQDepthDecoder", "HunyuanVideoFramepackTransformer3DModel",
            "PixArtTransformer2DModel", "CogVideoXTransformer3DModel", "AuraFlowTransformer2DModel",
            "CogView4Transformer2DModel", "Lumina2Transformer2DModel", "ConsisIDTransformer3DModel",
            "CogView3PlusTransformer2DModel", "HunyuanDiT2DModel", "StableAudioDiTModel",
            "Transformer2DModel", "TransformerTemporalModel", "PriorTransformer", "EasyAnimateTransformer3DModel",
            "LuminaNextDiT2DModel", "OmniGenTransformer2DModel", "DreamLiteTransformer2DModel",
            "AllegroTransformer3DModel"}


# Classes built on Wan's blocks (SkyReels V2, ChronoEdit, AnyFlow) and on LTX-2's share one tiny config each.
_WAN_STYLE = dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
                  text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, rope_max_seq_len=32)
_LTX2_STYLE = dict(in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
                   attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
                   audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2,
                   qk_norm="rms_norm_across_heads", caption_channels=16, rope_double_precision=False)

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
    "SkyReelsV2Transformer3DModel": _WAN_STYLE,
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
    "ChronoEditTransformer3DModel": _WAN_STYLE,
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
    # with a decoder layer (the image tokens as its context) and text cross-attention in both kinds of block
    "MotifVideoTransformer3DModel": dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16,
                                         num_layers=1, num_single_layers=2, num_decoder_layers=1, patch_size=2,
                                         text_embed_dim=16, rope_axes_dim=(4, 6, 6),
                                         enable_text_cross_attention_dual=True,
                                         enable_text_cross_attention_single=True),
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
                                              # a dense block, then an expert-choice MoE block; grouped K/V heads
                                              dense_moe_strategy="leave_first_block_dense", num_experts=4,
                                              moe_intermediate_dim=16, capacity_factors=1.0, num_key_value_heads=1),
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
    "DreamLiteTransformer2DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, out_channels=8,
                                        num_layers=2, norm_num_groups=4, cross_attention_dim=16),
    "BriaFibo2Transformer2DModel": dict(in_channels=4, patch_size=2, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2,
                                        cap_feat_dim=16, injection_layer_ids=(1,), perceiver_num_layers=1,
                                        min_num_gist_tokens=4, max_num_gist_tokens=8, gist_step=4,
                                        gist_min_text_len=4, gist_max_text_len=8, axes_dims=(4, 6, 6),
                                        axes_lens=(64, 32, 32)),
    "AnyFlowTransformer3DModel": _WAN_STYLE,
    "AnyFlowFARTransformer3DModel": _WAN_STYLE,
    "HiDreamImageTransformer2DModel": dict(patch_size=2, in_channels=4, out_channels=4, num_layers=1,
                                           num_single_layers=1,
                                           attention_head_dim=8, num_attention_heads=2, caption_channels=[8, 4],
                                           text_emb_dim=8, num_routed_experts=2, num_activated_experts=2,
                                           axes_dims_rope=(4, 2, 2), max_resolution=(8, 8), llama_layers=(0, 1),
                                           force_inference_output=True),
    "OmniGenTransformer2DModel": dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=4,
                                      intermediate_size=32, num_layers=2, pad_token_id=0, vocab_size=100,
                                      in_channels=4, time_step_dim=4,
                                      rope_scaling={"long_factor": [1, 2], "short_factor": [1, 2]}),
    "EasyAnimateTransformer3DModel": dict(attention_head_dim=16, num_attention_heads=2, in_channels=4, mmdit_layers=2,
                                          num_layers=2, out_channels=4, patch_size=2, sample_height=60, sample_width=90,
                                          text_embed_dim=16, time_embed_dim=8, time_position_encoding_type="3d_rope",
                                          timestep_activation_fn="silu"),
    "LuminaNextDiT2DModel": dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2,
                                 num_attention_heads=3, num_kv_heads=1, multiple_of=16, learn_sigma=False, qk_norm=True,
                                 cross_attention_dim=16),
    "HunyuanVideoFramepackTransformer3DModel": dict(in_channels=4, out_channels=4, num_attention_heads=2,
                                                    attention_head_dim=10, num_layers=1, num_single_layers=1,
                                                    num_refiner_layers=1, patch_size=2, patch_size_t=1,
                                                    guidance_embeds=True, text_embed_dim=16, pooled_projection_dim=8,
                                                    rope_axes_dim=(2, 4, 4), image_condition_type=None,
                                                    has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True),
    "LTX2VideoTransformer3DModel": _LTX2_STYLE,
    "QwenImage21Transformer2DModel": dict(patch_size=1, in_channels=4, out_channels=4, num_layers=2,
                                          attention_head_dim=16, num_attention_heads=2, context_in_dim=8, mlp_ratio=2,
                                          axes_dims_rope=(4, 6, 6)),
    "Kandinsky6Transformer3DModel": dict(in_visual_dim=4, out_visual_dim=4, in_text_dim=8, in_text_dim2=8, time_dim=16,
                                         patch_size=(1, 2, 2), model_dim=48, ff_dim=64, num_text_blocks=1,
                                         num_visual_blocks=2, axes_dims=(4, 4, 4), visual_cond=True, in_audio_dim=4,
                                         out_audio_dim=4),
    "Kandinsky6SRTransformer3DModel": dict(in_visual_dim=4, out_visual_dim=8, time_dim=16, patch_size=(1, 2, 2),
                                           model_dim=24, ff_dim=32, num_visual_blocks=2, axes_dims=(4, 4, 4)),
    "MiniMaxH3Transformer3DModel": dict(num_attention_heads=2, attention_head_dim=16, hidden_size=24, num_layers=2,
                                        num_refiner_layers=2, ffn_dim=32, in_channels=4, audio_in_channels=6,
                                        patch_size=(1, 2, 2), text_dim=8, freq_dim=8, time_embed_hidden_dim=24,
                                        time_embed_dim=16, rope_freq_dim=2),
    "SanaWMTransformer3DModel": dict(in_channels=4, num_layers=2, hidden_size=32, num_attention_heads=2,
                                     patch_size=(1, 1, 1), softmax_every_n=2, linear_head_dim=16, t_kernel_size=3,
                                     conv_kernel_size=4, caption_channels=8, model_max_length=6, mlp_ratio=2.0,
                                     chunk_plucker_channels=8, chunk_plucker_post_attn_blocks=2),
    "SanaWMLTX2RefinerTransformer3DModel": _LTX2_STYLE,  # built on LTX-2's blocks
    "WanAnimateTransformer3DModel": dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                         in_channels=12, latent_channels=4, out_channels=4, text_dim=16, freq_dim=256,
                                         ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                         qk_norm="rms_norm_across_heads", image_dim=16, rope_max_seq_len=32,
                                         motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16},
                                         motion_encoder_size=16, motion_style_dim=8, motion_dim=4,
                                         motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
                                         inject_face_latents_blocks=2),
    "WanAnimate2Transformer3DModel": dict(patch_size=(1, 2, 2), text_len=16, in_dim=36, dim=32, ffn_dim=64, freq_dim=64,
                                          text_dim=32, out_dim=16, num_heads=2, num_layers=2, cross_attn_norm=True,
                                          use_img_emb=True),
    "Ideogram4Transformer2DModel": dict(in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
                                        intermediate_size=32, adaln_dim=16, llm_features_dim=24, rope_theta=10000,
                                        mrope_section=(2, 1, 1)),
    "Cosmos3OmniTransformer": dict(head_dim=6, hidden_act="relu2", hidden_size=12, intermediate_size=24,
                                   latent_channel=2, latent_patch_size=1, num_attention_heads=2, num_hidden_layers=2,
                                   num_key_value_heads=1, patch_latent_dim=2, qk_norm_for_text=False,
                                   rope_axes_dim=[1, 1, 1], rope_theta=1e8, vocab_size=32),
    "RFD4ProteinaTransformer": dict(nlayers=2, token_dim=32, nheads=2, dim_cond=16, pair_repr_dim=16, latent_dim=4,
                                    token_type_emb_dim=4, cath_emb_dim=4, t_emb_dim=16, seq_sep_dim=8,
                                    xt_pair_dist_dim=8, feats_seq=["xt_bb_ca", "xt_local_latents"],
                                    feats_cond_seq=["time_emb_bb_ca", "time_emb_local_latents"],
                                    feats_pair_repr=["xt_bb_ca_pair_dists"], feats_pair_cond=["time_emb_bb_ca"],
                                    tri_mult_c=16, num_sequence_classes=10),
    # Not a ModelMixin: built by its constructor, saved as a bare safetensors file, loaded with model=.
    "DualTransformer2DModel": dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, num_layers=2,
                                   norm_num_groups=4, cross_attention_dim=16),
}


# Classes that are plain nn.Modules (no from_config / save_pretrained).
PLAIN = {"DualTransformer2DModel"}


def _class(class_name: str) -> type:
    from diffusers.models import transformers

    return getattr(diffusers, class_name, None) or getattr(transformers, class_name)


def build(class_name: str, **config) -> torch.nn.Module:
    """The tiny model (``config`` overriding entries of its tiny config), parameters that start all-zero drawn at
    random (tiny_models.randomize_zeros).

    Zero-initialised output layers made ERNIE-Image's and LongCat audio DiT's outputs constant, and SANA-WM's
    zero short convolutions leave a branch dead: a sharded == unsharded comparison of them would be vacuous.
    """
    if class_name in PLAIN:
        model = _class(class_name)(**CONFIGS[class_name])
        model.condition_lengths = [4, 2]  # DualTransformer2DModel splits encoder_hidden_states by these
    else:
        model = _class(class_name).from_config({**CONFIGS[class_name], **config})
    for module in model.modules():  # diffusers leaves NucleusMoE's expert weights as torch.empty: whatever memory held
        if type(module).__name__ == "SwiGLUExperts":
            g = torch.Generator().manual_seed(2)
            with torch.no_grad():
                for param in module.parameters():
                    param.copy_(torch.randn(param.shape, generator=g) * 0.1)
    return randomize_zeros(model).eval()


def save(model: torch.nn.Module, class_name: str, folder) -> None:
    if class_name in PLAIN:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(model.state_dict(), str(folder / "diffusion_pytorch_model.safetensors"))
    else:
        model.save_pretrained(folder, safe_serialization=True)


def prebuilt(class_name: str) -> torch.nn.Module | None:
    """For load_sharded(model=...): the model with parameters on meta, for classes without a config.json."""
    if class_name not in PLAIN:
        return None
    from shardrules.loader.build import parameters_on_meta

    with parameters_on_meta():
        return build(class_name)


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item)]
    return []


# Optional inputs a variant adds (the sequence-parallel proofs): Flux3's reference-image tokens, which edit pipelines
# pass and which a plan that did not split them would count once per rank in joint attention.
VARIANTS = {
    ("Flux3Transformer2DModel", "reference"): lambda: dict(
        image_cond_hidden_states=torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(5)),
        image_cond_ids=torch.rand(8, 4, generator=torch.Generator().manual_seed(6))),
    # a short prompt padded: two text tokens of six valid
    ("PRXTransformer2DModel", "padded"): lambda: dict(attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]])),
    ("NucleusMoEImageTransformer2DModel", "padded"): lambda: dict(
        encoder_hidden_states_mask=torch.tensor([[1, 1, 0, 0, 0, 0]])),
    ("Krea2Transformer2DModel", "padded"): lambda: dict(
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]]).bool()),
    # audio padded at the end (the last two frames masked), a short prompt padded
    ("LongCatAudioDiTTransformer", "padded"): lambda: dict(
        attention_mask=torch.tensor([[1] * 8 + [0] * 2]).bool(),
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]]).bool()),
    # an even number of latent frames (20), so that each rank holds whole frames for the per-frame face attention
    ("WanAnimateTransformer3DModel", "even frames"): lambda: dict(
        hidden_states=torch.randn(1, 12, 20, 16, 16, generator=torch.Generator().manual_seed(8)),
        pose_hidden_states=torch.randn(1, 4, 19, 16, 16, generator=torch.Generator().manual_seed(9)),
        face_pixel_values=torch.randn(1, 3, 73, 16, 16, generator=torch.Generator().manual_seed(10))),
    # a timestep per frame (AnyFlow's flow map), each frame's tokens modulated by their own
    ("AnyFlowTransformer3DModel", "per-frame timesteps"): lambda: dict(
        timestep=torch.tensor([[500.0, 300.0]]), r_timestep=torch.tensor([[400.0, 100.0]])),
    # a short prompt padded (two of six text tokens valid): LTX's processors repeat the mask for each head, and each
    # rank attends with half of them under Ulysses 2
    ("LTXVideoTransformer3DModel", "padded"): lambda: dict(encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]])),
    # SANA-WM's LTX-2 refiner: its processors repeat the mask per head too
    ("SanaWMLTX2RefinerTransformer3DModel", "padded"): lambda: dict(
        encoder_attention_mask=torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])),
    # six audio latents (five do not divide by 2 ranks), a timestep per audio token; short prompts padded (two and
    # three of six tokens valid)
    ("LTX2VideoTransformer3DModel", "padded"): lambda: dict(
        audio_hidden_states=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(20)), audio_num_frames=6,
        audio_timestep=torch.tensor([[500.0, 400.0, 300.0, 200.0, 100.0, 50.0]]),
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]]).bool(),
        audio_encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0, 0]]).bool()),
    # as LTX-2's image-to-video pipeline calls it: a timestep per video token (the first frame's 16 at 0) and one for
    # the audio, the padded prompt as the [B, 1, 1, L] bias its connectors give; and a video self-attention mask (the
    # IC-LoRA pipeline's) and its key-frame marker (the first frame). Built with the "split" rotary tables
    # ([B, H, T, D / 2]) and the key-frame embedding (CONFIG_VARIANTS)
    ("LTX2VideoTransformer3DModel", "image-to-video"): lambda: dict(
        audio_hidden_states=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(20)), audio_num_frames=6,
        timestep=torch.tensor([[0.0] * 16 + [500.0] * 16]), audio_timestep=torch.tensor([500.0]),
        encoder_attention_mask=torch.tensor([[[[0.0, 0.0, -10000.0, -10000.0, -10000.0, -10000.0]]]]),
        audio_encoder_attention_mask=torch.tensor([[[[0.0, 0.0, 0.0, -10000.0, -10000.0, -10000.0]]]]),
        video_self_attention_mask=torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(21)),
        video_keyframes_mask=torch.tensor([1.0] * 16 + [0.0] * 16).reshape(1, 32, 1)),
    # 35 latents: padded to 36 for the patch of 2, 18 tokens, more than the sliding-window layer's 8 on either side
    ("AceStepTransformer1DModel", "long"): lambda: dict(
        hidden_states=torch.randn(1, 35, 4, generator=torch.Generator().manual_seed(22)),
        context_latents=torch.randn(1, 35, 4, generator=torch.Generator().manual_seed(23))),
    # four text tokens (understanding, causal) and four vision patches (generation), at random 3-D positions
    ("Cosmos3OmniTransformer", "packed"): lambda: dict(
        input_ids=torch.tensor([1, 2, 3, 4]), text_indexes=torch.arange(4), und_len=4, sequence_length=8,
        position_ids=torch.randint(0, 64, (3, 8), generator=torch.Generator().manual_seed(24)),
        vision_sequence_indexes=torch.arange(4, 8), vision_mse_loss_indexes=torch.arange(4, 8)),
    # one short-history frame before the two current ones (16 + 32 tokens: each rank's half holds a different share
    # of the history, whose keys the self-attention amplifies; built with is_amplify_history: CONFIG_VARIANTS)
    ("HeliosTransformer3DModel", "amplified history"): lambda: dict(
        latents_history_short=torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(25)),
        indices_latents_history_short=torch.tensor([[0]]), indices_hidden_states=torch.tensor([[1, 2]])),
    # two samples, prompts of 1 and 6 valid tokens after 2 image tokens (forward masks [latents | condition] by a key
    # mask only for a batch; split as one tensor it would mask a valid token); three frames of 2x history: 24 packed
    # latent tokens, which 2 ranks share evenly
    ("HunyuanVideoFramepackTransformer3DModel", "padded"): lambda: _framepack_batch(),
    # CogVideoX 1.5's rotary pair (cos, sin) for the 32 video tokens, which the caller makes and passes
    ("CogVideoXTransformer3DModel", "rotary"): lambda: dict(image_rotary_emb=tuple(
        f(torch.rand(32, 8, generator=torch.Generator().manual_seed(27)) * 6) for f in (torch.cos, torch.sin))),
    # the rotary pair of ConsisID's rotary configs (cos, sin) for the 32 video tokens, which the caller makes
    ("ConsisIDTransformer3DModel", "rotary"): lambda: dict(image_rotary_emb=tuple(
        f(torch.rand(32, 8, generator=torch.Generator().manual_seed(31)) * 6) for f in (torch.cos, torch.sin))),
    # the pipeline's rotary pair (cos, sin) for the 16 image tokens; prompts padded after 2 CLIP and 3 T5 tokens
    ("HunyuanDiT2DModel", "rotary"): lambda: dict(image_rotary_emb=tuple(
        f(torch.rand(16, 8, generator=torch.Generator().manual_seed(32)) * 6) for f in (torch.cos, torch.sin)),
        text_embedding_mask=torch.tensor([[1.0] * 2 + [0.0] * 4]),
        text_embedding_mask_t5=torch.tensor([[1.0] * 3 + [0.0] * 3])),
    # 15 audio latents (16 tokens with the global one) and the pipeline's rotary table over them
    ("StableAudioDiTModel", "odd latents"): lambda: dict(
        hidden_states=torch.randn(1, 4, 15, generator=torch.Generator().manual_seed(33)),
        rotary_embedding=diffusers.models.embeddings.get_1d_rotary_pos_embed(4, 16, use_real=True,
                                                                             repeat_interleave_real=False)),
    # 19 text tokens (16 of them an input image's latents), the time token and 16 image tokens: 36, under the
    # pipeline's mask, causal over the condition and the time token, the image tokens seeing everything
    ("OmniGenTransformer2DModel", "even"): lambda: dict(
        input_ids=torch.randint(0, 10, (1, 19), generator=torch.Generator().manual_seed(34)),
        attention_mask=torch.tril(torch.ones(36, 36)).index_fill(0, torch.arange(20, 36), 1.0)[None],
        position_ids=torch.arange(36)[None]),
    # the pipeline's rotary argument, ((tables), (positions)) for the 2 x 4 x 4 video tokens; a prompt padded after 3,
    # [B, 1, L, D] as the pipeline passes it
    ("AllegroTransformer3DModel", "rotary"): lambda: dict(
        image_rotary_emb=_allegro_rotary(), encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0, 0]]),
        encoder_hidden_states=torch.randn(1, 1, 6, 8, generator=torch.Generator().manual_seed(35))),
    # the caller's rotary pair (cos, sin) for the 16 image tokens, instead of the one rope makes
    ("CogView4Transformer2DModel", "rotary"): lambda: dict(image_rotary_emb=tuple(
        f(torch.rand(16, 8, generator=torch.Generator().manual_seed(28)) * 6) for f in (torch.cos, torch.sin))),
    # two prompts of 2 and 6 valid tokens: packed [valid text | image] sequences of 18 and 22 tokens, the shorter one
    # padded and masked in the joint layers
    ("Lumina2Transformer2DModel", "padded"): lambda: dict(
        hidden_states=torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(29)),
        timestep=torch.full((2,), 0.5),
        encoder_hidden_states=torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(30)),
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0], [1] * 6]).bool()),
    # a short prompt padded: two of six text tokens valid
    ("PixArtTransformer2DModel", "padded"): lambda: dict(encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]])),
    # two of six text tokens valid (the mask ERNIE-Image builds from text_lens)
    ("ErnieImageTransformer2DModel", "padded"): lambda: dict(text_lens=torch.tensor([2])),
    # two prompts of 2 and 6 valid tokens: different gist counts, so the gist tokens are masked
    ("BriaFibo2Transformer2DModel", "padded"): lambda: dict(
        encoder_hidden_states=torch.randn(2, 2, 6, 16, generator=torch.Generator().manual_seed(11)),
        hidden_states=torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(12)),
        timestep=torch.tensor([0.5, 0.5]),
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]).bool()),
    # NABLA sparse attention's parameters (a sequence-parallel run refuses them before the model runs)
    ("Kandinsky5Transformer3DModel", "sparse"): lambda: dict(
        sparse_params={"to_fractal": False, "sta_mask": torch.ones(1, 1), "P": 0.9}),
    # Chroma's [text | image] padding mask, from which every block builds a query x key mask: two of six text
    # tokens valid; random positions, so that a misplaced rotary split shows
    ("ChromaTransformer2DModel", "padded"): lambda: dict(
        encoder_hidden_states=torch.randn(1, 6, 32, generator=torch.Generator().manual_seed(13)),
        txt_ids=torch.rand(6, 3, generator=torch.Generator().manual_seed(14)),
        img_ids=torch.rand(16, 3, generator=torch.Generator().manual_seed(15)),
        attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0] + [1] * 16]).bool()),
    # 11 frames: with the timestep token in front, 12 tokens, which 2 ranks share evenly
    ("MiniMaxMusic3Transformer1DModel", "odd frames"): lambda: dict(
        hidden_states=torch.randn(1, 8, 11, generator=torch.Generator().manual_seed(16)),
        encoder_hidden_states=torch.randn(1, 11, 16, generator=torch.Generator().manual_seed(17))),
    # a short prompt (two of six tokens) and 12 of 16 patch slots used: both masked in the [image | text] mask
    ("JoyImageEditPlusTransformer3DModel", "padded"): lambda: dict(
        encoder_hidden_states_mask=torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]), shape_list=[[(1, 3, 4)]]),
    # six audio latents (five do not divide by 2 ranks)
    ("Kandinsky6Transformer3DModel", "even audio"): lambda: dict(
        audio_hidden_states=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(18))),
    # and a short prompt padded (two of six text tokens valid)
    ("Kandinsky6Transformer3DModel", "padded"): lambda: dict(
        audio_hidden_states=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(18)),
        encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]]).bool()),
    # two samples packed in one sequence (attending only within their segment), a timestep per token
    ("Ideogram4Transformer2DModel", "packed"): lambda: dict(
        segment_ids=torch.tensor([[1, 1, 2, 2, 1, 1, 2, 2]]),
        timestep=torch.rand(1, 8, generator=torch.Generator().manual_seed(7))),
    # a short prompt padded: two of six text tokens valid, in the [image | text] key mask built inside forward
    ("MotifVideoTransformer3DModel", "padded"): lambda: dict(encoder_attention_mask=torch.tensor([[1, 1, 0, 0, 0, 0]])),
    # image edit: the denoising call reads the keys and values a condition image wrote into the KV cache
    ("GlmImageTransformer2DModel", "cached"): lambda: dict(kv_caches=_glm_image_cache()),
}

# The tiny config's entries a variant overrides (the model is built and saved with them)
CONFIG_VARIANTS = {("LTX2VideoTransformer3DModel", "image-to-video"): dict(rope_type="split",
                                                                          use_keyframes_abs_pos_embedding=True),
                   ("HeliosTransformer3DModel", "amplified history"): dict(is_amplify_history=True),
                   # heads of 12, which the three rotary axes share evenly (the text projected to their width)
                   ("AllegroTransformer3DModel", "rotary"): dict(attention_head_dim=12, cross_attention_dim=24)}

# Calls made before the compared one, for the variants that fill a cache: GLM-Image writes a condition image's keys
# and values (no text, timestep 0), as its pipeline does for an edit
CACHE_WRITES = {
    ("GlmImageTransformer2DModel", "cached"): lambda: dict(
        hidden_states=torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(19)),
        encoder_hidden_states=torch.zeros(1, 0, 16), prior_token_id=torch.ones(1, 16, dtype=torch.long),
        prior_token_drop=torch.zeros(1, 16, dtype=torch.bool), timestep=torch.zeros(1),
        target_size=torch.tensor([[8.0, 8.0]]), crop_coords=torch.zeros(1, 2)),
}


def _allegro_rotary() -> tuple:
    """Allegro's rotary argument as its pipeline makes it: the three axes' (cos, sin) tables, indexed by position, and
    each token's three positions ([1, tokens] each)."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed_allegro

    freqs_t, freqs_h, freqs_w, grid_t, grid_h, grid_w = get_3d_rotary_pos_embed_allegro(
        embed_dim=12, crops_coords=((0, 0), (4, 4)), grid_size=(4, 4), temporal_size=2,
        interpolation_scale=(2.2, 2.0, 2.0))  # the config's interpolation scales
    positions = torch.cartesian_prod(grid_t.long(), grid_h.long(), grid_w.long())
    return (freqs_t, freqs_h, freqs_w), tuple(positions.reshape(-1, 3).transpose(0, 1).reshape(3, 1, -1))


def _framepack_batch() -> dict:
    g = torch.Generator().manual_seed(26)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return dict(hidden_states=r(2, 4, 3, 4, 4), timestep=torch.full((2,), 500.0), encoder_hidden_states=r(2, 6, 16),
                pooled_projections=r(2, 8), encoder_attention_mask=torch.tensor([[1.0, 0, 0, 0, 0, 0], [1] * 6]),
                guidance=torch.full((2,), 500.0), image_embeds=r(2, 2, 16), latents_clean=r(2, 4, 2, 4, 4),
                latents_history_2x=r(2, 4, 3, 4, 4), indices_latents_history_2x=torch.arange(3.0),
                latents_history_4x=r(2, 4, 8, 4, 4))


def _glm_image_cache():
    from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache

    return GlmImageKVCache(num_layers=CONFIGS["GlmImageTransformer2DModel"]["num_layers"])


def output(model, class_name: str, even_text: bool = False, variant: str | None = None) -> torch.Tensor:
    """Every tensor the forward returns (video and audio, backbone and logits), flattened into one. ``even_text``:
    the last text token repeated where there is an odd number (for a sequence split over 2 ranks); ``variant``:
    optional inputs added (:data:`VARIANTS`)."""
    from tiny_models import pad_text

    kwargs = _inputs(class_name)
    if even_text:
        kwargs = pad_text(kwargs)
    kwargs.update(VARIANTS[(class_name, variant)]() if (class_name, variant) in VARIANTS else {})
    with torch.no_grad():
        if (class_name, variant) in CACHE_WRITES:
            kwargs["kv_caches"].set_mode("write")
            model(**CACHE_WRITES[(class_name, variant)](), kv_caches=kwargs["kv_caches"])
            kwargs["kv_caches"].set_mode("read")
        if class_name in ("T5FilmDecoder", "MiniMaxMusic3RVQDepthDecoder"):  # return a tensor; no return_dict
            out = model(**kwargs)
        else:
            out = model(**kwargs, return_dict=False)
    return torch.cat([t.flatten() for t in _tensors(out)])
