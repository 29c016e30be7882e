"""Tiny diffusers pipelines written offline (``shardrules demo --pipeline``, and the test suite): random weights,
tokenizers written from an explicit vocabulary with the ``tokenizers``-backed classes of transformers. Nothing is
downloaded. Needs the encoders extra (transformers)."""


from __future__ import annotations

import json
from pathlib import Path

import diffusers
import torch
import transformers

# The transformers of the tiny pipelines (the same as the test suite's)
FLUX_TRANSFORMER = dict(patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
                        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=False,
                        axes_dims_rope=[4, 6, 6])  # in_channels 16: 4 latent channels x 2x2
WAN_TRANSFORMER = dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=4,
                       out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True)


def randomize_zeros(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Draw every floating parameter that starts all-zero (biases, gates, zero-initialised output layers) at
    random, so that a sharded == unsharded comparison also checks where their rows went."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point() and param.device.type != "meta" and not param.any():
                param.copy_(torch.randn(param.shape, generator=g) * 0.1)
    return model


def tiny_transformer(class_name: str, config: dict) -> torch.nn.Module:
    return randomize_zeros(getattr(diffusers, class_name).from_config(config)).eval()

# A fixed Unigram vocabulary (the tokenizers trainers give different ids from run to run)
PIECES = ["<pad>", "</s>", "<unk>"] + [f"\u2581{w}" for w in (
    "a", "cat", "dog", "on", "the", "moon", "red", "blue", "car", "in", "rain", "sun", "tree", "house", "sea")] + \
    list("abcdefghijklmnopqrstuvwxyz")


def umt5_tokenizer() -> transformers.PreTrainedTokenizerBase:
    vocab = [(piece, 0.0 if i < 3 else -float(i)) for i, piece in enumerate(PIECES)]
    return transformers.T5Tokenizer(vocab=vocab, extra_ids=0)


def save_pipeline(folder: Path, pipeline_class: str, parts: dict, absent: tuple[str, ...] = ()) -> Path:
    """Each part saved to its folder, and the model_index.json that names its library and class (``absent``:
    optional components the pipeline takes, listed as [null, null])."""
    index = {"_class_name": pipeline_class, "_diffusers_version": diffusers.__version__}
    for name, part in parts.items():
        part.save_pretrained(folder / name)
        index[name] = [library_of(part), type(part).__name__]
    index.update({name: [None, None] for name in absent})
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def library_of(part) -> str:
    """Where diffusers finds a component's class, as model_index.json names it: its library, or for a class of a
    pipeline's own module (LTX-2's text connectors and vocoder) that pipeline's folder, as diffusers saves it."""
    module = type(part).__module__.split(".")
    return module[2] if module[:2] == ["diffusers", "pipelines"] else module[0]


def one_block_vae(**config) -> diffusers.AutoencoderKL:
    """An AutoencoderKL of one block (scale factor 1) with 4 latent channels."""
    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                                   up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), layers_per_block=1,
                                   latent_channels=4, norm_num_groups=4, sample_size=8, **config)


def wan(root: Path) -> Path:
    """WanPipeline: UMT5 encoder + tokenizer, Wan transformer, Wan VAE, UniPC scheduler (as Wan 2.1 ships)."""
    torch.manual_seed(0)
    config = transformers.UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                                     architectures=["UMT5EncoderModel"])  # d_model = the transformer's text_dim
    return save_pipeline(root / "wan-pipeline", "WanPipeline", {
        "transformer": tiny_transformer("WanTransformer3DModel", WAN_TRANSFORMER),
        "text_encoder": randomize_zeros(transformers.UMT5EncoderModel(config)).eval(),
        "tokenizer": umt5_tokenizer(),
        # Wan's own scale factors (8 in space, 4 in time), which its config states and the pipeline sizes latents by:
        # a video comes back at the size asked
        "vae": diffusers.AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                          temperal_downsample=[False, True, True], latents_mean=[0.0] * 4,
                                          latents_std=[1.0] * 4),
        "scheduler": diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                       flow_shift=3.0)})


