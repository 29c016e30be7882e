"""Checks that run inside each rank of a multi-rank test (see multirank.py)."""

from __future__ import annotations

import tiny_models
import torch
from safetensors.torch import load_file

from shardrules import LoadStats, load_rules, load_sharded


def forward_matches(rank, world_size, cases: list[dict], dtype: str | None = None, mesh_shape=None,
                    atol: float = 1e-5, mixed_bf16: bool = False, fallback: bool = False,
                    offload: bool = False) -> dict:
    """Load each saved model sharded and compare its forward output with the unsharded reference."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", tuple(mesh_shape), mesh_dim_names=("replicate", "shard")) if mesh_shape else None
    out = {}
    for case in cases:
        stats = LoadStats()
        mp_policy = None
        if mixed_bf16:
            from torch.distributed.fsdp import MixedPrecisionPolicy

            mp_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        from shardrules import load_rules

        rules = load_rules().without_models() if fallback else None  # plan by block-class or numbered blocks
        model = load_sharded(case["dir"], rules=rules, mesh=mesh, stats=stats, progress=False, mp_policy=mp_policy,
                             dtype=getattr(torch, dtype) if dtype else None, offload=offload)
        param_dtypes = sorted({str(p.dtype) for p in model.parameters()})  # before forward unshards the root
        storages = _early_storages(model, mesh)
        with torch.no_grad():
            kwargs = tiny_models.inputs(case["class"], batch=1, dtype=getattr(torch, dtype) if dtype else None)
            got = tiny_models.first_output(model(**kwargs, return_dict=False))
        want = load_file(case["ref"])["out"]
        out[case["class"]] = {
            "max_abs_diff": (got.float() - want.float()).abs().max().item(),
            "close": bool(torch.allclose(got.float(), want.float(), atol=atol)),
            "out_dtype": str(got.dtype),
            "source": stats.plan.source,
            "units": list(stats.plan.units),
            "bytes_read": stats.bytes_read,
            "bytes_sharded": stats.bytes_sharded,
            "bytes_replicated": stats.bytes_replicated,
            "checkpoint_bytes": stats.checkpoint_bytes,
            "param_dtypes": param_dtypes,
            "meta_left": [n for n, p in model.named_parameters() if p.device.type == "meta"],
            "early_tensors": stats.early_tensors,
            **storages,
        }
    return out


def _early_storages(model, mesh) -> dict:
    """How many parameters divide evenly over the shard dimension, and the distinct storages and dtypes of
    their local shards (one allocation per dtype when they were read beside sharding)."""
    import torch.distributed as dist

    ranks = mesh.size(mesh.ndim - 1) if mesh is not None else dist.get_world_size()
    even = [p.to_local() for p in model.parameters() if p.dim() and p.shape[0] % ranks == 0]
    return {"even": len(even),
            "even_storages": len({t.untyped_storage().data_ptr() for t in even}),
            "even_dtypes": len({t.dtype for t in even})}


def expect_load_error(rank, world_size, model_dir: str, rules: str | None = None) -> dict:
    """Load a broken checkpoint; report the error type and message this rank saw."""
    from shardrules import load_rules

    try:
        load_sharded(model_dir, rules=load_rules(rules) if rules else None, progress=False)
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc), "tensor": getattr(exc, "tensor", None),
                "path": getattr(exc, "path", None)}
    return {"type": None}


def fused_toy_matches(rank, world_size, model_dir: str, rules: str, ref: str) -> dict:
    """Load the fused-QKV toy (weight_loader for the weight, fused rename for the bias) and compare."""
    from toy_models import FusedToy

    from shardrules import load_rules
    from shardrules.loader.build import parameters_on_meta

    with parameters_on_meta():
        model = FusedToy()
    assert model.blocks[0].qkv.weight.device.type == "meta"
    stats = LoadStats()
    model = load_sharded(model_dir, rules=load_rules(rules), model=model, stats=stats, progress=False)
    x = torch.linspace(-1, 1, 4 * 6).reshape(4, 6)
    with torch.no_grad():
        got = model(x)
    want = load_file(ref)["out"]
    weight = model.blocks[1].qkv.weight
    return {"max_abs_diff": (got - want).abs().max().item(), "close": bool(torch.allclose(got, want, atol=1e-5)),
            "has_loader": hasattr(weight, "weight_loader"), "local_rows": weight.to_local().shape[0],
            "units": list(stats.plan.units)}


def expect_errors(rank, world_size, cases: list[dict]) -> list[dict]:
    """Run expect_load_error over several broken checkpoints in one launch."""
    return [expect_load_error(rank, world_size, **case) for case in cases]


def denoise_matches(rank, world_size, cases: list[dict], combos: list[dict]) -> dict:
    """Load each model sharded and run every (scheduler, guidance, split) combination of the loop."""
    import diffusers

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    out = {}
    for case in cases:
        model = load_sharded(case["dir"], progress=False)
        example = example_inputs(model, batch=2, seed=1)
        refs = load_file(case["ref"])
        for combo in combos:
            key = f"{case['class']}|{combo['scheduler']}|{combo['guidance']}"
            scheduler = getattr(diffusers, combo["scheduler"])(**combo["config"])
            runner = DenoisingRunner(model, scheduler, split=combo["split"], progress=False,
                                     timestep_scale=example.timestep_scale)
            guided = combo["guidance"] is not None
            got = runner.run(example.latents.clone(), num_inference_steps=4, guidance_scale=combo["guidance"],
                             model_kwargs=example.model_kwargs,
                             negative_model_kwargs=example.negative_model_kwargs if guided else None,
                             latent_condition=example.latent_condition)
            want = refs[key]
            out[f"{key}|{combo['split']}"] = (got - want).abs().max().item()
    return out


def wrapped_attr_on_fsdp(rank, world_size) -> dict:
    from torch.nn.parallel import DistributedDataParallel

    from shardrules import get_wrapped_attr, plan, shard

    model = tiny_models.build("WanTransformer3DModel")
    shard(model, plan(model))
    ddp = DistributedDataParallel(tiny_models.build("SanaTransformer2DModel"))
    return {"class": type(model).__name__, "num_layers": get_wrapped_attr(model, "config").num_layers,
            "dtype": str(get_wrapped_attr(model, "dtype")),
            "ddp": [type(ddp).__name__, get_wrapped_attr(ddp, "config").num_layers]}


def fail_while_loading(rank, world_size, model_dir: str, rules: str, how: str) -> dict:
    """Rank 1 raises (or dies) inside load_sharded, in the weight_loader of the fused-QKV toy."""
    import os

    from toy_models import FusedToy, qkv_weight_loader

    from shardrules import load_rules
    from shardrules.loader.build import parameters_on_meta

    def loader(param, loaded, shard_id):
        if rank == 1 and shard_id == "k":
            if how == "kill":
                os._exit(9)
            raise RuntimeError("disk vanished on rank 1")
        qkv_weight_loader(param, loaded, shard_id)

    with parameters_on_meta():
        model = FusedToy()
    for block in model.blocks:
        block.qkv.weight.weight_loader = loader
    load_sharded(model_dir, rules=load_rules(rules), model=model, progress=False)
    return {"loaded": True}


def fail_while_reading(rank, world_size, model_dir: str) -> dict:
    """On rank 1 the file ends early under the thread that reads beside sharding (its positioned reads return
    0 bytes, as for a file truncated after its header was checked); reads on other threads are untouched."""
    import os
    import threading

    if rank == 1:
        real = os.preadv

        def preadv(fd, buffers, offset):
            if threading.current_thread().name == "shardrules-reader":
                return 0
            return real(fd, buffers, offset)

        os.preadv = preadv
    load_sharded(model_dir, progress=False)
    return {"loaded": True}


def fail_while_denoising(rank, world_size, model_dir: str, how: str) -> dict:
    """Rank 1 raises (or dies) at the third scheduler step of a sharded loop."""
    import os

    import diffusers

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    model = load_sharded(model_dir, progress=False)
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    step, calls = scheduler.step, []

    def failing_step(*args, **kwargs):
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            if how == "kill":
                os._exit(9)
            raise RuntimeError("out of memory on rank 1")
        return step(*args, **kwargs)

    scheduler.step = failing_step
    example = example_inputs(model)
    DenoisingRunner(model, scheduler, progress=False).run(example.latents, num_inference_steps=6,
                                                         model_kwargs=example.model_kwargs)
    return {"denoised": True}


def encoder_matches(rank, world_size, cases: list[dict]) -> dict:
    """Load each saved text encoder sharded and compare its output with the unsharded reference."""
    import tiny_encoders

    out = {}
    for case in cases:
        stats = LoadStats()
        model = load_sharded(case["dir"], stats=stats, progress=False)
        got = tiny_encoders.output(model)
        want = load_file(case["ref"])["out"]
        out[case["class"]] = {"max_abs_diff": (got - want).abs().max().item(), "source": stats.plan.source,
                              "units": list(stats.plan.units)}
    return out


def load_with_rules(rank, world_size, model_dir: str, rules: str, tensor: str) -> dict:
    """Load with a user rule file; report one tensor's full value, element by element."""
    from shardrules import load_rules

    model = load_sharded(model_dir, rules=load_rules(rules), progress=False)
    value = dict(model.named_parameters())[tensor].full_tensor()
    return {"shape": list(value.shape), "values": value.flatten().tolist()}


