"""``shardrules run`` and ``shardrules demo`` end to end, as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

import diffusers
import tiny_models
from commands import shardrules
from shardrules import DenoisingRunner
from shardrules.runner.inputs import example_inputs


def test_demo_passes(tmp_path):
    began = time.monotonic()
    result = shardrules("demo", env={"SHARDRULES_CACHE": str(tmp_path)})
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "4 units chosen by explicit (model 'flux')" in result.stdout
    assert "leaked semaphore" not in result.stderr, result.stderr  # rank processes leave nothing behind
    print(f"shardrules demo: {elapsed:.1f} s with a cold cache")
    again = shardrules("demo", env={"SHARDRULES_CACHE": str(tmp_path)})  # the weights are written once
    assert again.returncode == 0 and "PASS" in again.stdout


def test_run_writes_the_latents_of_the_unsharded_loop(tmp_path):
    torch.manual_seed(0)
    model = tiny_models.build("SanaTransformer2DModel")
    model.save_pretrained(tmp_path / "sana", safe_serialization=True)
    out = tmp_path / "latents.safetensors"
    result = shardrules("run", str(tmp_path / "sana"), "--nproc", "2", "--steps", "3", "--guidance", "4.5",
                        "--seed", "7", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "SanaTransformer2DModel: 2 units chosen by explicit (model 'sana')" in result.stdout
    assert "split: guidance" in result.stdout
    assert "rank 0: load" in result.stdout and "rank 1: load" in result.stdout and "ms/step" in result.stdout
    example = example_inputs(model, seed=7)
    want = DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=3, guidance_scale=4.5, model_kwargs=example.model_kwargs,
        negative_model_kwargs=example.negative_model_kwargs)
    got = load_file(str(out))["latents"]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_run_refuses_a_truncated_checkpoint_before_starting_ranks(tmp_path):
    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path, safe_serialization=True)
    path = next(tmp_path.glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    result = shardrules("run", str(tmp_path), "--nproc", "2", "--steps", "1")
    assert result.returncode == 2
    assert re.fullmatch(r"error: .*diffusion_pytorch_model.safetensors: tensor 'scale_shift_table' .*the file is "
                        r"truncated\n", result.stderr), result.stderr  # one message, no rank started
    assert "backend:" not in result.stdout


def test_a_failure_inside_the_ranks_is_reported_once(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path, safe_serialization=True)
    path = next(tmp_path.glob("*.safetensors"))
    tensors = load_file(str(path))
    del tensors["scale_shift_table"]  # found when the ranks match the checkpoint to the model
    save_file(tensors, str(path), metadata={"format": "pt"})
    result = shardrules("run", str(tmp_path), "--nproc", "2", "--steps", "1")
    assert result.returncode == 1
    assert result.stderr.count("missing key 'scale_shift_table'") == 1, result.stderr
    assert re.search(r"^error: rank [01] failed: CheckpointError: ", result.stderr, re.M), result.stderr
    assert re.search(r"^  \(rank [01]: the same\)$", result.stderr, re.M), result.stderr
    assert "Traceback" not in result.stderr


def test_run_under_torchrun_uses_its_ranks(tmp_path):
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path, safe_serialization=True)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "shardrules.cli", "run", str(tmp_path), "--steps", "2"],
                            capture_output=True, text=True, timeout=180, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("WanTransformer3DModel: 2 units chosen by explicit") == 1  # rank 0 prints
    assert "rank 0: load" in result.stdout and "rank 1: load" in result.stdout
    assert "terminate called" not in result.stderr


def test_run_in_bfloat16_on_float32_inputs(tmp_path):
    torch.manual_seed(0)
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan", safe_serialization=True)
    out = tmp_path / "latents.safetensors"
    result = shardrules("run", str(tmp_path / "wan"), "--nproc", "2", "--steps", "2", "--guidance", "3",
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


def test_run_under_torchrun_on_two_nodes_equals_one_process(tmp_path):
    """Two torchrun launches (--nnodes 2, one rank each) as on two machines: gloo, said once, the same latents."""
    torch.manual_seed(0)
    tiny_models.build("SanaTransformer2DModel").save_pretrained(tmp_path / "sana", safe_serialization=True)
    port = str(free_port())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launches = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
                                  str(node), "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port",
                                  port, "-m", "shardrules.cli", "run", str(tmp_path / "sana"), "--steps", "2",
                                  "--guidance", "4", "--out", str(tmp_path / f"node{node}.safetensors")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for node in (0, 1)]
    outputs = [p.communicate(timeout=240) for p in launches]
    for p, (stdout, stderr) in zip(launches, outputs):
        assert p.returncode == 0, stderr[-2000:]
    assert outputs[0][0].count("backend: gloo on the CPU") == 1 and "backend:" not in outputs[1][0]
    assert "rank 1: load" in outputs[0][0] and "world size 2" in outputs[0][0]
    single = shardrules("run", str(tmp_path / "sana"), "--nproc", "1", "--steps", "2", "--guidance", "4",
                        "--out", str(tmp_path / "one.safetensors"))
    assert single.returncode == 0, single.stderr
    got = load_file(str(tmp_path / "node0.safetensors"))["latents"]
    want = load_file(str(tmp_path / "one.safetensors"))["latents"]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_part_of_torchruns_variables_is_an_error(tmp_path):
    tiny_models.build("SanaTransformer2DModel").save_pretrained(tmp_path, safe_serialization=True)
    result = shardrules("run", str(tmp_path), "--steps", "1", env={"RANK": "0", "WORLD_SIZE": "2"})
    assert result.returncode == 1
    assert "RANK, WORLD_SIZE set but not LOCAL_RANK" in result.stderr and "Traceback" not in result.stderr
