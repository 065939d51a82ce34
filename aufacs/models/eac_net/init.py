"""Lasagne's default initialisation of the release's layers: Glorot-uniform weights, zero biases."""

from __future__ import annotations

import torch
from torch import nn


def glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Lasagne's default initialisation (Glorot uniform, gain 1) with explicit fans."""
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    nn.init.uniform_(weight, -bound, bound)


def init_lasagne_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, like Lasagne's Conv2D and Dense layers."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
