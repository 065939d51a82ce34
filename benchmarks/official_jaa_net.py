"""JAA-Net v1 written out in the official code's layout, as the reference for tests and benchmarks.

The official PyTorch JAA-Net v1 (ZhiwenShao/PyTorch-JAANet, ``network.py``, ``util.py``,
``train_JAAv1.py``) keeps one BatchNorm and one convolution module per grid cell, stitched
together cell by cell; 12 separate attention-refinement branches and 12 separate local feature
extractors; draws the initial attention maps on the CPU by a Python double loop per sample and
AU that writes one tensor element at a time; and computes its losses in per-AU and per-sample
Python loops. This module writes all of that out with the same structure:

- the pieces the tests compare aufacs's batched modules with: :class:`PerCellReference`,
  :func:`official_feature_extractor`, :func:`official_refine_branch`, and :func:`copy_slice`,
  which copies one slice of a batched module into a per-cell or per-branch one;
- the whole network, :class:`OfficialJAANet`, with :func:`official_loss` and
  :func:`official_groups` (its optimiser groups), and :func:`load_official`, which loads an
  aufacs :class:`~aufacs.models.jaa_net.JAANet`'s weights into any :class:`OfficialLayout`
  (this one's or the official code's, see :mod:`benchmarks.official_jaa_code`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.aus import BP4D_AUS
from aufacs.models.attention import JAA_AU_CENTRES
from aufacs.models.jaa_net import JAANet, RegionLayer

#: BP4D AU weights of the official release (Caffe ``BP4D_combine_1_2_weight.txt``).
OFFICIAL_AU_WEIGHTS = (
    1.3451,
    1.6916,
    1.2479,
    0.5613,
    0.43292,
    0.43562,
    0.457,
    0.54098,
    1.4068,
    0.7221,
    1.4918,
    1.667,
)

#: ``train_JAAv1.py`` defaults: λ_au, λ_land, λ_refine and grad_enhance.
LAMBDA_AU, LAMBDA_LAND, LAMBDA_REFINE, GRAD_ENHANCE = 1.0, 0.5, 2e-4, 2.0


def copy_slice(source: nn.Module, k: int, parts: int, target: nn.Module) -> None:
    """Copy the k-th of ``parts`` slices of every parameter and statistic of ``source`` (a
    grouped conv or a BatchNorm over parts·C channels) into the per-part ``target``."""
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            if tensor.dim() > 0:
                tensor.copy_(source.state_dict()[name].chunk(parts)[k])


# --- the pieces -------------------------------------------------------------------------------


class PerCellReference(nn.Module):
    """The official ``LocalConv2dReLU``: one BatchNorm -> ReLU -> conv per grid cell."""

    def __init__(self, grid: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.grid = grid
        self.norms = nn.ModuleList(nn.BatchNorm2d(in_channels) for _ in range(grid * grid))
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, 3, padding=1) for _ in range(grid * grid)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = []
        for i, row in enumerate(x.chunk(self.grid, dim=2)):
            cells = []
            for j, cell in enumerate(row.chunk(self.grid, dim=3)):
                k = i * self.grid + j
                cells.append(self.convs[k](F.relu(self.norms[k](cell.contiguous()))))
            rows.append(torch.cat(cells, dim=3))
        return torch.cat(rows, dim=2)


def official_feature_extractor(in_channels: int, unit_dim: int) -> nn.Sequential:
    """The official ``HLFeatExtractor``, written out."""
    layers, width = [], in_channels
    for multiple in (12, 16, 20):
        for _ in range(2):
            out = multiple * unit_dim
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            width = out
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def official_refine_branch(unit_dim: int) -> nn.Sequential:
    """One branch of the official ``LocalAttentionRefine``, written out: three times conv /
    BatchNorm / ReLU at 8·unit_dim channels, then a conv to one channel and a sigmoid."""
    c = 8 * unit_dim
    layers, width = [], 1
    for _ in range(3):
        layers += [nn.Conv2d(width, c, 3), nn.BatchNorm2d(c), nn.ReLU()]
        width = c
    return nn.Sequential(*layers, nn.Conv2d(c, 1, 3), nn.Sigmoid())


class OfficialLocalConv(PerCellReference):
    """Official ``LocalConv2dReLU``: per grid cell its own BatchNorm -> ReLU -> 3 x 3 conv
    (:class:`PerCellReference`), the outputs concatenated as the official code does: one
    cell at a time along the row, then one row at a time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for i, row in enumerate(torch.split(x, x.size(2) // self.grid, 2)):
            stitched = None
            for j, cell in enumerate(torch.split(row, row.size(3) // self.grid, 3)):
                k = i * self.grid + j
                y = self.convs[k](F.relu(self.norms[k](cell.contiguous())))
                stitched = y if stitched is None else torch.cat((stitched, y), 3)
            out = stitched if out is None else torch.cat((out, stitched), 2)
        return out


class OfficialRegionLayer(RegionLayer):
    """Official ``HierarchicalMultiScaleRegionLayer``: aufacs's region layer (same forward)
    with each partitioned branch replaced by per-cell modules."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(in_channels, channels)
        self.branches = nn.ModuleList(
            OfficialLocalConv(
                b.grid, b.norm.num_features // b.grid**2, b.conv.out_channels // b.grid**2
            )
            for b in self.branches
        )


# --- the initial attention maps ---------------------------------------------------------------


def official_generate_map(
    grid: torch.Tensor, crop_size: int, ratio: float, coeff: float, centres: list[tuple]
) -> None:
    """Official ``generate_map``: draw two centres (x, y in crop pixels) into the (M, M)
    tensor ``grid`` in place, one element at a time."""
    size = grid.shape[0]
    scale = float(size) / crop_size
    half = round((size - 1) / 2.0 * ratio)
    for x, y in centres:
        cx, cy = round(x * scale), round(y * scale)
        top, bottom = min(max(cy - half, 0), size - 1), min(max(cy + half, 0), size - 1)
        left, right = min(max(cx - half, 0), size - 1), min(max(cx + half, 0), size - 1)
        for h in range(int(top), int(bottom) + 1):
            for w in range(int(left), int(right) + 1):
                value = 1 - (abs(h - cy) + abs(w - cx)) * coeff / (size * ratio)
                grid[h, w] = max(value, grid[h, w])


def official_initial_maps(
    landmarks: torch.Tensor, aus: tuple[int, ...], map_size: int, crop_size: int = 176
):
    """Official ``AlignNet.forward`` map drawing: (B, 98) interleaved predicted landmarks ->
    (B, N, M, M) CPU maps, sample by sample via numpy; shared regions are copied."""
    maps = torch.zeros(landmarks.size(0), len(aus), map_size, map_size)
    for i in range(landmarks.size(0)):
        points = landmarks[i].data.cpu().numpy()
        xs, ys = points[0::2], points[1::2]
        ruler = abs(xs[22] - xs[25])
        drawn: dict = {}
        for k, au in enumerate(aus):
            region = JAA_AU_CENTRES[au]
            if region in drawn:
                maps[i, k] = maps[i, drawn[region]]
                continue
            shift = float(region.offset) * ruler
            centres = [(xs[p], ys[p] + shift) for p in (region.first, region.second)]
            official_generate_map(maps[i, k], crop_size, 0.14, 0.56, centres)
            drawn[region] = k
    return maps


# --- where the official layouts keep their weights --------------------------------------------


@dataclass(frozen=True)
class OfficialLayout:
    """The modules of an official-layout JAA-Net v1 that take aufacs's weights.

    ``region_layers``: per region layer, its first conv, its closing BatchNorm and, per
    partitioned branch (8 x 8, 4 x 4, 2 x 2 cells), the per-cell BatchNorms and convs, cells in
    row-major order. The stacks are conv / BN / ReLU / pooling sequences in aufacs's layer
    order; ``refine`` and ``local`` hold one per AU. The heads are two Linear layers each."""

    region_layers: Sequence[tuple[nn.Module, nn.Module, Sequence[tuple[nn.ModuleList, ...]]]]
    align_feat: nn.Sequential
    align_output: nn.Sequential
    refine: Sequence[nn.Sequential]
    local: Sequence[nn.Sequential]
    global_au_feat: nn.Sequential
    au_net: nn.Sequential


def load_official(layout: OfficialLayout, model: JAANet) -> None:
    """Copy ``model``'s parameters and statistics into the official-layout modules."""
    for k, (conv, norm, branches) in zip((0, 2), layout.region_layers, strict=True):
        ours = model.region_learning[k]
        copy_slice(ours.conv, 0, 1, conv)
        copy_slice(ours.norm, 0, 1, norm)
        for branch, (norms, convs) in zip(ours.branches, branches, strict=True):
            cells = branch.grid**2
            for cell, (cell_norm, cell_conv) in enumerate(zip(norms, convs, strict=True)):
                copy_slice(branch.norm, cell, cells, cell_norm)
                copy_slice(branch.conv, cell, cells, cell_conv)
    pairs = [
        (model.align_net.features, [layout.align_feat]),
        (model.global_au_feat, [layout.global_au_feat]),
        (model.attention_refine, layout.refine),
        (model.local_au_net.branches, layout.local),
    ]
    for stack, officials in pairs:
        for k, official in enumerate(officials):
            for layer, official_layer in zip(stack, official, strict=True):
                copy_slice(layer, k, len(officials), official_layer)
    layout.align_output.load_state_dict(model.align_net.head.state_dict())
    layout.au_net.load_state_dict(model.au_net.state_dict())


def official_groups(modules: Sequence[nn.Module], refine: nn.Module) -> list[dict]:
    """One optimiser group per official module, in order; ``refine`` (the attention
    refinement) at ``GRAD_ENHANCE`` times the learning rate."""
    return [
        {
            "params": [p for p in m.parameters() if p.requires_grad],
            "lr_mult": GRAD_ENHANCE if m is refine else 1.0,
        }
        for m in modules
    ]


# --- the whole network and its loss -----------------------------------------------------------


class OfficialJAANet(nn.Module):
    """The six official modules of JAA-Net v1, at the official sizes (crop 176, unit 8) by
    default; other sizes scale the layers as aufacs's ``crop_size`` and ``unit_dim`` do."""

    def __init__(
        self, aus: tuple[int, ...] = BP4D_AUS, crop_size: int = 176, unit_dim: int = 8
    ) -> None:
        super().__init__()
        self.aus, self.crop_size, u = aus, crop_size, unit_dim
        n, features = len(aus), 20 * unit_dim * (crop_size // 32) ** 2
        self.region_learning = nn.Sequential(
            OfficialRegionLayer(3, 4 * u),
            nn.MaxPool2d(2),
            OfficialRegionLayer(4 * u, 8 * u),
            nn.MaxPool2d(2),
        )
        self.align_feat = official_feature_extractor(8 * u, u)
        self.align_output = nn.Sequential(nn.Linear(features, 64 * u), nn.Linear(64 * u, 98))
        self.refine = nn.ModuleList(official_refine_branch(u) for _ in range(n))
        self.local_branches = nn.ModuleList(official_feature_extractor(8 * u, u) for _ in range(n))
        self.global_au_feat = official_feature_extractor(8 * u, u)
        self.au_net = nn.Sequential(nn.Linear(3 * features, 64 * u), nn.Linear(64 * u, 2 * n))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        region = self.region_learning(image)
        align_feat = self.align_feat(region)
        landmarks = self.align_output(align_feat.view(align_feat.size(0), -1))
        initial = official_initial_maps(
            landmarks, self.aus, self.crop_size // 4 + 8, self.crop_size
        )
        refined = torch.cat(
            [branch(initial.detach()[:, i : i + 1]) for i, branch in enumerate(self.refine)], 1
        )
        local = None
        for i, branch in enumerate(self.local_branches):
            feat = branch(region * refined[:, i : i + 1])
            local = feat if local is None else local + feat
        local = local / float(len(self.local_branches))
        features = torch.cat((align_feat, self.global_au_feat(region), local), 1)
        scores = self.au_net(features.view(features.size(0), -1))
        scores = F.log_softmax(scores.view(scores.size(0), 2, -1), dim=1)
        return {"scores": scores, "landmarks": landmarks, "initial": initial, "refined": refined}

    def optimizer_groups(self) -> list[dict]:
        """The official six groups; the refinement's learning rate doubled (grad_enhance)."""
        modules = [
            self.region_learning,
            nn.ModuleList([self.align_feat, self.align_output]),
            self.refine,
            self.local_branches,
            self.global_au_feat,
            self.au_net,
        ]
        return official_groups(modules, self.refine)

    def layout(self) -> OfficialLayout:
        """Where this reference keeps the weights aufacs's model has."""
        return OfficialLayout(
            region_layers=[
                (layer.conv, layer.norm, [(b.norms, b.convs) for b in layer.branches])
                for layer in self.region_learning[::2]
            ],
            align_feat=self.align_feat,
            align_output=self.align_output,
            refine=self.refine,
            local=self.local_branches,
            global_au_feat=self.global_au_feat,
            au_net=self.au_net,
        )


def official_loss(out: dict[str, torch.Tensor], batch: dict, weight: torch.Tensor) -> torch.Tensor:
    """The official total loss, with ``util.py``'s per-AU and per-sample loops."""
    scores, au = out["scores"], batch["au"].long()
    nll, bce = nn.NLLLoss(), nn.BCELoss()
    softmax, dice = [], []
    for i in range(scores.size(2)):
        softmax.append((nll(scores[:, :, i], au[:, i]) * weight[i]).unsqueeze(0))
        p, t = scores[:, 1, i].exp(), au[:, i].float()
        ratio = (2.0 * (p * t).sum() + 1) / ((p * p).sum() + (t * t).sum() + 1)
        dice.append(((1 - ratio / p.size(0)) * weight[i]).unsqueeze(0))
    land, target = [], batch["landmarks"].flatten(1)
    for i in range(target.size(0)):
        squared = torch.sum((out["landmarks"][i] - target[i]) ** 2)
        land.append((squared / (2.0 * batch["biocular"][i])).unsqueeze(0))
    refined = out["refined"].flatten(2)
    resized = F.interpolate(out["initial"], size=out["refined"].size(2)).detach().flatten(2)
    refine = [bce(refined[:, i], resized[:, i]).unsqueeze(0) for i in range(refined.size(1))]
    au_loss = torch.cat(softmax).mean() + torch.cat(dice).mean()
    return (
        LAMBDA_AU * au_loss
        + LAMBDA_LAND * torch.cat(land).mean()
        + (LAMBDA_REFINE / GRAD_ENHANCE) * torch.cat(refine).sum()
    )
