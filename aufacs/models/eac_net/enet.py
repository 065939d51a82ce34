"""The E-Net: VGG-19 groups 1-4 with the attention-enhancing layers, and the E-Net's AU head.

The trunk is VGG-19; groups 1-2 stay frozen at their ImageNet weights. A landmark attention
map A (:func:`aufacs.models.attention.eac_attention_map`, 100 x 100, resized bilinearly to the
input size and max-pooled 2 x 2 three times) enhances groups 3 and 4 residually, after the ReLUs:
``conv3_all = conv3_4 + conv3_1 * A(S/4)`` and ``conv4_all = conv4_4 + conv4_1 * A(S/8)``.
Its AU head: pool4 -> conv5_1..conv5_4 -> pool5 -> fc6 4096 (ReLU, dropout 0.5) -> au_fc 2048
(ReLU, dropout 0.5) -> N.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.models.eac_net.config import DROPOUT, EACNetConfig

#: VGG-19 convolution groups: (channels, convolutions). Groups 1-2 are frozen.
VGG19_GROUPS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
FROZEN_GROUPS: tuple[int, ...] = (1, 2)
#: The release's widths of the E-Net's dense layers.
FC6_UNITS = 4096
ENET_AU_UNITS = 2048


def conv_names(groups: Sequence[int]) -> list[str]:
    """The names ``conv{g}_{i}`` of the convolutions of VGG-19 ``groups`` (1-based), in order."""
    return [f"conv{g}_{i + 1}" for g in groups for i in range(VGG19_GROUPS[g - 1][1])]


def _vgg_convs(config: EACNetConfig, groups: Sequence[int], in_channels: int) -> nn.ModuleDict:
    """VGG-19's 3 x 3 "same" convolutions of ``groups`` (1-based), named ``conv{g}_{i}``."""
    convs = nn.ModuleDict()
    for group in groups:
        channels, count = VGG19_GROUPS[group - 1]
        out_channels = config.width(channels)
        for i in range(count):
            convs[f"conv{group}_{i + 1}"] = nn.Conv2d(in_channels, out_channels, 3, padding=1)
            in_channels = out_channels
    return convs


class ENetTrunk(nn.Module):
    """VGG-19 groups 1-4 with the two attention-enhanced E-layers.

    ``forward(image (B, 3, S, S), attention (B, 1, S, S)) -> conv4_all (B, C4, S/8, S/8)``.
    """

    def __init__(self, config: EACNetConfig) -> None:
        super().__init__()
        self.convs = _vgg_convs(config, (1, 2, 3, 4), in_channels=3)
        self.out_channels = config.width(VGG19_GROUPS[3][0])

    def _group(self, x: torch.Tensor, group: int) -> list[torch.Tensor]:
        """The ReLU outputs of every convolution of ``group``, in order."""
        outputs = []
        for name in conv_names((group,)):
            x = F.relu(self.convs[name](x))
            outputs.append(x)
        return outputs

    def forward(self, image: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        attention_4 = F.max_pool2d(F.max_pool2d(attention, 2), 2)  # (B, 1, S/4, S/4)
        attention_8 = F.max_pool2d(attention_4, 2)  # (B, 1, S/8, S/8)
        x = F.max_pool2d(self._group(image, 1)[-1], 2)
        x = F.max_pool2d(self._group(x, 2)[-1], 2)
        conv3 = self._group(x, 3)
        conv3_all = conv3[-1] + conv3[0] * attention_4
        conv4 = self._group(F.max_pool2d(conv3_all, 2), 4)
        return conv4[-1] + conv4[0] * attention_8  # (B, C4, S/8, S/8)


class ENetHead(nn.Module):
    """The E-Net's AU path after conv4_all: pool4, group 5, pool5, fc6, au_fc, output.

    ``forward(conv4_all (B, C4, S/8, S/8)) -> logits (B, N)``.
    """

    def __init__(self, config: EACNetConfig, in_channels: int) -> None:
        super().__init__()
        self.convs = _vgg_convs(config, (5,), in_channels)
        side = config.input_size // 32
        self.fc6 = nn.Linear(
            config.width(VGG19_GROUPS[4][0]) * side * side, config.width(FC6_UNITS)
        )
        self.au_fc = nn.Linear(config.width(FC6_UNITS), config.width(ENET_AU_UNITS))
        self.out = nn.Linear(config.width(ENET_AU_UNITS), config.num_aus)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, conv4_all: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(conv4_all, 2)
        for conv in self.convs.values():
            x = F.relu(conv(x))
        x = F.max_pool2d(x, 2).flatten(1)  # (B, C5 * (S/32)²), channel-major like Lasagne
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.au_fc(x)))
        return self.out(x)
