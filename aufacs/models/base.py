"""What every AU detector in aufacs looks like to the rest of the package.

A model is an :class:`AUModel`: an ``nn.Module`` whose ``forward`` takes a batch dict and
returns an :class:`AUOutput`, and which computes its own loss with
``model.loss(output, batch, au_weights) -> (total, parts)``, so that training code never
branches on the model.

Batch dict keys (produced by :class:`aufacs.data.dataset.AlignedFaceDataset`):

==============  ===========================================================================
``image``       (B, 3, H, W) float32, normalised as the model's :class:`InputSpec` says
``landmarks``   (B, 49, 2) float32, 0-indexed pixels of the input image (NaN if unknown)
``au``          (B, num_aus) float32 labels: 1 present, 0 absent, NaN unknown
``biocular``    (B,) float32 squared inter-ocular distance in input pixels (pixels²)
==============  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input: crop size in pixels, RGB mean/std after scaling to [0, 1],
    and the size the aligned face is resized to before cropping (``None``: use it as cached)."""

    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_to: int | None = None
    needs_landmarks: bool = False


#: JAA-Net / EAC-Net style normalisation to [-1, 1].
HALF_NORMALISATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
#: torchvision ImageNet normalisation.
IMAGENET_NORMALISATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class AUOutput:
    """A model's output for a batch of B images and N AUs.

    ``au_prob`` (B, N) in [0, 1] is always present; the rest only where the method has them:
    ``au_logits`` (B, N) log-odds, ``landmarks`` (B, 49, 2) predicted points in input pixels,
    ``attention`` (B, N, h, w) per-AU attention maps in [0, 1], ``edge_logits`` (B, N*N, 4)
    logits of each ordered AU pair's co-occurrence pattern, and ``extras`` for
    method-specific tensors the loss needs.
    """

    au_prob: torch.Tensor
    au_logits: torch.Tensor | None = None
    landmarks: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    edge_logits: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class AUModel(nn.Module):
    """Base class of the three detectors. Subclasses set ``input_spec`` and implement
    ``forward(batch) -> AUOutput`` and ``loss``."""

    input_spec: InputSpec
    #: The class-weight scheme of the method's official code (see ``aufacs.data.stats``).
    weight_scheme: str = "inverse"
    #: The training stage of a method trained in stages (ME-GraphAU 1 / 2, EAC-Net "enet" /
    #: "cnet" / "joint"); None for a single-stage method. Picks the recipe in aufacs.engine.recipes.
    stage: int | str | None = None

    def optimizer_param_groups(self) -> list[dict]:
        """Parameter groups ``{"name", "params", "lr_mult"}``; the engine gives each group the
        base learning rate times ``lr_mult``. One group of everything by default."""
        return [{"name": "all", "params": list(self.parameters()), "lr_mult": 1.0}]

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:  # pragma: no cover
        raise NotImplementedError

    def loss(
        self, output: AUOutput, batch: dict[str, torch.Tensor], au_weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # pragma: no cover
        """Total loss (a scalar) and its named parts (detached scalars) for one batch.

        ``au_weights`` (N,) class weights averaging 1. Unknown labels (NaN) are masked out.
        """
        raise NotImplementedError
