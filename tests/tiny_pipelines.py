"""Tiny diffusers pipeline folders built offline: the package's demo builders (shardrules/demo/pipelines.py), and
more pipeline classes built the same way from the suite's tiny transformers."""

from __future__ import annotations

import json
from pathlib import Path

import diffusers
import tiny_encoders
import tiny_fallback
import tiny_models
import transformers

from shardrules.demo.pipelines import (  # noqa: F401
    FLUX_CALL,
    PIECES,
    PIXART_CALL,
    WAN_CALL,
    WAN_TRANSFORMER,
    clip_tokenizer,
    flux,
    library_of,
    one_block_vae,
    pixart,
    randomize_zeros,
    save_pipeline,
    tiny_transformer,
    umt5_tokenizer,
    wan,
)


def relabel(folder: Path, class_name: str) -> Path:
    """The same pipeline folder read as another diffusers pipeline class with the same components."""
    return swapped(folder, class_name)


def swapped(folder: Path, class_name: str, **parts) -> Path:
    """The pipeline folder read as another class, with some of its parts replaced."""
    index = json.loads((folder / "model_index.json").read_text())
    for name, part in parts.items():
        part.save_pretrained(folder / name)
        index[name] = [library_of(part), type(part).__name__]
    (folder / "model_index.json").write_text(json.dumps(dict(index, _class_name=class_name)))
    return folder


def _t5(d_model: int, umt5: bool = False):
    config = (transformers.UMT5Config if umt5 else transformers.T5Config)(
        vocab_size=len(PIECES), d_model=d_model, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
        architectures=["UMT5EncoderModel" if umt5 else "T5EncoderModel"])
    return randomize_zeros((transformers.UMT5EncoderModel if umt5 else transformers.T5EncoderModel)(config)).eval()


def _clip(hidden: int, projection: int):
    config = transformers.CLIPTextConfig(vocab_size=len(clip_tokenizer().get_vocab()), hidden_size=hidden,
                                         intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                         max_position_embeddings=8, projection_dim=projection,
                                         architectures=["CLIPTextModelWithProjection"], bos_token_id=0,
                                         eos_token_id=1, pad_token_id=1)
    return randomize_zeros(transformers.CLIPTextModelWithProjection(config)).eval()


def _t5_flux_like(folder: Path, pipeline_class: str, transformer_class: str) -> Path:
    """A pipeline of one T5 encoder (32 wide: the transformer's joint_attention_dim) and a Flux-like transformer
    on packed latents, a one-block VAE, flow-matching Euler, no image encoder."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(folder, pipeline_class, {
        "transformer": tiny_fallback.build(transformer_class),
        "text_encoder": _t5(32), "tokenizer": umt5_tokenizer(),
        "vae": one_block_vae(shift_factor=0.0, scaling_factor=1.0),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}, absent=("image_encoder", "feature_extractor"))


def chroma(root: Path) -> Path:
    """ChromaPipeline: one T5 encoder with its padding mask, Chroma's transformer (Flux-like, packed latents)."""
    return _t5_flux_like(root / "chroma-pipeline", "ChromaPipeline", "ChromaTransformer2DModel")


def sd3(root: Path) -> Path:
    """StableDiffusion3Pipeline: two CLIP encoders with projections (their states side by side, pooled vectors
    joined) and a T5 encoder (its states after CLIP's), SD3's MMDiT."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "sd3-pipeline", "StableDiffusion3Pipeline", {
        "transformer": tiny_models.build("SD3Transformer2DModel"),
        "text_encoder": _clip(8, 4), "tokenizer": clip_tokenizer(),
        "text_encoder_2": _clip(8, 4), "tokenizer_2": clip_tokenizer(),
        "text_encoder_3": _t5(16), "tokenizer_3": umt5_tokenizer(),
        "vae": one_block_vae(shift_factor=0.0, scaling_factor=1.0),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}, absent=("image_encoder", "feature_extractor"))


def gemma_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """A Gemma tokenizer (byte-pair, no merges: one token per character) over PIECES' characters."""
    return transformers.GemmaTokenizer(vocab={p: i for i, p in enumerate(["<pad>", "<eos>", "<bos>", "<unk>",
                                                                          *PIECES[3:]])}, merges=[])


def chat_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """The same, with a chat template, for pipelines that prompt a chat model."""
    tokenizer = gemma_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# Each message as '<role> content', the content a text or a list of parts ({"type": "text", "text": ...})
CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {% if m['content'] is string %}{{ m['content'] }}"
                 "{% else %}{% for part in m['content'] %}{{ part['text'] }}{% endfor %}{% endif %}{% endfor %}")


def kl_vae(blocks: int, sample_size: int) -> diffusers.AutoencoderKL:
    """An AutoencoderKL of ``blocks`` blocks (scale factor 2 ** (blocks - 1)) with 4 latent channels."""
    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
                                   up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=(8,) * blocks,
                                   layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=sample_size,
                                   shift_factor=0.0, scaling_factor=1.0)


