"""The large fuzzing budget for what a model folder holds: >= 100,000 damaged safetensors headers, index files,
config.json and model_index.json files through the loader's readers.

Each input starts from a valid file and is damaged: values of every JSON type (huge, negative, fractional,
nested, strings of digits), keys dropped or added, paths that climb out of the folder, Infinity/NaN and
5,000-digit literals, deep nesting, invalid UTF-8, flipped or cut bytes, wrong length prefixes. Only
``CheckpointError`` may come out (a typed error naming the file); anything else is printed as a failure with
its input (to be kept as a regression test in tests/test_hostile_folders.py).

    python bench/fuzz_checkpoints.py [--per-kind 25000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

from shardrules.errors import CheckpointError
from shardrules.loader.build import model_class, read_config
from shardrules.loader.checkpoint import Checkpoint, read_header
from shardrules.loader.pipeline import PipelineFolder

DTYPES = ["F32", "F16", "BF16", "I64", "I32", "U8", "BOOL", "F8_E4M3", "F64", "f32", "", "X"]


def junk_value(rng: random.Random, depth: int = 0):
    """A JSON value of any type, sometimes hostile."""
    choice = rng.randrange(14)
    if choice == 0:
        return rng.randint(-2**70, 2**70)
    if choice == 1:
        return rng.choice([0, 1, -1, 2**63, 2**64, 128, 3])
    if choice == 2:
        return rng.uniform(-1e3, 1e3)
    if choice == 3:
        return rng.choice(["0", "128", "", "../x", "/etc/passwd", "a" * 300, "\u00e9", "\x00"])
    if choice == 4:
        return rng.choice([True, False, None])
    if choice == 5 and depth < 3:
        return [junk_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 6 and depth < 3:
        return {rng.choice(["a", "dtype", "shape", "data_offsets", "__metadata__"]): junk_value(rng, depth + 1)
                for _ in range(rng.randrange(3))}
    if choice == 7:
        return [rng.randint(0, 64) for _ in range(rng.randrange(4))]
    return rng.randint(0, 256)


def damage_text(rng: random.Random, text: str) -> bytes:
    """JSON text, damaged at the byte level or by hostile literals."""
    data = text.encode()
    how = rng.randrange(8)
    if how == 0 and data:  # flip bytes
        data = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if how == 1:  # cut
        return data[:rng.randrange(len(data) + 1)]
    if how == 2:  # deep nesting
        depth = rng.choice([100, 1000, 5000, 20000])
        return b"[" * depth + b"1" + b"]" * depth
    if how == 3:  # literals json accepts but a format cannot hold
        literal = rng.choice([b"Infinity", b"-Infinity", b"NaN", b"1e400", b"9" * 5000, b"-0", b"1.5"])
        return data.replace(b"0", literal, 1) if b"0" in data else literal
    if how == 4:  # invalid UTF-8
        return data[:len(data) // 2] + b"\xff\xfe" + data[len(data) // 2:]
    if how == 5:  # not an object
        return json.dumps(junk_value(rng)).encode()
    return data


def header_input(rng: random.Random) -> bytes:
    tensors: dict = {}
    offset = 0
    for i in range(rng.randrange(1, 5)):
        shape = [rng.randrange(1, 5) for _ in range(rng.randrange(0, 3))]
        size = 4
        for d in shape:
            size *= d
        tensors[f"t{i}"] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if rng.random() < 0.5:  # damage one entry's structure
        entry = tensors[rng.choice(list(tensors))]
        field = rng.choice(["dtype", "shape", "data_offsets", "extra"])
        if rng.random() < 0.2:
            entry.pop(field, None)
        elif field == "dtype":
            entry[field] = rng.choice(DTYPES + [junk_value(rng)])
        else:
            entry[field] = junk_value(rng)
    if rng.random() < 0.1:
        tensors["__metadata__"] = junk_value(rng)
    if rng.random() < 0.05:  # many entries
        for i in range(rng.randrange(100, 3000)):
            tensors[f"z{i}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    raw = damage_text(rng, json.dumps(tensors)) if rng.random() < 0.4 else json.dumps(tensors).encode()
    length = len(raw)
    prefix_how = rng.randrange(10)
    if prefix_how == 0:
        length = rng.randrange(2**64)
    elif prefix_how == 1:
        length = max(0, length + rng.randint(-8, 8))
    body = struct.pack("<Q", length) + raw + b"\0" * rng.choice([offset, 0, offset // 2, offset + 7])
    return body[:rng.randrange(len(body) + 1)] if rng.random() < 0.05 else body


def index_input(rng: random.Random) -> bytes:
    weight_map: object = {"a.weight": "part-1.safetensors", "b.weight": "part-2.safetensors"}
    how = rng.randrange(6)
    if how == 0:
        weight_map = {"a.weight": rng.choice(["../outside.safetensors", "/etc/passwd", "sub/x.safetensors", "",
                                              "missing.safetensors", ".", "part-1.safetensors/"])}
    elif how == 1:
        weight_map = {"a.weight": junk_value(rng)}
    elif how == 2:
        weight_map = junk_value(rng)
    index: object = {"metadata": {}, "weight_map": weight_map}
    if rng.random() < 0.1:
        index = junk_value(rng)
    text = json.dumps(index)
    return damage_text(rng, text) if rng.random() < 0.4 else text.encode()


def config_input(rng: random.Random) -> bytes:
    config: dict = {"_class_name": "SanaTransformer2DModel", "num_layers": 2}
    how = rng.randrange(6)
    if how == 0:
        config["_class_name"] = junk_value(rng)
    elif how == 1:
        config = {"architectures": rng.choice([junk_value(rng), ["T5EncoderModel"], ["NoSuch"], [], {"a": 1}])}
    elif how == 2:
        config["_class_name"] = rng.choice(["DiffusionPipeline", "FlowMatchEulerDiscreteScheduler", "NoSuchModel",
                                            "", "os.system", "__import__"])
    text = json.dumps(config)
    return damage_text(rng, text) if rng.random() < 0.5 else text.encode()


def model_index_input(rng: random.Random) -> bytes:
    index: object = {"_class_name": "SanaPipeline", "transformer": ["diffusers", "SanaTransformer2DModel"],
                     "vae": ["diffusers", "AutoencoderKL"]}
    how = rng.randrange(5)
    if how == 0:
        index[rng.choice(["transformer", "../../x", "/abs", "a/b", "", "_class_name"])] = junk_value(rng)
    elif how == 1:
        index["transformer"] = [rng.choice(["diffusers", "transformers", "os", None, 1]),
                                rng.choice(["SanaTransformer2DModel", "NoSuch", None, 3, ""])]
    elif how == 2:
        index = junk_value(rng)
    text = json.dumps(index)
    return damage_text(rng, text) if rng.random() < 0.4 else text.encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-kind", type=int, default=25_000, help="inputs of each of the four kinds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures: list[tuple[str, bytes, str]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "model"
        model.mkdir()
        (model / "part-1.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
        (model / "part-2.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
        pipe = root / "pipe"
        (pipe / "transformer").mkdir(parents=True)
        (pipe / "vae").mkdir()

        def check_header(data: bytes) -> None:
            (root / "h.safetensors").write_bytes(data)
            read_header(root / "h.safetensors")

        def check_index(data: bytes) -> None:
            (model / "model.safetensors.index.json").write_bytes(data)
            Checkpoint(model).close()

        def check_config(data: bytes) -> None:
            (model / "config.json").write_bytes(data)
            model_class(read_config(model))

        def check_model_index(data: bytes) -> None:
            (pipe / "model_index.json").write_bytes(data)
            PipelineFolder.read(pipe)

        kinds = (("header", header_input, check_header), ("index", index_input, check_index),
                 ("config", config_input, check_config), ("model_index", model_index_input, check_model_index))
        for kind, generate, check in kinds:
            start = time.perf_counter()
            typed = 0
            for _ in range(args.per_kind):
                data = generate(rng)
                try:
                    check(data)
                except CheckpointError:
                    typed += 1
                except Exception as exc:  # an untyped escape: the failure this bench looks for
                    failures.append((kind, data[:300], f"{type(exc).__name__}: {str(exc)[:200]}"))
            print(f"{kind}: {args.per_kind:,} inputs in {time.perf_counter() - start:.1f} s, {typed:,} refused "
                  f"with CheckpointError, {args.per_kind - typed:,} accepted")
    total = 4 * args.per_kind
    print(f"total: {total:,} inputs, {len(failures)} untyped escapes, {time.perf_counter() - began:.1f} s")
    seen: set[tuple[str, str]] = set()
    for kind, data, why in failures:  # one example of each kind of escape
        if (kind, why.split(":")[0]) not in seen:
            seen.add((kind, why.split(":")[0]))
            print(f"FAIL {kind}: {why}\n  input: {data[:160]!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
