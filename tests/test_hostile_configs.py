"""What a hostile or broken folder can make the loader do: swap a file for a FIFO after it was checked, name a
transformer as its scheduler, ask for ten million layers, send escape sequences to the terminal, repeat a tensor in a
header. Each is refused with one typed line, without blocking, building or printing what it asks."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time

import pytest
import tiny_models
import torch
from safetensors.torch import save_file

from shardrules import CheckpointError, load_rules
from shardrules.errors import RuleError
from shardrules.files import NotRegularFile, open_regular
from shardrules.loader.build import build_model, load_plain
from shardrules.loader.checkpoint import Checkpoint, read_header
from shardrules.loader.pipeline import PipelineFolder, scheduler_config


def finishes(call, seconds: float = 10.0):
    """The outcome of ``call()`` in a thread (a value or the exception), failing the test if it blocks."""
    outcome: list = []

    def target():
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"blocked for {seconds} s"
    return outcome[0]


def test_a_file_swapped_for_a_fifo_after_its_header_was_read_is_refused_without_blocking(tmp_path):
    save_file({"w": torch.arange(4.0)}, str(tmp_path / "model.safetensors"))
    checkpoint = Checkpoint(tmp_path)  # the header is read and checked here
    os.remove(tmp_path / "model.safetensors")
    os.mkfifo(tmp_path / "model.safetensors")  # swapped before the rows are read
    error = finishes(lambda: checkpoint.read("w"))
    assert isinstance(error, CheckpointError) and "a FIFO" in str(error), error


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir])
def test_open_regular_checks_the_file_it_opened(tmp_path, make):
    make(tmp_path / "x")
    error = finishes(lambda: open_regular(tmp_path / "x"))
    assert isinstance(error, NotRegularFile if make is os.mkfifo else IsADirectoryError), error
    (tmp_path / "y").write_bytes(b"data")
    with open_regular(tmp_path / "y") as f:
        assert f.read() == b"data"


def test_a_fifo_among_a_vaes_files_is_refused_without_blocking(tmp_path):
    """The VAE (loaded whole, for the image in seeded-latents mode) goes through the checked reader."""
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path)
    loaded = load_plain(tmp_path)
    assert sum(p.numel() for p in loaded.parameters()) > 0
    os.mkfifo(tmp_path / "extra.safetensors")
    error = finishes(lambda: load_plain(tmp_path))
    assert isinstance(error, CheckpointError) and "FIFO" in str(error), error


def scheduler_folder(root, class_name="FlowMatchEulerDiscreteScheduler", **config):
    (root / "scheduler").mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline",
                                                       "scheduler": ["diffusers", class_name]}))
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, **config}))
    return PipelineFolder.read(root).get("scheduler")


@pytest.mark.parametrize("index_class, config, words", [
    ("WanTransformer3DModel", {}, "'WanTransformer3DModel', which is not a diffusers .* scheduler"),
    ("FlowMatchEulerDiscreteScheduler", {"_class_name": "AutoencoderKL"}, "'_class_name' is 'AutoencoderKL'"),
    ("FlowMatchEulerDiscreteScheduler", {"_class_name": "logging"}, "'logging', which is not"),
    ("FlowMatchEulerDiscreteScheduler", {"num_train_timesteps": 10**8}, "num_train_timesteps is 100000000"),
    ("FlowMatchEulerDiscreteScheduler", {"num_train_timesteps": "1000"}, "num_train_timesteps is '1000'"),
    ("FlowMatchEulerDiscreteScheduler", {"trained_betas": [0.1] * 200_001}, "'trained_betas' lists 200,001"),
])
def test_a_scheduler_is_a_diffusers_scheduler_with_bounded_tables(tmp_path, index_class, config, words):
    part = scheduler_folder(tmp_path, index_class, **config)
    with pytest.raises(CheckpointError, match=words):
        scheduler_config(part)


def test_real_scheduler_configs_pass(tmp_path):
    import diffusers

    cls, config = scheduler_config(scheduler_folder(tmp_path, shift=3.0))
    assert cls is diffusers.FlowMatchEulerDiscreteScheduler and cls.from_config(config).config.shift == 3.0
    # diffusers writes -Infinity into DPM-Solver configs (lambda_min_clipped): JSON's only infinity that is real
    diffusers.DPMSolverMultistepScheduler().save_config(tmp_path / "scheduler")
    assert "-Infinity" in (tmp_path / "scheduler" / "scheduler_config.json").read_text()
    part = PipelineFolder.read(tmp_path).get("scheduler")
    cls, config = scheduler_config(part.__class__(part.name, part.library, "DPMSolverMultistepScheduler", part.folder))
    assert cls.from_config(config).config.lambda_min_clipped == float("-inf")


def test_load_pipeline_refuses_a_transformer_named_as_the_scheduler_before_loading(tmp_path):
    import tiny_pipelines

    from shardrules import load_pipeline

    folder = tiny_pipelines.wan(tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "WanTransformer3DModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="which is not a diffusers"):
        load_pipeline(folder)  # refused before any process group is needed


def wan_config(tmp_path, **change):
    tiny_models.build("WanTransformer3DModel", device="meta").save_config(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, **change)))
    return tmp_path


def test_ten_million_layers_are_refused_at_once(tmp_path):
    began = time.perf_counter()
    with pytest.raises(CheckpointError, match="'num_layers' is 10,000,000; the builder takes at most 1,000"):
        build_model(wan_config(tmp_path, num_layers=10**7), meta="all")
    assert time.perf_counter() - began < 5


def test_a_build_past_the_module_bound_stops(tmp_path, monkeypatch):
    """A count under any key the name check does not know still stops the build (the bound lowered here)."""
    from shardrules.loader import build

    monkeypatch.setattr(build, "MAX_MODULES", 50)
    with pytest.raises(CheckpointError, match="builds more than 50 modules"):
        build_model(wan_config(tmp_path, num_layers=40), meta="all")
    monkeypatch.undo()
    assert len(build_model(tmp_path, meta="all").blocks) == 40


def test_a_pipeline_listing_hundreds_of_components_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "WanPipeline", **{f"text_encoder_{i}": ["transformers", "UMT5EncoderModel"]
                                          for i in range(300)}}))
    with pytest.raises(CheckpointError, match="more than 64 components"):
        PipelineFolder.read(tmp_path)


def test_a_pipeline_config_value_of_two_items_is_not_read_as_a_component(tmp_path):
    """diffusers keeps a pipeline's own config in model_index.json too (Krea 2: the text encoder's layers it stacks,
    [1, 2] in a two-layer model); such a value was refused as a malformed component, and the folder with it. A pair
    with a string in it is still checked as one."""
    (tmp_path / "model_index.json").write_text(json.dumps(
        {"_class_name": "Krea2Pipeline", "vae": ["diffusers", "AutoencoderKLQwenImage"], "is_distilled": False,
         "text_encoder_select_layers": [1, 2]}))
    assert [c.name for c in PipelineFolder.read(tmp_path).components] == ["vae"]
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X", "vae": ["diffusers", 2]}))
    with pytest.raises(CheckpointError, match="not a library and a class"):
        PipelineFolder.read(tmp_path)


@pytest.mark.parametrize("change, words", [
    ({"num_layers": "abc"}, "cannot build WanTransformer3DModel from this config: TypeError"),
    ({"num_attention_heads": 0}, "cannot build WanTransformer3DModel from this config: ZeroDivisionError"),
    ({"patch_size": "x"}, "cannot build WanTransformer3DModel from this config"),
    ({"torch_dtype": "int8"}, "torch_dtype is 'int8', not a floating-point torch dtype"),
    ({"dtype": "os.system"}, "dtype is 'os.system', not a floating-point torch dtype"),
])
def test_a_config_the_class_cannot_take_is_one_typed_line(tmp_path, change, words):
    from shardrules.loader.planning import plan_folder

    with pytest.raises(CheckpointError, match=words):
        plan_folder(wan_config(tmp_path, **change), load_rules(), world_size=2)


def test_a_header_naming_one_tensor_twice_is_refused(tmp_path):
    """The safetensors library refuses such a file; json.loads alone would keep the last entry."""
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [%d, %d]}'
    header = ('{"w": ' + entry % (0, 4) + ', "w": ' + entry % (4, 8) + "}").encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CheckpointError, match="header names 'w' twice"):
        read_header(tmp_path / "m.safetensors")


def test_an_index_spelling_one_file_two_ways_reads_it_once(tmp_path):
    save_file({"a": torch.ones(2), "b": torch.zeros(3)}, str(tmp_path / "x.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "x.safetensors", "b": "./x.safetensors"}}))
    with Checkpoint(tmp_path) as checkpoint:
        assert len(checkpoint.files) == 1 and torch.equal(checkpoint.read("b"), torch.zeros(3))


ESCAPE = "\x1b[2J\x1b]0;owned\x07"


def test_names_from_files_reach_the_terminal_escaped(tmp_path):
    entry = {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}  # 8 bytes for 12: refused, naming the tensor
    header = json.dumps({f"w{ESCAPE}\nrank 1 failed: forged": entry}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CheckpointError) as caught:
        read_header(tmp_path / "m.safetensors")
    text = str(caught.value)
    assert "\\x1b[2J" in text and "\x1b" not in text and "\n" not in text and "\x07" not in text
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X", f"vae{ESCAPE}": ["diffusers", "Y"]}))
    with pytest.raises(CheckpointError, match="not a plain folder name") as caught:
        PipelineFolder.read(tmp_path)
    assert "\x1b" not in str(caught.value)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X", "vae": ["diffusers", ESCAPE]}))
    with pytest.raises(CheckpointError, match="not a library and a class") as caught:
        PipelineFolder.read(tmp_path)
    assert "\x1b" not in str(caught.value)


def test_a_rule_error_shows_a_window_of_a_long_line(tmp_path):
    """One error on a line of a megabyte printed two megabytes from plan (an expression stops at 8,192 characters;
    a comment does not)."""
    path = tmp_path / "rules.toml"
    path.write_text(f'schema = 1\n[[model]]\nname = "x"\napplies-to = "class == \'X\'"\n\n'
                    f'[[model.shard]]\nmatch = "name == \'{"a" * 8000}\' and zzz == 1"  # {"b" * 1_000_000}\n')
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    text = str(caught.value)
    assert len(text) < 1000
    message, line, caret = text.splitlines()
    assert "unknown field 'zzz'" in message and line.startswith("  …")
    assert line[caret.index("^"):].startswith("zzz")  # the caret still points at the token


def test_a_rule_file_with_escape_sequences_is_shown_escaped(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(f'schema = 1\n[[model]]\nname = "x{ESCAPE}"\n')
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    text = str(caught.value)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text
    assert len(text.splitlines()) == 3  # the message, the line, the caret


def test_a_fifo_in_a_folder_diffusers_loads_is_refused_before_loading(tmp_path):
    import tiny_pipelines

    from shardrules import load_pipeline

    folder = tiny_pipelines.wan(tmp_path)
    os.mkfifo(folder / "vae" / "diffusion_pytorch_model.fp16.safetensors")
    error = finishes(lambda: load_pipeline(folder))
    assert isinstance(error, CheckpointError) and "a FIFO" in str(error), error
    shutil.rmtree(folder)


def test_a_fifo_as_the_scheduler_config_is_refused_without_blocking(tmp_path):
    """run PIPELINE hung on it forever despite --timeout."""
    part = scheduler_folder(tmp_path)
    os.remove(part.folder / "scheduler_config.json")
    os.mkfifo(part.folder / "scheduler_config.json")
    error = finishes(lambda: scheduler_config(part))
    assert isinstance(error, CheckpointError) and "the scheduler config is a FIFO" in str(error), error
