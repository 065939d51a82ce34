"""Building blocks shared by both ME-GraphAU stages: the token backbone, the linear block and
the cosine-similarity classifier.

T is the number of spatial tokens (7 x 7 = 49 at 224 px for a ResNet), C a channel width.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from torchvision.models import ResNet


class ResNetTokens(nn.Module):
    """A torchvision ResNet up to ``layer4``, its last feature map returned as tokens.

    (B, 3, H, W) -> (B, T, C) with T = h·w tokens in row-major order of the (h, w) =
    (H/32, W/32) map (rounded up) and C = 2048 for ResNet-50, 512 for ResNet-18. The average
    pool and the classifier ``fc`` are dropped (official ``model/resnet.py`` forward, and
    ``MEFARG`` sets ``backbone.fc = None``). Parameter names stay torchvision's
    (``conv1.weight``, ``layer1.0.bn1.weight`` ...), as in the official checkpoints.

    Weights and activations use the channels-last memory format (same values; convolutions
    run about 10 % faster on CPU, and it is the format GPU tensor cores prefer).
    """

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.out_channels: int = resnet.fc.in_features
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(resnet, name))
        self.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, C, h, w)
        return x.flatten(2).transpose(1, 2)


class LinearBlock(nn.Module):
    """Linear -> BatchNorm -> ReLU on every token (official ``model/basic_block.py``), for
    ``copies`` independent blocks that read the same input, run as one matrix product.

    (B, T, in_features) -> (B, T, copies·out_features); copy k owns output columns
    k·out_features ... (k+1)·out_features - 1. The BatchNorm has one channel per output
    column with statistics over batch and tokens, as the official BatchNorm1d over the
    (B, C, T) permuted tensor. Weights ~ N(0, 2 / out_features) per copy, biases keep
    PyTorch's default init, BatchNorm weight 1 and bias 0. The official block's dropout has
    p = 0 and is left out.
    """

    def __init__(self, in_features: int, out_features: int, copies: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, copies * out_features)
        self.bn = nn.BatchNorm1d(copies * out_features)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / out_features))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        y = self.fc(tokens)
        return F.relu(self.bn(y.flatten(0, 1))).view_as(y)


def class_similarity(nodes: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each node with its own rectified class vector (official
    ``Head.forward``): p_i = <v_i / |v_i|, relu(s_i) / |relu(s_i)|>.

    ``nodes`` (B, N, C), ``class_vectors`` (N, C) -> (B, N). The nodes come out of a ReLU,
    so p lies in [0, 1] and *is* the probability: no sigmoid, no bias.
    """
    unit_nodes = F.normalize(nodes, p=2, dim=-1)
    unit_classes = F.normalize(F.relu(class_vectors), p=2, dim=-1)
    return (unit_nodes * unit_classes).sum(dim=-1)
