"""Action units and the 49-point facial landmark scheme.

Everything here is plain data: which AUs each data set codes (in the order every list file,
label matrix and model output uses), their FACS names, and the 49-point landmark scheme
(IntraFace / FERA layout) that JAA-Net, EAC-Net attention and the alignment rely on.

Landmark indices are **0-based** throughout aufacs. The 49 points are:

====== ============================================
0-4    image-left brow (outer end 0, inner end 4)
5-9    image-right brow (inner end 5, outer end 9)
10-13  nose bridge (top to tip)
14-18  nose base (image-left to image-right)
19-24  image-left eye (19 outer corner, 22 inner corner)
25-30  image-right eye (25 inner corner, 28 outer corner)
31-42  outer lip contour (31 and 37 are the mouth corners)
43-45  inner upper lip
46-48  inner lower lip
====== ============================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aufacs.core.errors import AufacsError

#: BP4D-Spontaneous AU order (12 AUs), as in JAA-Net and ME-GraphAU lists.
BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
#: DISFA AU order (8 AUs), as in JAA-Net and ME-GraphAU lists.
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)

NUM_LANDMARKS = 49

#: Named groups of the 49-point scheme (0-based indices).
LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "left_brow": tuple(range(0, 5)),
    "right_brow": tuple(range(5, 10)),
    "nose_bridge": tuple(range(10, 14)),
    "nose_base": tuple(range(14, 19)),
    "left_eye": tuple(range(19, 25)),
    "right_eye": tuple(range(25, 31)),
    "outer_lip": tuple(range(31, 43)),
    "inner_lip": tuple(range(43, 49)),
}

#: Points used for the eye centres (alignment, inter-ocular distance).
LEFT_EYE = LANDMARK_GROUPS["left_eye"]
RIGHT_EYE = LANDMARK_GROUPS["right_eye"]
NOSE_TIP = 13
MOUTH_CORNERS = (31, 37)

#: Horizontal-mirror permutation (0-based): after a flip, new point j is old point MIRROR_49[j].
#: Same as JAA-Net's 1-based ``reflect_49.txt`` minus one.
MIRROR_49: tuple[int, ...] = tuple(
    int(i) - 1
    for i in (
        "10 9 8 7 6 5 4 3 2 1 11 12 13 14 19 18 17 16 15 "
        "29 28 27 26 31 30 23 22 21 20 25 24 "
        "38 37 36 35 34 33 32 43 42 41 40 39 46 45 44 49 48 47"
    ).split()
)

#: 68-point (iBUG 300-W / dlib) 0-based indices of the 49 points: drop the 17 jaw points and
#: the two inner mouth corners (60 and 64).
FROM_68: tuple[int, ...] = tuple(range(17, 60)) + (61, 62, 63, 65, 66, 67)
#: 66-point (DISFA) 0-based indices of the 49 points: drop the 17 jaw points.
FROM_66: tuple[int, ...] = tuple(range(17, 66))


@dataclass(frozen=True)
class AUSet:
    """An ordered set of AUs, e.g. BP4D's twelve.

    ``columns`` are the frame-table column names (``"AU1"``, ...), in model-output order.
    """

    name: str
    aus: tuple[int, ...]

    @property
    def columns(self) -> list[str]:
        return [au_column(a) for a in self.aus]

    def __len__(self) -> int:
        return len(self.aus)


BP4D = AUSet("bp4d", BP4D_AUS)
DISFA = AUSet("disfa", DISFA_AUS)
AU_SETS: dict[str, AUSet] = {"bp4d": BP4D, "disfa": DISFA, "synthetic": BP4D}


def au_column(au: int) -> str:
    """Frame-table column name of an AU number: ``au_column(12) == "AU12"``."""
    return f"AU{au}"


def au_set(name: str) -> AUSet:
    """The AU set of a data set kind (``"bp4d"``, ``"disfa"`` or ``"synthetic"``)."""
    try:
        return AU_SETS[name]
    except KeyError:
        raise AufacsError(
            f"unknown data set kind {name!r}; expected one of {', '.join(sorted(AU_SETS))}"
        ) from None


def to_49(landmarks: np.ndarray) -> np.ndarray:
    """Map 68- or 66-point landmarks to the 49-point scheme.

    ``landmarks``: (..., P, 2) with P in {49, 66, 68}; returns (..., 49, 2) (a copy).
    """
    points = landmarks.shape[-2]
    if points == NUM_LANDMARKS:
        return np.array(landmarks, copy=True)
    if points == 68:
        return landmarks[..., FROM_68, :].copy()
    if points == 66:
        return landmarks[..., FROM_66, :].copy()
    raise AufacsError(f"expected 49, 66 or 68 landmarks, got {points}")


def mirror_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Mirror 49-point landmarks horizontally in an image ``width`` pixels wide.

    ``landmarks``: (..., 49, 2) in 0-indexed pixels. x becomes ``width - 1 - x`` and the
    points are re-ordered with :data:`MIRROR_49` so that point j keeps its meaning.
    """
    mirrored = landmarks[..., MIRROR_49, :].copy()
    mirrored[..., 0] = width - 1 - mirrored[..., 0]
    return mirrored


def default_aus(num_aus: int, aus: Sequence[int] | None = None) -> tuple[int, ...]:
    """The AU numbers a model predicts: ``aus`` if given, else BP4D's for 12, DISFA's for 8.

    Raises AufacsError when there is no default for ``num_aus`` or ``aus`` has another length.
    """
    if aus is None:
        defaults = {len(BP4D_AUS): BP4D_AUS, len(DISFA_AUS): DISFA_AUS}
        if num_aus not in defaults:
            raise AufacsError(
                f"num_aus={num_aus} has no default AU order; pass aus=(...) with {num_aus} AU "
                "numbers"
            )
        return defaults[num_aus]
    if len(aus) != num_aus:
        raise AufacsError(f"aus lists {len(aus)} AUs but num_aus is {num_aus}")
    return tuple(int(au) for au in aus)
