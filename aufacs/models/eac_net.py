"""EAC-Net (Li et al., FG 2017 / TPAMI 2018): VGG-19 with enhancing (E-Net) and cropping (C-Net).

The layers follow the authors' Theano/Lasagne release (wiibrew/EAC-Net,
``BP4D_ENet_dlib_train.py`` and ``BP4D_EAC_dlib_train.py``), with the same parameter counts
(E-Net AU path 131,204,172; C-Net head 77,945,796 at 12 AUs), but the C-Net's twenty per-crop
branches run as one grouped convolution and one batched matrix product, and the crops are
gathered with one indexing operation.

**E-Net.** VGG-19; groups 1-2 stay frozen at their ImageNet weights. A landmark attention map A
(:func:`aufacs.models.attention.eac_attention_map`, 100 x 100, resized bilinearly to the input
size and max-pooled 2 x 2 three times) enhances groups 3 and 4 residually, after the ReLUs:
``conv3_all = conv3_4 + conv3_1 * A(S/4)`` and ``conv4_all = conv4_4 + conv4_1 * A(S/8)``.
Its AU head: pool4 -> conv5_1..conv5_4 -> pool5 -> fc6 4096 (ReLU, dropout 0.5) -> au_fc 2048
(ReLU, dropout 0.5) -> N.

**C-Net.** ``conv4_all`` (S/8 x S/8, 28 x 28 at 224) is local-response normalised (Lasagne's
alpha 0.002, k 2, beta 0.75, n 5), and twenty 3 x 3 crops are taken around the ten regions' two
centres each (:func:`aufacs.models.attention.eac_region_centres`, 0-100 units, scaled by
(S/8)/100, truncated, clamped to [1, S/8 - 2]). Each crop, with its own weights: nearest x2
up-sampling (6 x 6) -> 3 x 3 valid convolution (ReLU, 4 x 4) -> dense 150 (ReLU). The 20 x 150
features -> dense 2048 (ReLU, dropout 0.5) -> N.

**Stages** (``stage``), as the release trains them, plus joint training:

=========  ================================================  ==============================
stage      what trains                                       ``au_prob`` comes from
=========  ================================================  ==============================
``enet``   groups 3-5, fc6 and the E-Net AU head             the E-Net AU head
``cnet``   the C-Net head only; the E-Net trunk is frozen    the C-Net head
``joint``  groups 3-4 and the C-Net head, end to end         the C-Net head
=========  ================================================  ==============================

Only the modules a stage uses are built: ``enet`` has ``trunk`` + ``enet_head``; ``cnet`` and
``joint`` have ``trunk`` + ``cnet_head`` (conv5 and fc6 feed only the E-Net head). A ``cnet``
model takes the trained E-Net's trunk with :meth:`EACNet.load_enet` or ``enet_weights``.

**Input.** (B, 3, 224, 224) RGB scaled to [0, 1] and normalised with the ImageNet mean and std,
which is what torchvision's VGG-19 weights expect (the release fed raw 0-255 BGR to Lasagne's
Caffe-converted weights without mean subtraction). The aligned face is resized to 224 and used
whole (``resize_to`` 224, no crop), as the release resized each face to 224 and did not
augment. ``batch["landmarks"]`` (B, 49, 2) in input pixels are required.

Deliberate departures from the release: the attention-map bugs (border centres drawn as nothing,
uint8 wrap-around) are fixed in :mod:`aufacs.models.attention`; unknown labels (BP4D's 9, NaN
here) are masked out of the loss instead of being read as present.

Shapes at input side S (release S = 224, N AUs, widths at ``width_divisor`` 1):

=====================  ===========================================  ==================
attention map          (B, 1, 100, 100) -> (B, 1, S, S)              0..1
conv3_all              (B, 256, S/4, S/4)                            (B, 256, 56, 56)
conv4_all              (B, 512, S/8, S/8)                            (B, 512, 28, 28)
crops                  (B, 20, 512, 3, 3)
crop features          (B, 20, 150) -> (B, 3000)
AU logits / prob       (B, N)
per-AU attention       (B, N, 100, 100)
=====================  ===========================================  ==================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.aus import BP4D_AUS, NUM_LANDMARKS, default_aus
from aufacs.core.errors import AufacsError
from aufacs.models.attention import (
    EAC_REGIONS,
    eac_attention_map,
    eac_crop_centres,
    eac_region_centres,
    eac_region_maps,
)
from aufacs.models.backbones import Pretrained, load_weight_file, torchvision_backbone
from aufacs.models.base import IMAGENET_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.models.losses import shifted_cross_entropy

STAGES: tuple[str, ...] = ("enet", "cnet", "joint")
ATTENTION_VARIANTS: tuple[str, ...] = ("release", "single")

#: VGG-19 convolution groups: (channels, convolutions). Groups 1-2 are frozen.
VGG19_GROUPS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
FROZEN_GROUPS: tuple[int, ...] = (1, 2)
#: Regions of the attention map and crops of the C-Net (two centres per region).
NUM_REGIONS = 10
NUM_CROPS = 2 * NUM_REGIONS
#: Side of a C-Net crop and the release's layer widths.
CROP_SIDE = 3
FC6_UNITS = 4096
ENET_AU_UNITS = 2048
CROP_UNITS = 150
LOCAL_UNITS = 2048
DROPOUT = 0.5

#: Lasagne LocalResponseNormalization2DLayer settings of the release:
#: b = a / (k + alpha * sum of a² over n neighbouring channels) ** beta.
LRN_ALPHA = 0.002
LRN_K = 2.0
LRN_BETA = 0.75
LRN_SIZE = 5

#: The region of :data:`aufacs.models.attention.EAC_REGIONS` whose attention each AU shows.
#: BP4D AUs follow the release's region comments (``get_au_tg_dlib``: "au17" on the lip
#: centres, "au 23 24" on the inner upper lip); AU15 shares the lip corners with AU12/14.
#: The release has no DISFA regions: AU25 and AU26 take JAA-Net's choice (lip centres, below
#: the lower lip), and AU9 (no region near the nose) shows the whole attention map.
AU_REGIONS: dict[int, str] = {
    1: "AU1", 2: "AU2", 4: "AU4", 6: "AU6", 7: "AU7", 10: "AU10", 12: "lip_corners",
    14: "lip_corners", 15: "lip_corners", 17: "lip_centres", 23: "inner_upper_lip",
    24: "inner_upper_lip", 25: "lip_centres", 26: "lower_lip",
}  # fmt: skip


@dataclass(frozen=True)
class EACNetConfig:
    """Sizes of an EAC-Net.

    ``stage``: one of :data:`STAGES`. ``attention_variant``: ``"release"`` (1 - 0.07·d in a
    ±7 window) or ``"single"`` (1 - 0.095·d in a ±5 window, the paper's formula).
    ``input_size``: input side S in pixels (a multiple of 32; the release's is 224).
    ``width_divisor``: divides every layer width (1 is the release; larger values give small
    models for tests and debugging only, which cannot load ImageNet weights).
    """

    aus: tuple[int, ...] = BP4D_AUS
    stage: str = "joint"
    attention_variant: str = "release"
    input_size: int = 224
    width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise AufacsError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        if self.attention_variant not in ATTENTION_VARIANTS:
            raise AufacsError(
                f"attention_variant must be one of {', '.join(ATTENTION_VARIANTS)}, not "
                f"{self.attention_variant!r}"
            )
        if self.input_size < 32 or self.input_size % 32:
            raise AufacsError(
                f"input_size must be a multiple of 32 (224 in the release), not {self.input_size}"
            )
        if self.width_divisor < 1:
            raise AufacsError(f"width_divisor must be a positive integer, not {self.width_divisor}")
        if not self.aus:
            raise AufacsError("aus must name at least one AU")

    @property
    def num_aus(self) -> int:
        return len(self.aus)

    @property
    def map_size(self) -> int:
        """Side of the conv4 features the C-Net crops from (S/8; 28 at 224)."""
        return self.input_size // 8

    def width(self, units: int) -> int:
        """A release layer width divided by ``width_divisor`` (at least 1)."""
        return max(1, units // self.width_divisor)


def _glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Lasagne's default initialisation (Glorot uniform, gain 1) with explicit fans."""
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    nn.init.uniform_(weight, -bound, bound)


def _init_lasagne_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, like Lasagne's Conv2D and Dense layers."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def _conv_names(groups: Sequence[int]) -> list[str]:
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
        for name in _conv_names((group,)):
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
        self.crop_conv = nn.Conv2d(NUM_CROPS * in_channels, NUM_CROPS * in_channels, CROP_SIDE,
                                   groups=NUM_CROPS)  # fmt: skip
        crop_side = 2 * CROP_SIDE - 2  # up-sampled x2 (6), then a valid 3 x 3 convolution (4)
        crop_inputs = in_channels * crop_side * crop_side
        crop_units = config.width(CROP_UNITS)
        self.crop_fc_weight = nn.Parameter(torch.empty(NUM_CROPS, crop_inputs, crop_units))
        self.crop_fc_bias = nn.Parameter(torch.zeros(NUM_CROPS, crop_units))
        self.local_fc = nn.Linear(NUM_CROPS * crop_units, config.width(LOCAL_UNITS))
        self.out = nn.Linear(config.width(LOCAL_UNITS), config.num_aus)
        self.dropout = nn.Dropout(DROPOUT)
        _init_lasagne_(self)
        conv_fan = in_channels * CROP_SIDE * CROP_SIDE
        _glorot_(self.crop_conv.weight, conv_fan, conv_fan)
        _glorot_(self.crop_fc_weight, crop_inputs, crop_units)

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


class EACNet(AUModel):
    """EAC-Net for N AUs (see the module docstring for the layers and stages).

    ``forward(batch)`` needs ``batch["image"]`` (B, 3, S, S) and ``batch["landmarks"]``
    (B, 49, 2) in input pixels. Returns :class:`AUOutput` with ``au_logits`` and ``au_prob``
    (B, N) from the stage's head and ``attention`` (B, N, 100, 100): the landmark attention
    each AU's region gets (the two centres of that region; AUs sharing a region share the map).
    """

    @property
    def stage(self) -> str:
        """The training stage: ``"enet"``, ``"cnet"`` or ``"joint"``."""
        return self.config.stage

    def __init__(self, config: EACNetConfig) -> None:
        super().__init__()
        self.config = config
        mean, std = IMAGENET_NORMALISATION
        size = config.input_size
        self.input_spec = InputSpec(size, mean, std, resize_to=size, needs_landmarks=True)
        self.trunk = ENetTrunk(config)
        channels = self.trunk.out_channels
        self.enet_head = ENetHead(config, channels) if config.stage == "enet" else None
        self.cnet_head = CNetHead(config, channels) if config.stage != "enet" else None
        _init_lasagne_(self.trunk)
        if self.enet_head is not None:
            _init_lasagne_(self.enet_head)
        names = list(EAC_REGIONS)
        regions = [names.index(AU_REGIONS[au]) if au in AU_REGIONS else -1 for au in config.aus]
        self.register_buffer("au_regions", torch.tensor(regions), persistent=False)
        self.freeze()

    def freeze(self) -> None:
        """Freeze groups 1-2 (every stage) and the whole trunk in stage ``cnet``."""
        frozen = _conv_names(FROZEN_GROUPS)
        for name, conv in self.trunk.convs.items():
            trainable = self.config.stage != "cnet" and name not in frozen
            conv.requires_grad_(trainable)

    def load_imagenet(self, pretrained: Pretrained) -> None:
        """Copy VGG-19 ImageNet weights (``"imagenet"`` or a torchvision state-dict path) into
        the convolutions the stage has and, in stage ``enet``, into fc6."""
        vgg = torchvision_backbone("vgg19", pretrained)
        targets = list(self.trunk.convs.values())
        if self.enet_head is not None:
            targets += [*self.enet_head.convs.values(), self.enet_head.fc6]
        sources = [m for m in vgg.features if isinstance(m, nn.Conv2d)] + [vgg.classifier[0]]
        with torch.no_grad():
            for source, target in zip(sources[: len(targets)], targets, strict=True):
                target.weight.copy_(source.weight)
                target.bias.copy_(source.bias)

    def load_enet(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load the trunk (groups 1-4) of a trained E-Net.

        ``state_dict``: an ``EACNet.state_dict()`` saved in stage ``enet`` (keys ``trunk.*``;
        other keys are ignored). Raises AufacsError if a trunk weight is missing or misshapen.
        """
        prefix = "trunk."
        trunk = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        expected = self.trunk.state_dict()
        missing = sorted(set(expected) - set(trunk))
        if missing:
            raise AufacsError(
                f"enet weights lack {prefix}{missing[0]} (and {len(missing) - 1} more); expected "
                "the state dict of an EAC-Net trained in stage 'enet'"
            )
        for key, value in expected.items():
            if trunk[key].shape != value.shape:
                raise AufacsError(
                    f"enet weight {prefix}{key} has shape {tuple(trunk[key].shape)}; expected "
                    f"{tuple(value.shape)} for this EAC-Net"
                )
        self.trunk.load_state_dict({k: trunk[k] for k in expected})

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        image = batch["image"]
        size = self.config.input_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, size, size):
            raise AufacsError(
                f"batch['image'] has shape {tuple(image.shape)}; EAC-Net expects (B, 3, {size}, "
                f"{size})"
            )
        landmarks = batch.get("landmarks")
        if landmarks is None or landmarks.shape != (image.shape[0], NUM_LANDMARKS, 2):
            shape = None if landmarks is None else tuple(landmarks.shape)
            raise AufacsError(
                f"batch['landmarks'] is {shape}; EAC-Net needs (B, 49, 2) landmarks in input "
                "pixels to draw its attention map"
            )
        if torch.isnan(landmarks).any():
            raise AufacsError(
                "batch['landmarks'] contains NaN; EAC-Net needs all 49 landmarks of every frame "
                "(drop frames without landmarks when cleaning the data)"
            )
        return image, landmarks

    def au_attention(self, landmarks: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Per-AU landmark attention (B, N, 100, 100): each AU's region map, or the whole map
        for an AU without a region."""
        variant = self.config.attention_variant
        region_maps = eac_region_maps(landmarks, image_size, variant=variant)  # (B, 10, 100, 100)
        whole = region_maps.amax(dim=1, keepdim=True)
        maps = torch.cat([region_maps, whole], dim=1)  # index -1 picks the whole map
        return maps[:, self.au_regions]

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        image, landmarks = self._inputs(batch)
        size = (image.shape[-2], image.shape[-1])
        variant = self.config.attention_variant
        attention = eac_attention_map(landmarks, size, variant=variant)  # (B, 1, 100, 100)
        attention = F.interpolate(attention, size=size, mode="bilinear", align_corners=False)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.stage != "cnet"):
            conv4_all = self.trunk(image, attention)
        if self.enet_head is not None:
            logits = self.enet_head(conv4_all)
        else:
            logits = self.cnet_head(conv4_all, eac_region_centres(landmarks, size))
        return AUOutput(
            au_prob=torch.sigmoid(logits),
            au_logits=logits,
            attention=self.au_attention(landmarks, size),
        )

    def loss(
        self, output: AUOutput, batch: dict[str, torch.Tensor], au_weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The release's shifted cross-entropy on ``au_prob``, averaged over the known labels.

        ``au_weights`` is accepted for the common interface and not used: the release weights
        no AU. Parts: ``shifted_ce`` (detached).
        """
        total = shifted_cross_entropy(output.au_prob, batch["au"])
        return total, {"shifted_ce": total.detach()}


def build_eac_net(
    num_aus: int = 12,
    *,
    pretrained: Pretrained = "imagenet",
    stage: str = "joint",
    attention_variant: str = "release",
    aus: Sequence[int] | None = None,
    enet_weights: str | Path | None = None,
    input_size: int = 224,
    width_divisor: int = 1,
) -> EACNet:
    """Build an EAC-Net.

    ``num_aus``: outputs (12 for BP4D, 8 for DISFA). ``pretrained``: VGG-19 ImageNet weights,
    ``"imagenet"`` (torchvision's cache), a state-dict path, or None (random, Lasagne's Glorot
    initialisation). ``stage``: ``"enet"``, ``"cnet"`` or ``"joint"`` (module docstring).
    ``attention_variant``: ``"release"`` or ``"single"``. ``aus``: the AU numbers in output
    order (default: BP4D's 12 or DISFA's 8), used to pick each AU's attention region.
    ``enet_weights``: a state dict saved from a stage-``enet`` EAC-Net, whose trunk replaces the
    ImageNet one (stages ``cnet`` and ``joint`` only). ``input_size`` and ``width_divisor``:
    test and debugging options (:class:`EACNetConfig`); ImageNet weights need the defaults.
    """
    config = EACNetConfig(
        default_aus(num_aus, aus), stage, attention_variant, input_size, width_divisor
    )
    if pretrained is not None and (input_size != 224 or width_divisor != 1):
        raise AufacsError(
            "pretrained VGG-19 weights need input_size=224 and width_divisor=1; pass "
            "pretrained=None for a smaller EAC-Net"
        )
    if enet_weights is not None and stage == "enet":
        raise AufacsError("enet_weights initialise stages 'cnet' and 'joint', not stage 'enet'")
    model = EACNet(config)
    if pretrained is not None:
        model.load_imagenet(pretrained)
    if enet_weights is not None:
        model.load_enet(load_weight_file(enet_weights, "an E-Net state dict"))
    return model
