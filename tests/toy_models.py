"""A tensor-parallel-style model: a fused QKV projection whose weight has a ``weight_loader``."""

from __future__ import annotations

import torch
from torch import nn

DIM = 6


def qkv_weight_loader(param: nn.Parameter, loaded: torch.Tensor, shard_id: str) -> None:
    """vLLM-style loader: the checkpoint holds q, k and v apart; write one into its rows of the fused weight."""
    offset = "qkv".index(shard_id) * DIM
    param.data[offset:offset + DIM].copy_(loaded)


class FusedBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.qkv.weight.weight_loader = qkv_weight_loader
        self.out = nn.Linear(3 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(torch.tanh(self.qkv(x)))


class FusedToy(nn.Module):
    def __init__(self, layers: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FusedBlock() for _ in range(layers))
        self.head = nn.Linear(DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


RULES = r"""
schema = 1

[[model]]
name = "fused-toy"
applies-to = "class == FusedToy"
shard = ["container == blocks and index is digit"]

[[model.rename]]
pattern = '^(?P<pre>.*)\.(?P<part>q|k|v)\.(?P<kind>weight|bias)$'
replace = '\g<pre>.qkv.\g<kind>'
fuse = ["q", "k", "v"]
"""


def split_state_dict(model: FusedToy) -> dict[str, torch.Tensor]:
    """The checkpoint layout of a model that stores q, k and v separately."""
    out = {}
    for name, tensor in model.state_dict().items():
        if ".qkv." in name:
            for i, part in enumerate("qkv"):
                out[name.replace(".qkv.", f".{part}.")] = tensor[i * DIM:(i + 1) * DIM].clone()
        else:
            out[name] = tensor.clone()
    return out
