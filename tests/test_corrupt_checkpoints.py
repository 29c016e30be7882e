"""Corrupt checkpoints (SPEC §5): each fault is a CheckpointError naming file and tensor, on every rank."""

from __future__ import annotations

import json
import struct

import pytest
import tiny_models
from multirank import run_ranks, values
from safetensors.torch import load_file, save_file

from shardrules.errors import CheckpointError
from shardrules.loader.checkpoint import Checkpoint

FILE = "diffusion_pytorch_model.safetensors"


def write_raw(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def read_raw(path) -> tuple[dict, bytes]:
    blob = path.read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """Copies of a tiny Wan checkpoint, each with one fault: (folder, tensor it names or None, words)."""
    root = tmp_path_factory.mktemp("corrupt")
    model = tiny_models.build("WanTransformer3DModel")
    good = root / "good"
    model.save_pretrained(good, safe_serialization=True)
    config = (good / "config.json").read_text()
    header, data = read_raw(good / FILE)
    names = [n for n in header if n != "__metadata__"]
    last = max(names, key=lambda n: header[n]["data_offsets"][1])
    second = sorted(names, key=lambda n: header[n]["data_offsets"][0])[1]

    def folder(name):
        path = root / name
        path.mkdir()
        (path / "config.json").write_text(config)
        return path

    out = {}
    path = folder("truncated")
    (path / FILE).write_bytes((good / FILE).read_bytes()[:-64])
    out["truncated"] = (path, last, "past the end of the file")

    path = folder("bad-json")
    blob = (good / FILE).read_bytes()
    (path / FILE).write_bytes(blob[:8] + b"{not json" + blob[17:])
    out["bad-json"] = (path, None, "header is not valid JSON")

    path = folder("offsets-past-end")
    bad = json.loads(json.dumps(header))
    bad[last]["data_offsets"][1] += 4096
    bad[last]["data_offsets"][0] += 4096
    write_raw(path / FILE, bad, data)
    out["offsets-past-end"] = (path, last, "past the end of the file")

    path = folder("overlapping")
    bad = json.loads(json.dumps(header))
    first = min(names, key=lambda n: header[n]["data_offsets"][0])
    size = header[second]["data_offsets"][1] - header[second]["data_offsets"][0]
    bad[second]["data_offsets"] = [header[first]["data_offsets"][0], header[first]["data_offsets"][0] + size]
    write_raw(path / FILE, bad, data)
    out["overlapping"] = (path, second, "overlap")

    path = folder("bytes-mismatch")
    bad = json.loads(json.dumps(header))
    bad[second]["shape"] = [dim + 1 for dim in bad[second]["shape"]]
    write_raw(path / FILE, bad, data)
    out["bytes-mismatch"] = (path, second, "needs")

    path = folder("missing-shard")
    state = load_file(str(good / FILE))
    half = dict(list(state.items())[: len(state) // 2])
    save_file(half, str(path / "part-1.safetensors"))
    index = {"metadata": {}, "weight_map": {**{k: "part-1.safetensors" for k in half},
                                            **{k: "part-2.safetensors" for k in state if k not in half}}}
    (path / f"{FILE}.index.json").write_text(json.dumps(index))
    out["missing-shard"] = (path, None, "part-2.safetensors, which does not exist")

    path = folder("duplicate")
    key = names[0]
    save_file(state, str(path / "part-1.safetensors"))
    save_file({key: state[key]}, str(path / "part-2.safetensors"))
    index = {"metadata": {}, "weight_map": {**{k: "part-1.safetensors" for k in state},
                                            key: "part-2.safetensors"}}
    (path / f"{FILE}.index.json").write_text(json.dumps(index))
    out["duplicate"] = (path, key, "is in two files")
    return out


@pytest.mark.parametrize("fault", ["truncated", "bad-json", "offsets-past-end", "overlapping", "bytes-mismatch",
                                   "missing-shard", "duplicate"])
def test_fault_is_a_checkpoint_error(faults, fault):
    path, tensor, words = faults[fault]
    with pytest.raises(CheckpointError) as info:
        Checkpoint(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)
    if tensor is not None:
        assert info.value.tensor == tensor and tensor in str(info.value)


@pytest.mark.multirank
def test_every_rank_raises_and_none_returns_a_model(faults):
    names = list(faults)
    results = values(run_ranks("rank_checks:expect_errors", timeout=180,
                               cases=[{"model_dir": str(faults[n][0])} for n in names]))
    for rank, result in enumerate(results):
        for name, got in zip(names, result, strict=True):
            path, tensor, words = faults[name]
            assert got["type"] == "CheckpointError", (rank, name, got)
            assert words in got["message"] and str(path) in got["message"], (rank, name, got)
            assert got["tensor"] == tensor, (rank, name, got)
