"""Drawing primitives of the synthetic face: the canonical canvas, splines, soft shapes.

The synthetic face is drawn upright and frontal on a *canvas* in **face units**: one unit is
the inter-ocular distance (between the eye centres), the origin is the midpoint of the eyes,
``x`` points to the image right and ``y`` down. :class:`Canvas` maps face units to canvas
pixels (``ppu`` pixels per unit); the camera later warps the canvas into the frame with one
affine matrix.

Every shape is drawn anti-aliased into a small patch around it (not the whole canvas), so a
feature only ever changes the pixels near it: that locality is what makes the per-AU ground
truth regions exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

#: Sub-pixel bits of the coordinates given to OpenCV's drawing functions.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Canvas:
    """A raster in face units: ``ppu`` pixels per unit over ``[left, right] x [top, bottom]``.

    Pixel ``(row, col)`` has its centre at face point
    ``(left + col / ppu, top + row / ppu)``.
    """

    ppu: float
    left: float = -1.75
    top: float = -2.0
    right: float = 1.75
    bottom: float = 3.0

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (
            int(np.ceil((self.bottom - self.top) * self.ppu)),
            int(np.ceil((self.right - self.left) * self.ppu)),
        )

    def to_px(self, points: np.ndarray) -> np.ndarray:
        """Face units (..., 2) to canvas pixels (..., 2), float64."""
        return (np.asarray(points, dtype=np.float64) - (self.left, self.top)) * self.ppu

    def to_units_matrix(self) -> np.ndarray:
        """The (3, 3) homogeneous matrix from canvas pixels to face units."""
        return np.array(
            [[1 / self.ppu, 0, self.left], [0, 1 / self.ppu, self.top], [0, 0, 1]], dtype=np.float64
        )

    @cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Face-unit coordinates of every pixel centre: ``(x, y)``, each (H, W) float32."""
        height, width = self.shape
        x = (self.left + np.arange(width, dtype=np.float32) / self.ppu)[None, :]
        y = (self.top + np.arange(height, dtype=np.float32) / self.ppu)[:, None]
        return np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width))

    def window(self, low: np.ndarray, high: np.ndarray, pad: float = 0.0) -> tuple[slice, slice]:
        """Row and column slices of the canvas covering the face-unit box ``low``-``high``.

        ``pad`` widens the box by that many face units on every side; the slices are clipped
        to the canvas (they may be empty).
        """
        height, width = self.shape
        (x0, y0), (x1, y1) = self.to_px(np.asarray(low) - pad), self.to_px(np.asarray(high) + pad)
        cols = slice(max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, width))
        rows = slice(max(int(np.floor(y0)), 0), min(int(np.ceil(y1)) + 1, height))
        return rows, cols


def catmull_rom(points: np.ndarray, *, closed: bool, samples: int = 8) -> np.ndarray:
    """A smooth curve through ``points`` (N, 2): centripetal-free uniform Catmull-Rom.

    Returns (M, 2) float64: ``samples`` points per segment, through every input point. A
    closed curve joins the last point to the first; an open one ends on the end points.
    """
    points = np.asarray(points, dtype=np.float64)
    if closed:
        padded = np.concatenate([points[-1:], points, points[:2]])
    else:
        padded = np.concatenate(
            [2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]]
        )
    p0, p1, p2, p3 = (padded[i : len(padded) - 3 + i] for i in range(4))  # each (S, 2)
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]  # (1, T, 1)
    curve = 0.5 * (
        2 * p1[:, None]
        + (p2 - p0)[:, None] * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3)[:, None] * t**2
        + (3 * p1 - p0 - 3 * p2 + p3)[:, None] * t**3
    ).reshape(-1, 2)
    return curve if closed else np.concatenate([curve, points[-1:]])