def fallback_matches(rank, world_size, cases: list[dict]) -> dict:
    """Load each fallback-planned model sharded and compare its forward with the unsharded reference."""
    import tiny_fallback

    out = {}
    for case in cases:
        stats = LoadStats()
        model = load_sharded(case["dir"], stats=stats, progress=False, model=tiny_fallback.prebuilt(case["class"]))
        got = tiny_fallback.output(model, case["class"])
        want = load_file(case["ref"])["out"]
        out[case["class"]] = {"max_abs_diff": (got - want).abs().max().item(), "source": stats.plan.source,
                              "units": len(stats.plan.units)}
    return out


def half_precision_matches(rank, world_size, cases: list[dict]) -> dict:
    """Load each case sharded in half precision; compare dtypes and output with the library's own
    ``from_pretrained(torch_dtype=...)``, and record what diffusers logged while loading."""
    import logging

    import diffusers
    import tiny_encoders
    import transformers

    logged: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            logged.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logging.getLogger("diffusers").addHandler(handler)
    out = {}
    try:
        for case in cases:
            dtype = getattr(torch, case["dtype"])
            library = diffusers if case["library"] == "diffusers" else transformers
            reference = getattr(library, case["class"]).from_pretrained(case["dir"], torch_dtype=dtype).eval()
            model = load_sharded(case["dir"], dtype=dtype, progress=False)
            ours = {n: str(t.dtype) for n, t in [*model.named_parameters(), *model.named_buffers()]}
            theirs = {n: str(t.dtype) for n, t in [*reference.named_parameters(), *reference.named_buffers()]}
            with torch.no_grad():
                if case["library"] == "diffusers":
                    kwargs = tiny_models.inputs(case["class"], batch=1, dtype=dtype)
                    got = tiny_models.first_output(model(**kwargs, return_dict=False))
                    want = tiny_models.first_output(reference(**kwargs, return_dict=False))
                else:
                    got, want = tiny_encoders.output(model), tiny_encoders.output(reference)
            out[f"{case['class']}/{case['dtype']}"] = {
                "dtypes_differ": {n: (ours.get(n), d) for n, d in theirs.items() if ours.get(n) != d},
                "float32": sorted(n for n, d in ours.items() if d == "torch.float32"),
                "out_dtype": str(got.dtype),
                "max_abs_diff": (got.float() - want.float()).abs().max().item(),
                "requires_grad": any(p.requires_grad for p in model.parameters()),
            }
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
    out["logged"] = logged
    return out