def lumina2(root: Path) -> Path:
    """Lumina2Pipeline: a Gemma 2 encoder (its second-to-last hidden states, a system prompt in front), Lumina 2's
    transformer with its caption refiner."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "lumina2-pipeline", "Lumina2Pipeline", {
        "transformer": tiny_fallback.build("Lumina2Transformer2DModel"),
        "text_encoder": tiny_encoders.build("Gemma2Model"), "tokenizer": gemma_tokenizer(),
        "vae": kl_vae(4, 32),  # four blocks: the pipeline sizes latents by 8 whatever its VAE
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def lumina(root: Path) -> Path:
    """LuminaPipeline (Lumina-Next): a Gemma 2 encoder (second-to-last hidden states), the Lumina-Next DiT (learned
    sigma: the pipeline keeps the first half of its channels), a four-block VAE (the pipeline sizes latents by 8)."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["LuminaNextDiT2DModel"], learn_sigma=True)
    return save_pipeline(root / "lumina-pipeline", "LuminaPipeline", {
        "transformer": randomize_zeros(diffusers.LuminaNextDiT2DModel.from_config(config)).eval(),
        "text_encoder": tiny_encoders.build("Gemma2Model"), "tokenizer": gemma_tokenizer(),
        "vae": kl_vae(4, 64), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def scale_weights(module, factor: float) -> None:
    """Multiply every weight under ``module`` by ``factor``: a tiny transformer's timestep projection at its initial
    size barely lets the prompt reach the picture."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("weight"):
                param.mul_(factor)


def aura_flow(root: Path) -> Path:
    """AuraFlowPipeline: a UMT5 encoder with its padding mask, AuraFlow's MMDiT, a one-block VAE. The timestep
    projection's weights are scaled by 4: at their initial size its modulation gates stay near 0.06, and the text
    barely reaches the image (7e-5 between two prompts; 0.04 scaled)."""
    import torch

    torch.manual_seed(0)
    transformer = tiny_fallback.build("AuraFlowTransformer2DModel")
    scale_weights(transformer.time_step_proj, 4)
    return save_pipeline(root / "aura-flow-pipeline", "AuraFlowPipeline", {
        "transformer": transformer,
        "text_encoder": _t5(16, umt5=True), "tokenizer": umt5_tokenizer(),
        "vae": one_block_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def allegro(root: Path) -> Path:
    """AllegroPipeline: a T5 encoder with its padding mask, Allegro's 3-D transformer (rotary tables per axis), its
    VAE, which decodes only in tiles of 24 frames (run turns tiling on, as diffusers' example does), Euler
    ancestral."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["AllegroTransformer3DModel"], sample_height=16, sample_width=16,
                  sample_frames=6, caption_channels=16, attention_head_dim=12, cross_attention_dim=24)
    return save_pipeline(root / "allegro-pipeline", "AllegroPipeline", {
        "transformer": randomize_zeros(diffusers.AllegroTransformer3DModel.from_config(config)).eval(),
        "text_encoder": _t5(16), "tokenizer": umt5_tokenizer(),
        "vae": diffusers.AutoencoderKLAllegro(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
                                              sample_size=128),
        "scheduler": diffusers.EulerAncestralDiscreteScheduler()})


def z_image(root: Path) -> Path:
    """ZImagePipeline: a Qwen 3 encoder (its second-to-last states, the prompt in a chat template, padding
    dropped per prompt), Z-Image's single-stream transformer."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "z-image-pipeline", "ZImagePipeline", {
        "transformer": tiny_models.build("ZImageTransformer2DModel"),
        # 16 wide: the transformer's cap_feat_dim
        "text_encoder": tiny_encoders.build("Qwen3Model"), "tokenizer": chat_tokenizer(),
        "vae": kl_vae(2, 16),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def ovis_image(root: Path) -> Path:
    """OvisImagePipeline: a Qwen 3 encoder (the prompt in a chat template), Ovis-Image's Flux-like transformer
    (latents packed 2 x 2), a two-block VAE."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["OvisImageTransformer2DModel"], joint_attention_dim=16,  # the encoder's
                  out_channels=16)
    return save_pipeline(root / "ovis-image-pipeline", "OvisImagePipeline", {
        "transformer": randomize_zeros(diffusers.OvisImageTransformer2DModel.from_config(config)).eval(),
        "text_encoder": tiny_encoders.build("Qwen3Model"), "tokenizer": chat_tokenizer(), "vae": kl_vae(2, 16),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def easy_animate(root: Path) -> Path:
    """EasyAnimatePipeline: a BERT encoder (its second-to-last states, the prompt in a chat template, with its
    mask), EasyAnimate's MMDiT, its Magvit video VAE."""
    import torch

    torch.manual_seed(0)
    tokenizer = bert_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return save_pipeline(root / "easy-animate-pipeline", "EasyAnimatePipeline", {
        "transformer": tiny_fallback.build("EasyAnimateTransformer3DModel"),
        "text_encoder": randomize_zeros(transformers.BertModel(transformers.BertConfig(
            vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32))).eval(),  # 16: the transformer's text_embed_dim
        "tokenizer": tokenizer,
        "vae": diffusers.AutoencoderKLMagvit(block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
                                             norm_num_groups=4),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def hidream(root: Path) -> Path:
    """HiDreamImagePipeline: two CLIP encoders (their pooled projections side by side), a T5 encoder and a Llama
    causal language model (every layer's states), HiDream's mixture-of-experts transformer, a one-block VAE."""
    import torch

    torch.manual_seed(0)
    llama = transformers.LlamaConfig(vocab_size=len(gemma_tokenizer()), hidden_size=4, intermediate_size=8,
                                     num_hidden_layers=2, num_attention_heads=1, num_key_value_heads=1,
                                     architectures=["LlamaForCausalLM"])
    return save_pipeline(root / "hidream-pipeline", "HiDreamImagePipeline", {
        "transformer": tiny_fallback.build("HiDreamImageTransformer2DModel"),
        # caption_channels [8, 4]: T5's width and Llama's; text_emb_dim 8: the two CLIP projections side by side
        "text_encoder": _clip(8, 4), "tokenizer": clip_tokenizer(),
        "text_encoder_2": _clip(8, 4), "tokenizer_2": clip_tokenizer(),
        "text_encoder_3": _t5(8), "tokenizer_3": umt5_tokenizer(),
        "text_encoder_4": randomize_zeros(transformers.LlamaForCausalLM(llama)).eval(),
        "tokenizer_4": gemma_tokenizer(), "vae": one_block_vae(shift_factor=0.0, scaling_factor=1.0),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def ltx2_dfr(root: Path) -> Path:
    """LTX2DFRPipeline: LTX-2's components, its transformer with the keyframes' absolute position embedding (and the
    VAE's strides, to place them); a distilled sigma schedule of its own, no step count."""
    return ltx2(root, "LTX2DFRPipeline", vae_scale_factors=(2, 2, 2), use_keyframes_abs_pos_embedding=True)


def ltx2(root: Path, pipeline_class: str = "LTX2Pipeline", **transformer) -> Path:
    """LTX2Pipeline: Gemma 3 (every layer's states stacked) through LTX-2's text connectors (a video and an audio
    stream), LTX-2's audio-video transformer, its video VAE, its audio VAE and vocoder (the audio a run does not
    write)."""
    import torch
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    tokenizer = gemma_tokenizer()
    encoder = transformers.Gemma3Config(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=8),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=8, patch_size=2), mm_tokens_per_image=4, architectures=[
                               "Gemma3ForConditionalGeneration"])
    streams = dict(num_attention_heads=4, attention_head_dim=8, num_layers=1, num_learnable_registers=None)
    return save_pipeline(root / "ltx2-pipeline", pipeline_class, {
        "transformer": randomize_zeros(diffusers.LTX2VideoTransformer3DModel.from_config(dict(
            tiny_fallback.CONFIGS["LTX2VideoTransformer3DModel"], caption_channels=32, rope_type="split",
            **transformer))).eval(),
        "text_encoder": randomize_zeros(transformers.Gemma3ForConditionalGeneration(encoder)).eval(),
        "tokenizer": tokenizer,
        # 32 wide in: the encoder's width, its 3 hidden states side by side; 4 heads of 8 out
        "connectors": LTX2TextConnectors(
            caption_channels=32, text_proj_in_factor=3, connector_rope_base_seq_len=32, rope_double_precision=False,
            causal_temporal_positioning=False, rope_type="split",
            **{f"{stream}_connector_{k}": v for stream in ("video", "audio") for k, v in streams.items()}),
        "vae": diffusers.AutoencoderKLLTX2Video(
            latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,), layers_per_block=(1,),
            decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,), decoder_spatio_temporal_scaling=(True,),
            decoder_inject_noise=(False, False), downsample_type=("spatial",), upsample_residual=(False,),
            upsample_factor=(1,), timestep_conditioning=False, patch_size=1, patch_size_t=1, decoder_causal=False),
        "audio_vae": diffusers.AutoencoderKLLTX2Audio(
            base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
            resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", mid_block_add_attention=False,
            sample_rate=16000, mel_hop_length=160, mel_bins=8),
        "vocoder": LTX2Vocoder(in_channels=16, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4],
                               upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
                               output_sampling_rate=16000),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}, absent=("processor", "prompt_enhancer",
                                                                           "duration_head"))


def motif_video(root: Path) -> Path:
    """MotifVideoPipeline: a T5Gemma 2 encoder (with its padding mask), Motif-Video's transformer (the latents, a
    conditioning latent and its mask side by side: 2 x 4 + 1 channels in), Wan's VAE, classifier-free guidance (the
    guider)."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["MotifVideoTransformer3DModel"], in_channels=9)
    return swapped(wan(root), "MotifVideoPipeline",
                   transformer=randomize_zeros(diffusers.MotifVideoTransformer3DModel.from_config(config)).eval(),
                   text_encoder=tiny_encoders.build("T5Gemma2Encoder"), tokenizer=gemma_tokenizer(),
                   scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
                   guider=diffusers.ClassifierFreeGuidance(guidance_scale=5.0))


def z_image_omni(root: Path) -> Path:
    """ZImageOmniPipeline: Z-Image's components with a SigLIP 2 vision tower and its processor (for reference
    pictures; a prompt alone uses neither)."""
    import torch

    torch.manual_seed(0)
    siglip = transformers.Siglip2VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, num_patches=16, patch_size=2)
    return swapped(z_image(root), "ZImageOmniPipeline",
                   siglip=randomize_zeros(transformers.Siglip2VisionModel(siglip)).eval(),
                   siglip_processor=transformers.Siglip2ImageProcessorPil(patch_size=2, max_num_patches=16))


def sana(root: Path) -> Path:
    """SanaPipeline: a Gemma 2 encoder (its last states; the prompt after a long instruction, of which the pipeline
    keeps the first token and the last max_sequence_length - 1), Sana's linear-attention transformer, a deep
    compression autoencoder (AutoencoderDC)."""
    return _sana_like(root / "sana-pipeline", "SanaPipeline", tiny_models.build("SanaTransformer2DModel"),
                      diffusers.DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                            flow_shift=3.0))


def sana_sprint(root: Path) -> Path:
    """SanaSprintPipeline: Sana's components with a guidance-embedding transformer and the SCM consistency scheduler
    (few steps, no negative prompt)."""
    import torch

    torch.manual_seed(0)
    transformer = randomize_zeros(diffusers.SanaTransformer2DModel.from_config(
        dict(tiny_models.CONFIGS["SanaTransformer2DModel"], guidance_embeds=True, qk_norm="rms_norm_across_heads")))
    return _sana_like(root / "sana-sprint-pipeline", "SanaSprintPipeline", transformer.eval(),
                      diffusers.SCMScheduler())


def _sana_like(folder: Path, pipeline_class: str, transformer, scheduler) -> Path:
    import torch

    torch.manual_seed(0)
    return save_pipeline(folder, pipeline_class, {
        "transformer": transformer,
        "text_encoder": randomize_zeros(transformers.Gemma2Model(transformers.Gemma2Config(
            vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=4, architectures=["Gemma2Model"]))).eval(),  # 8: its caption_channels
        "tokenizer": gemma_tokenizer(),
        "vae": diffusers.AutoencoderDC(in_channels=3, latent_channels=4, attention_head_dim=2,
                                       encoder_block_types="ResBlock", decoder_block_types="ResBlock",
                                       encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                                       encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1),
                                       encoder_qkv_multiscales=((), ()), decoder_qkv_multiscales=((), ()),
                                       upsample_block_type="interpolate", downsample_block_type="Conv",
                                       scaling_factor=1.0),
        "scheduler": scheduler})


def bert_tokenizer() -> transformers.PreTrainedTokenizerBase:
    """A WordPiece tokenizer over the words of PIECES and their letters."""
    words = [p.removeprefix("\u2581") for p in PIECES[3:]]
    return transformers.BertTokenizer(vocab={t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                                         "[MASK]", *dict.fromkeys(words)])})


def hunyuan_dit(root: Path) -> Path:
    """HunyuanDiTPipeline: a BERT encoder (77 tokens) and a T5 encoder (256 tokens), both with padding masks, the
    HunyuanDiT transformer (its learned padding for masked text), a one-block VAE, DDPM."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["HunyuanDiT2DModel"], text_len=77, text_len_t5=256)
    return save_pipeline(root / "hunyuan-dit-pipeline", "HunyuanDiTPipeline", {
        "transformer": randomize_zeros(diffusers.HunyuanDiT2DModel.from_config(config)).eval(),
        "text_encoder": randomize_zeros(transformers.BertModel(transformers.BertConfig(
            vocab_size=len(bert_tokenizer()), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=80))).eval(),
        "tokenizer": bert_tokenizer(),
        "text_encoder_2": _t5(16), "tokenizer_2": umt5_tokenizer(),
        "vae": one_block_vae(),
        "scheduler": diffusers.DDPMScheduler()}, absent=("safety_checker", "feature_extractor"))


def sana_pag(root: Path) -> Path:
    """SanaPAGPipeline: Sana's components; perturbed-attention guidance swaps the attention processors of its first
    block (sharded) for its own and runs a third, perturbed branch."""
    return relabel(sana(root), "SanaPAGPipeline")


def qwen_image(root: Path) -> Path:
    """QwenImagePipeline: the whole Qwen2.5-VL model as its text encoder (the language model's last states after a
    34-token template prefix), Qwen-Image's MMDiT, its video-style VAE, true CFG."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "qwen-image-pipeline", "QwenImagePipeline", {
        "transformer": tiny_models.build("QwenImageTransformer2DModel"),
        "text_encoder": tiny_encoders.build("Qwen2_5_VLForConditionalGeneration"), "tokenizer": gemma_tokenizer(),
        "vae": qwen_image_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def hunyuan_video(root: Path) -> Path:
    """HunyuanVideoPipeline: a LLaMA encoder (its third-to-last states, after a 95-token template prefix) and a
    CLIP one (its pooled vector), HunyuanVideo's dual- and single-stream transformer with its token refiner."""
    import torch

    torch.manual_seed(0)
    clip = transformers.CLIPTextConfig(vocab_size=len(clip_tokenizer().get_vocab()), hidden_size=8,
                                       intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                                       max_position_embeddings=77, architectures=["CLIPTextModel"], bos_token_id=0,
                                       eos_token_id=1, pad_token_id=1)  # 8: the transformer's pooled_projection_dim
    return save_pipeline(root / "hunyuan-video-pipeline", "HunyuanVideoPipeline", {
        "transformer": tiny_models.build("HunyuanVideoTransformer3DModel"),
        "text_encoder": tiny_encoders.build("LlamaModel"), "tokenizer": gemma_tokenizer(),
        "text_encoder_2": randomize_zeros(transformers.CLIPTextModel(clip)).eval(),
        "tokenizer_2": clip_tokenizer(max_length=77),
        "vae": diffusers.AutoencoderKLHunyuanVideo(latent_channels=4, block_out_channels=(8, 8, 8, 8),
                                                   layers_per_block=1, norm_num_groups=4,
                                                   mid_block_add_attention=False),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0)})


