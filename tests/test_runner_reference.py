"""The denoising runner against an independent loop: for every class ``shardrules run`` drives, a scheduler loop
written here with the guidance formula and the timestep convention of that class's diffusers pipeline, calling the
model directly. The sharded tests compare the runner with itself on one rank; this is what ties it to diffusers."""

from __future__ import annotations

import diffusers
import pytest
import tiny_models
import torch

from shardrules import DenoisingRunner
from shardrules.runner.inputs import _BUILDERS, example_inputs

# How each class's own pipeline feeds the timestep to the transformer (diffusers 0.42.1):
#   t / 1000, cast to the latents' dtype: pipeline_flux.py, pipeline_flux2.py, pipeline_qwenimage.py
#   t, cast to the latents' dtype: pipeline_hunyuan_video.py, pipeline_hunyuan_video1_5.py, pipeline_hunyuanimage.py
#   t as the scheduler gives it: pipeline_wan.py, pipeline_wan_vace.py, pipeline_stable_diffusion_3.py,
#   pipeline_sana_video.py; pipeline_sana.py multiplies it by the transformer's config.timestep_scale.
# Cosmos: its text-to-image pipeline preconditions with the EDM sigma (t = sigma / (sigma + 1)); the runner drives it
# as a flow-matching model with t / 1000 and the usual guidance formula, which is what is checked here.
PER_THOUSAND = {"FluxTransformer2DModel", "Flux2Transformer2DModel", "QwenImageTransformer2DModel",
                "CosmosTransformer3DModel"}
CAST = {"FluxTransformer2DModel", "Flux2Transformer2DModel", "QwenImageTransformer2DModel",
        "HunyuanVideoTransformer3DModel", "HunyuanVideo15Transformer3DModel", "HunyuanImageTransformer2DModel",
        "CosmosTransformer3DModel"}
SCHEDULERS = {"FlowMatchEulerDiscreteScheduler": {},
              "DPMSolverMultistepScheduler": dict(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                  flow_shift=3.0)}


def pipeline_timestep(name: str, model, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    timestep = t.expand(latents.shape[0])
    if name in CAST:
        timestep = timestep.to(latents.dtype)
    if name in PER_THOUSAND:
        timestep = timestep / 1000
    if name == "SanaTransformer2DModel":
        timestep = timestep * model.config.timestep_scale
    return timestep


def reference_loop(name, model, scheduler, latents, kwargs, negative, guidance, steps, condition=None):
    """The loop of a diffusers pipeline, written out: predict, guide as ``uncond + g * (cond - uncond)``, step.
    ``condition``: HunyuanVideo 1.5's ``torch.cat([latents, cond_latents_concat, mask_concat], dim=1)``."""
    scheduler.set_timesteps(steps)
    with torch.no_grad():
        for t in scheduler.timesteps:
            timestep = pipeline_timestep(name, model, t, latents)
            model_input = latents if condition is None else torch.cat([latents, condition], dim=1)
            cond = model(hidden_states=model_input, timestep=timestep, return_dict=False, **kwargs)[0]
            if guidance is not None:
                uncond = model(hidden_states=model_input, timestep=timestep, return_dict=False, **negative)[0]
                cond = uncond + guidance * (cond - uncond)
            latents = scheduler.step(cond, t, latents, return_dict=False)[0]
    return latents


# every class with the flow-matching Euler scheduler; DPM-Solver++ (which keeps a history) where pipelines use it
CASES = [(name, "FlowMatchEulerDiscreteScheduler") for name in sorted(_BUILDERS)] + [
    ("SanaTransformer2DModel", "DPMSolverMultistepScheduler"), ("WanTransformer3DModel", "DPMSolverMultistepScheduler")]


@pytest.mark.parametrize("name, scheduler_name", CASES)
def test_runner_equals_the_pipelines_loop(name, scheduler_name):
    torch.manual_seed(0)
    model = tiny_models.build(name).eval()
    example = example_inputs(model, batch=2, seed=3)
    for guidance in (None, 4.5):
        make = getattr(diffusers, scheduler_name)
        runner = DenoisingRunner(model, make(**SCHEDULERS[scheduler_name]), progress=False,
                                 timestep_scale=example.timestep_scale, cast_timestep=example.cast_timestep)
        got = runner.run(example.latents.clone(), num_inference_steps=3, guidance_scale=guidance,
                         model_kwargs=example.model_kwargs,
                         negative_model_kwargs=example.negative_model_kwargs if guidance else None,
                         latent_condition=example.latent_condition)
        want = reference_loop(name, model, make(**SCHEDULERS[scheduler_name]), example.latents.clone(),
                              example.model_kwargs, example.negative_model_kwargs, guidance, 3,
                              example.latent_condition)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= 1e-5, (guidance, (got - want).abs().max().item())
        assert (want - example.latents).abs().max().item() > 1e-3  # the loop moved the latents


@pytest.mark.parametrize("class_name", ["T5EncoderModel", "Qwen2_5_VLForConditionalGeneration", "Qwen3ForCausalLM"])
def test_seeded_conditioning_is_the_encoders_last_hidden_states(class_name):
    """Seeded `run` on a pipeline folder conditions on its text encoder's last hidden states: T5's output, and for
    a vision-language or causal language model (which return logits first and keep their vocabulary in a text
    config: 'Qwen2_5_VLConfig' object has no attribute 'vocab_size') its language model's."""
    import tiny_encoders

    from shardrules.runner.job import _encode

    model = tiny_encoders.build(class_name)
    got = _encode(model, 5, 2, seed=4)
    ids = torch.randint(2, 64, (2, 5), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        language_model = {"T5EncoderModel": lambda: model, "Qwen3ForCausalLM": lambda: model.model,
                          "Qwen2_5_VLForConditionalGeneration": lambda: model.model.language_model}[class_name]()
        want = language_model(input_ids=ids).last_hidden_state
    assert got.shape == want.shape == (2, 5, 16)
    torch.testing.assert_close(got, want)
