"""A subject's parametric face: its parameters, neutral 49 landmarks, contours and outline.

Coordinates are face units (see :mod:`aufacs.data.synthetic.draw`): the inter-ocular distance
is 1, the origin is midway between the eyes, ``y`` points down. The landmark template's
proportions come from a real BP4D frame's 49 landmarks (``../shared/fixtures/bp4d_sample``,
symmetrised, mouth closed); each subject varies them with :class:`FaceParams`. The contour
index groups (brows, eyes, lips, nostrils) say which landmarks
:mod:`aufacs.data.synthetic.face_drawing` draws as one feature, and :class:`Marks` holds the
creases and bumps an AU state leaves on the skin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from aufacs.core.aus import MIRROR_49, NUM_LANDMARKS
from aufacs.data.synthetic.draw import catmull_rom

#: Left-side and midline points of the neutral template (face units), index: (x, y). The
#: right side mirrors them with :data:`aufacs.core.aus.MIRROR_49`.
_HALF_TEMPLATE: dict[int, tuple[float, float]] = {
    0: (-0.89, -0.30),
    1: (-0.74, -0.39),
    2: (-0.56, -0.41),
    3: (-0.39, -0.37),
    4: (-0.23, -0.31),
    10: (0.0, -0.05),
    11: (0.0, 0.17),
    12: (0.0, 0.38),
    13: (0.0, 0.59),
    14: (-0.22, 0.68),
    15: (-0.11, 0.70),
    16: (0.0, 0.72),
    19: (-0.70, 0.0),
    20: (-0.57, -0.075),
    21: (-0.42, -0.07),
    22: (-0.30, 0.02),
    23: (-0.43, 0.06),
    24: (-0.57, 0.065),
    31: (-0.43, 1.05),
    32: (-0.30, 0.965),
    33: (-0.14, 0.915),
    34: (0.0, 0.935),
    40: (0.0, 1.235),
    41: (-0.15, 1.215),
    42: (-0.31, 1.16),
    43: (-0.17, 1.05),
    44: (0.0, 1.055),
    47: (0.0, 1.06),
    48: (-0.17, 1.055),
}

#: Points of each drawn contour, in drawing order.
BROWS = ((0, 1, 2, 3, 4), (9, 8, 7, 6, 5))  # outer to inner
EYES = ((19, 20, 21, 22, 23, 24), (28, 27, 26, 25, 30, 29))  # outer, upper lid, inner, lower
UPPER_LIDS = ((19, 20, 21, 22), (28, 27, 26, 25))
OUTER_LIP = tuple(range(31, 43))
INNER_LIP = (31, 43, 44, 45, 37, 46, 47, 48)  # the mouth opening, corner to corner
LIP_LINE = (31, 43, 44, 45, 37)
NOSTRILS = ((14, 15), (18, 17))
#: Mouth line of the neutral template (lips closed), face units.
LIP_LINE_Y = 1.055

#: Hair and iris colours (RGB in [0, 1]) that a subject's are drawn from, and their weights.
HAIR_COLOURS = np.array(
    [
        [0.07, 0.05, 0.04],
        [0.20, 0.13, 0.08],
        [0.36, 0.23, 0.13],
        [0.70, 0.55, 0.33],
        [0.42, 0.18, 0.09],
        [0.52, 0.51, 0.50],
    ]
)
HAIR_WEIGHTS = np.array([0.35, 0.25, 0.16, 0.1, 0.07, 0.07])
IRIS_COLOURS = np.array(
    [[0.33, 0.19, 0.09], [0.14, 0.09, 0.05], [0.30, 0.44, 0.58], [0.34, 0.43, 0.28]]
)
IRIS_WEIGHTS = np.array([0.4, 0.35, 0.15, 0.1])
#: Skin tones from light to dark, RGB; a subject's tone interpolates between them.
SKIN_TONES = np.array(
    [[0.94, 0.79, 0.69], [0.80, 0.58, 0.45], [0.58, 0.39, 0.28], [0.36, 0.23, 0.16]]
)


@dataclass(frozen=True)
class FaceParams:
    """One subject's face. Lengths in face units (inter-ocular distance = 1); colours RGB in
    [0, 1]; ``texture_seed`` seeds the skin and hair texture."""

    subject: str
    sex: str
    head_width: float
    jaw_width: float
    chin_y: float
    crown_y: float
    eye_scale: float
    eye_open: float
    brow_lift: float
    brow_arch: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_drop: float
    upper_lip: float
    lower_lip: float
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    hair_long: bool
    hairline_y: float
    hair_volume: float
    background: tuple[float, float, float]
    shirt: tuple[float, float, float]
    light_azimuth: float
    light_elevation: float
    texture_seed: int

    def to_dict(self) -> dict:
        """The parameters as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FaceParams:
        """Inverse of :meth:`to_dict`."""
        colours = ("skin", "lips", "hair", "iris", "background", "shirt")
        return cls(**{k: tuple(v) if k in colours else v for k, v in values.items()})