def cogvideox(root: Path) -> Path:
    """CogVideoXPipeline: a T5 encoder, CogVideoX's expert transformer (text and video in one sequence, fixed
    positional embeddings), its causal video VAE, DDIM as CogVideoX-2b ships."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "cogvideox-pipeline", "CogVideoXPipeline", {
        "transformer": tiny_fallback.build("CogVideoXTransformer3DModel"),
        "text_encoder": _t5(16), "tokenizer": umt5_tokenizer(),
        "vae": diffusers.AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=4,
                                                layers_per_block=1, norm_num_groups=4),
        "scheduler": diffusers.CogVideoXDDIMScheduler(timestep_spacing="trailing")})


def ltx(root: Path) -> Path:
    """LTXPipeline: a T5 encoder with its padding mask, LTX-Video's transformer, its causal video VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "ltx-pipeline", "LTXPipeline", {
        "transformer": tiny_fallback.build("LTXVideoTransformer3DModel"),
        "text_encoder": _t5(8), "tokenizer": umt5_tokenizer(),
        "vae": diffusers.AutoencoderKLLTXVideo(
            latent_channels=8, block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
            layers_per_block=(1, 1, 1), decoder_layers_per_block=(1, 1, 1), spatio_temporal_scaling=(True, False),
            decoder_spatio_temporal_scaling=(True, False), decoder_inject_noise=(False, False, False),
            downsample_type=("conv", "conv"), upsample_residual=(False, False), upsample_factor=(1, 1), patch_size=1,
            patch_size_t=1),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def ltx_long(root: Path) -> Path:
    """LTXI2VLongMultiPromptPipeline: LTX's components with the scheduler its pipeline expects (Euler ancestral
    for rectified flow), generating in temporal tiles."""
    return swapped(ltx(root), "LTXI2VLongMultiPromptPipeline", scheduler=diffusers.LTXEulerAncestralRFScheduler())


