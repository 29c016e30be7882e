"""``shardrules run`` and ``shardrules demo`` end to end, as a user runs them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import diffusers
import pytest
import tiny_models
import torch
from commands import children, cli, shardrules
from safetensors.torch import load_file

from shardrules import DenoisingRunner
from shardrules.runner.inputs import example_inputs


@pytest.mark.multirank
def test_demo_passes(tmp_path):
    result = shardrules("demo", env={"SHARDRULES_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "4 units chosen by explicit (model 'flux')" in result.stdout
    assert "leaked semaphore" not in result.stderr, result.stderr  # rank processes leave nothing behind


@pytest.mark.multirank
def test_the_pipeline_demo_writes_a_pipeline_that_runs_from_a_prompt(tmp_path):
    """demo --pipeline wan: the folder is a diffusers pipeline (diffusers loads it), run sharded from a prompt through
    the pipeline's own __call__ and compared with diffusers' own pipeline, which the test checks again itself."""
    import numpy as np
    from commands import cli
    from PIL import Image, ImageSequence

    result = cli("demo", "--pipeline", "wan", "--out", str(tmp_path), "--prompt", "a blue car")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WanPipeline: sharded transformer, text_encoder" in result.stdout
    assert "max pixel difference 0/255 (tolerance 1): PASS" in result.stdout
    assert f"video written to {tmp_path / 'wan.gif'}" in result.stdout
    plain = diffusers.DiffusionPipeline.from_pretrained(tmp_path / "wan-pipeline")
    video = plain(prompt="a blue car", num_inference_steps=3, guidance_scale=4.0, height=16, width=16, num_frames=5,
                  max_sequence_length=8, output_type="np", generator=torch.Generator().manual_seed(0)).frames[0]
    with Image.open(tmp_path / "wan.gif") as gif:
        written = np.stack([np.asarray(f.convert("RGB"), dtype=np.int16) for f in ImageSequence.Iterator(gif)])
    assert written.shape == video.shape and np.abs(written - np.round(video * 255)).max() <= 1
    assert "run it again: shardrules run " in result.stdout


def test_the_pipeline_demo_options_need_pipeline(tmp_path):
    from commands import cli

    result = cli("demo", "--out", str(tmp_path))
    assert result.returncode == 2 and "--out needs --pipeline" in result.stderr


def test_the_demo_writes_its_weights_once(tmp_path, monkeypatch):
    """The second demo finds the weights of the first (no second run of the ranks is needed to see it)."""
    from shardrules.demo import demo_model_dir

    monkeypatch.setenv("SHARDRULES_CACHE", str(tmp_path))
    folder = demo_model_dir()
    written = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert any(p.suffix == ".safetensors" for p in written)
    assert demo_model_dir() == folder and {p: p.stat().st_mtime_ns for p in folder.iterdir()} == written


def unsharded_latents(model, steps: int, guidance: float, seed: int) -> torch.Tensor:
    """What ``shardrules run`` computes, by the unsharded model in this process."""
    example = example_inputs(model, seed=seed)
    return DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=steps, guidance_scale=guidance, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)


@pytest.mark.multirank
def test_run_writes_the_latents_of_the_unsharded_loop(tmp_path):
    torch.manual_seed(0)
    model = tiny_models.build("SanaTransformer2DModel")
    model.save_pretrained(tmp_path / "sana", safe_serialization=True)
    # a scheduler beside the named folder is outside it: never read (it would change the latents)
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(
        '{"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 7.0}')
    out = tmp_path / "latents.safetensors"
    result = cli("run", str(tmp_path / "sana"), "--nproc", "2", "--steps", "3", "--guidance", "4.5",
                        "--seed", "7", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "SanaTransformer2DModel: 2 units chosen by explicit (model 'sana')" in result.stdout
    assert "split: guidance (auto: the guided and unguided forwards on different ranks)" in result.stdout
    assert "rank 0: load" in result.stdout and "rank 1: load" in result.stdout and "ms/step" in result.stdout
    want = unsharded_latents(model, steps=3, guidance=4.5, seed=7)
    got = load_file(str(out))["latents"]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_run_refuses_a_truncated_checkpoint_before_starting_ranks(tmp_path):
    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path, safe_serialization=True)
    path = next(tmp_path.glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    result = cli("run", str(tmp_path), "--nproc", "2", "--steps", "1")
    assert result.returncode == 2
    assert re.fullmatch(r"error: .*diffusion_pytorch_model.safetensors: tensor 'scale_shift_table' .*the file is "
                        r"truncated\n", result.stderr), result.stderr  # one message, no rank started
    assert "backend:" not in result.stdout


@pytest.mark.multirank
def test_a_failure_inside_the_ranks_is_reported_once(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path, safe_serialization=True)
    path = next(tmp_path.glob("*.safetensors"))
    tensors = load_file(str(path))
    del tensors["scale_shift_table"]  # found when the ranks match the checkpoint to the model
    save_file(tensors, str(path), metadata={"format": "pt"})
    result = cli("run", str(tmp_path), "--nproc", "2", "--steps", "1")
    assert result.returncode == 1
    assert result.stderr.count("missing key 'scale_shift_table'") == 1, result.stderr
    assert re.search(r"^error: rank [01] failed: CheckpointError: ", result.stderr, re.M), result.stderr
    assert re.search(r"^  \(rank [01]: the same\)$", result.stderr, re.M), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.multirank
def test_run_in_bfloat16_on_float32_inputs(tmp_path):
    torch.manual_seed(0)
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan", safe_serialization=True)
    out = tmp_path / "latents.safetensors"
    result = cli("run", str(tmp_path / "wan"), "--nproc", "2", "--steps", "2", "--guidance", "3",
                        "--dtype", "bfloat16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "kept in float32" not in result.stdout + result.stderr
    got = load_file(str(out))["latents"]
    assert got.isfinite().all() and got.abs().max() > 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.multirank
def test_run_under_torchrun_on_two_nodes_equals_one_process(tmp_path):
    """Two torchrun launches (--nnodes 2, one rank each) as on two machines: gloo, said once by rank 0 alone, the
    latents of the unsharded loop."""
    torch.manual_seed(0)
    model = tiny_models.build("SanaTransformer2DModel")
    model.save_pretrained(tmp_path / "sana", safe_serialization=True)
    port = str(free_port())
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")  # SIGABRT prints every thread's stack
    logs = [(tmp_path / f"node{node}.out", tmp_path / f"node{node}.err") for node in (0, 1)]
    launches = []
    for node, (out, err) in enumerate(logs):
        with open(out, "w") as stdout, open(err, "w") as stderr:  # files, never pipes: a full pipe would stall a node
            launches.append(subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
                 "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port, "-m", "shardrules.cli",
                 "run", str(tmp_path / "sana"), "--steps", "2", "--guidance", "4",
                 "--out", str(tmp_path / f"node{node}.safetensors")],
                stdout=stdout, stderr=stderr, text=True, env=env))
    deadline = time.monotonic() + 240
    while any(p.poll() is None for p in launches) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in launches:
        if p.poll() is None:  # say where it hangs: the agent's and its worker's stacks go to the node's stderr
            for pid in [*children(p.pid), p.pid]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGABRT)
            time.sleep(2)
            p.kill()
            p.wait()
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    for node, (p, (stdout, stderr)) in enumerate(zip(launches, outputs, strict=True)):
        assert p.returncode == 0, f"node {node} (exit {p.returncode}):\n{stdout[-1500:]}\n{stderr[-3000:]}"
    assert outputs[0][0].count("backend: gloo on the CPU") == 1 and "backend:" not in outputs[1][0]
    assert "rank 1: load" in outputs[0][0] and "world size 2" in outputs[0][0]
    assert outputs[0][0].count("SanaTransformer2DModel: 2 units chosen by explicit") == 1  # rank 0 prints
    assert "units chosen" not in outputs[1][0]
    assert not any("terminate called" in stderr for _, stderr in outputs)
    got = load_file(str(tmp_path / "node0.safetensors"))["latents"]
    assert torch.allclose(got, unsharded_latents(model, steps=2, guidance=4, seed=0), atol=1e-5)

def test_part_of_torchruns_variables_is_an_error(tmp_path):
    tiny_models.build("SanaTransformer2DModel").save_pretrained(tmp_path, safe_serialization=True)
    result = cli("run", str(tmp_path), "--steps", "1", env={"RANK": "0", "WORLD_SIZE": "2"})
    assert result.returncode == 2  # refused before any rank starts
    assert "RANK, WORLD_SIZE set but not LOCAL_RANK" in result.stderr and "Traceback" not in result.stderr
