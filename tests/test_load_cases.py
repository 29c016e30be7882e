"""More of SPEC §5 over several ranks: index files, 2-D meshes, bf16, weight_loader, strict errors."""

from __future__ import annotations

import json

import pytest
import tiny_models
import torch
import toy_models
from multirank import checked, run_several
from safetensors.torch import load_file, save_file
from test_load_multirank import save_case


def split_checkpoint(tmp_path):
    case = save_case(tmp_path, "FluxTransformer2DModel", max_shard_size="100KB")
    index = json.loads((tmp_path / "FluxTransformer2DModel" /
                        "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3
    return {"split": ("rank_checks:forward_matches", {"cases": [case]})}, None


def bf16_checkpoint(tmp_path):
    case = save_case(tmp_path, "SanaTransformer2DModel", dtype=torch.bfloat16)
    return {"bf16": ("rank_checks:forward_matches", {"cases": [case], "dtype": "bfloat16", "atol": 1e-6})}, None


def bf16_policy(tmp_path):
    case = save_case(tmp_path, "WanTransformer3DModel", dtype=torch.bfloat16)
    return {"policy": ("rank_checks:forward_matches", {"cases": [case], "mixed_bf16": True, "atol": 1e-6})}, None


def cpu_offload(tmp_path):
    case = save_case(tmp_path, "WanTransformer3DModel")
    return {"offload": ("rank_checks:forward_matches", {"cases": [case], "offload": True})}, None


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The 2-rank cases of this file in one launch of the ranks; each test below checks its own."""
    calls, expected = {}, {}
    for prepare in (split_checkpoint, bf16_checkpoint, bf16_policy, cpu_offload, fused_toy, strict_errors,
                    renamed_checkpoint):
        made, expected[prepare.__name__] = prepare(tmp_path_factory.mktemp(prepare.__name__))
        calls.update(made)
    return run_several(calls), expected


def test_checkpoint_split_over_several_files(launched):
    for result in checked(launched[0]["split"]):
        assert result["FluxTransformer2DModel"]["close"], result


@pytest.fixture(scope="module")
def four_ranks(tmp_path_factory):
    """The 4-rank cases in one launch: a 2-D HSDP mesh, and Ulysses 2 under the guidance split (one mesh)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    root = tmp_path_factory.mktemp("four")
    case = save_case(root, "WanTransformer3DModel")
    from shardrules.engine.sequence import sequence_plan

    torch.manual_seed(0)
    wan = tiny_models.build("WanTransformer3DModel")  # the saved model: the same seed
    seen = tiny_models.count_tokens(wan, tiny_models.split_attention(wan, sequence_plan(wan)))
    example = example_inputs(wan, batch=1, seed=0)
    want = DenoisingRunner(wan, FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=3, guidance_scale=4.0, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)
    save_file({"latents": want.contiguous()}, str(root / "runner.safetensors"))
    return run_several({
        "hsdp": ("rank_checks:forward_matches", {"cases": [case], "mesh_shape": [2, 2]}),
        "ulysses x guidance": ("rank_checks:sequence_runner_matches", {
            "model_dir": case["dir"], "ref": str(root / "runner.safetensors"), "steps": 3, "guidance": 4.0}),
    }, world_size=4), seen[0]


@pytest.mark.multirank
def test_ulysses_and_the_guidance_split_share_one_mesh_on_4_ranks(four_ranks):
    """Ulysses 2 x the guidance split on 4 ranks (`run --nproc 4 --ulysses 2 --guidance G`): ranks 0-1 hold one
    guidance branch and 2-3 the other, each pair splits its sequence, FSDP2 shards over all four; the latents are the
    unsharded loop's."""
    launched, full = four_ranks
    results = checked(launched["ulysses x guidance"])
    assert [r["split_rank"] for r in results] == [0, 0, 1, 1]
    for rank, result in enumerate(results):
        assert result["split"] == "guidance", (rank, result)
        assert result["max_abs_diff"] <= 1e-5, (rank, result)
        # one forward a step, of this pair's branch, over half of the tokens the unsharded loop's attention sees
        assert result["tokens"] == [full // 2] * 3, (rank, result, full)


@pytest.mark.multirank
def test_2d_mesh_hsdp_on_4_ranks(four_ranks):
    results = checked(four_ranks[0]["hsdp"])
    for result in results:
        got = result["WanTransformer3DModel"]
        assert got["close"], got
        # read beside sharding by the rows of the mesh's shard dimension, into one buffer
        assert got["early_tensors"] == got["even"] > 0 and got["even_storages"] == 1, got
    # replicas read the same rows: ranks (0, 2) and (1, 3) hold the same shard
    reads = [r["WanTransformer3DModel"]["bytes_sharded"] for r in results]
    assert reads[0] == reads[2] and reads[1] == reads[3]
    assert reads[0] + reads[1] == results[0]["WanTransformer3DModel"]["checkpoint_bytes"]


def test_fsdp2_cpu_offload(launched):
    """offload=True (FSDP2's CPUOffloadPolicy, unpinned without a GPU): same output, shards read beside sharding."""
    for result in checked(launched[0]["offload"]):
        got = result["WanTransformer3DModel"]
        assert got["close"], got
        assert got["early_tensors"] == got["even"] > 0 and got["even_storages"] == 1, got


def test_bf16_loading(launched):
    for rank_result in checked(launched[0]["bf16"]):  # every rank
        result = rank_result["SanaTransformer2DModel"]
        assert result["param_dtypes"] == ["torch.bfloat16"]
        assert result["out_dtype"] == "torch.bfloat16", result
        assert result["close"], result


def test_bf16_mixed_precision_policy(launched):
    for result in checked(launched[0]["policy"]):
        got = result["WanTransformer3DModel"]
        assert got["param_dtypes"] == ["torch.float32"]  # stored fp32, computed in bf16:
        assert got["out_dtype"] == "torch.bfloat16", got  # the output of bf16 compute (no output_dtype asked)
        assert got["close"], got  # the same as the model cast to bf16 (fp32 compute differs by about 1e-2)


def fused_toy(tmp_path):
    torch.manual_seed(0)
    model = toy_models.FusedToy()
    model_dir = tmp_path / "toy"
    model_dir.mkdir()
    save_file(toy_models.split_state_dict(model), str(model_dir / "model.safetensors"))
    assert "blocks.0.q.weight" in load_file(str(model_dir / "model.safetensors"))
    with torch.no_grad():
        save_file({"out": model(torch.linspace(-1, 1, 24).reshape(4, 6))}, str(tmp_path / "ref.safetensors"))
    rules = tmp_path / "toy.toml"
    rules.write_text(toy_models.RULES)
    return {"fused": ("rank_checks:fused_toy_matches", {"model_dir": str(model_dir), "rules": str(rules),
                                                        "ref": str(tmp_path / "ref.safetensors")})}, None


def test_fused_qkv_weight_loader(launched):
    for result in checked(launched[0]["fused"]):
        assert result["close"], result
        assert result["has_loader"]
        assert result["local_rows"] == 9  # 18 fused rows over 2 ranks
        assert result["units"] == ["blocks.2", "blocks.1", "blocks.0"]


def broken_copies(tmp_path):
    """One checkpoint folder per fault, each a copy of a tiny SD3 model with one thing wrong."""
    case = save_case(tmp_path, "SD3Transformer2DModel")
    good_dir = tmp_path / "SD3Transformer2DModel"
    tensors = load_file(str(good_dir / "diffusion_pytorch_model.safetensors"))
    config = (good_dir / "config.json").read_text()

    def make(name, state, files=None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(config)
        if files is None:
            files = {"diffusion_pytorch_model.safetensors": state}
        for file_name, part in files.items():
            save_file(part, str(folder / file_name))
        return str(folder)

    missing = dict(tensors)
    del missing["proj_out.weight"]
    unexpected = dict(tensors, **{"proj_out.weihgt": torch.zeros(1)})
    typo = dict(missing, **{"proj_out.weihgt": tensors["proj_out.weight"]})  # the one spare key is the suggestion
    shape = dict(tensors, **{"proj_out.bias": torch.zeros(7)})
    dtype = dict(tensors, **{"proj_out.bias": torch.zeros(tensors["proj_out.bias"].shape, dtype=torch.int32)})
    first = {k: v for i, (k, v) in enumerate(tensors.items()) if i % 2 == 0}
    second = {k: v for i, (k, v) in enumerate(tensors.items()) if i % 2 == 1}
    second["proj_out.bias"] = tensors["proj_out.bias"]
    first.setdefault("proj_out.bias", tensors["proj_out.bias"])
    return case, {
        "missing": (make("missing", missing), "proj_out.weight", "missing key"),
        "unexpected": (make("unexpected", unexpected), "proj_out.weihgt", "unexpected key"),
        "typo": (make("typo", typo), "proj_out.weight", "missing key"),
        "shape": (make("shape", shape), "proj_out.bias", "shape mismatch"),
        "dtype": (make("dtype", dtype), "proj_out.bias", "dtype mismatch"),
        "duplicate": (make("duplicate", None, {"a.safetensors": first, "b.safetensors": second}), "proj_out.bias",
                      "is in two files"),
    }


def strict_errors(tmp_path):
    _, cases = broken_copies(tmp_path)
    return {"strict": ("rank_checks:expect_errors", {"cases": [{"model_dir": c[0]} for c in cases.values()]})}, cases


def test_strict_errors_on_every_rank(launched):
    cases = launched[1]["strict_errors"]
    names = list(cases)
    results = checked(launched[0]["strict"])
    for rank, result in enumerate(results):
        for name, got in zip(names, result, strict=True):
            folder, tensor, words = cases[name]
            assert got["type"] == "CheckpointError", (rank, name, got)
            assert words in got["message"], (rank, name, got["message"])
            assert got["tensor"] == tensor, (rank, name, got)
            assert folder in got["message"] or folder in (got["path"] or ""), (rank, name, got)
    for result in results:  # every rank suggests the spare key, and only a spare key
        typo = result[names.index("typo")]["message"]
        assert "missing key 'proj_out.weight' (did you mean 'proj_out.weihgt'?)" in typo
        assert "did you mean" not in result[names.index("missing")]["message"]  # proj_out.bias is filled: not it
        assert "did you mean" not in result[names.index("unexpected")]["message"]


def renamed_checkpoint(tmp_path):
    """A checkpoint with prefixed keys, an extra key and no proj_out.bias, and the rules that load it."""
    model = tiny_models.build("SD3Transformer2DModel")
    model.save_pretrained(tmp_path / "m", safe_serialization=True)
    path = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(path))
    want = tensors["proj_out.weight"]
    changed = {f"model.{k}": v for k, v in tensors.items() if k != "proj_out.bias"}
    changed["model.ema_decay"] = torch.zeros(1)
    save_file(changed, str(path))
    rules = tmp_path / "sd3.toml"
    rules.write_text("""schema = 1

[[model]]
name = "sd3"
applies-to = "class == SD3Transformer2DModel"
shard = ["container == transformer_blocks and index is digit"]
allow-init = { "proj_out.bias" = "ones" }

[[model.rename]]
pattern = '^model\\.ema_decay$'
replace = ''

[[model.rename]]
pattern = '^model\\.'
replace = ''
""")
    kwargs = {"model_dir": str(tmp_path / "m"), "rules": str(rules)}
    return {"rename_weight": ("rank_checks:load_with_rules", dict(kwargs, tensor="proj_out.weight")),
            "rename_bias": ("rank_checks:load_with_rules", dict(kwargs, tensor="proj_out.bias"))}, want


def test_rename_drop_and_allow_init_while_loading(launched):
    want = launched[1]["renamed_checkpoint"]
    for result in checked(launched[0]["rename_weight"]):  # element by element: rows in the wrong order would fail
        assert torch.equal(torch.tensor(result["values"]).reshape(result["shape"]), want)
    for result in checked(launched[0]["rename_bias"]):
        assert result["shape"] == [4] and result["values"] == [1.0] * 4  # initialised to ones: 4 output channels


def test_initialisers_skip_meta_parameters_and_still_fill_real_tensors():
    """While a model is built, initialisers of meta parameters are skipped; buffers and plain tensors that
    __init__ fills in place keep their values."""
    from torch import nn

    from shardrules.loader.build import parameters_on_meta

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.register_buffer("scale", torch.zeros(3))
            nn.init.constant_(self.scale, 2.5)
            self.table = torch.zeros(2).fill_(7.0)
            self.noise = nn.init.normal_(torch.zeros(2), mean=5.0, std=0.0)

    with parameters_on_meta():
        net = Net()
    assert net.lin.weight.is_meta and net.lin.bias.is_meta
    assert torch.equal(net.scale, torch.full((3,), 2.5))
    assert torch.equal(net.table, torch.full((2,), 7.0))
    assert torch.equal(net.noise, torch.full((2,), 5.0))