def any_flow(root: Path) -> Path:
    """AnyFlowPipeline: Wan's components with AnyFlow's transformer (a timestep and a flow-map target timestep per
    frame) and the flow-map Euler scheduler."""
    import torch

    torch.manual_seed(0)
    return swapped(wan(root), "AnyFlowPipeline", transformer=tiny_fallback.build("AnyFlowTransformer3DModel"),
                   scheduler=diffusers.FlowMapEulerDiscreteScheduler())


def any_flow_far(root: Path) -> Path:
    """AnyFlowFARPipeline: AnyFlow's components with the frame-autoregressive transformer (chunks of frames, each
    attending to the chunks before it)."""
    import torch

    torch.manual_seed(0)
    return swapped(wan(root), "AnyFlowFARPipeline", transformer=tiny_fallback.build("AnyFlowFARTransformer3DModel"),
                   scheduler=diffusers.FlowMapEulerDiscreteScheduler())


def amused(root: Path) -> Path:
    """AmusedPipeline: masked image tokens unmasked step by step by a U-ViT (a convolutional down block, transformer
    layers, an up block) over CLIP's text states, decoded by a VQ-VAE's codebook."""
    import torch

    torch.manual_seed(0)
    uvit = diffusers.UVit2DModel(hidden_size=8, cond_embed_dim=8, micro_cond_encode_dim=2, micro_cond_embed_dim=10,
                                 encoder_hidden_size=8, vocab_size=32, codebook_size=32, in_channels=8,
                                 block_out_channels=8, num_res_blocks=1, downsample=True, upsample=True,
                                 block_num_heads=1, num_hidden_layers=2, num_attention_heads=1, intermediate_size=8,
                                 sample_size=8)
    vqvae = diffusers.VQModel(block_out_channels=[8], latent_channels=8, norm_num_groups=8, num_vq_embeddings=32,
                              sample_size=8, mid_block_add_attention=False, lookup_from_codebook=True)
    return save_pipeline(root / "amused-pipeline", "AmusedPipeline", {
        "transformer": randomize_zeros(uvit).eval(), "vqvae": vqvae, "text_encoder": _clip(8, 8),
        "tokenizer": clip_tokenizer(), "scheduler": diffusers.AmusedScheduler(mask_token_id=31)})


def vq_diffusion(root: Path) -> Path:
    """VQDiffusionPipeline saved by diffusers' own save_pretrained: a discrete Transformer2DModel over a VQ-VAE's
    codebook indices, CLIP's text states, and learned classifier-free embeddings (a class of the deprecated
    pipeline's module, which model_index.json names under "diffusers")."""
    import torch
    from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import (
        LearnedClassifierFreeSamplingEmbeddings,
    )

    torch.manual_seed(0)
    vqvae = diffusers.VQModel(block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
                              up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=3, num_vq_embeddings=12,
                              norm_num_groups=4, sample_size=16)
    transformer = diffusers.Transformer2DModel(num_attention_heads=2, attention_head_dim=4, num_vector_embeds=13,
                                               sample_size=8, num_layers=2, cross_attention_dim=8, norm_num_groups=4,
                                               num_embeds_ada_norm=1000, norm_type="ada_norm",
                                               activation_fn="geglu-approximate")
    pipeline = diffusers.VQDiffusionPipeline(
        vqvae=vqvae, text_encoder=_clip(8, 8), tokenizer=clip_tokenizer(), transformer=transformer,
        scheduler=diffusers.VQDiffusionScheduler(num_vec_classes=13),
        learned_classifier_free_sampling_embeddings=LearnedClassifierFreeSamplingEmbeddings(True, 8, 8))
    pipeline.save_pretrained(root / "vq-diffusion-pipeline")
    return root / "vq-diffusion-pipeline"


