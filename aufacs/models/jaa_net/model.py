"""The JAA-Net v1 network: alignment branch, AU head, the model with its loss, and its builder.

**Initial attention**: drawn on the device in one vectorized operation from the detached
predicted landmarks (:func:`aufacs.models.attention.jaa_initial_attention`), so no landmarks are
needed as input and nothing is copied to the host. Input and shapes: :mod:`aufacs.models.jaa_net`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aufacs.core.aus import NUM_LANDMARKS, default_aus
from aufacs.core.errors import AufacsError
from aufacs.models.attention import jaa_initial_attention
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.models.jaa_net.branches import AttentionRefine, FeatureExtractor, LocalAUNet
from aufacs.models.jaa_net.config import JAANetConfig
from aufacs.models.jaa_net.region import RegionLearning
from aufacs.models.losses import attention_refine_loss, au_softmax_loss, dice_loss, landmark_loss


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
    dice: str = "batch",
    aus: Sequence[int] | None = None,
    branch_schedule: str = "auto",
) -> JAANet:
    """Build a JAA-Net v1 with the official defaults (22,162,854 parameters for 12 AUs).

    ``num_aus``: 12 (BP4D order) or 8 (DISFA order) unless ``aus`` gives the AU numbers, in
    output order. ``crop_size``: input side in pixels, a multiple of 16, at least 32 (official
    176). ``unit_dim``: channel unit (official 8). ``num_landmarks``: must be 49 (the attention
    rules index the 49-point scheme). ``lambda_*``, ``grad_enhance``: loss weights (see
    :meth:`JAANet.loss`). ``dice``: ``"batch"`` (default: the official PyTorch code's batch
    ratio divided by B) or ``"per_sample"`` (the paper and the Caffe release).
    ``branch_schedule``: how the per-AU branches run, ``"auto"`` (per branch on CPU, grouped
    elsewhere), ``"grouped"`` or ``"per_branch"``; the function and the parameters are the
    same (see :class:`~aufacs.models.jaa_net.branches.BranchStack`).
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
