"""The commands at their edges: a reader that leaves early, versions, and numbers refused before any rank starts."""

from __future__ import annotations

import json
import sys

import pytest
import tiny_models

from shardrules.cli import main


def test_plan_into_a_pipe_closed_early_stops_quietly(tmp_path, monkeypatch):
    """``shardrules plan DIR | head -2``: past the pipe's buffer the reader is gone; no BrokenPipeError traceback."""
    import os

    config = dict(tiny_models.CONFIGS["WanTransformer3DModel"], num_layers=150)  # ~13 KB: past stdout's buffer
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    model.save_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(dict(json.loads((tmp_path / "config.json").read_text()),
                                                          **config)))
    read, write = os.pipe()
    os.close(read)  # the reader has gone, as head goes after its lines
    stdout = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["plan", str(tmp_path)]) == 141
        stdout.write("x" * 100_000)  # stdout now leads nowhere: nothing more can fail
        stdout.flush()
    finally:
        monkeypatch.undo()
        stdout.close()


def test_versions(capsys):
    from shardrules.lint.cli import main as lint

    with pytest.raises(SystemExit) as exit_code:
        main(["--version"])
    assert exit_code.value.code == 0 and capsys.readouterr().out.startswith("shardrules ")
    assert lint(["--version"]) == 0
    assert capsys.readouterr().out.startswith("rule-lint (shardrules) ")


@pytest.mark.parametrize("option, value, message", [
    ("--guidance", "nan", "must be a finite number, got nan"),
    ("--guidance", "inf", "must be a finite number, got inf"),
    ("--seed", str(2**64), "must be between 0 and 2**63 - 1"),
    ("--seed", "-1", "must be between 0 and 2**63 - 1"),
    ("--timeout", "1e14", "must be at most 604800 s"),
])
def test_numbers_every_rank_would_fail_on_are_refused_first(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_code:
        main(["run", str(tmp_path), option, value])
    assert exit_code.value.code == 2
    assert message in capsys.readouterr().err


def test_a_backend_this_machine_cannot_give_is_refused_with_2(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: nccl can start")
    torch.manual_seed(0)
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan", safe_serialization=True)
    assert main(["run", str(tmp_path / "wan"), "--backend", "nccl"]) == 2
    assert "error: --backend nccl needs GPUs; this machine has none" in capsys.readouterr().err


def test_every_error_the_package_raises_on_purpose_is_a_shardrules_error():
    from shardrules import errors

    for name in ("UsageError", "LaunchError", "RankFailure", "Interrupted", "SequenceParallelError"):
        assert issubclass(getattr(errors, name), errors.ShardRulesError), name


def test_a_rule_set_prints_as_a_summary():
    from shardrules import load_rules

    text = repr(load_rules())
    assert text.startswith("RuleSet(files=['shardrules/rules/defaults.toml'") and len(text) < 500


def test_plan_lists_every_error_of_a_rule_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = 1\n[[model]]\nname = "a"\napplies-to = "clas == X"\nshard = ["nme == a", '
                   '"index is digt"]\n[[model]]\nname = "b"\napplies-to = "class == Y"\nshard = ["depth > x"]\n')
    model = tiny_models.build("WanTransformer3DModel", device="meta")
    model.save_config(tmp_path / "wan")
    assert main(["plan", str(tmp_path / "wan"), "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert [line.removeprefix("error: ").split(": ")[0].removeprefix(str(bad)) for line in err.splitlines()
            if str(bad) in line] == [
        ":4:15", ":5:11", ":5:32", ":9:19"]


def test_dtype_takes_the_usual_short_names(tmp_path):
    from commands import cli

    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path)
    for short, name in [("bf16", "bfloat16"), ("fp16", "float16"), ("FP32", "float32"), ("half", "float16")]:
        result = cli("plan", str(tmp_path), "--dtype", short)
        assert result.returncode == 0 and result.stdout.startswith(f"dtype: {name} (--dtype)"), result.stderr
    result = cli("plan", str(tmp_path), "--dtype", "int8")
    assert result.returncode == 2 and "expected float32, bfloat16 or float16 (or fp32, bf16, fp16)" in result.stderr


def test_shard_outside_a_process_group_says_what_it_needs():
    from shardrules import ShardRulesError, load_rules, plan, shard

    model = tiny_models.build("WanTransformer3DModel", device="meta")
    with pytest.raises(ShardRulesError, match=r"shard\(\) needs a process group: call "
                                              r"torch.distributed.init_process_group\(\) first"):
        shard(model, plan(model, load_rules()))


def test_plan_of_a_config_with_its_dtype_is_quiet(tmp_path, recwarn):
    """diffusers warned that config.json's torch_dtype 'will be ignored' while the plan sizes in it."""
    import logging

    from commands import cli

    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, torch_dtype="bfloat16")))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("diffusers")  # diffusers' own loggers do not propagate to pytest's capture
    logger.addHandler(handler)
    try:
        result = cli("plan", str(tmp_path))
    finally:
        logger.removeHandler(handler)
    assert result.returncode == 0 and result.stdout.startswith("dtype: bfloat16 (config.json torch_dtype)")
    said = [r.getMessage() for r in records if r.levelno >= logging.WARNING] + [str(w.message) for w in recwarn]
    assert not [m for m in said if "will be ignored" in m or "deprecated" in m], said


def test_explain_says_why_a_module_is_or_is_not_a_unit(tmp_path):
    import tiny_pipelines
    from commands import cli

    from shardrules import load_rules, plan

    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path / "wan")
    expected = plan(model, load_rules())
    for name in ("blocks.0", "blocks.0.attn1", ""):
        result = cli("explain", str(tmp_path / "wan"), name)
        assert result.returncode == 0 and result.stdout == expected.explain(name) + "\n", result.stderr
    assert "diffusers.toml:" in cli("explain", str(tmp_path / "wan"), "blocks.1").stdout
    result = cli("explain", str(tmp_path / "wan"), "blocks.0.atn1")
    assert result.returncode == 2 and "did you mean 'blocks.0.attn1'?" in result.stderr

    folder = tiny_pipelines.flux(tmp_path)
    result = cli("explain", str(folder), "encoder.layers.1", "--component", "text_encoder")
    assert result.returncode == 0 and result.stdout.startswith("encoder.layers.1: explicit rule "), result.stderr
    result = cli("explain", str(folder), "x", "--component", "vae")
    assert result.returncode == 2 and "shards transformer, text_encoder, text_encoder_2" in result.stderr


def test_a_truncated_checkpoint_is_exit_2_from_plan_as_from_run(tmp_path):
    from commands import cli

    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path)
    path = next(tmp_path.glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:300])
    for command in ("plan", "run"):
        result = cli(command, str(tmp_path))
        assert result.returncode == 2 and "the file is truncated or not safetensors" in result.stderr, command
