"""The C-Net: the cropping net's head on the E-Net trunk's ``conv4_all``, with its crops and LRN.

``conv4_all`` (S/8 x S/8, 28 x 28 at 224) is local-response normalised (Lasagne's alpha 0.002,
k 2, beta 0.75, n 5), and twenty 3 x 3 crops are taken around the ten regions' two centres each
(:func:`aufacs.models.attention.eac_region_centres`, 0-100 units, scaled by (S/8)/100,
truncated, clamped to [1, S/8 - 2]). Each crop, with its own weights: nearest x2 up-sampling
(6 x 6) -> 3 x 3 valid convolution (ReLU, 4 x 4) -> dense 150 (ReLU). The 20 x 150 features ->
dense 2048 (ReLU, dropout 0.5) -> N.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.models.attention import eac_crop_centres
from aufacs.models.eac_net.config import DROPOUT, EACNetConfig
from aufacs.models.eac_net.init import glorot_, init_lasagne_

#: Regions of the attention map and crops of the C-Net (two centres per region).
NUM_REGIONS = 10
NUM_CROPS = 2 * NUM_REGIONS
#: Side of a C-Net crop and the release's layer widths.
CROP_SIDE = 3
CROP_UNITS = 150
LOCAL_UNITS = 2048

#: Lasagne LocalResponseNormalization2DLayer settings of the release:
#: b = a / (k + alpha * sum of a² over n neighbouring channels) ** beta.
LRN_ALPHA = 0.002
LRN_K = 2.0
LRN_BETA = 0.75
LRN_SIZE = 5


def local_response_norm() -> nn.LocalResponseNorm:
    """The release's LRN as a PyTorch layer.

    Lasagne computes a / (k + alpha · Σ a²)^beta over n channels; PyTorch divides alpha by n
    (a / (k + alpha/n · Σ a²)^beta, zero padding at the ends in both), so PyTorch's alpha is
    Lasagne's 0.002 times n = 5, i.e. 0.01.
    """
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)


def gather_crops(features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """3 x 3 crops of ``features`` (B, C, M, M) around ``indices`` (B, K, 2) (column, row).

    One advanced-indexing operation; returns (B, K, C, 3, 3).
    """
    offsets = torch.arange(-(CROP_SIDE // 2), CROP_SIDE // 2 + 1, device=features.device)
    rows = indices[..., 1, None] + offsets  # (B, K, 3)
    cols = indices[..., 0, None] + offsets  # (B, K, 3)
    batch = torch.arange(features.shape[0], device=features.device)[:, None, None, None]
    crops = features[batch, :, rows[..., :, None], cols[..., None, :]]  # (B, K, 3, 3, C)
    return crops.permute(0, 1, 4, 2, 3)


class CNetHead(nn.Module):
    """The C-Net: LRN, 20 crops, per-crop conv + dense, then 3000 -> 2048 -> N.

    ``forward(conv4_all (B, C4, M, M), centres (B, 20, 2) in 0-100 units) -> logits (B, N)``.
    The 20 per-crop convolutions are one convolution with 20 groups (weight
    (20·C4, C4, 3, 3)); the 20 per-crop dense layers are one batched product with
    ``crop_fc_weight`` (20, C4·16, 150) and ``crop_fc_bias`` (20, 150).
    """

    def __init__(self, config: EACNetConfig, in_channels: int) -> None:
        super().__init__()
        self.map_size = config.map_size
        self.lrn = local_response_norm()
        self.crop_conv = nn.Conv2d(
            NUM_CROPS * in_channels, NUM_CROPS * in_channels, CROP_SIDE, groups=NUM_CROPS
        )
        crop_side = 2 * CROP_SIDE - 2  # up-sampled x2 (6), then a valid 3 x 3 convolution (4)
        crop_inputs = in_channels * crop_side * crop_side
        crop_units = config.width(CROP_UNITS)
        self.crop_fc_weight = nn.Parameter(torch.empty(NUM_CROPS, crop_inputs, crop_units))
        self.crop_fc_bias = nn.Parameter(torch.zeros(NUM_CROPS, crop_units))
        self.local_fc = nn.Linear(NUM_CROPS * crop_units, config.width(LOCAL_UNITS))
        self.out = nn.Linear(config.width(LOCAL_UNITS), config.num_aus)
        self.dropout = nn.Dropout(DROPOUT)
        init_lasagne_(self)
        conv_fan = in_channels * CROP_SIDE * CROP_SIDE
        glorot_(self.crop_conv.weight, conv_fan, conv_fan)
        glorot_(self.crop_fc_weight, crop_inputs, crop_units)

    def crop_features(self, conv4_all: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Per-crop features (B, 20, 150) before the concatenation."""
        features = self.lrn(conv4_all)
        cells = eac_crop_centres(centres, self.map_size)  # (B, 20, 2) (column, row)
        crops = gather_crops(features, cells)  # (B, 20, C, 3, 3)
        x = crops.flatten(1, 2)  # (B, 20·C, 3, 3), crop k in channels [k·C, (k+1)·C)
        x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, 20·C, 6, 6)
        x = F.relu(self.crop_conv(x))  # (B, 20·C, 4, 4)
        x = x.reshape(x.shape[0], NUM_CROPS, -1)  # (B, 20, C·16), channel-major per crop
        return F.relu(torch.einsum("bki,kio->bko", x, self.crop_fc_weight) + self.crop_fc_bias)

    def forward(self, conv4_all: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        x = self.crop_features(conv4_all, centres).flatten(1)  # (B, 20·150)
        x = self.dropout(F.relu(self.local_fc(x)))
        return self.out(x)