def ideogram4(root: Path) -> Path:
    """Ideogram4Pipeline: Qwen 3 VL's base model, whose language model's layers the pipeline calls itself, tapping 13
    of them up to layer 35 (so 36 layers, 16 wide); a conditional and an unconditional transformer over the packed
    [text | image] sequence; Flux 2's VAE (latents patched 2 x 2)."""
    import torch

    torch.manual_seed(0)
    config = tiny_encoders.CONFIGS["Qwen3VLModel"]()
    config.text_config.num_hidden_layers = 36
    config.text_config.layer_types = ["full_attention"] * 36
    transformer = dict(tiny_fallback.CONFIGS["Ideogram4Transformer2DModel"], llm_features_dim=13 * 16)
    return save_pipeline(root / "ideogram4-pipeline", "Ideogram4Pipeline", {
        "transformer": randomize_zeros(diffusers.Ideogram4Transformer2DModel.from_config(transformer)).eval(),
        "unconditional_transformer": randomize_zeros(
            diffusers.Ideogram4Transformer2DModel.from_config(transformer)).eval(),
        "text_encoder": randomize_zeros(transformers.Qwen3VLModel(config)).eval(), "tokenizer": chat_tokenizer(),
        "vae": flux2_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def glm_image(root: Path) -> Path:
    """GlmImagePipeline: an autoregressive vision-language model (GLM-Image's) that generates the image's prior
    tokens from the prompt (a preview grid of 16 x 16, then the target's, through its processor's grid tokens), a
    ByT5-tokenized T5 encoder for quoted glyph text, GLM-Image's transformer over the upsampled prior tokens, a KL VAE
    of scale factor 8. The language model's matrices are drawn at N(0, 0.5): at the default init the tiny model
    generates the same tokens whatever the prompt."""
    import torch

    torch.manual_seed(0)
    vocab = {p: i for i, p in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *PIECES[3:], "<|image|>", "<sop>",
                                         "<eop>"])}
    tokenizer = transformers.GemmaTokenizer(vocab=vocab, merges=[], extra_special_tokens={
        "image_token": "<|image|>", "grid_bos_token": "<sop>", "grid_eos_token": "<eop>"})
    processor = transformers.GlmImageProcessor(image_processor=transformers.GlmImageImageProcessorPil(),
                                               tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    size = 64  # the language model's vocabulary, which is also the transformer's codebook of prior tokens
    config = transformers.GlmImageConfig(
        text_config=dict(vocab_size=size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, vision_vocab_size=size, pad_token_id=0,
                         eos_token_id=None, max_position_embeddings=4096, rope_parameters={
                             "rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1],
                             "partial_rotary_factor": 1.0}),
        vision_config=dict(depth=1, hidden_size=16, num_heads=2, intermediate_size=32, patch_size=2, image_size=32),
        vq_config=dict(embed_dim=8, num_embeddings=size, latent_channels=16),
        image_token_id=vocab["<|image|>"], image_start_token_id=size - 2, image_end_token_id=size - 1)
    model = transformers.GlmImageForConditionalGeneration(config).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.dim() == 2 and "visual" not in name and "vq" not in name:
                weight.copy_(torch.randn(weight.shape, generator=g) * 0.5)
    vae = kl_vae(4, 32)
    vae.register_to_config(latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    transformer = dict(tiny_fallback.CONFIGS["GlmImageTransformer2DModel"], prior_vq_quantizer_codebook_size=size)
    return save_pipeline(root / "glm-image-pipeline", "GlmImagePipeline", {
        "tokenizer": transformers.ByT5Tokenizer(), "processor": processor,
        "text_encoder": randomize_zeros(transformers.T5EncoderModel(transformers.T5Config(
            vocab_size=384, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2))).eval(),
        "vision_language_encoder": model, "vae": vae,
        "transformer": randomize_zeros(diffusers.GlmImageTransformer2DModel.from_config(transformer)).eval(),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def flux2_klein(root: Path) -> Path:
    """Flux2KleinPipeline: a Qwen 3 causal language model (chosen layers' hidden states side by side, the prompt
    in a chat template), Flux 2's transformer, Flux 2's VAE (latents patched 2 x 2 and batch-normalised)."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "flux2-klein-pipeline", "Flux2KleinPipeline", {
        "transformer": tiny_models.build("Flux2Transformer2DModel"),
        # 2 layers x 16 wide: the transformer's joint_attention_dim
        "text_encoder": tiny_encoders.build("Qwen3ForCausalLM"), "tokenizer": chat_tokenizer(),
        "vae": flux2_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def ernie_image(root: Path) -> Path:
    """ErnieImagePipeline: Mistral 3's base model (the second-to-last hidden states of each prompt, unpadded), ERNIE-
    Image's sequence-first transformer, Flux 2's VAE (latents patched 2 x 2 and batch-normalised); no prompt
    enhancer."""
    import torch

    torch.manual_seed(0)
    config = dict(tiny_fallback.CONFIGS["ErnieImageTransformer2DModel"], in_channels=16, out_channels=16)
    return save_pipeline(root / "ernie-image-pipeline", "ErnieImagePipeline", {
        "transformer": randomize_zeros(diffusers.ErnieImageTransformer2DModel.from_config(config)).eval(),
        "text_encoder": tiny_encoders.build("Mistral3Model"), "tokenizer": gemma_tokenizer(), "vae": flux2_vae(),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}, absent=("pe", "pe_tokenizer"))


def flux2_vae() -> diffusers.AutoencoderKLFlux2:
    """Flux 2's VAE, two blocks of 8 channels, 4 latent channels."""
    return diffusers.AutoencoderKLFlux2(down_block_types=("DownEncoderBlock2D",) * 2,
                                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8),
                                        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=32)


def omnigen(root: Path) -> Path:
    """OmniGenPipeline: no text encoder, the transformer is the language model (Phi 3 layers over the prompt's tokens
    and the latent patches, through OmniGen's multimodal processor), a one-block VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "omnigen-pipeline", "OmniGenPipeline", {
        "transformer": tiny_fallback.build("OmniGenTransformer2DModel"), "tokenizer": gemma_tokenizer(),
        "vae": one_block_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def bria_fibo(root: Path) -> Path:
    """BriaFiboPipeline: a SmolLM 3 causal language model (its last two hidden states side by side, and every
    layer's states for the per-block text features), Bria FIBO's transformer, Wan 2.2's VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "bria-fibo-pipeline", "BriaFiboPipeline", {
        "transformer": tiny_fallback.build("BriaFiboTransformer2DModel"),
        # 16 wide: the transformer's text_encoder_dim
        "text_encoder": tiny_encoders.build("SmolLM3ForCausalLM"), "tokenizer": chat_tokenizer(),
        # Wan 2.2's VAE (patched 2 x 2: 16 x smaller, as the pipeline sizes latents), 16 latent channels
        "vae": diffusers.AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                          temperal_downsample=[False, True, True], latents_mean=[0.0] * 16,
                                          latents_std=[1.0] * 16, patch_size=2, is_residual=True, in_channels=12,
                                          out_channels=12, scale_factor_spatial=16),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def krea2(root: Path) -> Path:
    """Krea2Pipeline: Qwen 3 VL's base model (chosen layers' states stacked, after a chat template), Krea 2's
    transformer (layer-wise text blocks over them), Qwen-Image's VAE (latents patched 2 x 2)."""
    import torch

    torch.manual_seed(0)
    folder = save_pipeline(root / "krea2-pipeline", "Krea2Pipeline", {
        "transformer": tiny_fallback.build("Krea2Transformer2DModel"),
        "text_encoder": tiny_encoders.build("Qwen3VLModel"), "tokenizer": chat_tokenizer(),
        "vae": qwen_image_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})
    index = json.loads((folder / "model_index.json").read_text())  # its two layers: the transformer's
    (folder / "model_index.json").write_text(json.dumps(dict(index, text_encoder_select_layers=[1, 2])))
    return folder


def qwen_image_vae() -> diffusers.AutoencoderKLQwenImage:
    """Qwen-Image's video-style VAE, 8 x smaller in space, 4 latent channels."""
    return diffusers.AutoencoderKLQwenImage(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                            temperal_downsample=[False, True, True], latents_mean=[0.0] * 4,
                                            latents_std=[1.0] * 4)


def sana_video(root: Path) -> Path:
    """SanaVideoPipeline: Sana's Gemma 2 encoder and instruction, Sana Video's transformer, Wan's video VAE."""
    import torch

    folder = sana(root)
    torch.manual_seed(0)
    for name, part in {"transformer": tiny_models.build("SanaVideoTransformer3DModel"),
                       "vae": diffusers.AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                                         temperal_downsample=[False, True, True],
                                                         latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
                       "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()}.items():
        import shutil

        shutil.rmtree(folder / name)
        part.save_pretrained(folder / name)
    index = json.loads((folder / "model_index.json").read_text())
    index.update(transformer=["diffusers", "SanaVideoTransformer3DModel"], vae=["diffusers", "AutoencoderKLWan"],
                 scheduler=["diffusers", "FlowMatchEulerDiscreteScheduler"], _class_name="SanaVideoPipeline")
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def cogview3(root: Path) -> Path:
    """CogView3PlusPipeline: a T5 encoder, CogView 3's transformer (size and crop conditions), a one-block VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "cogview3-pipeline", "CogView3PlusPipeline", {
        "transformer": tiny_fallback.build("CogView3PlusTransformer2DModel"),
        "text_encoder": _t5(16), "tokenizer": umt5_tokenizer(),
        "vae": one_block_vae(scaling_factor=1.0),
        "scheduler": diffusers.CogVideoXDDIMScheduler(timestep_spacing="trailing")})


def latte(root: Path) -> Path:
    """LattePipeline: a T5 encoder, Latte's spatial and temporal blocks, an image VAE frame by frame."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "latte-pipeline", "LattePipeline", {
        "transformer": tiny_fallback.build("LatteTransformer3DModel"),
        "text_encoder": _t5(8), "tokenizer": umt5_tokenizer(),
        "vae": one_block_vae(scaling_factor=1.0), "scheduler": diffusers.DDIMScheduler()})


def pixart_sigma_pag(root: Path) -> Path:
    """PixArtSigmaPAGPipeline: PixArt-Sigma's components, perturbed-attention guidance."""
    return relabel(pixart(root), "PixArtSigmaPAGPipeline")


def sd3_pag(root: Path) -> Path:
    """StableDiffusion3PAGPipeline: SD3's components (it takes no image encoder), perturbed-attention guidance."""
    folder = relabel(sd3(root), "StableDiffusion3PAGPipeline")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({k: v for k, v in index.items()
                                                         if k not in ("image_encoder", "feature_extractor")}))
    return folder


def cogview4(root: Path) -> Path:
    """CogView4Pipeline: a GLM 4 encoder (its second-to-last states, the prompt left-padded to a multiple of 16),
    CogView 4's transformer, a one-block VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "cogview4-pipeline", "CogView4Pipeline", {
        "transformer": tiny_fallback.build("CogView4Transformer2DModel"),
        "text_encoder": tiny_encoders.build("GlmModel"), "tokenizer": gemma_tokenizer(),
        "vae": one_block_vae(scaling_factor=1.0), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def bria(root: Path) -> Path:
    """BriaPipeline: a T5 encoder, Bria's Flux-like transformer (packed latents), a one-block VAE."""
    return _t5_flux_like(root / "bria-pipeline", "BriaPipeline", "BriaTransformer2DModel")


def hunyuan_video15(root: Path) -> Path:
    """HunyuanVideo15Pipeline: Qwen2.5-VL's text model (its third-to-last states after a 108-token system prefix,
    through a chat template) and a ByT5 encoder for quoted glyph text, HunyuanVideo 1.5's transformer, its VAE, a
    classifier-free guidance guider."""
    import torch

    torch.manual_seed(0)
    byt5 = transformers.T5Config(vocab_size=384, d_model=8, d_kv=4, d_ff=16, num_layers=2, num_heads=2,
                                 architectures=["T5EncoderModel"])  # 8: the transformer's text_embed_2_dim
    return save_pipeline(root / "hunyuan-video15-pipeline", "HunyuanVideo15Pipeline", {
        "transformer": tiny_models.build("HunyuanVideo15Transformer3DModel"),
        "text_encoder": tiny_encoders.build("Qwen2_5_VLTextModel"), "tokenizer": chat_tokenizer(),
        "text_encoder_2": randomize_zeros(transformers.T5EncoderModel(byt5)).eval(),
        "tokenizer_2": transformers.ByT5Tokenizer(),
        "vae": diffusers.AutoencoderKLHunyuanVideo15(latent_channels=4, block_out_channels=(8,) * 5,
                                                     layers_per_block=1),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
        "guider": diffusers.ClassifierFreeGuidance(guidance_scale=6.0)})


def hunyuan_image(root: Path) -> Path:
    """HunyuanImagePipeline: the whole Qwen2.5-VL model (its third-to-last states after a 34-token template prefix)
    and a ByT5 encoder for quoted glyph text, HunyuanImage 2.1's transformer, its VAE, adaptive projected guidance
    (the guider). The timestep embedder's weights are scaled by 4, as AuraFlow's: two prompts then differ by 8e-4
    in the picture instead of 1.7e-4."""
    import torch

    torch.manual_seed(0)
    byt5 = transformers.T5Config(vocab_size=384, d_model=8, d_kv=4, d_ff=16, num_layers=2, num_heads=2,
                                 architectures=["T5EncoderModel"])
    config = dict(tiny_models.CONFIGS["HunyuanImageTransformer2DModel"], text_embed_2_dim=8)
    transformer = randomize_zeros(diffusers.HunyuanImageTransformer2DModel.from_config(config)).eval()
    scale_weights(transformer.time_guidance_embed, 4)
    return save_pipeline(root / "hunyuan-image-pipeline", "HunyuanImagePipeline", {
        "transformer": transformer,
        "text_encoder": tiny_encoders.build("Qwen2_5_VLForConditionalGeneration"), "tokenizer": gemma_tokenizer(),
        "text_encoder_2": randomize_zeros(transformers.T5EncoderModel(byt5)).eval(),
        "tokenizer_2": transformers.ByT5Tokenizer(),
        "vae": diffusers.AutoencoderKLHunyuanImage(in_channels=3, out_channels=3, latent_channels=4,
                                                   block_out_channels=(32, 32), layers_per_block=1,
                                                   spatial_compression_ratio=2, sample_size=32, scaling_factor=1.0),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=5.0),
        "guider": diffusers.AdaptiveProjectedMixGuidance(guidance_scale=3.5)}, absent=("ocr_guider",))


