"""Hostile or broken model folders: nothing is read outside the folder named, nothing blocks, errors are typed."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save_file

from shardrules import CheckpointError, RuleFileError, load_rules
from shardrules.loader.build import model_class, read_config
from shardrules.loader.checkpoint import Checkpoint, read_header
from shardrules.loader.pipeline import PipelineFolder


def index(folder, weight_map):
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


@pytest.mark.parametrize("name", ["../outside/model.safetensors", "/etc/passwd", "a/../../x.safetensors", "",
                                  7])
def test_an_index_cannot_name_a_file_outside_the_folder(tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    save_file({"w": torch.zeros(2)}, str(outside / "model.safetensors"))
    folder = tmp_path / "model"
    folder.mkdir()
    index(folder, {"w": name})
    with pytest.raises(CheckpointError, match="points outside|is not a file name"):
        Checkpoint(folder)


def test_fifos_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="is a FIFO"):
        Checkpoint(tmp_path)
    os.mkfifo(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="the model config is a FIFO"):
        read_config(tmp_path)
    os.mkfifo(tmp_path / "model_index.json")
    with pytest.raises(CheckpointError, match="the pipeline index is a FIFO"):
        PipelineFolder.read(tmp_path)
    os.mkfifo(tmp_path / "rules.toml")
    with pytest.raises(RuleFileError, match="not a regular file"):
        load_rules(tmp_path / "rules.toml")


def test_a_device_is_not_a_rule_file():
    with pytest.raises(RuleFileError, match="not a regular file"):
        load_rules("/dev/zero")


@pytest.mark.parametrize("component", ["transformer/../../../x", "../x", "a/b"])
def test_a_pipeline_component_cannot_climb_out(tmp_path, component):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "X", component: ["diffusers", "Y"]}))
    with pytest.raises(CheckpointError, match="not a plain folder name|points outside"):
        PipelineFolder.read(tmp_path)


@pytest.mark.parametrize("info", [
    {"dtype": "F32", "shape": [32], "data_offsets": [0.9, 128.9]},
    {"dtype": "F32", "shape": [32], "data_offsets": ["0", "128"]},
    {"dtype": "F32", "shape": ["32"], "data_offsets": [0, 128]},
    {"dtype": "F32", "shape": [32.7], "data_offsets": [0, 128]},
    {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
])
def test_header_values_must_be_integers(tmp_path, info):
    header = json.dumps({"w": info}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(128))
    with pytest.raises(CheckpointError, match="malformed header entry"):
        read_header(tmp_path / "m.safetensors")


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "not a JSON object"), ('"x"', "not a JSON object"),
    ("[" * 100000, "not JSON this loader reads|not valid JSON"), ('{"a": ' + "9" * 5000 + "}", "digits"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"_class_name": 5}', "not a class name"), ('{"architectures": {"a": 1}}', "not a list of class names"),
])
def test_broken_configs_give_typed_errors(tmp_path, text, message):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        model_class(read_config(tmp_path), str(tmp_path / "config.json"))
    (tmp_path / "config.json").write_bytes(b'{"_class_name": "\xff"}')
    with pytest.raises(CheckpointError, match="the model config is not JSON this loader reads"):
        read_config(tmp_path)


def test_a_config_asking_for_huge_widths_is_refused_without_allocating(tmp_path, monkeypatch):
    """Parameters are built on meta from the start; a computed tensor past a quarter of the available memory is a
    CheckpointError, sized on meta before anything is allocated."""
    import json
    import resource

    import tiny_models

    from shardrules.loader import build
    from shardrules.loader.build import build_model

    tiny_models.build("SanaTransformer2DModel", device="meta").save_config(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    monkeypatch.setattr(build, "available_memory", lambda: 4 * 2**30)  # a quarter: 1 GiB per computed tensor
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for heads, words in [(2**20, "too large to size"), (2**15, r"of shape \[536870912\] \(2\.0 GiB\)")]:
        (tmp_path / "config.json").write_text(json.dumps(dict(config, num_attention_heads=heads,
                                                              attention_head_dim=2**14, cross_attention_dim=8)))
        with pytest.raises(CheckpointError, match=words):
            build_model(tmp_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024  # KiB: nothing sizeable


@pytest.mark.parametrize("literal", ["9" * 5000, "Infinity", "NaN"])
def test_index_files_with_literals_json_cannot_hold_are_checkpoint_errors(tmp_path, literal):
    """Found by bench/fuzz_checkpoints.py: the safetensors index and model_index.json escaped as ValueError."""
    from shardrules.loader.pipeline import PipelineFolder

    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": ' + literal + "}}")
    with pytest.raises(CheckpointError, match="the safetensors index is not JSON this loader reads"):
        Checkpoint(tmp_path)
    (tmp_path / "model_index.json").write_text('{"_class_name": "X", "transformer": ' + literal + "}")
    with pytest.raises(CheckpointError, match="the pipeline index is not JSON this loader reads"):
        PipelineFolder.read(tmp_path)


@pytest.mark.parametrize("name", ["FlowMatchEulerDiscreteScheduler", "DiffusionPipeline", "logging"])
def test_a_class_that_is_not_a_model_is_refused_before_building(tmp_path, name):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": name}))
    with pytest.raises(CheckpointError, match=f"'.*{name}' is not a model"):
        model_class(read_config(tmp_path), str(tmp_path / "config.json"))


def test_a_config_naming_code_in_the_folder_never_runs_it(tmp_path, capsys, monkeypatch):
    """A transformers config.json with an unknown model_type and an auto_map pointing at a Python file of the folder:
    plan and rule-lint --model build from the class's own config class, never asking on the terminal and never
    importing the file (with 'y' waiting on stdin, as a user would answer the prompt)."""
    import io

    import tiny_encoders

    from shardrules.cli import main as shardrules
    from shardrules.lint.cli import main as rule_lint

    folder = tmp_path / "encoder"
    tiny_encoders.build("T5EncoderModel").save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "from transformers import T5Config\n"
                                    "class EvilConfig(T5Config):\n    model_type = 'evil'\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\ny\ny\n"))
    monkeypatch.chdir(tmp_path)
    assert shardrules(["plan", str(folder)]) == 0
    assert rule_lint(["--model", str(folder)]) in (0, 1)
    out = capsys.readouterr()
    assert "custom code" not in out.out + out.err
    assert not marker.exists()
    assert "T5EncoderModel: 3 units chosen by explicit (model 't5-encoder')" in out.out


def test_a_json_file_over_the_limit_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    """A config.json larger than the limit (a sparse file costs no disk) is refused after reading one byte past it."""
    from shardrules.loader import paths

    monkeypatch.setattr(paths, "MAX_JSON_BYTES", 1 << 20)
    with open(tmp_path / "config.json", "wb") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse
    with pytest.raises(CheckpointError, match="config.json: the model config is larger than 1 MiB"):
        read_config(tmp_path)