def half_precision_loops(rank, world_size, cases: list[dict], dtype: str) -> dict:
    """Load each case sharded in ``dtype`` and run the runner on its float32 example inputs (as ``shardrules run
    --dtype`` does); compare with the runner over the library's own ``from_pretrained(torch_dtype=...)``."""
    import diffusers

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    torch_dtype = getattr(torch, dtype)
    out = {}
    for case in cases:
        model = load_sharded(case["dir"], dtype=torch_dtype, progress=False)
        reference = getattr(diffusers, case["class"]).from_pretrained(case["dir"], torch_dtype=torch_dtype).eval()
        example = example_inputs(model, batch=1, seed=3)
        results = []
        for transformer in (model, reference):
            runner = DenoisingRunner(transformer, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False,
                                     timestep_scale=example.timestep_scale, cast_timestep=example.cast_timestep)
            results.append(runner.run(example.latents.clone(), num_inference_steps=2, guidance_scale=3.0,
                                      model_kwargs=example.model_kwargs,
                                      negative_model_kwargs=example.negative_model_kwargs,
                                      latent_condition=example.latent_condition))
        got, want = results
        out[case["class"]] = {"dtype": str(got.dtype), "finite": bool(got.float().isfinite().all()),
                              "max_abs_diff": (got.float() - want.float()).abs().max().item(),
                              "scale": want.float().abs().max().item()}
    return out


