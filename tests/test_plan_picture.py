"""`shardrules plan DIR --html FILE`: one self-contained page picturing the plan. Checked by what the page holds,
read with the standard library's HTML parser: a box per module of any size, sized by its parameters, coloured by
the unit that holds it; the rule of each unit; the root's share and the peak unit."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import tiny_models
from commands import cli

from shardrules import load_rules
from shardrules.loader.planning import plan_folder


class Boxes(HTMLParser):
    """Every box of the page: its module name, parameter weight, background, tooltip, and the nesting."""

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[str, dict] = {}
        self.stack: list[str | None] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        name = attrs.get("data-name") if "box" in (attrs.get("class") or "").split() else None
        if name is not None:
            style = dict(part.strip().split(": ", 1) for part in attrs["style"].split(";") if part.strip())
            parent = next((n for n in reversed(self.stack) if n is not None), None)
            self.boxes[name] = {"weight": int(style["flex-grow"]), "background": style["background"],
                                "title": attrs["title"], "parent": parent, "unit": "unit" in attrs["class"]}
        if tag != "span":
            self.stack.append(name)

    def handle_endtag(self, tag):
        if tag != "span":
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def read(path) -> Boxes:
    page = Boxes()
    page.feed(path.read_text())
    return page


def test_the_page_pictures_every_unit_with_its_rule_size_and_colour(tmp_path):
    model = tiny_models.build("WanTransformer3DModel")
    model.save_pretrained(tmp_path / "wan")
    result = cli("plan", str(tmp_path / "wan"), "--html", str(tmp_path / "plan.html"))
    assert result.returncode == 0, result.stderr
    assert f"plan picture written to {tmp_path / 'plan.html'}" in result.stdout
    page = read(tmp_path / "plan.html")
    text = " ".join(page.text)
    assert "script" not in page.tags and not re.search(r"https?://", (tmp_path / "plan.html").read_text())

    # every module drawn apart carries its own parameter count, from the model itself
    params = {name: sum(p.numel() for p in module.parameters()) for name, module in model.named_modules()}
    assert page.boxes[""]["weight"] == params[""]
    for name, box in page.boxes.items():
        assert box["weight"] == max(params[name], 1), name
        assert box["parent"] == (name.rpartition(".")[0] if name else None), name  # nested as the modules are

    # units: boxed as units, one colour each shared by every module inside, the root's hatched grey
    plan = plan_folder(tmp_path / "wan", load_rules()).plans[None]
    units = [u.name for u in plan.units_info]
    assert sorted(n for n, b in page.boxes.items() if b["unit"]) == sorted(units) == ["blocks.0", "blocks.1"]
    colours = {page.boxes[u]["background"] for u in units}
    assert len(colours) == 2 and all(c.startswith("hsl(") for c in colours)
    for name, box in page.boxes.items():
        unit = next((u for u in units if name == u or name.startswith(u + ".")), None)
        if unit is None:
            assert "repeating-linear-gradient" in box["background"] and "held by the root" in box["title"], name
        else:
            assert box["background"] == page.boxes[unit]["background"], name
            assert f"unit {unit}: " in box["title"] and "diffusers.toml:" in box["title"], name
    assert "blocks.0.attn1.to_q" in page.boxes  # small modules are drawn down to the linear layers

    # the header: what decides whether it fits
    root = plan.root_params / plan.total_params
    assert f"{root:.1%} of the parameters" in text
    peak = max(reversed(plan.units_info), key=lambda u: u.bytes_per_rank(1))  # equal blocks: the first
    assert f"{peak.name} ({peak.class_name}): {peak.bytes_per_rank(1) / 2**20:.2f} MiB gathered at a time" in text
    assert "container == blocks and index is digit" in text
    assert "warning: the root keeps" not in text


def test_a_rule_that_leaves_most_parameters_in_the_root_is_flagged(tmp_path):
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan")
    rules = tmp_path / "rules.toml"
    rules.write_text('schema = 1\n[[model]]\nname = "wan-thin"\napplies-to = "class == \'WanTransformer3DModel\'"\n'
                     '[[model.shard]]\nmatch = "name == \'blocks.0.attn1.to_q\'"\n')
    result = cli("plan", str(tmp_path / "wan"), "--rules", str(rules), "--html", str(tmp_path / "p.html"))
    assert result.returncode == 0, result.stderr
    text = " ".join(read(tmp_path / "p.html").text)
    assert re.search(r"warning: the root keeps 9\d% of the parameters", text), text


def test_a_pipeline_page_has_a_section_per_sharded_component(tmp_path):
    import tiny_pipelines

    folder = tiny_pipelines.flux(tmp_path)
    result = cli("plan", str(folder), "--format", "json", "--html", str(tmp_path / "p.html"))
    assert result.returncode == 0 and "plan picture written" in result.stderr
    html = (tmp_path / "p.html").read_text()
    assert re.findall(r'data-component="(\w+)"', html) == ["transformer", "text_encoder", "text_encoder_2"]


def test_html_out_is_checked_before_planning(tmp_path):
    tiny_models.build("WanTransformer3DModel").save_pretrained(tmp_path / "wan")
    result = cli("plan", str(tmp_path / "wan"), "--html", str(tmp_path / "missing" / "p.html"))
    assert result.returncode == 2 and "--html" in result.stderr


def test_many_equal_blocks_are_tiled_in_a_grid(tmp_path):
    """40 blocks in one column were 40 illegible slivers; equal siblings beyond 8 are tiles of a grid."""
    import diffusers

    from shardrules.loader.build import all_on_meta

    with all_on_meta():
        diffusers.WanTransformer3DModel(num_layers=12, num_attention_heads=2, attention_head_dim=8, ffn_dim=32,
                                        text_dim=16, freq_dim=16, in_channels=4, out_channels=4).save_config(tmp_path)
    result = cli("plan", str(tmp_path), "--html", str(tmp_path / "p.html"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "p.html").read_text()
    assert html.count("grid-template-columns: repeat(4, 1fr)") == 1  # ceil(sqrt(12)) columns, for blocks only
    assert len([b for b in read(tmp_path / "p.html").boxes if re.fullmatch(r"blocks\.\d+", b)]) == 12
