"""What each of BP4D's 12 AUs does to the synthetic face, and where.

Every AU acts through three things, all defined on the subject's *neutral* landmarks in face
units (inter-ocular distance 1) and scaled by the AU's intensity ``a`` in [0, 1]:

* a landmark displacement (49, 2), linear in ``a`` (brows up, lip corners out and up, ...);
* creases: soft dark lines (forehead wrinkles, glabellar furrows, crow's feet, nasolabial
  folds, dimples, chin wrinkling), their darkness times ``a``;
* bumps: Gaussian changes of the height field (cheeks raised, lower-lid bulge, chin boss, the
  bulges around pressed lips), their height times ``a``; lit like the rest of the face.

=====  =========================  ====================================================
AU     name                       what changes
=====  =========================  ====================================================
1      inner brow raiser          inner brow ends up; wrinkles over the mid forehead
2      outer brow raiser          outer brow ends up; wrinkles over the lateral forehead
4      brow lowerer               brows down and together; glabellar furrows
6      cheek raiser               cheeks and lower lids up; lid bulge; crow's feet
7      lid tightener              lids narrowed from below and above; lid tension line
10     upper lip raiser           upper lip up (squared); upper nasolabial fold
12     lip corner puller          corners out and up; cheek bulge; lower nasolabial fold
14     dimpler                    corners tightened inwards; dimples
15     lip corner depressor       corners down; folds below the corners
17     chin raiser                lower lip pushed up; chin boss raised and wrinkled
23     lip tightener              lip red narrowed, mouth narrower; rolled lip margins
24     lip pressor                lips pressed shut and flattened; bulges above and below
=====  =========================  ====================================================

The ground-truth region of an AU in a frame (:func:`region_masks`) is the union of the convex
hulls of everything it touches there: the landmarks it moves, with the AU off and at full
intensity (the other AUs as in the frame), together with their neighbours on the drawn
contours; each crease; each bump out to 2.5 sigma; widened by a margin. The AU's effect on
the rendered frame lies inside it (checked by the locality
test in ``tests/test_synthetic.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from aufacs.core.aus import BP4D_AUS, MIRROR_49, NUM_LANDMARKS
from aufacs.data.synthetic.draw import Canvas, ellipse_polygon
from aufacs.data.synthetic.face import BROWS, EYES, FaceParams, Marks

#: Widest nuisance mouth opening (speech), face units; see :func:`deform_landmarks`.
MAX_OPENING = 0.12
#: Points the mouth opening moves down: the lower lip, outer and inner.
LOWER_LIP = (38, 39, 40, 41, 42, 46, 47, 48)
#: Margin added around every region part, face units (covers blur and anti-aliasing).
REGION_MARGIN = 0.07
#: The contours whose shape follows a moved point's neighbours (closed ones wrap around).
CONTOURS: tuple[tuple[tuple[int, ...], bool], ...] = (
    (BROWS[0], False),
    (BROWS[1], False),
    (EYES[0], True),
    (EYES[1], True),
    (tuple(range(31, 43)), True),
    ((31, 43, 44, 45, 37, 46, 47, 48), True),
    (tuple(range(14, 19)), False),
)


@dataclass(frozen=True)
class AUMotion:
    """One AU at full intensity on one subject.

    ``displacement``: (49, 2) face units; ``creases``, ``bumps``: as in
    :class:`~aufacs.data.synthetic.face.Marks`.
    """

    displacement: np.ndarray
    creases: list[tuple[np.ndarray, float]]
    bumps: list[tuple[np.ndarray, tuple[float, float], float]]


class _Builder:
    """Collects one AU's symmetric displacements, creases and bumps (left side given)."""

    def __init__(self) -> None:
        self.displacement = np.zeros((NUM_LANDMARKS, 2))
        self.creases: list[tuple[np.ndarray, float]] = []
        self.bumps: list[tuple[np.ndarray, tuple[float, float], float]] = []

    def move(self, index: int, dx: float, dy: float) -> None:
        """Move a left-side point by (dx, dy) and its mirror image by (-dx, dy)."""
        self.displacement[index] = (dx, dy)
        self.displacement[MIRROR_49[index]] = (-dx, dy)

    def moves(self, table: tuple[tuple[int, float, float], ...]) -> None:
        """:meth:`move` for each (index, dx, dy) of ``table``."""
        for index, dx, dy in table:
            self.move(index, dx, dy)

    def lifts(self, table: tuple[tuple[int, float], ...]) -> None:
        """Vertical :meth:`move` for each (index, dy) of ``table``."""
        for index, dy in table:
            self.move(index, 0.0, dy)

    def crease(self, points: list, strength: float, *, mirror: bool = True) -> None:
        """A crease through ``points`` (left side; mirrored unless it crosses the midline)."""
        line = np.asarray(points, dtype=np.float64)
        self.creases.append((line, strength))
        if mirror:
            self.creases.append((line * (-1, 1), strength))

    def bump(
        self, centre: tuple, sigma: tuple[float, float], height: float, *, mirror: bool = True
    ) -> None:
        """A bump at ``centre`` (left side; mirrored unless ``mirror`` is False)."""
        self.bumps.append((np.asarray(centre, dtype=np.float64), sigma, height))
        if mirror:
            self.bumps.append((np.asarray(centre, dtype=np.float64) * (-1, 1), sigma, height))

    def done(self) -> AUMotion:
        return AUMotion(self.displacement, self.creases, self.bumps)


