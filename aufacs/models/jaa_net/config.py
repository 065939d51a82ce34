"""The configuration of a JAA-Net: sizes, loss weights, and the checks on them."""

from __future__ import annotations

from dataclasses import dataclass

from aufacs.core.aus import BP4D_AUS, NUM_LANDMARKS
from aufacs.core.errors import AufacsError
from aufacs.models.attention import JAA_AU_CENTRES

#: Dice loss variants: the official PyTorch code's batch ratio (``util.dice_loss``, the default),
#: or the per-sample mean of the paper and the Caffe release (``dice_coef_loss_layer.cpp``).
DICE_VARIANTS: tuple[str, ...] = ("batch", "per_sample")
#: How the per-AU branches run (see :class:`aufacs.models.jaa_net.branches.BranchStack`).
BRANCH_SCHEDULES: tuple[str, ...] = ("auto", "grouped", "per_branch")


@dataclass(frozen=True)
class JAANetConfig:
    """Sizes and loss weights of a JAA-Net (official defaults).

    ``crop_size``: input side in pixels (multiple of 16, at least 32). ``unit_dim``: channel
    unit u (region features have 8u channels). ``spatial_ratio`` and ``fill_coeff``: the
    initial attention's ROI half-size ratio and Manhattan decay (ζ, ξ of the paper).
    Loss: E = λ_au·(E_softmax + E_dice) + λ_land·E_align + (λ_refine / grad_enhance)·E_r.
    ``dice``: ``"batch"`` (default; the official PyTorch code, which the seed replication ran)
    or ``"per_sample"`` (the paper and the Caffe release; see docs/departures.md).
    """

    aus: tuple[int, ...] = BP4D_AUS
    crop_size: int = 176
    unit_dim: int = 8
    num_landmarks: int = NUM_LANDMARKS
    lambda_au: float = 1.0
    lambda_land: float = 0.5
    lambda_refine: float = 2e-4
    grad_enhance: float = 2.0
    dice: str = "batch"
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
