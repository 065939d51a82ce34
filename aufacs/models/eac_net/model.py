"""The EAC-Net model (its stages, inputs and per-AU attention) and its builder.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.aus import NUM_LANDMARKS, default_aus
from aufacs.core.errors import AufacsError
from aufacs.models.attention import (
    EAC_REGIONS,
    eac_attention_map,
    eac_region_centres,
    eac_region_maps,
)
from aufacs.models.backbones import Pretrained, load_weight_file, torchvision_backbone
from aufacs.models.base import IMAGENET_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.models.eac_net.cnet import CNetHead
from aufacs.models.eac_net.config import EACNetConfig
from aufacs.models.eac_net.enet import FROZEN_GROUPS, ENetHead, ENetTrunk, conv_names
from aufacs.models.eac_net.init import init_lasagne_
from aufacs.models.losses import shifted_cross_entropy

#: The region of :data:`aufacs.models.attention.EAC_REGIONS` whose attention each AU shows.
#: BP4D AUs follow the release's region comments (``get_au_tg_dlib``: "au17" on the lip
#: centres, "au 23 24" on the inner upper lip); AU15 shares the lip corners with AU12/14.
#: The release has no DISFA regions: AU25 and AU26 take JAA-Net's choice (lip centres, below
#: the lower lip), and AU9 (no region near the nose) shows the whole attention map.
AU_REGIONS: dict[int, str] = {
    1: "AU1",
    2: "AU2",
    4: "AU4",
    6: "AU6",
    7: "AU7",
    10: "AU10",
    12: "lip_corners",
    14: "lip_corners",
    15: "lip_corners",
    17: "lip_centres",
    23: "inner_upper_lip",
    24: "inner_upper_lip",
    25: "lip_centres",
    26: "lower_lip",
}


class EACNet(AUModel):
    """EAC-Net for N AUs (stages: the module docstring; layers: :mod:`.enet`, :mod:`.cnet`).

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
        init_lasagne_(self.trunk)
        if self.enet_head is not None:
            init_lasagne_(self.enet_head)
        names = list(EAC_REGIONS)
        regions = [names.index(AU_REGIONS[au]) if au in AU_REGIONS else -1 for au in config.aus]
        self.register_buffer("au_regions", torch.tensor(regions), persistent=False)
        self.freeze()

    def freeze(self) -> None:
        """Freeze groups 1-2 (every stage) and the whole trunk in stage ``cnet``."""
        frozen = conv_names(FROZEN_GROUPS)
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
    ``"imagenet"`` (torchvision's cache, downloaded there on first use unless
    ``AUFACS_OFFLINE=1``), a state-dict path, or None (random, Lasagne's Glorot
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