def _au1(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    for i, w in enumerate((0.0, 0.15, 0.45, 0.8, 1.0)):
        b.move(i, 0.0, -0.13 * w)
    x = np.linspace(-0.36, 0.36, 9)
    for k in range(3):
        y = n[4, 1] - 0.25 - 0.12 * k - 0.035 * (1 - (x / 0.36) ** 2)
        b.crease(np.stack([x, y], 1), 0.75 - 0.12 * k, mirror=False)
    return b.done()


def _au2(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    for i, w in enumerate((1.0, 0.85, 0.5, 0.15, 0.0)):
        b.move(i, 0.0, -0.15 * w)
    for k in range(2):
        line = n[[0, 1, 2, 3]] * (0.96, 1) + (0.0, -0.27 - 0.12 * k)
        b.crease(line, 0.8 - 0.1 * k)
    return b.done()


def _au4(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    for i, (wx, wy) in enumerate(
        zip((0, 0.15, 0.4, 0.7, 1), (0.3, 0.5, 0.75, 0.95, 1), strict=True)
    ):
        b.move(i, 0.06 * wx, 0.07 * wy)
    top = n[4, 1]
    b.crease([(-0.085, top - 0.12), (-0.068, top), (-0.06, top + 0.13)], 0.85)
    b.crease([(-0.1, -0.07), (0.0, -0.095), (0.1, -0.07)], 0.45, mirror=False)
    b.bump((-0.17, top + 0.02), (0.07, 0.05), 0.025)
    return b.done()


def _au6(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((23, -0.03), (24, -0.035)))
    eye_x = 0.5 * (n[19, 0] + n[22, 0])
    lid = max(n[23, 1], n[24, 1])
    b.bump((eye_x, lid + 0.07), (0.14, 0.035), 0.03)
    b.bump((-0.56, 0.33), (0.17, 0.1), 0.07)
    b.bump((-0.56, 0.58), (0.17, 0.1), -0.03)
    start = n[19] + (-0.06, 0.0)
    for angle in (-0.45, 0.05, 0.5):
        direction = np.array([-np.cos(angle), np.sin(angle)])
        b.crease([start + 0.02 * direction, start + 0.14 * direction + (0, 0.01)], 0.7)
    b.crease(
        [(n[19, 0] + 0.05, lid + 0.13), (eye_x, lid + 0.16), (n[22, 0] + 0.02, lid + 0.12)], 0.45
    )
    return b.done()


def _au7(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((23, -0.06), (24, -0.05), (20, 0.03), (21, 0.035)))
    b.crease([n[24] + (0.0, 0.015), n[23] + (0.0, 0.015)], 0.55)
    b.bump((0.5 * (n[19, 0] + n[22, 0]), n[23, 1]), (0.12, 0.025), 0.025)
    return b.done()


def _au10(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((31, -0.015), (32, -0.05), (33, -0.075), (34, -0.06), (43, -0.075), (44, -0.065)))
    b.lifts(((14, -0.02), (15, -0.012)))
    ala, corner = n[14], n[31]
    b.crease([ala + (-0.04, -0.02), ala + (-0.1, 0.1), (corner[0] - 0.02, corner[1] - 0.08)], 0.7)
    b.bump(ala + (-0.13, 0.05), (0.08, 0.07), 0.03)
    return b.done()


def _au12(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.moves(((31, -0.07, -0.09), (32, -0.03, -0.04), (42, -0.035, -0.05), (43, -0.03, -0.05)))
    b.moves(((48, -0.03, -0.045), (33, -0.01, -0.015), (41, -0.01, -0.02)))
    ala, corner = n[14], n[31]
    b.crease([ala + (-0.09, 0.1), ala + (-0.17, 0.24), corner + (-0.13, 0.06)], 0.65)
    b.bump(corner + (-0.13, -0.22), (0.13, 0.1), 0.06)
    return b.done()


def _au14(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.moves(
        ((31, 0.05, -0.02), (43, 0.03, 0.0), (48, 0.03, 0.0), (32, 0.015, 0.0), (42, 0.015, 0.0))
    )
    corner = n[31]
    b.bump(corner + (-0.08, 0.0), (0.035, 0.07), -0.05)
    b.bump(corner + (-0.15, 0.0), (0.05, 0.08), 0.03)
    b.crease([corner + (-0.07, -0.09), corner + (-0.085, 0.0), corner + (-0.075, 0.09)], 0.85)
    return b.done()


def _au15(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.moves(((31, -0.015, 0.1), (42, 0.0, 0.06), (48, 0.0, 0.06), (32, 0.0, 0.04)))
    b.moves(((43, 0.0, 0.05), (41, 0.0, 0.025)))
    corner = n[31]
    b.crease([corner + (-0.01, 0.07), corner + (-0.05, 0.17), corner + (-0.09, 0.28)], 0.75)
    b.bump(corner + (-0.06, 0.12), (0.05, 0.07), 0.035)
    return b.done()


def _au17(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((38, -0.05), (39, -0.075), (40, -0.085), (46, -0.045), (47, -0.055)))
    bottom = n[40, 1]
    b.crease(
        [(-0.24, bottom + 0.06), (0.0, bottom + 0.11), (0.24, bottom + 0.06)], 0.85, mirror=False
    )
    rng = np.random.default_rng(face.texture_seed + 17)
    centre = np.array([0.0, 0.5 * (bottom + face.chin_y) + 0.05])
    for spot in centre + rng.uniform(-1, 1, (10, 2)) * (0.16, 0.1):
        b.crease([spot, spot + rng.normal(0, 0.035, 2)], 0.7, mirror=False)
    b.bump((0.0, bottom + 0.3), (0.16, 0.11), 0.13, mirror=False)
    return b.done()


def _au23(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((32, 0.06), (33, 0.085), (34, 0.085), (42, -0.06), (41, -0.09), (40, -0.09)))
    b.moves(((31, 0.07, 0.0), (43, 0.04, 0.0), (48, 0.04, 0.0)))
    b.crease(n[[31, 32, 33, 34, 35, 36, 37]], 0.5, mirror=False)
    b.crease(n[[37, 38, 39, 40, 41, 42, 31]], 0.5, mirror=False)
    for x in (-0.2, -0.07):
        b.crease([(x, n[33, 1] + 0.03), (x, n[43, 1] - 0.01)], 0.85)
        b.crease([(x, n[48, 1] + 0.015), (x, n[41, 1] - 0.03)], 0.85)
    return b.done()


def _au24(n: np.ndarray, face: FaceParams) -> AUMotion:
    b = _Builder()
    b.lifts(((32, 0.025), (33, 0.04), (34, 0.04), (42, -0.025), (41, -0.04), (40, -0.04)))
    b.move(31, 0.01, 0.0)
    b.crease(n[[31, 43, 44, 45, 37]], 0.9, mirror=False)
    b.crease([n[31] + (-0.035, -0.04), n[31] + (-0.035, 0.05)], 0.45)
    b.bump((0.0, n[34, 1] - 0.07), (0.22, 0.045), 0.07, mirror=False)
    b.bump((0.0, n[40, 1] + 0.065), (0.24, 0.045), 0.075, mirror=False)
    return b.done()


#: Builder of each AU's motion.
_MOTIONS: dict[int, Callable[[np.ndarray, FaceParams], AUMotion]] = {
    1: _au1,
    2: _au2,
    4: _au4,
    6: _au6,
    7: _au7,
    10: _au10,
    12: _au12,
    14: _au14,
    15: _au15,
    17: _au17,
    23: _au23,
    24: _au24,
}


def au_motions(neutral: np.ndarray, face: FaceParams) -> list[AUMotion]:
    """Every AU's motion for one subject, in :data:`aufacs.core.aus.BP4D_AUS` order."""
    return [_MOTIONS[au](neutral, face) for au in BP4D_AUS]


def deform_landmarks(
    neutral: np.ndarray, motions: list[AUMotion], intensities: np.ndarray, opening: float = 0.0
) -> np.ndarray:
    """The landmarks of an AU state: (49, 2) face units.

    ``intensities``: (12,) in [0, 1], BP4D order. ``opening``: the nuisance mouth opening
    (speech) in face units, at most :data:`MAX_OPENING`; AU24 presses it shut and AU23
    narrows it.
    """
    a = np.asarray(intensities, dtype=np.float64)
    displacement = np.stack([m.displacement for m in motions])  # (12, 49, 2)
    points = neutral + np.tensordot(a, displacement, axes=1)
    au23, au24 = a[BP4D_AUS.index(23)], a[BP4D_AUS.index(24)]
    drop = opening * (1 - au24) * (1 - 0.6 * au23)
    points[list(LOWER_LIP), 1] += drop * np.array([0.85] * 5 + [1.0] * 3)
    return points


def au_marks(motions: list[AUMotion], intensities: np.ndarray) -> Marks:
    """The creases and bumps of an AU state, scaled by the intensities (12,)."""
    creases, bumps = [], []
    for motion, a in zip(motions, np.asarray(intensities, dtype=np.float64), strict=True):
        if a <= 0:
            continue
        creases += [(line, strength * a) for line, strength in motion.creases]
        bumps += [(centre, sigma, height * a) for centre, sigma, height in motion.bumps]
    return Marks(creases, bumps)


def region_polygons(off: np.ndarray, on: np.ndarray, motion: AUMotion) -> list[np.ndarray]:
    """The convex parts of one AU's region in one frame (before the margin): face units.

    ``off`` and ``on``: the frame's landmarks (49, 2) with the AU at intensity 0 and 1 (the
    other AUs and the mouth opening as in the frame).
    """
    moved = set(np.flatnonzero(np.abs(on - off).sum(axis=1) > 1e-9))
    parts = []
    for contour, closed in CONTOURS:
        hit = [k for k, index in enumerate(contour) if index in moved]
        if not hit:
            continue
        size = len(contour)
        near = {(k + d) % size if closed else k + d for k in hit for d in (-1, 0, 1)}
        for run in _runs(sorted(near & set(range(size))), size if closed else None):
            indices = [contour[k] for k in run]
            parts.append(np.concatenate([off[indices], on[indices]]))
    parts += [line for line, _ in motion.creases]
    parts += [
        ellipse_polygon(centre, (2.5 * sigma[0], 2.5 * sigma[1]), points=16)
        for centre, sigma, _ in motion.bumps
    ]
    lids = [i for eye in EYES for i in eye[1:3] if i in moved]
    if lids:
        parts += [np.concatenate([off[lids], on[lids], off[lids] + (0.0, -0.12)])]
    return parts


def _runs(indices: list[int], wrap: int | None) -> list[list[int]]:
    """Maximal runs of consecutive indices (joined across ``wrap`` for closed contours)."""
    runs: list[list[int]] = []
    for k in indices:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    if wrap is not None and len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == wrap - 1:
        runs[0] = runs.pop() + runs[0]
    return runs


def region_masks(
    neutral: np.ndarray,
    motions: list[AUMotion],
    intensities: np.ndarray,
    opening: float,
    canvas: Canvas,
    margin: float = REGION_MARGIN,
) -> np.ndarray:
    """Every AU's region in one frame, on the canvas: (12, H, W) bool.

    AU k's region covers what switching it between off and full intensity changes, the
    other AUs (``intensities`` (12,)) and the mouth ``opening`` staying as in the frame.
    """
    masks = np.zeros((len(motions), *canvas.shape), dtype=np.uint8)
    radius = max(int(round(margin * canvas.ppu)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    for k, motion in enumerate(motions):
        state = np.array(intensities, dtype=np.float64)
        state[k] = 0.0
        off = deform_landmarks(neutral, motions, state, opening)
        state[k] = 1.0
        on = deform_landmarks(neutral, motions, state, opening)
        for part in region_polygons(off, on, motion):
            hull = cv2.convexHull(np.round(canvas.to_px(part)).astype(np.int32))
            cv2.fillConvexPoly(masks[k], hull, 1)
        masks[k] = cv2.dilate(masks[k], kernel)
    return masks.astype(bool)
