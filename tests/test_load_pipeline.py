"""load_pipeline (SPEC §6): the diffusers pipeline itself, its transformer and text encoder sharded over 2 ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_pipelines
from multirank import checked, run_several

PROMPTS = ["a red cat on the moon", "the blue sea in rain"]


def broken_folders(tmp_path) -> dict:
    """A Wan pipeline without its tokenizer folder, and one naming an unknown pipeline class: what each must say."""
    import json
    import shutil

    folder = tiny_pipelines.wan(tmp_path)
    shutil.rmtree(folder / "tokenizer")
    index = json.loads((folder / "model_index.json").read_text())
    broken = tmp_path / "unknown-class"
    shutil.copytree(folder, broken)
    (broken / "model_index.json").write_text(json.dumps(dict(index, _class_name="NoSuchPipeline")))
    return {str(folder): "lists 'tokenizer', which has no folder",
            str(broken): "has no pipeline class 'NoSuchPipeline'"}


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Every 2-rank case of this file in one launch of the ranks; each test checks its own."""
    wan = tiny_pipelines.wan(tmp_path_factory.mktemp("wan"))
    pixart = tiny_pipelines.pixart(tmp_path_factory.mktemp("pixart"))
    broken = broken_folders(tmp_path_factory.mktemp("broken"))
    calls = {"wan": ("rank_checks:pipeline_matches", {"folder": str(wan), "call": tiny_pipelines.WAN_CALL,
                                                      "prompts": PROMPTS})}
    for split in ("none", "batch"):
        calls[f"pixart-{split}"] = ("rank_checks:pipeline_matches", {
            "folder": str(pixart), "call": tiny_pipelines.PIXART_CALL, "prompts": PROMPTS, "split": split,
            "output": "images"})
    flux = tiny_pipelines.flux(tmp_path_factory.mktemp("flux"))
    calls["flux"] = ("rank_checks:pipeline_matches", {
        "folder": str(flux), "call": tiny_pipelines.FLUX_CALL, "prompts": PROMPTS, "output": "images",
        "encode": {"prompt_2": None}})
    for folder in broken:
        calls[folder] = ("rank_checks:expect_pipeline_error", {"folder": folder})
    for name, (build, run) in tiny_pipelines.MORE.items():  # through `shardrules run`'s own rank code
        folder = build(tmp_path_factory.mktemp(name))
        run = {k: v for k, v in run.items() if k not in TEST_ONLY}
        calls[name] = ("shardrules.runner.job:run_pipeline", dict(
            {"height": 8, "width": 8, "negative_prompt": "dog", "steps": 2, **run}, model_dir=str(folder),
            prompt=MORE_PROMPT, seed=3, out=str(folder / ("out.gif" if run.get("frames", 1) > 1 else "out.png"))))
        if tiny_pipelines.MORE[name][1].get("ulysses"):  # the sequence split over the 2 ranks
            calls[f"{name} ulysses"] = ("shardrules.runner.job:run_pipeline", dict(
                calls[name][1], out=str(folder / ("ulysses.gif" if run.get("frames", 1) > 1 else "ulysses.png")),
                ulysses=2))
        if "seeded" in tiny_pipelines.MORE[name][1]:  # and without a prompt
            calls[f"{name} seeded"] = ("shardrules.runner.job:run_model", dict(
                model_dir=str(folder), steps=2, seed=3, out=str(folder / "seeded.safetensors")))
    return run_several(calls), broken


MORE_PROMPT = "a red cat on the moon"
# Keys of a tiny_pipelines.MORE entry that say what else to check, not what to run: a run split by Ulysses 2, a
# seeded run without a prompt, a VAE that decodes only in tiles (the reference turns tiling on, as diffusers'
# example for the pipeline does; run must do the same and say so), a video with sound (run says it drops the sound)
TEST_ONLY = ("seeded", "ulysses", "tiled", "audio")