WAN_CALL = dict(height=16, width=16, num_frames=1, num_inference_steps=3, guidance_scale=4.0, max_sequence_length=8,
                output_type="pt")


def pixart(root: Path, layers: int = 2, heads: int = 2, head_dim: int = 8, sample_size: int = 8) -> Path:
    """PixArtSigmaPipeline: T5 encoder + tokenizer, PixArt transformer, a one-block VAE (scale factor 1), DPM-Solver.
    Its loop batches the guided and unguided branches into one transformer forward."""
    torch.manual_seed(0)
    width = heads * head_dim
    transformer = diffusers.PixArtTransformer2DModel(
        sample_size=sample_size, num_layers=layers, attention_head_dim=head_dim, num_attention_heads=heads,
        in_channels=4, out_channels=8, cross_attention_dim=width, caption_channels=16, patch_size=2,
        use_additional_conditions=False, norm_num_groups=4)
    config = transformers.T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                                   architectures=["T5EncoderModel"])
    return save_pipeline(root / f"pixart-{layers}x{width}", "PixArtSigmaPipeline", {
        "transformer": transformer,
        "text_encoder": randomize_zeros(transformers.T5EncoderModel(config)).eval(),
        "tokenizer": umt5_tokenizer(),
        "vae": one_block_vae(),
        "scheduler": diffusers.DPMSolverMultistepScheduler()})


PIXART_CALL = dict(height=8, width=8, num_inference_steps=3, guidance_scale=4.5, max_sequence_length=8,
                   output_type="pt", use_resolution_binning=False, clean_caption=False)


def clip_tokenizer(max_length: int = 8) -> transformers.PreTrainedTokenizerBase:
    """A CLIP BPE tokenizer over single characters (no merges) and the words of PIECES, written from explicit
    files: deterministic, offline."""
    import tempfile

    words = [p[1:] for p in PIECES[3:] if len(p) > 2]
    chars = list("abcdefghijklmnopqrstuvwxyz")
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [f"{c}</w>" for c in chars]
    merges, seen = [], set(tokens)
    for word in words:  # merge each word left to right, so whole words are single tokens
        current = word[0]
        for i, c in enumerate(word[1:], 1):
            right = c + ("</w>" if i == len(word) - 1 else "")
            merges.append(f"{current} {right}")
            current += right
            if current not in seen:
                seen.add(current)
                tokens.append(current)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        return transformers.CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                                          model_max_length=max_length, pad_token="<|endoftext|>")


def flux(root: Path) -> Path:
    """FluxPipeline: CLIP text encoder (pooled) + T5 encoder, two tokenizers, Flux transformer, a one-block VAE,
    flow-matching Euler (as FLUX.1 ships)."""
    torch.manual_seed(0)
    transformer = tiny_transformer("FluxTransformer2DModel", FLUX_TRANSFORMER)
    clip = transformers.CLIPTextConfig(vocab_size=len(clip_tokenizer().get_vocab()), hidden_size=32,
                                       intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       max_position_embeddings=8, projection_dim=32, architectures=["CLIPTextModel"],
                                       bos_token_id=0, eos_token_id=1, pad_token_id=1)  # the tokenizer's own
    text_encoder = randomize_zeros(transformers.CLIPTextModel(clip)).eval()
    t5 = transformers.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                               architectures=["T5EncoderModel"])  # d_model = the transformer's joint_attention_dim
    return save_pipeline(root / "flux-pipeline", "FluxPipeline", {
        "transformer": transformer,
        "text_encoder": text_encoder,
        "tokenizer": clip_tokenizer(),
        "text_encoder_2": randomize_zeros(transformers.T5EncoderModel(t5)).eval(),
        "tokenizer_2": umt5_tokenizer(),
        "vae": one_block_vae(shift_factor=0.0, scaling_factor=1.0),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}, absent=("image_encoder", "feature_extractor"))


FLUX_CALL = dict(height=8, width=8, num_inference_steps=3, true_cfg_scale=2.0, max_sequence_length=8,
                 output_type="pt")