def _fixed(canvas: Canvas, points: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Face-unit points as OpenCV fixed-point pixel coordinates of the patch ``rows, cols``."""
    px = canvas.to_px(points) - (cols.start, rows.start)
    return np.round(px * _ONE).astype(np.int32)


def shape_alpha(
    canvas: Canvas,
    polygons: list[np.ndarray],
    *,
    lines: list[np.ndarray] | None = None,
    width: float = 0.0,
    pad: float = 0.02,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Anti-aliased coverage of filled polygons and stroked polylines, in a patch.

    ``polygons`` and ``lines``: lists of (N, 2) face-unit point arrays; ``width``: stroke
    width of the lines in face units. Returns the patch slices of the canvas and the
    coverage (h, w) float32 in [0, 1].
    """
    lines = lines or []
    every = np.concatenate(polygons + lines)
    window = canvas.window(every.min(axis=0), every.max(axis=0), pad + width)
    rows, cols = window
    patch = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=np.uint8)
    if patch.size == 0:
        return window, patch.astype(np.float32)
    if polygons:
        cv2.fillPoly(
            patch, [_fixed(canvas, p, rows, cols) for p in polygons], 255, cv2.LINE_AA, _SHIFT
        )
    if lines:
        thickness = max(int(round(width * canvas.ppu)), 1)
        cv2.polylines(
            patch,
            [_fixed(canvas, p, rows, cols) for p in lines],
            False,
            255,
            thickness,
            cv2.LINE_AA,
            _SHIFT,
        )
    return window, patch.astype(np.float32) / 255.0


def ellipse_polygon(
    centre: np.ndarray, axes: tuple[float, float], angle: float = 0.0, points: int = 32
) -> np.ndarray:
    """An ellipse as a polygon (points, 2): ``axes`` are the half-axes, ``angle`` in radians."""
    t = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    local = np.stack([axes[0] * np.cos(t), axes[1] * np.sin(t)], axis=1)
    c, s = np.cos(angle), np.sin(angle)
    return local @ np.array([[c, s], [-s, c]]) + np.asarray(centre, dtype=np.float64)


def paint(
    rgb: np.ndarray,
    canvas: Canvas,
    colour: np.ndarray,
    polygons: list[np.ndarray],
    *,
    lines: list[np.ndarray] | None = None,
    width: float = 0.0,
    opacity: float = 1.0,
    clip: np.ndarray | None = None,
) -> None:
    """Paint polygons / polylines of one colour onto ``rgb`` (H, W, 3) float32, in place.

    ``colour``: (3,) RGB in [0, 1]; ``clip``: optional (H, W) float32 coverage that limits
    where the paint lands (e.g. an iris clipped by the eye opening).
    """
    (rows, cols), alpha = shape_alpha(canvas, polygons, lines=lines, width=width)
    if alpha.size == 0:
        return
    alpha *= opacity
    if clip is not None:
        alpha *= clip[rows, cols]
    region = rgb[rows, cols]
    region += alpha[..., None] * (np.asarray(colour, dtype=np.float32) - region)


def add_bump(
    field: np.ndarray,
    canvas: Canvas,
    centre: np.ndarray,
    sigma: tuple[float, float],
    amplitude: float,
) -> None:
    """Add a Gaussian bump (``amplitude`` units high, ``sigma`` in units) to ``field`` (H, W).

    The bump is evaluated within 3 sigma of its centre only.
    """
    sx, sy = sigma
    centre = np.asarray(centre, dtype=np.float64)
    rows, cols = canvas.window(centre - (3 * sx, 3 * sy), centre + (3 * sx, 3 * sy))
    x, y = canvas.grid
    dx = (x[rows, cols] - np.float32(centre[0])) / np.float32(sx)
    dy = (y[rows, cols] - np.float32(centre[1])) / np.float32(sy)
    field[rows, cols] += np.float32(amplitude) * np.exp(-0.5 * (dx * dx + dy * dy))


def stroke_layer(
    canvas: Canvas, strokes: list[tuple[np.ndarray, float]], width: float
) -> np.ndarray:
    """Soft lines of varying strength (creases, wrinkles) as one (H, W) float32 layer.

    ``strokes``: (polyline (N, 2) face units, strength in [0, 1]); ``width``: line width in
    face units, also the blur that softens the lines. Where strokes overlap the stronger one
    wins (they are drawn weakest first).
    """
    layer = np.zeros(canvas.shape, dtype=np.uint8)
    everything = slice(0, canvas.shape[0]), slice(0, canvas.shape[1])
    thickness = max(int(round(width * canvas.ppu)), 1)
    for line, strength in sorted(strokes, key=lambda stroke: stroke[1]):
        value = int(round(255 * min(max(strength, 0.0), 1.0)))
        points = _fixed(canvas, line, *everything)
        cv2.polylines(layer, [points], False, value, thickness, cv2.LINE_AA, _SHIFT)
    soft = layer.astype(np.float32) * np.float32(1 / 255)
    sigma = 0.5 * width * canvas.ppu
    return cv2.GaussianBlur(soft, (0, 0), sigma) if sigma > 0.3 else soft