@pytest.mark.parametrize("class_name", sorted(tiny_pipelines.MORE))
def test_more_pipeline_classes_run_from_a_prompt_as_diffusers_runs_them(launched, class_name):
    """Each class, on 2 ranks through `shardrules run`'s rank code, writes the picture diffusers' own pipeline makes
    in one process from the same arguments (within one level of 255: the PNG rounds), and is not refused by run's
    checks before the ranks start."""
    import json

    import diffusers
    import numpy as np
    import torch
    from PIL import Image

    from shardrules.runner.pipeline import input_shortfall

    results = checked(launched[0][class_name])
    folder = Path(results[0]["image"]).parent
    assert [r["split"] for r in results] == ["none", "none"] and results[1]["image"] is None
    parts = json.loads((folder / "model_index.json").read_text())
    sharded = [name for name, value in parts.items()  # GLM-Image's autoregressive model encodes the prompt too
               if name.startswith(("transformer", "text_encoder", "vision_language_encoder"))
               and isinstance(value, list) and isinstance(value[0], str)]  # components, not config values
    assert results[0]["plan"].startswith(f"{class_name.split()[0]}: sharded {', '.join(sharded)};"), results[0]["plan"]
    plain = diffusers.DiffusionPipeline.from_pretrained(folder)
    assert type(plain).__name__ == class_name.split()[0]
    audio = "the pipeline's audio is not written: run writes images and videos"
    assert (audio in results[0]["notes"]) == bool(tiny_pipelines.MORE[class_name][1].get("audio")), results[0]["notes"]
    if tiny_pipelines.MORE[class_name][1].get("tiled"):
        plain.vae.enable_tiling()
        assert any(n.startswith(f"the VAE decodes in tiles: {type(plain.vae).__name__} cannot decode whole (")
                   for n in results[0]["notes"]), results[0]["notes"]
    run = {k: v for k, v in tiny_pipelines.MORE[class_name][1].items() if k not in TEST_ONLY}
    size = (run.get("height", 8), run.get("width", 8))
    negative = run.get("negative_prompt", "dog")  # None: a pipeline without a negative prompt
    steps = run.get("steps", 2)  # None: a pipeline with its own schedule
    kwargs = dict(height=size[0], width=size[1], output_type="pil", **({"num_inference_steps": steps} if steps else {}),
                  **({"negative_prompt": negative} if negative else {}),
                  **({"guidance_scale": run["guidance"]} if "guidance" in run else {}),
                  **({frames_keyword(plain): run["frames"]} if "frames" in run else {}), **run["call"])
    assert input_shortfall(type(plain).__name__, dict(kwargs, prompt=MORE_PROMPT)) is None

    def picture(prompt):
        """The first picture (or frame) diffusers' pipeline makes, as floats in [0, 1]."""
        out = plain(prompt=prompt, generator=torch.Generator().manual_seed(3), **dict(kwargs, output_type="np"))
        return np.asarray(out.frames[0][0] if "frames" in run else out.images[0], dtype=np.float32)

    floats = picture(MORE_PROMPT)

    if run.get("frames", 1) > 1:  # the GIF run writes, against diffusers' frames saved by PIL as run saves them
        from PIL import ImageSequence

        frames = plain(prompt=MORE_PROMPT, generator=torch.Generator().manual_seed(3), **kwargs).frames[0]
        frames[0].save(folder / "want.gif", save_all=True, append_images=frames[1:], duration=125, loop=0)
        def gif(path):
            return [np.asarray(f.convert("RGB"), dtype=np.int16) for f in ImageSequence.Iterator(Image.open(path))]

        def differ(got, want):
            """PIL picks each frame's palette from its pixels, so where the frames differ by one level a few pixels
            can land on another palette colour (Allegro: 0.004 levels on average, up to 63 at a handful of pixels;
            the palette itself is up to 113 levels from the frames): the share of pixels that differ."""
            assert len(got) == len(want) == run["frames"]
            return np.mean([(np.abs(g - w) > 1).mean() for g, w in zip(got, want, strict=True)])

        want = gif(folder / "want.gif")
        assert differ(gif(results[0]["image"]), want) < 1e-3
    else:  # its PIL picture: diffusers' numpy_to_pil rounds the same floats
        want = (floats * 255).round().astype(np.int16)
        got = np.asarray(Image.open(results[0]["image"]), dtype=np.int16)
        assert got.shape == want.shape == (*size, 3)
        assert np.abs(got - want).max() <= 1
    if tiny_pipelines.MORE[class_name][1].get("ulysses"):  # `run --ulysses 2`: the same picture (or frames)
        split = checked(launched[0][f"{class_name} ulysses"])
        assert "sequence parallel: ulysses 2 x ring 1; transformer by " in " ".join(split[0]["notes"])
        if run.get("frames", 1) > 1:
            assert differ(gif(split[0]["image"]), want) < 1e-3
        else:
            assert np.abs(np.asarray(Image.open(split[0]["image"]), dtype=np.int16) - want).max() <= 1
    # the picture depends on the prompt
    assert np.abs(picture("the blue sea in rain") - floats).max() > 1e-4  # noise: 1e-6


@pytest.fixture
def wan(launched):
    return checked(launched[0]["wan"])


@pytest.fixture(params=["none", "batch"])
def pixart(request, launched):
    return checked(launched[0][f"pixart-{request.param}"])


def test_a_pipeline_that_batches_guidance_equals_unsharded_with_or_without_split(pixart):
    """PixArt-Sigma batches the guided and unguided branches; split='batch' gives each rank one of them."""
    for rank, result in enumerate(pixart):
        assert result["class"] == "PixArtSigmaPipeline"
        for prompt in PROMPTS:
            assert result[prompt] <= 1e-4, f"rank {rank}, {prompt!r}: max abs diff {result[prompt]}"
        assert result["prompts_differ"] > 1e-3
        assert result["encoder_gathered_after_call"] == 0
        # the guided and unguided rows: both on every rank, or one each
        assert result["rows_computed"] == ([1] if result["split"] == "batch" else [2]), result["rows_computed"]
    assert len({r["checksum"] for r in pixart}) == 1


def test_flux_with_two_text_encoders_equals_unsharded(launched):
    """FluxPipeline: a CLIP encoder (pooled) and a T5 encoder, both sharded; true CFG (a negative prompt)."""
    results = checked(launched[0]["flux"])
    for rank, result in enumerate(results):
        assert result["class"] == "FluxPipeline" and result["transformer"] == "FSDPFluxTransformer2DModel"
        assert result["encoder_classes"] == ["FSDPCLIPTextModel", "FSDPT5EncoderModel"]
        for prompt in PROMPTS:
            assert result[prompt] <= 1e-4, f"rank {rank}, {prompt!r}: max abs diff {result[prompt]}"
        assert result["prompts_differ"] > 1e-3  # the output depends on the prompt
        assert result["encoder_gathered_after_encode"] == result["encoder_gathered_after_call"] == 0
    assert len({r["checksum"] for r in results}) == 1


def test_the_pipeline_class_of_model_index_with_sharded_components(wan):
    for result in wan:
        assert result["class"] == "WanPipeline"
        assert result["transformer"] == "FSDPWanTransformer3DModel"
        assert result["execution_device"] == "cpu" and result["encoder_dtype"] == "torch.float32"


def test_prompts_through_the_sharded_pipeline_equal_the_unsharded_one(wan):
    for rank, result in enumerate(wan):
        for prompt in PROMPTS:
            assert result[prompt] <= 1e-4, f"rank {rank}, {prompt!r}: max abs diff {result[prompt]}"
        assert result["prompts_differ"] > 1e-3  # the output depends on the prompt
    assert len({r["checksum"] for r in wan}) == 1  # every rank gets the same result


