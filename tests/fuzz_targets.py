"""What the fuzzers feed and what they allow out: shared by tests/test_fuzz.py and bench/fuzz_rules.py.

Parsing, compiling and linting may raise only the project's typed rule errors, each with a line and a
column; anything else is a failure.
"""

from __future__ import annotations

import random

from shardrules.errors import RuleError
from shardrules.grammar import parse_expression
from shardrules.lint.run import lint_sources
from shardrules.rules import read_rule_file

VALID = [
    "container in [blocks, layers] and index is digit",
    "class in [FluxTransformerBlock, FluxSingleTransformerBlock]",
    "name == txt_in",
    "params >= 10M and not (name endswith norm)",
    'name matches "blocks.*.attn" or leaf == "to_q"',
    "depth <= 3 and index not in [0, 1] or name is root",
    "leaf is not digit and container != ''",
    "name startswith context_embedder and name contains 'refiner'",
]
WORDS = ["and", "or", "not", "in", "is", "digit", "root", "matches", "startswith", "endswith", "contains", "==",
         "!=", "<", "<=", ">", ">=", "(", ")", "[", "]", ",", '"', "'", "name", "leaf", "container", "index",
         "depth", "class", "params", "blocks", "10M", "3", "1.5K", "*", "\\", "\n", " ", "é", "\x00", "⁹"]
TOML_KEYS = ["schema", "resolution", "order", "strategy", "block-class", "common-numbered-block", "from", "shard",
             "model", "name", "applies-to", "rename", "pattern", "replace", "fuse", "allow-init", "match",
             "reshard-after-forward", "description", "bogus"]


class Failure(Exception):
    """An input that made a parser, the compiler or the linter raise something it must not."""


def check_expression(text: str) -> None:
    try:
        from shardrules.engine.compile import compile_rule

        compile_rule(parse_expression(text))
    except RuleError as exc:
        if not (isinstance(exc.line, int) and exc.line >= 1 and isinstance(exc.column, int) and exc.column >= 1):
            raise Failure(f"error without a position: {exc!r}") from exc
    except Exception as exc:
        raise Failure(f"{type(exc).__name__}: {exc}") from exc


def check_document(text: str) -> None:
    try:
        read_rule_file(text, "fuzz.toml")
    except RuleError as exc:
        if not (exc.path == "fuzz.toml" and exc.line >= 1 and exc.column >= 1):
            raise Failure(f"error without a position: {exc!r}") from exc
    except Exception as exc:
        raise Failure(f"read_rule_file: {type(exc).__name__}: {exc}") from exc
    try:
        for finding in lint_sources([("fuzz.toml", text)], layered=False):
            if finding.line < 1 or finding.column < 1:
                raise Failure(f"finding without a position: {finding}")
    except Failure:
        raise
    except Exception as exc:
        raise Failure(f"lint: {type(exc).__name__}: {exc}") from exc


# -- generators ----------------------------------------------------------------------------------------

def random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(WORDS) + rng.choice(["", " "]) for _ in range(rng.randint(0, 12)))
    return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 40)))


def mutate(rng: random.Random, text: str) -> str:
    tokens = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(6)
        i = rng.randrange(len(tokens) + 1)
        if action == 0 and tokens:
            del tokens[min(i, len(tokens) - 1)]
        elif action == 1:
            tokens.insert(i, rng.choice(WORDS))
        elif action == 2 and len(tokens) > 1:
            j = rng.randrange(len(tokens))
            k = rng.randrange(len(tokens))
            tokens[j], tokens[k] = tokens[k], tokens[j]
        elif action == 3:
            tokens.insert(i, rng.choice(VALID))
        elif action == 4 and tokens:
            t = tokens[min(i, len(tokens) - 1)]
            tokens[min(i, len(tokens) - 1)] = t[: rng.randint(0, len(t))]
        else:
            tokens.insert(i, "(" * rng.randint(1, 3) + rng.choice(VALID) + ")" * rng.randint(0, 3))
    return " ".join(tokens)


def expression(rng: random.Random) -> str:
    return random_text(rng) if rng.random() < 0.3 else mutate(rng, rng.choice(VALID))


def _toml_value(rng: random.Random, depth: int = 0) -> str:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return str(rng.randint(-3, 3))
    if kind == 1:
        return rng.choice(["true", "false", "1.5", "1979-05-27"])
    if kind in (2, 3):
        quote = rng.choice(['"', "'", '"""', "'''"])
        body = expression(rng).replace("\\", "\\\\") if quote.startswith('"') else expression(rng)
        body = body.replace(quote, "") if quote in ("'", "'''") else body.replace('"', '\\"')
        if len(quote) == 1:
            body = body.replace("\n", " ")
        return quote + body + quote
    if kind == 4:
        return "[" + ", ".join(_toml_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if kind == 5:
        return "{ " + ", ".join(f"{rng.choice(TOML_KEYS)} = {_toml_value(rng, depth + 1)}"
                                for _ in range(rng.randint(0, 3))) + " }"
    return "[" + ", ".join(f'"{rng.choice(VALID)}"' for _ in range(rng.randint(0, 3))) + "]"


def document(rng: random.Random) -> str:
    schema = rng.choice(["1", "1", "2", '"1"'])
    lines = [] if rng.random() < 0.1 else [f"schema = {schema}"]
    for _ in range(rng.randint(0, 6)):
        choice = rng.randrange(5)
        if choice == 0:
            lines.append("[[model]]")
            lines.append(f'name = "m{rng.randint(0, 3)}"')
            lines.append(f'applies-to = "{rng.choice(VALID)}"')
            lines.append(f"shard = {_toml_value(rng)}")
        elif choice == 1:
            table = rng.choice(["resolution", "strategy.block-class", "strategy.common-numbered-block",
                                "model.allow-init", "x"])
            lines.append(f"[{table}]")
        elif choice == 2:
            lines.append("[[model.rename]]")
        else:
            lines.append(f"{rng.choice(TOML_KEYS)} = {_toml_value(rng)}")
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.3:  # character-level damage
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars) + 1)
            chars.insert(i, rng.choice(['"', "'", "[", "]", "=", "\n", "\\", "{", "#", "é"]))
        text = "".join(chars)
    return text