def sample_face(rng: np.random.Generator, subject: str) -> FaceParams:
    """Draw a random face for ``subject`` (its sex is the ID's first letter, F or M)."""
    sex = "M" if subject.startswith("M") else "F"
    male = sex == "M"
    tone = rng.uniform(0.0, 1.0) * (len(SKIN_TONES) - 1)
    low = int(min(np.floor(tone), len(SKIN_TONES) - 2))
    skin = SKIN_TONES[low] + (tone - low) * (SKIN_TONES[low + 1] - SKIN_TONES[low])
    skin = np.clip(skin + rng.normal(0.0, 0.02, 3), 0.05, 1.0)
    lips = np.clip(skin * (0.86, 0.56, 0.58) + (0.04, 0.0, 0.01) + rng.normal(0, 0.02, 3), 0, 1)
    hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_WEIGHTS)] * rng.uniform(0.85, 1.15)
    iris = IRIS_COLOURS[rng.choice(len(IRIS_COLOURS), p=IRIS_WEIGHTS)]
    background = np.array([0.07, 0.08, 0.18]) + rng.uniform(-0.03, 0.05, 3)
    shirt = rng.uniform(0.1, 0.7, 3) * rng.uniform(0.5, 1.0)

    def colour(value: np.ndarray) -> tuple[float, float, float]:
        return tuple(float(c) for c in np.clip(value, 0.0, 1.0))

    return FaceParams(
        subject=subject,
        sex=sex,
        head_width=float(rng.uniform(1.0, 1.1) + 0.03 * male),
        jaw_width=float(rng.uniform(0.66, 0.8) + 0.07 * male),
        chin_y=float(rng.uniform(1.72, 1.9) + 0.05 * male),
        crown_y=float(rng.uniform(-1.6, -1.45)),
        eye_scale=float(rng.uniform(0.9, 1.1)),
        eye_open=float(rng.uniform(0.85, 1.2)),
        brow_lift=float(rng.uniform(-0.04, 0.05) - 0.02 * male),
        brow_arch=float(rng.uniform(0.6, 1.4) - 0.2 * male),
        brow_thickness=float(rng.uniform(0.055, 0.08) + 0.02 * male),
        nose_length=float(rng.uniform(0.92, 1.08)),
        nose_width=float(rng.uniform(0.88, 1.2) + 0.05 * male),
        mouth_width=float(rng.uniform(0.9, 1.1)),
        mouth_drop=float(rng.uniform(-0.04, 0.05)),
        upper_lip=float(rng.uniform(0.8, 1.2)),
        lower_lip=float(rng.uniform(0.8, 1.2)),
        skin=colour(skin),
        lips=colour(lips),
        hair=colour(hair),
        iris=colour(iris),
        hair_long=bool(rng.random() < (0.15 if male else 0.8)),
        hairline_y=float(rng.uniform(-1.05, -0.82) - 0.1 * male * rng.random()),
        hair_volume=float(rng.uniform(1.04, 1.14) - 0.03 * male),
        background=colour(background),
        shirt=colour(shirt),
        light_azimuth=float(rng.uniform(-0.5, 0.5)),
        light_elevation=float(rng.uniform(0.2, 0.6)),
        texture_seed=int(rng.integers(2**31)),
    )


def neutral_landmarks(face: FaceParams) -> np.ndarray:
    """The subject's 49 landmarks with every AU off and the mouth closed: (49, 2) face units."""
    points = np.zeros((NUM_LANDMARKS, 2))
    for index, (x, y) in _HALF_TEMPLATE.items():
        points[index] = (x, y)
        points[MIRROR_49[index]] = (-x, y)
    brows = list(BROWS[0] + BROWS[1])
    chord = np.linspace(points[0, 1], points[4, 1], 5)
    arch = np.concatenate([points[list(BROWS[0]), 1] - chord] * 2)
    points[brows, 1] += (face.brow_arch - 1.0) * arch - face.brow_lift
    for eye in EYES:
        centre = np.array([points[eye[0], 0] + points[eye[3], 0], 0.0]) / 2
        offset = points[list(eye)] - centre
        points[list(eye)] = centre + offset * (face.eye_scale, face.eye_scale * face.eye_open)
    nose = list(range(10, 19))
    points[nose, 1] *= face.nose_length
    points[14:19, 0] *= face.nose_width
    mouth = list(range(31, 49))
    points[mouth, 0] *= face.mouth_width
    upper, lower = [32, 33, 34, 35, 36], [38, 39, 40, 41, 42]
    points[upper, 1] = LIP_LINE_Y + (points[upper, 1] - LIP_LINE_Y) * face.upper_lip
    points[lower, 1] = LIP_LINE_Y + (points[lower, 1] - LIP_LINE_Y) * face.lower_lip
    points[mouth, 1] += face.mouth_drop + 0.6 * (face.nose_length - 1.0)
    return points


@dataclass(frozen=True)
class Marks:
    """An AU state's surface marks: ``creases`` (polyline (N, 2) face units, strength in
    [0, 1]) darken the skin; ``bumps`` (centre (2,), (sigma_x, sigma_y), height) raise or
    sink the height field, all in face units."""

    creases: list[tuple[np.ndarray, float]]
    bumps: list[tuple[np.ndarray, tuple[float, float], float]]


def head_outline(face: FaceParams) -> np.ndarray:
    """The head's outline (forehead, temples, cheeks, jaw, chin): (N, 2) face units."""
    w, j, c = face.head_width, face.jaw_width, face.chin_y
    side = np.array(
        [[w, -0.15], [0.99 * w, 0.35], [0.93 * w, 0.85], [j, 1.32], [0.5 * j + 0.04, c - 0.1]]
    )
    top_centre, top_half = -0.15, -0.15 - face.crown_y
    angles = np.linspace(np.pi * 0.1, np.pi * 0.9, 7)
    top = np.stack([w * np.cos(angles), top_centre - top_half * np.sin(angles)], 1)
    left = side * (-1, 1)
    return catmull_rom(np.concatenate([side[::-1], top, left, [[0.0, c]]]), closed=True)
