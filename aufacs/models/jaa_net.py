"""JAA-Net v1 (Shao et al., ECCV 2018): joint AU detection and face alignment.

The network follows the official PyTorch code (ZhiwenShao/PyTorch-JAANet, ``network.py`` and
``train_JAAv1.py``) layer for layer, with the same parameters (22,162,854 at the defaults), but
holds every per-cell and per-AU module list of that code as one batched module:

- **Partitioned convolutions** (official ``LocalConv2dReLU``): a g x g grid of cells, each with
  its own BatchNorm -> ReLU -> 3 x 3 convolution (padding 1, i.e. zero padding at the cell's
  border). The cells are moved into the channel dimension, so the g² BatchNorms are one
  BatchNorm over g²·C channels (statistics of each cell's own pixels) and the g² convolutions
  are one grouped convolution with g² groups.
- **Attention refinement** and **local AU branches** (official ``LocalAttentionRefine`` and
  ``LocalAUNetv1``): the N per-AU stacks are one :class:`BranchStack` of grouped convolutions
  (N groups) and BatchNorms over N·C channels. On GPUs it runs all AUs at once; on CPU it
  runs them one after the other on slices of the same parameters, which is faster there.
- **Initial attention**: drawn on the device in one vectorized operation from the detached
  predicted landmarks (:func:`aufacs.models.attention.jaa_initial_attention`), so no
  landmarks are needed as input and nothing is copied to the host.

Input: (B, 3, 176, 176) RGB scaled to [0, 1] then normalised with mean 0.5 and std 0.5, i.e.
values in [-1, 1]. The crop size may be any multiple of 16 from 32 up; the official one is 176.

Shapes at crop l (official l = 176, unit_dim u = 8, N AUs):

==========================  ==============================================================
region features             (B, 8u, l/4, l/4)                       (B, 64, 44, 44)
alignment features          (B, 20u, l/32, l/32)                     (B, 160, 5, 5)
landmarks                   (B, 49, 2) crop pixels, 0-indexed (x, y)
initial attention           (B, N, l/4 + 8, l/4 + 8)                 (B, 12, 52, 52)
refined attention           (B, N, l/4, l/4), in (0, 1)              (B, 12, 44, 44)
local / global features     (B, 20u, l/32, l/32) each                (B, 160, 5, 5)
AU scores                   (B, 2, N): absent and present logits -> log-odds (B, N)
==========================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.aus import BP4D_AUS, NUM_LANDMARKS, default_aus
from aufacs.core.errors import AufacsError
from aufacs.models.attention import JAA_AU_CENTRES, jaa_initial_attention
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.models.losses import attention_refine_loss, au_softmax_loss, dice_loss, landmark_loss

#: Grid sizes of the three partitioned branches of each region layer (official [[8,8],[4,4],[2,2]]).
REGION_GRIDS: tuple[int, int, int] = (8, 4, 2)
#: Dice loss variants: the paper's / Caffe's per-sample mean, or the PyTorch code's batch ratio.
DICE_VARIANTS: tuple[str, ...] = ("per_sample", "batch")
#: How the per-AU branches run (see :class:`BranchStack`).
BRANCH_SCHEDULES: tuple[str, ...] = ("auto", "grouped", "per_branch")


@dataclass(frozen=True)
class JAANetConfig:
    """Sizes and loss weights of a JAA-Net (official defaults).

    ``crop_size``: input side in pixels (multiple of 16, at least 32). ``unit_dim``: channel
    unit u (region features have 8u channels). ``spatial_ratio`` and ``fill_coeff``: the
    initial attention's ROI half-size ratio and Manhattan decay (ζ, ξ of the paper).
    Loss: E = λ_au·(E_softmax + E_dice) + λ_land·E_align + (λ_refine / grad_enhance)·E_r.
    """

    aus: tuple[int, ...] = BP4D_AUS
    crop_size: int = 176
    unit_dim: int = 8
    num_landmarks: int = NUM_LANDMARKS
    lambda_au: float = 1.0
    lambda_land: float = 0.5
    lambda_refine: float = 2e-4
    grad_enhance: float = 2.0
    dice: str = "per_sample"
    branch_schedule: str = "auto"
    spatial_ratio: float = 0.14
    fill_coeff: float = 0.56

    def __post_init__(self) -> None:
        unknown = [au for au in self.aus if au not in JAA_AU_CENTRES]
        if unknown:
            raise AufacsError(
                f"aus contains AU(s) {unknown} without a JAA-Net attention region; expected "
                f"AUs from {sorted(JAA_AU_CENTRES)}"
            )
        if self.crop_size < 32 or self.crop_size % 16:
            raise AufacsError(
                f"crop_size must be a multiple of 16 and at least 32, got {self.crop_size}"
            )
        if self.unit_dim < 1:
            raise AufacsError(f"unit_dim must be a positive integer, got {self.unit_dim}")
        if self.num_landmarks != NUM_LANDMARKS:
            raise AufacsError(
                f"num_landmarks must be {NUM_LANDMARKS} (the attention rules use the 49-point "
                f"scheme), got {self.num_landmarks}"
            )
        if self.dice not in DICE_VARIANTS:
            raise AufacsError(f"dice must be one of {', '.join(DICE_VARIANTS)}, got {self.dice!r}")
        if self.branch_schedule not in BRANCH_SCHEDULES:
            raise AufacsError(
                f"branch_schedule must be one of {', '.join(BRANCH_SCHEDULES)}, "
                f"got {self.branch_schedule!r}"
            )

    @property
    def num_aus(self) -> int:
        return len(self.aus)

    @property
    def map_size(self) -> int:
        """Side of the region features and refined attention maps (l/4; 44 at 176)."""
        return self.crop_size // 4

    @property
    def initial_map_size(self) -> int:
        """Side of the initial attention maps (l/4 + 8; 52 at 176)."""
        return self.map_size + 8

    @property
    def feature_dim(self) -> int:
        """Flattened size of one feature extractor's output (20u·(l/32)²; 4000 at 176)."""
        return 20 * self.unit_dim * (self.crop_size // 32) ** 2


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


class BranchStack(nn.Sequential):
    """A conv / BN / ReLU / pooling stack holding ``branches`` independent copies: every conv
    has ``groups = branches`` and every BatchNorm covers branches·C channels, copy k owning
    the k-th slice of each. (B, branches·C_in, H, W) -> (B, branches·C_out, h, w).

    Two schedules compute the same function (``schedule``):

    - ``"grouped"``: all copies at once, layer by layer, with grouped kernels (one kernel
      launch per layer, which is what GPUs want).
    - ``"per_branch"``: copy after copy through the whole stack, in channels-last layout,
      with dense kernels on each copy's parameter slices. One copy's activations stay in
      cache, and oneDNN's dense channels-last kernels beat its grouped ones: on a 2-core
      AMD EPYC (one thread, batch 8, forward + backward) the 12 local AU branches took
      1.2 s instead of 2.1 s and the attention refinement 0.5 s instead of 1.3 s.
    - ``"auto"`` (default): ``"per_branch"`` for CPU tensors, ``"grouped"`` elsewhere.
    """

    def __init__(self, branches: int, layers: Sequence[nn.Module], schedule: str = "auto") -> None:
        super().__init__(*layers)
        self.branches = branches
        self.schedule = schedule

    def runs_per_branch(self, x: torch.Tensor) -> bool:
        """Whether input ``x`` goes through the copies one after the other."""
        return self.schedule == "per_branch" or (self.schedule == "auto" and x.device.type == "cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.runs_per_branch(x):
            return torch.cat(self.forward_each(x.chunk(self.branches, dim=1)), dim=1)
        return super().forward(x)

    def forward_each(self, inputs: Iterable[torch.Tensor]) -> list[torch.Tensor]:
        """The per-branch schedule: copy k on the k-th input (B, C_in, H, W) -> its output
        (B, C_out, h, w), for the ``branches`` inputs (a generator keeps only one alive)."""
        # Split every parameter and buffer once, so autograd joins each gradient in one go.
        own = [[t.chunk(self.branches) for t in _branch_tensors(layer)] for layer in self]
        outputs = []
        for k, x in enumerate(inputs):
            x = x.contiguous(memory_format=torch.channels_last)
            for layer, tensors in zip(self, own, strict=True):
                part = [t[k] for t in tensors]
                if isinstance(layer, nn.Conv2d):
                    x = F.conv2d(x, *part, layer.stride, layer.padding)
                elif isinstance(layer, nn.BatchNorm2d):
                    x = F.batch_norm(x, *part, layer.training, layer.momentum, layer.eps)
                else:
                    x = layer(x)
            outputs.append(x)
        if self.training:
            for layer in self:
                if isinstance(layer, nn.BatchNorm2d):
                    layer.num_batches_tracked.add_(1)
        return outputs


def _branch_tensors(layer: nn.Module) -> tuple[torch.Tensor, ...]:
    """The tensors of a :class:`BranchStack` layer that are split among the copies, in the
    order ``F.conv2d`` / ``F.batch_norm`` take them."""
    if isinstance(layer, nn.Conv2d):
        return layer.weight, layer.bias
    if isinstance(layer, nn.BatchNorm2d):
        return layer.running_mean, layer.running_var, layer.weight, layer.bias
    return ()


class FeatureExtractor(BranchStack):
    """The official ``HLFeatExtractor``, ``branches`` independent copies at once.

    Three blocks of [3 x 3 conv (padding 1) -> BN -> ReLU] x 2 -> 2 x 2 max pool, with 12u,
    16u, 20u channels per copy. Copy k reads input channels k·C_in ... (k+1)·C_in - 1.
    (B, branches·C_in, S, S) -> (B, branches·20u, S/8, S/8) (floor at each pooling).
    """

    def __init__(
        self, in_channels: int, unit_dim: int, branches: int = 1, schedule: str = "auto"
    ) -> None:
        layers: list[nn.Module] = []
        width = in_channels
        for multiple in (12, 16, 20):
            for _ in range(2):
                out = multiple * unit_dim
                layers += [
                    nn.Conv2d(branches * width, branches * out, 3, padding=1, groups=branches),
                    nn.BatchNorm2d(branches * out),
                    nn.ReLU(inplace=True),
                ]
                width = out
            layers.append(nn.MaxPool2d(2))
        super().__init__(branches, layers, schedule)


class AlignNet(nn.Module):
    """Face alignment branch: features (B, 8u, S, S) -> (alignment features
    (B, 20u, S/8, S/8), landmarks (B, L, 2) in crop pixels). No non-linearity between the two
    linear layers, as in the official code."""

    def __init__(self, config: JAANetConfig) -> None:
        super().__init__()
        u = config.unit_dim
        self.features = FeatureExtractor(8 * u, u)
        self.head = nn.Sequential(
            nn.Linear(config.feature_dim, 64 * u), nn.Linear(64 * u, 2 * config.num_landmarks)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        # The official output is interleaved x1, y1, x2, y2, ...
        landmarks = self.head(features.flatten(1)).unflatten(1, (-1, 2))
        return features, landmarks


class AttentionRefine(BranchStack):
    """The N per-AU attention refinement branches (a :class:`BranchStack`).

    Per AU: conv 1 -> 8u -> 8u -> 8u -> 1 (3 x 3, no padding), BN + ReLU after the first
    three, sigmoid at the end. (B, N, S + 8, S + 8) -> (B, N, S, S) in (0, 1).
    """

    def __init__(self, num_aus: int, unit_dim: int, schedule: str = "auto") -> None:
        widths = (1, 8 * unit_dim, 8 * unit_dim, 8 * unit_dim, 1)
        layers: list[nn.Module] = []
        for k in range(4):
            layers.append(
                nn.Conv2d(num_aus * widths[k], num_aus * widths[k + 1], 3, groups=num_aus)
            )
            if k < 3:
                layers += [nn.BatchNorm2d(num_aus * widths[k + 1]), nn.ReLU(inplace=True)]
        layers.append(nn.Sigmoid())
        super().__init__(num_aus, layers, schedule)


class LocalAUNet(nn.Module):
    """Local AU features (v1): per AU, region features x refined map -> own feature extractor;
    the N outputs are averaged. (B, C, S, S), (B, N, S, S) -> (B, 20u, S/8, S/8)."""

    def __init__(
        self, num_aus: int, in_channels: int, unit_dim: int, schedule: str = "auto"
    ) -> None:
        super().__init__()
        self.num_aus = num_aus
        self.branches = FeatureExtractor(in_channels, unit_dim, num_aus, schedule)

    def forward(self, features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        if self.branches.runs_per_branch(features):
            attended = (features * attention[:, k, None] for k in range(self.num_aus))
            return torch.stack(self.branches.forward_each(attended)).mean(dim=0)
        attended = (attention.unsqueeze(2) * features.unsqueeze(1)).flatten(1, 2)
        return self.branches(attended).unflatten(1, (self.num_aus, -1)).mean(dim=1)


class AUHead(nn.Sequential):
    """Final AU layers: concatenated features (B, 3·20u·(l/32)²) -> (B, 2N) scores, columns
    0..N-1 the "absent" and N..2N-1 the "present" logits. No non-linearity in between."""

    def __init__(self, config: JAANetConfig) -> None:
        u = config.unit_dim
        super().__init__(
            nn.Linear(3 * config.feature_dim, 64 * u), nn.Linear(64 * u, 2 * config.num_aus)
        )


class JAANet(AUModel):
    """JAA-Net v1. ``forward(batch)`` reads ``batch["image"]`` (B, 3, l, l) only.

    Output: ``au_prob`` (B, N) softmax probability of "present", ``au_logits`` (B, N) log-odds
    (present minus absent logit), ``landmarks`` (B, 49, 2) predicted crop pixels, ``attention``
    (B, N, l/4, l/4) refined maps, ``extras["initial_attention"]`` (B, N, l/4 + 8, l/4 + 8).

    Submodules (official names): ``region_learning``, ``align_net``, ``attention_refine``,
    ``local_au_net``, ``global_au_feat``, ``au_net``.
    """

    def __init__(self, config: JAANetConfig) -> None:
        super().__init__()
        self.config = config
        u = config.unit_dim
        self.input_spec = InputSpec(config.crop_size, *HALF_NORMALISATION)
        self.region_learning = RegionLearning(u)
        self.align_net = AlignNet(config)
        self.attention_refine = AttentionRefine(config.num_aus, u, config.branch_schedule)
        self.local_au_net = LocalAUNet(config.num_aus, 8 * u, u, config.branch_schedule)
        self.global_au_feat = FeatureExtractor(8 * u, u)
        self.au_net = AUHead(config)

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        image = batch["image"]
        size = self.config.crop_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, size, size):
            raise AufacsError(
                f"batch['image'] has shape {tuple(image.shape)}; "
                f"JAA-Net expects (B, 3, {size}, {size})"
            )
        region = self.region_learning(image)
        align_features, landmarks = self.align_net(region)
        initial = jaa_initial_attention(
            landmarks.detach(),
            self.config.aus,
            crop_size=size,
            map_size=self.config.initial_map_size,
            spatial_ratio=self.config.spatial_ratio,
            fill_coeff=self.config.fill_coeff,
        )
        refined = self.attention_refine(initial)
        local = self.local_au_net(region, refined)
        features = torch.cat([align_features, self.global_au_feat(region), local], dim=1)
        absent, present = self.au_net(features.flatten(1)).unflatten(1, (2, -1)).unbind(1)
        logits = present - absent
        return AUOutput(
            au_prob=torch.sigmoid(logits),
            au_logits=logits,
            landmarks=landmarks,
            attention=refined,
            extras={"initial_attention": initial},
        )

    def loss(
        self, output: AUOutput, batch: dict[str, torch.Tensor], au_weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """E = λ_au·(E_softmax + E_dice) + λ_land·E_align + (λ_refine / grad_enhance)·E_r.

        Needs ``batch["au"]`` (B, N), ``batch["landmarks"]`` (B, 49, 2) crop pixels and
        ``batch["biocular"]`` (B,) squared inter-ocular distances. Parts: ``au_softmax``,
        ``au_dice``, ``landmark``, ``attention_refine`` (unweighted) and ``total``, detached.
        """
        c = self.config
        target = batch["au"]
        parts = {
            "au_softmax": au_softmax_loss(output.au_logits, target, au_weights),
            "au_dice": dice_loss(
                output.au_prob, target, au_weights, per_sample=c.dice == "per_sample"
            ),
            "landmark": landmark_loss(output.landmarks, batch["landmarks"], batch["biocular"]),
            "attention_refine": attention_refine_loss(
                output.attention, output.extras["initial_attention"]
            ),
        }
        total = (
            c.lambda_au * (parts["au_softmax"] + parts["au_dice"])
            + c.lambda_land * parts["landmark"]
            + (c.lambda_refine / c.grad_enhance) * parts["attention_refine"]
        )
        parts["total"] = total
        return total, {name: value.detach() for name, value in parts.items()}

    def optimizer_param_groups(self) -> list[dict]:
        """Parameter groups for the optimiser, in the official order.

        Each group is ``{"name", "params", "lr_mult"}``; the engine sets each group's learning
        rate to base lr x ``lr_mult``. The attention-refinement group has
        ``lr_mult = grad_enhance`` (2): with the E_r weight divided by the same factor, AU-loss
        gradients into the refinement are doubled while E_r's own step is unchanged.
        """
        return [
            {
                "name": name,
                "params": list(getattr(self, name).parameters()),
                "lr_mult": self.config.grad_enhance if name == "attention_refine" else 1.0,
            }
            for name in (
                "region_learning",
                "align_net",
                "attention_refine",
                "local_au_net",
                "global_au_feat",
                "au_net",
            )
        ]


def build_jaa_net(
    num_aus: int = 12,
    *,
    crop_size: int = 176,
    unit_dim: int = 8,
    num_landmarks: int = NUM_LANDMARKS,
    lambda_au: float = 1.0,
    lambda_land: float = 0.5,
    lambda_refine: float = 2e-4,
    grad_enhance: float = 2.0,
    dice: str = "per_sample",
    aus: Sequence[int] | None = None,
    branch_schedule: str = "auto",
) -> JAANet:
    """Build a JAA-Net v1 with the official defaults (22,162,854 parameters for 12 AUs).

    ``num_aus``: 12 (BP4D order) or 8 (DISFA order) unless ``aus`` gives the AU numbers, in
    output order. ``crop_size``: input side in pixels, a multiple of 16, at least 32 (official
    176). ``unit_dim``: channel unit (official 8). ``num_landmarks``: must be 49 (the attention
    rules index the 49-point scheme). ``lambda_*``, ``grad_enhance``: loss weights (see
    :meth:`JAANet.loss`). ``dice``: ``"per_sample"`` (paper, Caffe) or ``"batch"`` (the
    PyTorch code's batch ratio divided by B). ``branch_schedule``: how the per-AU branches
    run, ``"auto"`` (per branch on CPU, grouped elsewhere), ``"grouped"`` or
    ``"per_branch"``; the function and the parameters are the same (see :class:`BranchStack`).
    """
    config = JAANetConfig(
        aus=default_aus(num_aus, aus),
        crop_size=crop_size,
        unit_dim=unit_dim,
        num_landmarks=num_landmarks,
        lambda_au=lambda_au,
        lambda_land=lambda_land,
        lambda_refine=lambda_refine,
        grad_enhance=grad_enhance,
        dice=dice,
        branch_schedule=branch_schedule,
    )
    return JAANet(config)
