"""A tiny diffusers pipeline folder (transformer + text encoder + VAE, random weights) through plan and run."""

from __future__ import annotations

import json

import diffusers
import pytest
import tiny_models
import tiny_pipelines
import torch
import transformers
from commands import cli, lint_cli
from PIL import Image
from safetensors.torch import load_file

from shardrules import DenoisingRunner
from shardrules.loader.build import load_plain
from shardrules.runner.inputs import example_inputs
from shardrules.runner.job import _encode


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    transformer = tiny_models.build("SanaTransformer2DModel")
    config = transformers.Gemma2Config(vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=1, head_dim=4,
                                       architectures=["Gemma2Model"])
    tiny_pipelines.save_pipeline(root, "SanaPipeline", {
        "transformer": transformer, "text_encoder": transformers.Gemma2Model(config),
        "vae": tiny_pipelines.one_block_vae(), "scheduler": diffusers.FlowMatchEulerDiscreteScheduler()},
        absent=("tokenizer",))
    return root


def test_plan_shards_each_component_by_its_own_rules(pipeline):
    result = cli("plan", str(pipeline))
    assert result.returncode == 0, result.stderr
    assert "[transformer]\ndtype: float32 (the checkpoint's)\nSanaTransformer2DModel: 2 units chosen by explicit " \
           "(model 'sana')" in result.stdout
    assert "[text_encoder]\ndtype: float32 (config.json dtype)\nGemma2Model: 3 units chosen by explicit " \
           "(model 'llm-text-encoder')" in result.stdout
    assert "[vae]" not in result.stdout  # not planned: loaded whole
    data = json.loads(cli("plan", str(pipeline), "--format", "json").stdout)
    sharded = sum(data[name]["bytes_per_rank"] for name in ("transformer", "text_encoder"))
    vae = sum(p.numel() * p.element_size() for p in tiny_pipelines.one_block_vae().parameters())  # whole, stored
    assert data["_total"] == {"sharded_bytes_per_rank": sharded, "whole": {"vae": vae}, "bytes_per_rank": sharded + vae,
                              "unsharded_bytes": data["_total"]["unsharded_bytes"]}
    assert data["_total"]["unsharded_bytes"] > sharded + vae
    assert f"pipeline total per rank: {(sharded + vae) / 2**20:.2f} MiB" in result.stdout
    assert f"sharded transformer, text_encoder {sharded / 2**20:.2f} MiB; loaded whole on every rank: vae " \
           f"{vae / 2**20:.2f} MiB" in result.stdout


@pytest.mark.multirank
def test_run_on_two_ranks(pipeline, tmp_path, capfd):
    out = tmp_path / "latents.safetensors"
    # a rule whose shard rules match nothing: every rank plans by the next strategy and warns the same
    rules = tmp_path / "typo.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "sana-typo"\napplies-to = "class == SanaTransformer2DModel"\n'
                     'shard = ["container == transformer_block and index is digit"]\n')
    result = cli("run", str(pipeline), "--nproc", "2", "--steps", "3", "--guidance", "4.0", "--seed", "3",
                 "--out", str(out), "--rules", str(rules))
    assert result.returncode == 0, result.stderr
    # once, from rank 0: the other ranks' warnings are the same ones again
    ranks = capfd.readouterr().err  # the ranks write to the launcher's own stderr
    assert ranks.count("[[model]] 'sana-typo'") == 1, ranks
    assert "conditioning: text_encoder (Gemma2Model) on seeded token ids" in result.stdout
    assert f"image written to {tmp_path / 'latents.png'}" in result.stdout
    image = Image.open(tmp_path / "latents.png")
    assert image.size == (8, 8) and image.mode == "RGB"

    # the same loop in one process, components loaded whole
    transformer = load_plain(pipeline / "transformer")
    encoder = load_plain(pipeline / "text_encoder")
    example = example_inputs(transformer, seed=3)
    length = example.model_kwargs["encoder_hidden_states"].shape[1]
    example.model_kwargs["encoder_hidden_states"] = _encode(encoder, length, 1, 3)
    example.negative_model_kwargs["encoder_hidden_states"] = _encode(encoder, length, 1, 4)
    want = DenoisingRunner(transformer, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=3, guidance_scale=4.0, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)
    got = load_file(str(out))["latents"]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_rule_lint_checks_each_component_of_a_pipeline(pipeline):
    result = lint_cli("--model", str(pipeline), "--select", "SR307")
    assert result.returncode == 0, result.stderr
    assert f"{pipeline / 'transformer'}: block-class would choose 2 units" in result.stdout
    assert f"{pipeline / 'text_encoder'}: block-class would choose 2 units" in result.stdout
