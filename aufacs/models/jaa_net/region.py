"""JAA-Net's region learning: partitioned convolutions and the multi-scale region layers.

**Partitioned convolutions** (official ``LocalConv2dReLU``): a g x g grid of cells, each with its
own BatchNorm -> ReLU -> 3 x 3 convolution (padding 1, i.e. zero padding at the cell's border).
The cells are moved into the channel dimension, so the g² BatchNorms are one BatchNorm over
g²·C channels (statistics of each cell's own pixels) and the g² convolutions are one grouped
convolution with g² groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Grid sizes of the three partitioned branches of each region layer (official [[8,8],[4,4],[2,2]]).
REGION_GRIDS: tuple[int, int, int] = (8, 4, 2)


class PartitionedConv(nn.Module):
    """A g x g grid of cells, each with its own BatchNorm -> ReLU -> 3 x 3 conv (padding 1).

    Same function and parameters as the official ``LocalConv2dReLU`` (one BatchNorm2d and one
    Conv2d per cell, cell k = row·g + column), computed as one BatchNorm over g²·C channels
    and one grouped convolution. (B, C_in, H, W) -> (B, C_out, H, W); H, W divisible by g.
    """

    def __init__(self, grid: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.grid = grid
        cells = grid * grid
        self.norm = nn.BatchNorm2d(cells * in_channels)
        self.conv = nn.Conv2d(cells * in_channels, cells * out_channels, 3, padding=1, groups=cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        g = self.grid
        h, w = height // g, width // g
        cells = x.reshape(batch, channels, g, h, g, w).permute(0, 2, 4, 1, 3, 5)
        y = self.conv(F.relu(self.norm(cells.reshape(batch, g * g * channels, h, w))))
        y = y.reshape(batch, g, g, -1, h, w).permute(0, 3, 1, 4, 2, 5)
        return y.reshape(batch, -1, height, width)


class RegionLayer(nn.Module):
    """Hierarchical multi-scale region layer: conv, then three nested partitioned branches
    (8 x 8 cells -> C/2, 4 x 4 -> C/4, 2 x 2 -> C/4) added back residually, then BN and ReLU.
    (B, C_in, H, W) -> (B, C, H, W)."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        widths = (channels, channels // 2, channels // 4, channels // 4)
        self.branches = nn.ModuleList(
            PartitionedConv(grid, widths[k], widths[k + 1]) for k, grid in enumerate(REGION_GRIDS)
        )
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        outputs = []
        branch_input = x
        for branch in self.branches:
            branch_input = branch(branch_input)
            outputs.append(branch_input)
        return F.relu(self.norm(x + torch.cat(outputs, dim=1)))


class RegionLearning(nn.Sequential):
    """Two region layers (3 -> 4u, 4u -> 8u channels), each followed by 2 x 2 max pooling.
    (B, 3, l, l) -> (B, 8u, l/4, l/4)."""

    def __init__(self, unit_dim: int) -> None:
        super().__init__(
            RegionLayer(3, 4 * unit_dim),
            nn.MaxPool2d(2),
            RegionLayer(4 * unit_dim, 8 * unit_dim),
            nn.MaxPool2d(2),
        )