def _unsharded_bytes(module) -> int:
    """Bytes of parameters held gathered (FSDP2 replaces sharded parameters with DTensors)."""
    from torch.distributed.tensor import DTensor

    return sum(p.numel() * p.element_size() for p in module.parameters() if not isinstance(p, DTensor))


def pipeline_matches(rank, world_size, folder: str, call: dict, prompts: list[str], split: str = "none",
                     output: str = "frames", encode: dict | None = None, ulysses: int = 1) -> dict:
    """load_pipeline on every rank; the pipeline's own __call__ against the unsharded diffusers pipeline.
    ``encode``: the arguments of the pipeline's ``encode_prompt`` besides the prompt (default: a negative prompt)."""
    import diffusers

    from shardrules import load_pipeline

    pipe = load_pipeline(folder, split=split, progress=False, ulysses=ulysses)
    plain = diffusers.DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    plain.set_progress_bar_config(disable=True)
    rows_computed = set()  # the batch the transformer's output layer sees on this rank
    tokens = set()  # the tokens it sees
    pipe.transformer.proj_out.register_forward_pre_hook(lambda m, args: rows_computed.add(args[0].shape[0]))
    pipe.transformer.proj_out.register_forward_pre_hook(lambda m, args: tokens.add(args[0].shape[1]))
    out = {"class": type(pipe).__name__, "transformer": type(pipe.transformer).__name__, "split": split,
           "execution_device": str(pipe._execution_device), "encoder_dtype": str(pipe.text_encoder.dtype)}
    encoders = [getattr(pipe, name) for name in pipe.components if name.startswith("text_encoder")]
    out["encoders"] = len(encoders)
    pipe.encode_prompt(prompt=prompts[0], max_sequence_length=call["max_sequence_length"],
                       **({"negative_prompt": "dog"} if encode is None else encode))
    out["encoder_gathered_after_encode"] = sum(map(_unsharded_bytes, encoders))
    results = []
    for prompt in prompts:
        got = getattr(pipe(prompt=prompt, negative_prompt="dog", generator=torch.Generator().manual_seed(0), **call),
                      output)
        want = getattr(plain(prompt=prompt, negative_prompt="dog", generator=torch.Generator().manual_seed(0), **call),
                       output)
        results.append(got)
        out[prompt] = (got.float() - want.float()).abs().max().item()
    out["encoder_gathered_after_call"] = sum(map(_unsharded_bytes, encoders))
    out["encoder_root_bytes"] = sum(p.numel() * p.element_size() for e in encoders for p in e.parameters())
    out["encoder_classes"] = [type(e).__name__ for e in encoders]
    out["prompts_differ"] = (results[0] - results[1]).abs().max().item()
    out["rows_computed"] = sorted(rows_computed)
    out["tokens_at_proj_out"] = sorted(tokens)
    out["checksum"] = results[0].double().sum().item()
    return out


