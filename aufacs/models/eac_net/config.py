"""The configuration of an EAC-Net: AUs, stage, attention variant and sizes, with their checks."""

from __future__ import annotations

from dataclasses import dataclass

from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError

STAGES: tuple[str, ...] = ("enet", "cnet", "joint")
ATTENTION_VARIANTS: tuple[str, ...] = ("release", "single")
#: Dropout after the hidden dense layers of both AU heads (the release's 0.5).
DROPOUT = 0.5


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
