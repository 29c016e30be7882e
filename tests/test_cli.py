"""``shardrules plan`` and ``shardrules demo`` as a user runs them."""

from __future__ import annotations

import json
import re

import tiny_models
from commands import cli


def run(*args, check=True):
    result = cli(*args)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def save_config(tmp_path, class_name):
    model = tiny_models.build(class_name, device="meta")
    model.save_config(tmp_path)
    return tmp_path


def test_plan_prints_a_table(tmp_path):
    out = run("plan", str(save_config(tmp_path, "FluxTransformer2DModel")), "--world-size", "2").stdout
    assert "FluxTransformer2DModel: 4 units chosen by explicit (model 'flux')" in out
    assert "single_transformer_blocks.1" in out and "diffusers.toml:9:11" in out
    assert "tried explicit: 4 units" in out


def test_plan_json(tmp_path):
    out = run("plan", str(save_config(tmp_path, "WanTransformer3DModel")), "--format", "json").stdout
    data = json.loads(out)
    assert data["source"] == "explicit" and [u["name"] for u in data["units"]] == ["blocks.0", "blocks.1"]
    units = sum(u["bytes_per_rank"] for u in data["units"])
    assert data["bytes_per_rank"] < units * 2 + data["root"]["bytes_per_rank"] * 2
    assert data["dtype_source"] == "no weights or config dtype: float32"
    block = tiny_models.build("WanTransformer3DModel").blocks[0]
    assert data["peak_unit"] == {"name": "blocks.0", "bytes_gathered": sum(4 * p.numel() for p in block.parameters())}
    assert 0 < data["root_share"] < 0.5


def test_plan_with_user_rules(tmp_path):
    model_dir = save_config(tmp_path / "m", "SanaTransformer2DModel")
    rules = tmp_path / "mine.toml"
    rules.write_text('schema = 1\n[resolution]\norder = ["common-numbered-block"]\n')
    out = run("plan", str(model_dir), "--rules", str(rules)).stdout
    assert "chosen by common-numbered-block" in out


def test_plan_reports_a_bad_rule_file(tmp_path):
    model_dir = save_config(tmp_path / "m", "SanaTransformer2DModel")
    rules = tmp_path / "bad.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "s"\napplies-to = "clas == X"\nshard = ["name == a"]\n')
    result = run("plan", str(model_dir), "--rules", str(rules), check=False)
    assert result.returncode == 2  # an input error, as argparse's
    assert f"{rules}:4:15: unknown field 'clas'" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_missing_folder(tmp_path):
    result = run("plan", str(tmp_path / "nowhere"), check=False)
    assert result.returncode == 2 and "nowhere: no such folder" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run("plan", str(tmp_path / "empty"), check=False)
    assert result.returncode == 2 and "config.json not found" in result.stderr
    (tmp_path / "empty" / "config.json").write_text("{}")
    result = run("plan", str(tmp_path / "empty" / "config.json"), check=False)  # a file, not the folder
    assert result.returncode == 2 and "is a file; give the model folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_bare_shardrules_lists_the_commands_and_help_gives_defaults():
    result = run(check=False)
    assert result.returncode == 2 and all(c in result.stdout for c in ("plan", "run", "demo"))
    helptext = run("run", "--help").stdout.split("options:", 1)[1]
    for option in ("--nproc N", "--steps K", "--seed SEED", "--batch BATCH", "--split", "--timeout SECONDS"):
        block = helptext.split(option, 1)[1].split("\n  --", 1)[0]
        assert "default" in block, option


def test_plan_sizes_in_the_models_dtype_and_counts_persistent_buffers(tmp_path):
    import torch

    model = tiny_models.build("SD3Transformer2DModel")
    pos_embed = model.pos_embed.pos_embed  # a persistent buffer: saved with the weights, whole on every rank
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    out = run("plan", str(tmp_path / "bf16")).stdout
    assert out.startswith("dtype: bfloat16 (the checkpoint's)\n")
    mib = f"{pos_embed.numel() * 2 / 2**20:.2f}"
    assert re.search(rf"<buffers>\s+{re.escape(mib)}\s+persistent buffers, whole on every rank", out), out
    data = json.loads(run("plan", str(tmp_path / "bf16"), "--format", "json").stdout)
    assert data["dtype"] == "bfloat16" and data["buffers"]["bytes_per_rank"] == pos_embed.numel() * 2
    as_float32 = json.loads(run("plan", str(tmp_path / "bf16"), "--format", "json", "--dtype", "float32").stdout)
    assert as_float32["buffers"]["bytes_per_rank"] == pos_embed.numel() * 4
    assert as_float32["bytes_per_rank"] == 2 * data["bytes_per_rank"]
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(dict(config, torch_dtype="float16")))
    assert run("plan", str(tmp_path / "cfg")).stdout.startswith("dtype: float16 (config.json torch_dtype)\n")
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(config))  # no weights, no dtype: float32
    assert run("plan", str(tmp_path / "cfg")).stdout.startswith("dtype: float32 (no weights or config dtype")