def expect_pipeline_error(rank, world_size, folder: str) -> dict:
    from shardrules import load_pipeline

    try:
        load_pipeline(folder, progress=False)
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": None}


def freeze_one(rank, world_size) -> dict:
    """Rank 1 stops itself (SIGSTOP, as a debugger or a frozen node would); rank 0 waits for it in a collective."""
    import os
    import signal

    import torch.distributed as dist

    if rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)
    dist.barrier()
    return {"finished": True}


def library_error(rank, world_size) -> dict:
    """Rank 0 fails as a library does: a ValueError from deep inside, with no file in its message. Both ranks meet
    once first: had rank 0 failed at once, a rank 1 still connecting under load would fail connecting instead of
    finishing (a different, also true, report)."""
    import torch.distributed as dist

    dist.barrier()
    if rank == 0:
        raise ValueError("Invalid sample size")
    return {"finished": True}


def imported(rank, world_size, names: list[str]) -> list[str]:
    """Which of ``names`` this rank had imported when its job began."""
    import sys

    return [name for name in names if name in sys.modules]


def hang_one(rank, world_size) -> dict:
    """Rank 0 hangs outside any collective after the last one (as in a write that never returns); rank 1 finishes."""
    import time

    if rank == 0:
        time.sleep(600)
    return {"finished": True}


def sequence_matches(rank, world_size, cases: list[dict], ulysses: int = 2, ring: int = 1) -> dict:
    """Load each saved model sharded with its sequence split across ``ulysses`` ranks; by case label, compare the
    forward's output with the unsharded reference and report the tokens the first attention module saw."""
    out = {}
    for case in cases:
        try:
            rules = load_rules(*case.get("rules", []))
            model = load_sharded(case["dir"], rules, progress=False, ulysses=ulysses, ring=ring)
            seen = tiny_models.count_tokens(model, tiny_models.split_attention(model, model.sequence_parallel.plan))
            if case.get("suite") == "fallback":  # a class of tiny_fallback, called with its own inputs
                import tiny_fallback

                got = tiny_fallback.output(model, case["class"], even_text=case.get("variant") in ("even", "reference"),
                                           variant=case.get("variant"))
            elif case.get("return_dict"):  # the model's default call: its output dataclass
                with torch.no_grad():
                    got = model(**tiny_models.sequence_inputs(case["class"], case.get("variant", "even"))).sample
            else:
                with torch.no_grad():
                    kwargs = tiny_models.sequence_inputs(case["class"], case.get("variant", "even"))
                    got = tiny_models.first_output(model(**kwargs, return_dict=False))
        except Exception as exc:  # each case's outcome on its own
            import traceback

            out[case["label"]] = {"error": f"{type(exc).__name__}: {exc}"}
            if case.get("traceback"):
                out[case["label"]]["traceback"] = traceback.format_exc()
            continue
        want = load_file(case["ref"])["out"]
        out[case["label"]] = {
            "max_abs_diff": (got.float() - want.float()).abs().max().item(),
            "shape": list(got.shape),
            "tokens": seen,
            "plan": model.sequence_parallel.plan.source,
        }
    return out


