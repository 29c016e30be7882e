"""The denoising runner (SPEC §6): sharded loops equal unsharded ones; arguments reach only who accepts them."""

from __future__ import annotations

import functools
import warnings

import diffusers
import pytest
import tiny_models
import torch
from multirank import checked, run_several
from safetensors.torch import save_file
from torch import nn

from shardrules import DenoisingRunner, get_wrapped_attr
from shardrules.runner.denoise import accepted_keywords, filter_kwargs
from shardrules.runner.inputs import example_inputs

MODELS = ["FluxTransformer2DModel", "WanTransformer3DModel", "SanaTransformer2DModel"]
# DPM-Solver++ configured for flow matching, as Sana's and Wan's pipelines configure it
SCHEDULERS = ["FlowMatchEulerDiscreteScheduler", "DPMSolverMultistepScheduler"]
SCHEDULER_CONFIG = {"DPMSolverMultistepScheduler": dict(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                        flow_shift=3.0)}


def make_scheduler(name):
    return getattr(diffusers, name)(**SCHEDULER_CONFIG.get(name, {}))
GUIDANCE = [None, 4.0]


def unsharded_loop(model, scheduler_name, guidance):
    example = example_inputs(model, batch=2, seed=1)
    runner = DenoisingRunner(model, make_scheduler(scheduler_name), progress=False,
                             timestep_scale=example.timestep_scale)
    return runner.run(example.latents.clone(), num_inference_steps=4, guidance_scale=guidance,
                      model_kwargs=example.model_kwargs,
                      negative_model_kwargs=example.negative_model_kwargs if guidance else None)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The loops and the wrapped-attribute checks of this file in one launch of the ranks."""
    root = tmp_path_factory.mktemp("denoise")
    cases = []
    for name in MODELS:
        torch.manual_seed(0)
        model = tiny_models.build(name)
        model.save_pretrained(root / name, safe_serialization=True)
        refs = {f"{name}|{s}|{g}": unsharded_loop(model, s, g).contiguous() for s in SCHEDULERS for g in GUIDANCE}
        save_file(refs, str(root / f"{name}.refs.safetensors"))
        cases.append({"class": name, "dir": str(root / name), "ref": str(root / f"{name}.refs.safetensors")})
    combos = [{"scheduler": s, "config": SCHEDULER_CONFIG.get(s, {}), "guidance": g, "split": split}
              for s in SCHEDULERS for g in GUIDANCE
              for split in (["none", "batch"] + (["guidance"] if g else []))]
    return run_several({"loops": ("rank_checks:denoise_matches", {"cases": cases, "combos": combos}),
                        "wrapped": ("rank_checks:wrapped_attr_on_fsdp", {})}, timeout=300)


@pytest.fixture
def sharded_runs(launched):
    return checked(launched["loops"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("guidance", GUIDANCE)
def test_sharded_loop_equals_unsharded(sharded_runs, model, scheduler, guidance):
    splits = ["none", "batch"] + (["guidance"] if guidance else [])
    for rank, result in enumerate(sharded_runs):
        for split in splits:
            diff = result[f"{model}|{scheduler}|{guidance}|{split}"]
            assert diff <= 1e-5, f"rank {rank}, split {split}: max abs diff {diff}"


# -- keyword filtering ---------------------------------------------------------------------------------------

def recording_wrapper(step, received, wraps=True):
    def wrapper(*args, **kwargs):
        received.append(dict(kwargs))
        return step(*args, **kwargs)

    return functools.wraps(step)(wrapper) if wraps else wrapper


def test_kwargs_wrapper_receives_only_what_the_step_accepts():
    model = tiny_models.build("SanaTransformer2DModel")
    scheduler = diffusers.DPMSolverMultistepScheduler()
    received: list[dict] = []
    scheduler.step = recording_wrapper(scheduler.step, received)
    example = example_inputs(model, seed=2)
    generator = torch.Generator().manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DenoisingRunner(model, scheduler, progress=False).run(
            example.latents, num_inference_steps=3, model_kwargs=example.model_kwargs,
            step_kwargs={"eta": 0.3, "generator": generator, "not_a_parameter": 1})
    assert len(received) == 3
    for kwargs in received:
        assert "eta" not in kwargs and "not_a_parameter" not in kwargs
        assert kwargs["generator"] is generator
    dropped = sorted(str(w.message) for w in caught if "does not accept" in str(w.message))
    assert len(dropped) == 2 and "'eta'" in dropped[0] and "'not_a_parameter'" in dropped[1]


def test_opaque_kwargs_wrapper_gets_only_the_loop_arguments():
    model = tiny_models.build("SanaTransformer2DModel")
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    received: list[dict] = []
    scheduler.step = recording_wrapper(scheduler.step, received, wraps=False)  # no __wrapped__ to follow
    example = example_inputs(model, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DenoisingRunner(model, scheduler, progress=False).run(
            example.latents, num_inference_steps=2, model_kwargs=example.model_kwargs, step_kwargs={"eta": 0.0})
    assert received == [{"return_dict": False}] * 2


def test_signature_inspected_once_per_function():
    model = tiny_models.build("WanTransformer3DModel")
    accepted_keywords.cache_clear()
    example = example_inputs(model, seed=3)
    DenoisingRunner(model, diffusers.FlowMatchEulerDiscreteScheduler(), progress=False).run(
        example.latents, num_inference_steps=4, model_kwargs=example.model_kwargs, step_kwargs={"s_churn": 0.0})
    info = accepted_keywords.cache_info()
    # transformer.forward, scheduler.step and set_timesteps: one inspection each, however many steps; the forward's
    # arguments are filtered once per run, not per step; set_timesteps is asked once more (does it take device=?)
    assert info.misses == 3
    assert info.hits == 1


def test_partial_and_bound_arguments():
    def target(a, b, *, c=0, **kwargs):
        return a, b, c

    bound = functools.partial(target, c=1)
    assert accepted_keywords(bound) == {"a", "b"}
    assert filter_kwargs(bound, {"a": 1, "b": 2, "c": 3, "kwargs": 4, "d": 5}) == {"a": 1, "b": 2}


# -- get_wrapped_attr -----------------------------------------------------------------------------------------

def test_wrapped_attr_through_ddp_style_and_compile_wrappers():
    model = tiny_models.build("SanaTransformer2DModel")
    compiled = torch.compile(model)
    assert get_wrapped_attr(compiled, "config") is model.config
    data_parallel = nn.DataParallel(model)
    assert get_wrapped_attr(data_parallel, "config") is model.config
    assert get_wrapped_attr(nn.DataParallel(compiled), "dtype") == torch.float32


def test_wrapped_attr_fsdp1_style_and_cycles():
    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self._fsdp_wrapped_module = inner

    model = tiny_models.build("WanTransformer3DModel")
    assert get_wrapped_attr(Wrapper(Wrapper(model)), "config") is model.config

    class Loop:
        pass

    loop = Loop()
    loop.module = loop  # a wrapper that points at itself must not hang
    with pytest.raises(AttributeError, match="'config' not found on Loop"):
        get_wrapped_attr(loop, "config")
    assert get_wrapped_attr(loop, "config", None) is None


def test_wrapped_attr_on_fsdp2_sharded_and_ddp_models(launched):
    results = checked(launched["wrapped"])
    for result in results:
        assert result == {"class": "FSDPWanTransformer3DModel", "num_layers": 2, "dtype": "torch.float32",
                          "ddp": ["DistributedDataParallel", 2]}