def mochi(root: Path) -> Path:
    """MochiPipeline: a T5 encoder with its padding mask, Mochi's asymmetric dual-stream transformer, Mochi's VAE."""
    import torch

    torch.manual_seed(0)
    return save_pipeline(root / "mochi-pipeline", "MochiPipeline", {
        # 12 latent channels, which the pipeline assumes
        "transformer": tiny_transformer("MochiTransformer3DModel",
                                        dict(tiny_fallback.CONFIGS["MochiTransformer3DModel"], in_channels=12)),
        "text_encoder": _t5(16), "tokenizer": umt5_tokenizer(),
        "vae": diffusers.AutoencoderKLMochi(encoder_block_out_channels=(32,) * 4, decoder_block_out_channels=(32,) * 4,
                                            latent_channels=12, layers_per_block=(1,) * 5,
                                            add_attention_block=(False,) * 5, latents_mean=(0.0,) * 12,
                                            latents_std=(1.0,) * 12),  # 32: its group norms' 32 groups
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()})


def flux_kontext(root: Path) -> Path:
    """FluxKontextPipeline from text alone (its picture is optional): Flux's components."""
    return relabel(flux(root), "FluxKontextPipeline")


def pixart_alpha(root: Path) -> Path:
    """PixArtAlphaPipeline: PixArt-Sigma's components."""
    return relabel(pixart(root), "PixArtAlphaPipeline")