def sequence_runner_matches(rank, world_size, model_dir: str, ref: str, steps: int, guidance: float,
                            ulysses: int = 2) -> dict:
    """The denoising runner over a model split by sequence: its latents against ``ref`` (the same loop, unsharded)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    model = load_sharded(model_dir, progress=False, ulysses=ulysses)
    seen = tiny_models.count_tokens(model, tiny_models.split_attention(model, model.sequence_parallel.plan))
    example = example_inputs(model, batch=1, seed=0)
    runner = DenoisingRunner(model, FlowMatchEulerDiscreteScheduler(), progress=False)
    latents = runner.run(example.latents, num_inference_steps=steps, guidance_scale=guidance,
                         model_kwargs=example.model_kwargs, negative_model_kwargs=example.negative_model_kwargs)
    want = load_file(ref)["latents"]
    return {"max_abs_diff": (latents - want).abs().max().item(), "split": runner.resolve_split(1, True),
            "tokens": seen, "split_rank": model.sequence_parallel.split_rank}


def compiled_runner_matches(rank, world_size, model_dir: str, ref: str, steps: int, guidance: float,
                            compile, ulysses: int = 1) -> dict:
    """The runner over a model whose units are compiled: one step first (it compiles), then ``steps`` steps, whose
    latents are compared with ``ref`` (the same loop, eager and unsharded); the graphs dynamo made, counted after
    each run, show whether anything recompiled after the first step."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from torch._dynamo.utils import counters

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    counters.clear()
    stats = LoadStats()
    model = load_sharded(model_dir, progress=False, ulysses=ulysses, compile=compile, stats=stats)
    example = example_inputs(model, batch=1, seed=0)
    runner = DenoisingRunner(model, FlowMatchEulerDiscreteScheduler(), progress=False)

    def run(k):
        return runner.run(example.latents, num_inference_steps=k, guidance_scale=guidance,
                          model_kwargs=example.model_kwargs, negative_model_kwargs=example.negative_model_kwargs)

    run(1)
    graphs_after_first = dict(counters["stats"])
    latents = run(steps)
    return {"max_abs_diff": (latents - load_file(ref)["latents"]).abs().max().item(),
            "graphs_after_first_step": graphs_after_first.get("unique_graphs", 0),
            "graphs_after_all_steps": dict(counters["stats"]).get("unique_graphs", 0),
            "recompiles": sum(counters["recompiles"].values()) if "recompiles" in counters else 0,
            "compiled": stats.compiled, "split": runner.resolve_split(1, True)}


def compiled_classes_match(rank, world_size, cases: list[dict], steps: int) -> dict:
    """For each class the runner drives: its units compiled (``aot_eager``), one step run first (it compiles), then
    ``steps`` steps compared with the eager unsharded loop saved in ``case["ref"]``; dynamo's graphs and recompiles
    counted after each run."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from torch._dynamo.utils import counters

    from shardrules import DenoisingRunner
    from shardrules.runner.inputs import example_inputs

    def runner_for(model):
        example = example_inputs(model, batch=1, seed=0)
        runner = DenoisingRunner(model, FlowMatchEulerDiscreteScheduler(), progress=False,
                                 timestep_scale=example.timestep_scale, cast_timestep=example.cast_timestep)
        return lambda k: runner.run(example.latents, num_inference_steps=k, model_kwargs=example.model_kwargs,
                                    latent_condition=example.latent_condition)

    out = {}
    for case in cases:
        torch._dynamo.reset()
        counters.clear()
        stats = LoadStats()
        options = {k: getattr(torch, v) if k == "dtype" else v for k, v in case.get("options", {}).items()}
        rules = load_rules(*case.get("rules", []))
        run = runner_for(load_sharded(case["dir"], rules, progress=False, compile={"backend": "aot_eager"},
                                      stats=stats, **options))
        run(1)
        graphs_after_first = dict(counters["stats"]).get("unique_graphs", 0)
        latents = run(steps)
        if case.get("ref") is None:  # compared with the same sharded load, eager (bf16 with its float32 islands)
            want = runner_for(load_sharded(case["dir"], progress=False, **options))(steps)
        else:
            want = load_file(case["ref"])["latents"]
        out[case.get("label", case["class"])] = {
            "max_abs_diff": (latents.float() - want.float()).abs().max().item(), "dtype": str(latents.dtype),
            "compiled": stats.compiled, "graphs_after_first_step": graphs_after_first,
            "graphs_after_all_steps": dict(counters["stats"]).get("unique_graphs", 0),
            "recompiles": sum(counters["recompiles"].values()) if "recompiles" in counters else 0}
    return out


def wait_forever(rank, world_size, started: str) -> dict:
    """Say this rank is up (a file), then wait in a collective that never completes."""
    import pathlib

    import torch
    import torch.distributed as dist

    pathlib.Path(started, f"rank{rank}").touch()
    if rank == 0:
        dist.recv(torch.zeros(1), src=1)  # rank 1 never sends
    else:
        dist.recv(torch.zeros(1), src=0)
    return {}
