"""Tiny diffusers pipeline folders built offline: the package's demo builders (shardrules/demo/pipelines.py)."""

from shardrules.demo.pipelines import (  # noqa: F401
    FLUX_CALL,
    PIECES,
    PIXART_CALL,
    WAN_CALL,
    clip_tokenizer,
    flux,
    one_block_vae,
    pixart,
    save_pipeline,
    umt5_tokenizer,
    wan,
)