def test_the_text_encoder_keeps_no_gathered_weights(wan):
    for result in wan:
        assert result["encoder_gathered_after_encode"] == 0
        assert result["encoder_gathered_after_call"] == 0
        assert result["encoder_root_bytes"] > 0


def test_bad_pipeline_folders_give_one_clear_error_on_every_rank(launched):
    results, broken = launched
    for folder, expected in broken.items():
        got = checked(results[folder])
        assert [r["type"] for r in got] == ["CheckpointError"] * 2, got
        assert all(expected in r["message"] for r in got), got


@pytest.mark.multirank
def test_shardrules_run_with_a_prompt_writes_the_pipelines_video(tmp_path):

    import diffusers
    import numpy as np
    import torch
    from commands import cli
    from PIL import Image, ImageSequence

    from shardrules.runner.job import _save_output

    folder = tiny_pipelines.wan(tmp_path)
    args = ["--prompt", "a red cat on the moon", "--negative-prompt", "dog", "--frames", "5", "--height", "16",
            "--width", "16", "--steps", "2", "--guidance", "4", "--seed", "3"]
    result = cli("run", str(folder), "--nproc", "2", *args, "--out", str(tmp_path / "cat.gif"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WanPipeline: sharded transformer, text_encoder" in result.stdout
    assert "rank 1: load" in result.stdout and "ms/step" in result.stdout
    assert f"video written to {tmp_path / 'cat.gif'}" in result.stdout
    plain = diffusers.DiffusionPipeline.from_pretrained(folder)
    want = plain(prompt="a red cat on the moon", negative_prompt="dog", num_frames=5, height=16, width=16,
                 num_inference_steps=2, guidance_scale=4.0, output_type="pil",
                 generator=torch.Generator().manual_seed(3))
    _save_output(want, str(tmp_path / "plain.gif"))

    def frames(path):
        return [np.asarray(f.convert("RGB"), dtype=np.int16) for f in ImageSequence.Iterator(Image.open(path))]

    got, expected = frames(tmp_path / "cat.gif"), frames(tmp_path / "plain.gif")
    assert len(got) == len(expected) == 5 and got[0].shape == (16, 16, 3)  # the video asked for
    assert max(int(np.abs(a - b).max()) for a, b in zip(got, expected, strict=True)) <= 1


@pytest.mark.multirank
def test_a_video_to_mp4_when_out_says_so(tmp_path):
    """--out *.mp4 writes the video itself (diffusers' export_to_video; the video extra installs imageio-ffmpeg).
    Frames of 64x64 with strong patterns: the tiny pipelines' 16x16 frames would not survive a codec's chroma."""
    import imageio.v3 as iio
    import numpy as np
    from diffusers.pipelines.wan.pipeline_output import WanPipelineOutput
    from PIL import Image

    from shardrules.runner.job import _save_output

    y, x = np.mgrid[0:64, 0:64]
    frames = [np.stack([(x * 4 + 40 * t) % 256, (y * 4) % 256, ((x // 16 + y // 16) % 2) * 255], -1).astype(np.uint8)
              for t in range(3)]
    out = str(tmp_path / "cat.mp4")
    assert _save_output(WanPipelineOutput(frames=[[Image.fromarray(f) for f in frames]]), out) == out
    video = iio.imread(out).astype(np.int16)
    assert video.shape == (3, 64, 64, 3)
    assert np.abs(video - np.stack(frames)).mean() < 12  # a lossy codec, the same pictures
    assert np.abs(video - 128).mean() > 40  # (a flat grey video would be off by this much)


@pytest.mark.parametrize("pipeline, args, words", [
    ("wan", ["--prompt", "a cat"], "--prompt needs --out FILE"),
    ("wan", ["--prompt", "a cat", "--out", "cat.png"], "WanPipeline makes a video; name a .mp4 or .gif file"),
    ("wan", ["--prompt", "a cat", "--out", "cat"], "makes a video"),
    # the rotary table (1,024 positions per axis): torch's "shape '[1, 1, 1040, -1]' is invalid" on every rank
    ("wan", ["--prompt", "a cat", "--out", "cat.gif", "--width", "16640"],
     "WanTransformer3DModel's rotary table has 1024 positions per axis (rope_max_seq_len in "),
    ("wan", ["--prompt", "a cat", "--out", "cat.gif", "--width", "16640"],
     "16640 px make 1040 latent columns after patching; ask for at most 16384 px on that axis"),
    ("wan", ["--prompt", "a cat", "--out", "cat.gif", "--frames", "4097"], "4097 frames make 1025 latent frames"),
    ("flux", ["--prompt", "a cat", "--out", "cat.gif", "--frames", "3"], "--frames: FluxPipeline makes images"),
    ("flux", ["--prompt", "a cat", "--out", "cat.mp4"], "FluxPipeline makes an image; name a .png"),
    ("flux", ["--prompt", "a cat", "--out", "folder"], "--out folder is a folder"),
    ("flux", ["--out", "latents.png"], "without --prompt the run writes latents, to a .safetensors file"),
    ("flux", ["--out", "folder"], "--out folder is a folder"),
    ("pixart", ["--prompt", "a", "--out", "a.png", "--call", "steps=3"],
     "PixArtSigmaPipeline.__call__ takes no 'steps'"),
    ("pixart", ["--prompt", "a", "--out", "a.png", "--call", "num_inference_steps=3"], "run sets num_inference_steps"),
    ("pixart", ["--call", "use_resolution_binning=false"], "--call needs --prompt"),
    # "ValueError: Invalid sample size" on every rank after loading
    ("pixart", ["--prompt", "a", "--out", "a.png"], "PixArtSigmaPipeline bins resolutions only for a transformer "
     "sample_size of 256, 128, 64, 32 (diffusers' pipeline_pixart_sigma.py:"),
    ("pixart", ["--prompt", "a", "--out", "a.png"], "says 8; run it with --call use_resolution_binning=false"),
    ("pixart", ["--out", "a.safetensors"], "run drives seeded latents through CosmosTransformer3DModel, "),
    # a video pipeline whose frame count is 'frames', not 'num_frames': --frames was refused as for images
    ("sana_video", ["--prompt", "a", "--out", "a.png", "--call", "use_resolution_binning=false"],
     "SanaVideoPipeline makes a video; name a .mp4 or .gif"),
    ("sana_video", ["--prompt", "a", "--out", "a.gif", "--frames", "1", "--call", "frames=1"], "run sets frames "
     "itself (--frames)"),
])
def test_out_is_checked_before_any_rank_starts(tmp_path, monkeypatch, pipeline, args, words):
    """Each of these failed only after every rank had loaded and denoised, or wrote nothing, or wrote under another
    name (a one-frame video asked as cat.png went to cat.gif; an image --out beside latents overwrote them)."""
    from commands import cli

    folder = getattr(tiny_pipelines, pipeline)(tmp_path)
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    result = cli("run", str(folder), *args)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "backend:" not in result.stdout


@pytest.mark.multirank
def test_seeded_run_of_a_two_encoder_pipeline_conditions_on_the_encoder_that_fits(tmp_path):
    """Flux's sequence comes from T5 (text_encoder_2), CLIP (text_encoder) gives only a pooled vector: seeded `run`
    encoded with CLIP (on a released Flux, 768 wide against the transformer's 4,096). Its packed latents are written,
    with no image, and equal the same loop in one process with T5's states."""
    import torch
    import transformers
    from commands import cli
    from diffusers import FlowMatchEulerDiscreteScheduler
    from safetensors.torch import load_file

    from shardrules import DenoisingRunner
    from shardrules.loader.build import load_plain
    from shardrules.runner.inputs import example_inputs
    from shardrules.runner.job import _encode

    folder = tiny_pipelines.flux(tmp_path)
    out = tmp_path / "latents.safetensors"
    result = cli("run", str(folder), "--steps", "2", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "conditioning: text_encoder_2 (T5EncoderModel) on seeded token ids" in result.stdout
    assert "no image: FluxTransformer2DModel's latents are packed tokens" in result.stdout
    assert not (tmp_path / "latents.png").exists()

    transformer = load_plain(folder / "transformer")
    example = example_inputs(transformer, seed=3)
    length = example.model_kwargs["encoder_hidden_states"].shape[1]
    t5 = transformers.T5EncoderModel.from_pretrained(folder / "text_encoder_2").eval()  # transformers' own loading
    example.model_kwargs["encoder_hidden_states"] = _encode(t5, length, 1, 3)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
    want = DenoisingRunner(transformer, scheduler, progress=False, timestep_scale=example.timestep_scale,
                           cast_timestep=example.cast_timestep).run(
        example.latents, num_inference_steps=2, model_kwargs=example.model_kwargs)
    got = load_file(str(out))["latents"]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_a_class_run_cannot_drive_is_refused_before_any_rank_starts(tmp_path):
    from commands import cli

    folder = tiny_pipelines.pixart(tmp_path)
    result = cli("run", str(folder / "transformer"))
    assert result.returncode == 2 and "not PixArtTransformer2DModel; a pipeline folder runs its own loop with " \
        "--prompt" in result.stderr, result.stderr
    assert "backend:" not in result.stdout
    # the README lists exactly the classes run drives
    import re
    from pathlib import Path

    from shardrules.runner.inputs import DRIVEN_CLASSES

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    listed = re.search(r"Seeded latents are driven for (.*?) \(another class", readme).group(1)
    assert sorted(re.findall(r"\w+Model", listed)) == list(DRIVEN_CLASSES)


def test_a_component_no_rule_can_shard_is_refused_before_any_rank_starts(tmp_path):
    """Each sharded component is planned before the ranks start, as each rank would plan it: a rule that chooses a
    ModuleList (which fully_shard rejects) used to fail inside every rank after the launch; with and without
    --prompt it is refused here, naming the component folder and the rule's file:line:col."""
    from commands import cli

    folder = tiny_pipelines.wan(tmp_path)
    rules = tmp_path / "whole.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "wan-whole"\napplies-to = "class == WanTransformer3DModel"\n'
                     'shard = ["name == blocks"]\n')
    for args in (["--prompt", "a cat", "--out", str(tmp_path / "v.gif")], ["--out", str(tmp_path / "l.safetensors")]):
        result = cli("run", str(folder), "--rules", str(rules), *args)
        assert result.returncode == 2, result.stderr
        assert f"{folder / 'transformer'}: unit 'blocks' is a ModuleList, which fully_shard rejects (chosen by " \
               f"'name == blocks' at {rules}:5:11)" in result.stderr, result.stderr
        assert "backend:" not in result.stdout


@pytest.mark.multirank
def test_pipeline_arguments_reach_the_pipeline(tmp_path):
    """PixArt bins resolutions for its released sample sizes only; --call use_resolution_binning=false runs the tiny
    one, and the image equals diffusers' own pipeline called with the same arguments."""
    import diffusers
    import numpy as np
    import torch
    from commands import cli
    from PIL import Image

    folder = tiny_pipelines.pixart(tmp_path)
    result = cli("run", str(folder), "--nproc", "2", "--prompt", "a red cat", "--steps", "2", "--seed", "5",
                 "--guidance", "4.5", "--call", "use_resolution_binning=false", "--call", "max_sequence_length=8",
                 "--out", str(tmp_path / "cat.png"))
    assert result.returncode == 0, result.stderr[-2000:]
    plain = diffusers.DiffusionPipeline.from_pretrained(folder)
    want = plain(prompt="a red cat", num_inference_steps=2, guidance_scale=4.5, use_resolution_binning=False,
                 max_sequence_length=8, output_type="pil", generator=torch.Generator().manual_seed(5)).images[0]
    got = np.asarray(Image.open(tmp_path / "cat.png"), dtype=np.int16)
    assert np.abs(got - np.asarray(want, dtype=np.int16)).max() <= 1
    assert np.asarray(want, dtype=np.int16).std() > 5  # an image, not a flat field


def test_a_one_frame_video_is_written_as_the_image_asked_for(tmp_path):
    from types import SimpleNamespace

    from PIL import Image

    from shardrules.errors import ShardRulesError
    from shardrules.runner.job import _save_output

    frame = Image.new("RGB", (4, 4), (200, 10, 10))
    assert _save_output(SimpleNamespace(frames=[[frame]]), str(tmp_path / "cat.png")) == str(tmp_path / "cat.png")
    assert Image.open(tmp_path / "cat.png").getpixel((0, 0)) == (200, 10, 10) and not list(tmp_path.glob("*.gif"))
    with pytest.raises(ShardRulesError, match="a video of 2 frames goes to a .mp4 or .gif file, not .png"):
        _save_output(SimpleNamespace(frames=[[frame, frame]]), str(tmp_path / "two.png"))


def test_prompt_arguments_are_checked_before_any_rank_starts(tmp_path, monkeypatch):
    import tiny_models
    from commands import cli

    from shardrules.runner import job

    monkeypatch.setattr(job, "can_write_mp4", lambda: False)  # as on a machine without imageio-ffmpeg
    result = cli("run", str(tiny_pipelines.wan(tmp_path)), "--prompt", "a cat", "--out", str(tmp_path / "v.mp4"))
    assert result.returncode == 2 and "writing MP4 needs imageio and imageio-ffmpeg" in result.stderr
    assert "backend:" not in result.stdout

    tiny_models.build("SanaTransformer2DModel").save_pretrained(tmp_path, safe_serialization=True)
    result = cli("run", str(tmp_path), "--prompt", "a cat")
    assert result.returncode == 2 and "--prompt needs a diffusers pipeline folder" in result.stderr
    assert "backend:" not in result.stdout  # refused before choosing a backend or starting ranks
    result = cli("run", str(tmp_path), "--height", "64")
    assert result.returncode == 2 and "--height needs --prompt" in result.stderr


def pattern_picture(path, size: int = 32):
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size]
    Image.fromarray(np.stack([x * 8 % 256, y * 8 % 256, (x + y) * 4 % 256], -1).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("pipeline, class_name, args, words", [
    # an argument without a default
    ("wan", "WanImageToVideoPipeline", [], "WanImageToVideoPipeline.__call__ needs image (no default); give --call "
                                          "image=@FILE (an image file)"),
    # a picture-driven class by its name, with its picture arguments all left at None
    ("flux", "FluxImg2ImgPipeline", [], "FluxImg2ImgPipeline works from image, and none is given; give --call "
                                        "image=@FILE (an image file)"),
    ("flux", "FluxFillPipeline", [], "works from image, mask_image, and none is given; give --call image=@FILE (an "
                                     "image file); --call mask_image=@FILE (an image file)"),
    ("wan", "WanVideoToVideoPipeline", [], "works from video, and none is given; give --call video=@FILE (a video"),
    # what a tensor argument takes: Python, not the command line
    ("flux", "KandinskyV22Pipeline", [], "needs image_embeds, negative_image_embeds (no default); give image_embeds, "
                                         "negative_image_embeds from Python (shardrules.load_pipeline"),
    # a pipeline of sound: run writes images and videos
    ("flux", "StableAudioPipeline", [], "StableAudioPipeline makes sound, and run writes images and videos; call the "
                                        "pipeline from Python"),
    # the files named with @
    ("flux", "FluxImg2ImgPipeline", ["--call", "image=@missing.png"], "--call image=@missing.png: no such file"),
    ("flux", "FluxImg2ImgPipeline", ["--call", "image=@notes.txt"], "--call image=@notes.txt: cannot read it as an "
                                                                    "image"),
])
def test_a_pipeline_missing_an_input_is_refused_before_any_rank_starts(tmp_path, monkeypatch, pipeline, class_name,
                                                                       args, words):
    """Image-to-image, inpainting, image-to-video, video-to-video ... pipelines failed inside every rank after
    loading (or ran without the picture they work from); each is refused here saying what to give and how."""
    from commands import cli

    folder = tiny_pipelines.relabel(getattr(tiny_pipelines, pipeline)(tmp_path), class_name)
    (tmp_path / "notes.txt").write_text("not a picture")
    monkeypatch.chdir(tmp_path)
    out = "v.gif" if pipeline == "wan" else "a.png"
    result = cli("run", str(folder), "--prompt", "a cat", "--out", out, *args)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "backend:" not in result.stdout


def test_what_a_pipeline_raises_on_is_read_off_its_own_code():
    """A class whose own code raises when an argument is None (here at the top of its __call__ or check_inputs) is
    refused with the place: that place is diffusers' raise, read back from diffusers' file."""
    import inspect
    import re
    from pathlib import Path

    import diffusers

    from shardrules.runner.pipeline import input_shortfall

    why = input_shortfall("Flux2KleinInpaintPipeline", {"prompt": "a cat", "num_inference_steps": 4})
    where = re.search(r"raises when image is None \(diffusers' (\S+):(\d+)\)", why)
    assert where, why
    source = Path(inspect.getsourcefile(diffusers.Flux2KleinInpaintPipeline))
    assert source.name == where.group(1)
    lines = source.read_text().splitlines()[int(where.group(2)) - 1:int(where.group(2)) + 2]
    assert re.match(r"\s*if image is None:", lines[0]) and "raise" in lines[1], lines
    assert input_shortfall("Flux2KleinInpaintPipeline", {"prompt": "a", "image": object(), "mask_image": object()}) \
        is None
    # `if a is None or b is None: raise`: each one is required (LTX-2's refine pass takes the first pass's latents)
    why = input_shortfall("LTX2DFRTemporalRefinePipeline", {"prompt": "a cat"})
    where = re.search(r"raises when latents is None \(diffusers' (\S+):(\d+)\); give latents from Python", why)
    assert where, why
    source = Path(inspect.getsourcefile(diffusers.LTX2DFRTemporalRefinePipeline)).read_text().splitlines()
    assert re.match(r"\s*if latents is None or keyframes_latents is None or", source[int(where.group(2)) - 1])
    given = dict.fromkeys(("latents", "keyframes_latents", "audio_latents"), object())
    assert "raises when keyframe_positions is None" in input_shortfall("LTX2DFRTemporalRefinePipeline",
                                                                       {"prompt": "a", **given})
    # text-to-image and text-to-video classes, and one whose picture is optional, are not refused
    for name in ("FluxPipeline", "WanPipeline", "PixArtSigmaPipeline", "FluxKontextPipeline", "WanVACEPipeline"):
        assert input_shortfall(name, {"prompt": "a cat", "num_inference_steps": 4}) is None, name


def test_a_video_argument_reads_the_frames_of_a_file(tmp_path):
    from PIL import Image

    from shardrules.cli import read_media

    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=100)
    video = read_media("video", str(tmp_path / "in.gif"))
    assert [f.getpixel((0, 0))[0] for f in video] == [0, 40, 80]
    assert read_media("image", str(pattern_picture(tmp_path / "p.png"))).size == (32, 32)


@pytest.mark.multirank
def test_an_image_to_image_pipeline_runs_from_a_picture_file(tmp_path):
    """--call image=@FILE: FluxImg2ImgPipeline on 2 ranks from a PNG equals diffusers' own pipeline given the same
    picture (read with diffusers' load_image)."""
    import diffusers
    import numpy as np
    import torch
    from commands import cli
    from diffusers.utils import load_image
    from PIL import Image

    folder = tiny_pipelines.relabel(tiny_pipelines.flux(tmp_path), "FluxImg2ImgPipeline")
    picture = pattern_picture(tmp_path / "cat.png")
    result = cli("run", str(folder), "--nproc", "2", "--prompt", "a red cat", "--steps", "4", "--seed", "5",
                 "--height", "32", "--width", "32", "--call", f"image=@{picture}", "--call", "strength=0.5",
                 "--out", str(tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FluxImg2ImgPipeline: sharded transformer" in result.stdout
    plain = diffusers.DiffusionPipeline.from_pretrained(folder)
    assert type(plain).__name__ == "FluxImg2ImgPipeline"

    def call(image):
        return np.asarray(plain(prompt="a red cat", image=image, strength=0.5, num_inference_steps=4, height=32,
                                width=32, output_type="pil", generator=torch.Generator().manual_seed(5)).images[0],
                          dtype=np.int16)

    want = call(load_image(str(picture)))
    got = np.asarray(Image.open(tmp_path / "out.png"), dtype=np.int16)
    assert np.abs(got - want).max() <= 1
    # the picture is used: another picture gives another image
    assert np.abs(call(Image.new("RGB", (32, 32), (128, 128, 128))) - want).max() > 10


def test_a_pipeline_that_needs_ftfy_is_refused_before_any_rank_starts_without_it(tmp_path, monkeypatch):
    """SkyReels V2 (and about a dozen more) clean every prompt with ftfy without checking for it: without ftfy it
    failed inside every rank after loading ("name 'ftfy' is not defined"); WanPipeline checks, and runs without."""
    import sys

    import diffusers
    from commands import cli

    for name in ("SkyReelsV2Pipeline", "WanPipeline"):
        monkeypatch.delattr(sys.modules[getattr(diffusers, name).__module__], "ftfy", raising=False)  # not installed
    folder = tiny_pipelines.skyreels_v2(tmp_path)
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.gif"))
    assert result.returncode == 2, result.stderr
    assert "SkyReelsV2Pipeline cleans prompts with ftfy (pipeline_skyreels_v2.py:" in result.stderr
    assert "which this install lacks: pip install ftfy" in result.stderr and "backend:" not in result.stdout

    from shardrules.runner.pipeline import missing_library

    assert missing_library("WanPipeline") is None and missing_library("FluxPipeline") is None
    assert missing_library("PixArtSigmaPipeline") is None  # ftfy only under clean_caption, off without bs4


def test_the_readme_lists_the_pipeline_classes_the_suite_runs_from_a_prompt():
    import re

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    listed = re.search(r"checks the output against diffusers' own pipeline: (.*?); another class runs", readme)
    proven = {name.split()[0] for name in tiny_pipelines.MORE} | {"FluxPipeline", "WanPipeline", "PixArtSigmaPipeline",
                                                                  "FluxImg2ImgPipeline"}  # the tests above
    assert sorted(set(re.findall(r"\w+Pipeline", listed.group(1)))) == sorted(proven)


def frames_keyword(pipe) -> str:
    """The frame count's name in the pipeline's own __call__ (Sana Video: frames; Latte: video_length)."""
    import inspect

    return next(k for k in ("num_frames", "frames", "video_length") if k in inspect.signature(pipe.__call__).parameters)


SEEDED = [name for name, (_, run) in tiny_pipelines.MORE.items() if "seeded" in run]


@pytest.mark.parametrize("class_name", SEEDED)
def test_more_pipeline_folders_run_seeded_without_a_prompt(launched, class_name):
    """Seeded `run` (no prompt) on each folder whose transformer it drives: it conditions on the encoder whose width
    fits and writes finite latents (a vision-language encoder failed on its config; Flux 2, which takes several of
    its encoder's layers side by side, found no encoder that fits)."""
    import torch
    from safetensors.torch import load_file

    results = checked(launched[0][f"{class_name} seeded"])
    notes = " ".join(results[0]["notes"])
    assert f"conditioning: {tiny_pipelines.MORE[class_name][1]['seeded']} on seeded token ids" in notes, notes
    folder = Path(launched[0][class_name][0]["image"]).parent
    latents = load_file(str(folder / "seeded.safetensors"))["latents"]
    assert torch.isfinite(latents).all() and latents.abs().max() > 0


def test_flux2_seeded_conditioning_is_its_encoders_last_layers_side_by_side(launched):
    """Flux 2 Klein's seeded run equals the same loop in one process conditioned on Qwen 3's last two hidden states
    side by side, as transformers computes them from the folder."""
    import torch
    import transformers
    from diffusers import FlowMatchEulerDiscreteScheduler
    from safetensors.torch import load_file

    from shardrules import DenoisingRunner
    from shardrules.loader.build import load_plain
    from shardrules.runner.inputs import example_inputs

    checked(launched[0]["Flux2KleinPipeline seeded"])
    folder = Path(launched[0]["Flux2KleinPipeline"][0]["image"]).parent
    transformer = load_plain(folder / "transformer")
    example = example_inputs(transformer, seed=3)
    length = example.model_kwargs["encoder_hidden_states"].shape[1]
    qwen = transformers.Qwen3ForCausalLM.from_pretrained(folder / "text_encoder").eval()

    def states(seed):
        ids = torch.randint(2, 64, (1, length), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return torch.cat(qwen(input_ids=ids, output_hidden_states=True).hidden_states[-2:], dim=-1)

    example.model_kwargs["encoder_hidden_states"] = states(3)  # no --guidance: no negative branch
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
    want = DenoisingRunner(transformer, scheduler, progress=False, timestep_scale=example.timestep_scale,
                           cast_timestep=example.cast_timestep).run(
        example.latents, num_inference_steps=2, model_kwargs=example.model_kwargs)
    got = load_file(str(folder / "seeded.safetensors"))["latents"]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_a_cosmos_pipeline_without_its_safety_library_is_refused_before_any_rank_starts(tmp_path, monkeypatch):
    """The Cosmos pipelines build their safety checker in __init__, which needs cosmos_guardrail: without it every
    rank loaded its shards and then failed with an ImportError."""
    import importlib.util

    from commands import cli
    from diffusers.pipelines.cosmos.pipeline_cosmos2_text2image import CosmosSafetyChecker

    if importlib.util.find_spec("cosmos_guardrail") is None:  # what the ranks met, as diffusers raises it
        with pytest.raises(ImportError, match="cosmos_guardrail"):
            CosmosSafetyChecker()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cosmos_guardrail"
                        else real(name, *a))
    folder = tiny_pipelines.relabel(tiny_pipelines.flux(tmp_path), "Cosmos2TextToImagePipeline")
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.png"))
    assert result.returncode == 2, result.stderr
    assert "Cosmos2TextToImagePipeline builds Cosmos' safety checker (pipeline_cosmos2_text2image.py:" in result.stderr
    assert "pip install cosmos_guardrail" in result.stderr and "backend:" not in result.stdout


def test_a_pipeline_that_builds_what_diffusers_imports_only_with_another_library_is_refused(tmp_path, monkeypatch):
    """OmniGen's __init__ builds its multimodal processor, which diffusers imports only when torchvision is there:
    without it from_pretrained raised NameError on every rank after loading. SDXL builds its watermarker only when
    invisible_watermark is there (a guarded use), and is not refused."""
    import importlib.util

    import diffusers
    from commands import cli

    from shardrules.runner.pipeline import missing_library

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else real(name, *a))
    folder = tiny_pipelines.omnigen(tmp_path)
    if real("torchvision") is None:  # what the ranks met, as diffusers raises it
        with pytest.raises(NameError, match="OmniGenMultiModalProcessor"):
            diffusers.DiffusionPipeline.from_pretrained(folder)
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.png"))
    assert result.returncode == 2, result.stderr
    assert "OmniGenPipeline builds OmniGenMultiModalProcessor (pipeline_omnigen.py:" in result.stderr
    assert "which diffusers imports only with torchvision, and this install lacks it: pip install torchvision" in \
        result.stderr and "backend:" not in result.stdout
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # no optional library at all
    assert missing_library("StableDiffusionXLPipeline") is None


@pytest.mark.parametrize("component, class_name", [("text_processor", "Qwen2VLProcessor"),
                                                   ("tokenizer", "PixtralProcessor")])
def test_a_processor_this_install_cannot_build_is_refused_before_any_rank_starts(tmp_path, component, class_name):
    """LongCat-Image's text processor (a Qwen2VLProcessor, with a video processor) and Flux 2's tokenizer (a
    PixtralProcessor) need torchvision in transformers: without it every rank failed after loading the shards (the
    first with "type object 'VIDEO_PROCESSOR_MAPPING' has no attribute '_extra_content'")."""
    import importlib.util
    import json

    import transformers
    from commands import cli

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("this install builds it: torchvision is there")
    with pytest.raises((AttributeError, ImportError)):  # what the ranks met, as transformers raises it
        getattr(transformers, class_name)(image_processor=transformers.Qwen2VLImageProcessorPil(),
                                          tokenizer=tiny_pipelines.chat_tokenizer())
    folder = tiny_pipelines.relabel(tiny_pipelines.flux(tmp_path), "LongCatImagePipeline")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / component).mkdir(exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(dict(index, **{component: ["transformers", class_name]})))
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.png"))
    assert result.returncode == 2, result.stderr
    assert f"its {component} is a {class_name}, which transformers builds only with torchvision, and this install " \
           f"lacks it: pip install torchvision" in result.stderr and "backend:" not in result.stdout


def test_a_folder_diffusers_cannot_load_is_refused_before_any_rank_starts(tmp_path):
    """diffusers 0.42.1 saves VQ-Diffusion's learned embeddings as ["diffusers", ...], a class only its deprecated
    pipeline module has, and its own from_pretrained fails on the folder it wrote; run failed the same way on every
    rank after the launch. It is refused here, naming the component and the entry."""
    import diffusers
    from commands import cli

    folder = tiny_pipelines.vq_diffusion(tmp_path)
    with pytest.raises(ValueError, match="has no class `LearnedClassifierFreeSamplingEmbeddings`"):
        diffusers.DiffusionPipeline.from_pretrained(folder)
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.png"))
    assert result.returncode == 2, result.stderr
    assert 'its learned_classifier_free_sampling_embeddings is declared as ["diffusers", ' \
           '"LearnedClassifierFreeSamplingEmbeddings"] in model_index.json, and diffusers ' in result.stderr
    assert "backend:" not in result.stdout
    # a module the folder names, other than diffusers' own libraries, is not imported to look (`this` prints)
    import sys

    from shardrules.loader.pipeline import Component, PipelineFolder
    from shardrules.runner.pipeline import unfound_component

    named = PipelineFolder(folder, "VQDiffusionPipeline", (Component("extra", "this", "Zen", folder / "extra"),))
    assert unfound_component(named) is None and "this" not in sys.modules


def test_a_pipeline_that_returns_hdr_video_is_refused_before_any_rank_starts(tmp_path):
    """LTX-2's HDR pipeline returns linear HDR frames ([0, inf), arrays only): run, which writes 8-bit images and
    videos, failed on rank 0 after every rank had denoised."""
    import diffusers
    import torch
    from commands import cli

    folder = tiny_pipelines.relabel(tiny_pipelines.ltx2(tmp_path), "LTX2HDRPipeline")
    pipe = diffusers.DiffusionPipeline.from_pretrained(folder)
    frames = pipe(prompt="a cat", num_inference_steps=1, height=32, width=32, num_frames=1, max_sequence_length=16,
                  output_type="pil", generator=torch.Generator().manual_seed(0)).frames  # what run asks for
    assert not hasattr(frames[0][0], "save") and float(frames.max()) > 1.0
    result = cli("run", str(folder), "--prompt", "a cat", "--out", str(tmp_path / "a.gif"))
    assert result.returncode == 2, result.stderr
    assert "LTX2HDRPipeline returns linear HDR video (pipeline_ltx2_hdr_lora.py:" in result.stderr
    assert "backend:" not in result.stdout


def test_a_per_step_schedule_decides_the_step_count(tmp_path):
    """Ideogram 4's guidance_schedule holds one value for each of its 48 default steps, and the pipeline raises for
    any other count: run's default of 4 steps (or --guidance, which the pipeline takes instead of the schedule) made
    every rank fail after loading. Without --steps run takes the pipeline's own 48; another count, or --guidance, is
    refused unless the schedule is given too (the launch above gives two values for two steps)."""
    import argparse

    from commands import cli

    from shardrules.cli import check_prompt_arguments
    from shardrules.loader.pipeline import read_folder
    from shardrules.runner.pipeline import per_step_default

    assert per_step_default("Ideogram4Pipeline") == ("guidance_schedule", 48)
    assert per_step_default("FluxPipeline") is None and per_step_default("SanaPipeline") is None  # lists, not per step
    folder = tiny_pipelines.ideogram4(tmp_path)
    out = str(tmp_path / "a.png")
    for args, words in ((["--steps", "4"], "--steps 4: Ideogram4Pipeline.__call__'s guidance_schedule holds one value "
                                           "for each of its 48 default steps; give --call guidance_schedule=[...] with "
                                           "4 values too"),
                        (["--guidance", "5"], "--guidance: Ideogram4Pipeline guides by its guidance_schedule (one "
                                              "value per step), and takes one or the other; give --call "
                                              "guidance_schedule=null with --guidance")):
        result = cli("run", str(folder), "--prompt", "a cat", "--out", out, *args)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert "backend:" not in result.stdout
    defaults = dict(prompt="a cat", out=out, split="auto", batch=1, call=None, guidance=None, negative_prompt=None,
                    height=None, width=None, frames=None, model_dir=str(folder))
    args = argparse.Namespace(**defaults, steps=None)
    check_prompt_arguments(args, read_folder(folder))
    assert args.steps == 48
    args = argparse.Namespace(**dict(defaults, call=[("guidance_schedule", [7.0, 3.0])]), steps=None)
    check_prompt_arguments(args, read_folder(folder))
    assert args.steps == 4  # run's own default: the schedule given is the user's


def test_steps_for_a_pipeline_with_its_own_schedule_are_refused_before_any_rank_starts(tmp_path):
    """LTX-2's DFR pipeline takes a distilled sigma schedule and no step count: run's default of 4 steps made every
    rank fail after loading ("does not take num_inference_steps"); now run leaves the count out (the launch above
    runs it), and an explicit --steps is refused."""
    from commands import cli

    folder = tiny_pipelines.ltx2_dfr(tmp_path)
    result = cli("run", str(folder), "--prompt", "a cat", "--steps", "3", "--out", str(tmp_path / "a.gif"))
    assert result.returncode == 2, result.stderr
    assert "--steps: LTX2DFRPipeline.__call__ takes no num_inference_steps (it follows its own schedule)" in \
        result.stderr and "backend:" not in result.stdout