def skyreels_v2(root: Path) -> Path:
    """SkyReelsV2Pipeline: Wan's encoder, VAE and scheduler around a SkyReels V2 transformer."""
    import shutil

    folder = wan(root / "from")
    transformer = tiny_fallback.build("SkyReelsV2Transformer3DModel")
    shutil.rmtree(folder / "transformer")
    transformer.save_pretrained(folder / "transformer")
    index = json.loads((folder / "model_index.json").read_text())
    index["transformer"] = ["diffusers", "SkyReelsV2Transformer3DModel"]
    (folder / "model_index.json").write_text(json.dumps(dict(index, _class_name="SkyReelsV2Pipeline")))
    return folder


def wan22(root: Path) -> Path:
    """WanPipeline as Wan 2.2 ships it: two transformers, the second for the low-noise steps below boundary_ratio
    (both sharded)."""
    import torch

    folder = wan(root)
    torch.manual_seed(1)
    second = tiny_transformer("WanTransformer3DModel", WAN_TRANSFORMER)
    second.save_pretrained(folder / "transformer_2")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(transformer_2=["diffusers", "WanTransformer3DModel"], boundary_ratio=0.5)
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


# More pipeline classes for `shardrules run --prompt`: each builder and the arguments of its run (small sizes);
# "seeded": for a transformer class seeded `run` drives, the conditioning its report names; "ulysses": also run with
# the sequence split over the 2 ranks
MORE = {
    "ChromaPipeline": (chroma, dict(guidance=3.0, call={"max_sequence_length": 8}, ulysses=True)),
    "StableDiffusion3Pipeline": (sd3, dict(guidance=3.0, call={"max_sequence_length": 8}, ulysses=True,
                                           seeded="text_encoder_3 (T5EncoderModel)")),
    "FluxKontextPipeline": (flux_kontext, dict(call={"max_sequence_length": 8, "max_area": 64})),  # else 1024²
    "PixArtAlphaPipeline": (pixart_alpha, dict(guidance=4.5, call={"max_sequence_length": 8,
                                                                    "use_resolution_binning": False})),
    "Lumina2Pipeline": (lumina2, dict(guidance=4.0, height=32, width=32, call={"max_sequence_length": 24,
                                                                                "system_prompt": ""})),
    "ZImagePipeline": (z_image, dict(guidance=4.0, height=32, width=32, call={"max_sequence_length": 32},
                                     ulysses=True)),
    "SanaPipeline": (sana, dict(guidance=4.5, height=32, width=32, call={"max_sequence_length": 16,
                                                                          "use_resolution_binning": False})),
    "SanaPAGPipeline": (sana_pag, dict(guidance=4.5, height=32, width=32, call={
        "max_sequence_length": 16, "use_resolution_binning": False, "pag_scale": 3.0})),
    "QwenImagePipeline": (qwen_image, dict(height=64, width=64, call={"max_sequence_length": 256,
                                                                       "true_cfg_scale": 4.0},
                                           seeded="text_encoder (Qwen2_5_VLForConditionalGeneration)",
                                           ulysses=True)),
    "Flux2KleinPipeline": (flux2_klein, dict(guidance=4.0, height=32, width=32, negative_prompt=None, call={
        "max_sequence_length": 32, "text_encoder_out_layers": [1, 2]},
        seeded="text_encoder (Qwen3ForCausalLM, its last 2 layers side by side)", ulysses=True)),
    "Flux2KleinKVPipeline": (lambda root: relabel(flux2_klein(root), "Flux2KleinKVPipeline"), dict(
        height=32, width=32, negative_prompt=None, call={
            "max_sequence_length": 32, "text_encoder_out_layers": [1, 2]})),
    "AnyFlowPipeline": (any_flow, dict(guidance=4.0, height=16, width=16, frames=1, call={"max_sequence_length": 8})),
    # five frames in two chunks of latent frames (its default chunks are for 81 frames)
    "AnyFlowFARPipeline": (any_flow_far, dict(guidance=4.0, height=16, width=16, frames=5, call={
        "max_sequence_length": 8, "chunk_partition": [1, 1]})),
    "AmusedPipeline": (amused, dict(guidance=10.0, height=16, width=16, call={})),
    # its language model generates 256 preview tokens, then the 2 x 2 target grid the transformer denoises from
    "GlmImagePipeline": (glm_image, dict(guidance=1.5, height=64, width=64, negative_prompt=None, call={})),
    # its guidance schedule holds one value per step: two for two steps
    "Ideogram4Pipeline": (ideogram4, dict(height=32, width=32, negative_prompt=None, call={
        "guidance_schedule": [7.0, 3.0], "max_sequence_length": 64})),
    "LTXI2VLongMultiPromptPipeline": (ltx_long, dict(
        guidance=3.0, height=32, width=32, frames=1, call={"max_sequence_length": 8})),
    "BriaPipeline": (bria, dict(guidance=5.0, call={"max_sequence_length": 8})),
    "CogView4Pipeline": (cogview4, dict(guidance=4.0, height=16, width=16, call={"max_sequence_length": 32})),
    "CogView3PlusPipeline": (cogview3, dict(guidance=4.0, height=16, width=16, call={"max_sequence_length": 8},
                                            ulysses=True)),
    "PixArtSigmaPAGPipeline": (pixart_sigma_pag, dict(guidance=4.5, call={
        "max_sequence_length": 8, "use_resolution_binning": False, "pag_scale": 3.0})),
    "StableDiffusion3PAGPipeline": (sd3_pag, dict(guidance=3.0, call={
        "max_sequence_length": 8, "pag_scale": 3.0})),
    # videos of one frame, written as an image (Wan's VAE: 8 in space, then 2 x 2 patches)
    "CogVideoXPipeline": (cogvideox, dict(guidance=6.0, height=64, width=64, frames=1,
                                          call={"max_sequence_length": 6})),
    "LTXPipeline": (ltx, dict(guidance=3.0, height=32, width=32, frames=1, call={"max_sequence_length": 8})),
    "LTXConditionPipeline": (lambda root: relabel(ltx(root), "LTXConditionPipeline"), dict(
        guidance=3.0, height=32, width=32, frames=1, call={"max_sequence_length": 8})),
    "HunyuanDiTPipeline": (hunyuan_dit, dict(guidance=5.0, height=16, width=16, call={
        "use_resolution_binning": False})),
    "HunyuanDiTPAGPipeline": (lambda root: relabel(hunyuan_dit(root), "HunyuanDiTPAGPipeline"), dict(
        guidance=5.0, height=16, width=16, call={"use_resolution_binning": False, "pag_scale": 3.0})),
    "LuminaPipeline": (lumina, dict(guidance=4.0, height=64, width=64, call={"max_sequence_length": 16})),
    "AuraFlowPipeline": (aura_flow, dict(guidance=3.5, call={"max_sequence_length": 8})),
    # 24 frames of 128 x 128: one tile of Allegro's VAE
    # split: the pipeline's rotary argument (its positions by element) and its [B, 1, L, D] text
    "AllegroPipeline": (allegro, dict(guidance=7.5, height=128, width=128, frames=24, tiled=True, call={
        "max_sequence_length": 8}, ulysses=True)),
    "HunyuanImagePipeline": (hunyuan_image, dict(height=32, width=32, call={})),
    "ErnieImagePipeline": (ernie_image, dict(guidance=4.0, height=32, width=32, call={"use_pe": False})),
    "BriaFiboPipeline": (bria_fibo, dict(guidance=5.0, height=32, width=32, call={"max_sequence_length": 16})),
    # the prompt after a 34-token system prefix, which the tiny tokenizer spells out letter by letter
    "Krea2Pipeline": (krea2, dict(guidance=4.0, height=32, width=32, call={"max_sequence_length": 200})),
    # the prompt after a long instruction, which the tiny tokenizer spells out letter by letter
    "OvisImagePipeline": (ovis_image, dict(guidance=5.0, height=32, width=32, call={"max_sequence_length": 256})),
    "EasyAnimatePipeline": (easy_animate, dict(guidance=5.0, height=64, width=64, frames=1, call={}, ulysses=True)),
    # the pipeline scales every picture to its default area: 128 x 128 with a VAE of scale factor 1
    "HiDreamImagePipeline": (hidream, dict(guidance=5.0, height=128, width=128, call={"max_sequence_length": 8})),
    # at 12.5 frames a second, one frame holds two audio latents, which Ulysses 2 splits (at 24, one)
    "LTX2Pipeline": (ltx2, dict(guidance=4.0, height=32, width=32, frames=1, audio=True, ulysses=True, call={
        "max_sequence_length": 16, "frame_rate": 12.5})),
    "LTX2DFRPipeline": (ltx2_dfr, dict(height=32, width=32, frames=9, steps=None, negative_prompt=None, audio=True,
                                       call={"max_sequence_length": 16})),
    "LTX2ConditionPipeline": (lambda root: relabel(ltx2(root), "LTX2ConditionPipeline"), dict(
        guidance=4.0, height=32, width=32, frames=1, audio=True, call={"max_sequence_length": 16})),
    "LTX2InContextPipeline": (lambda root: relabel(ltx2(root), "LTX2InContextPipeline"), dict(
        guidance=4.0, height=32, width=32, frames=1, audio=True, call={"max_sequence_length": 16})),
    # the prompt padded to 32 tokens (and masked), also split by Ulysses 2
    "MotifVideoPipeline": (motif_video, dict(height=32, width=32, frames=1, ulysses=True, call={
        "max_sequence_length": 32})),
    "ZImageOmniPipeline": (z_image_omni, dict(guidance=4.0, height=32, width=32, call={"max_sequence_length": 32})),
    "SanaSprintPipeline": (sana_sprint, dict(guidance=4.5, height=32, width=32, negative_prompt=None, call={
        "max_sequence_length": 16, "complex_human_instruction": None,
        "use_resolution_binning": False})),
    "SanaVideoPipeline": (sana_video, dict(guidance=6.0, height=32, width=32, frames=1,
                                           call={"max_sequence_length": 16, "use_resolution_binning": False})),
    "LattePipeline": (latte, dict(guidance=4.5, height=16, width=16, frames=1, call={})),
    "HunyuanVideo15Pipeline": (hunyuan_video15, dict(height=64, width=64, frames=1, call={})),
    "MochiPipeline": (mochi, dict(guidance=4.5, height=64, width=64, frames=1, call={"max_sequence_length": 8})),
    "HunyuanVideoPipeline": (hunyuan_video, dict(guidance=6.0, height=32, width=32, frames=1,
                                                 call={"max_sequence_length": 32},
                                                 seeded="text_encoder (LlamaModel)", ulysses=True)),
    "WanPipeline (Wan 2.2, two transformers)": (wan22, dict(guidance=4.0, height=16, width=16, frames=1,
                                                            call={"max_sequence_length": 8})),
}
