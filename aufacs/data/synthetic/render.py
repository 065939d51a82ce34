"""The camera: one subject's face placed in a BP4D-like frame with pose, light, blur and noise.

A frame is the subject's canvas (drawn by
:class:`~aufacs.data.synthetic.face_drawing.FaceModel`) warped into the frame by the *pose
matrix* (canvas pixels to frame pixels: roll about the neck, a yaw-like horizontal squash,
scale and shift), over a dark studio background and a shirt, then lit, blurred and given
sensor noise. Frames are BP4D's shape (width : height = 1040 : 1392) at any size; the face
fills a similar fraction (the inter-ocular distance is :data:`IOD_FRACTION` of the frame
width, as in BP4D).

Everything a frame depends on is in its :class:`FrameParams`, so any frame can be drawn again,
with some AUs switched off, or its AU regions mapped (:meth:`SubjectRenderer.region_masks`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from aufacs.data.synthetic.aus_motion import au_marks, au_motions, deform_landmarks, region_masks
from aufacs.data.synthetic.face import FaceParams
from aufacs.data.synthetic.face_drawing import FaceModel, light_vector

#: Inter-ocular distance / frame width in real BP4D frames (257 px of 1040).
IOD_FRACTION = 0.247
#: Where the midpoint of the eyes sits in a frame at rest, as fractions of (width, height).
EYES_AT = (0.47, 0.56)
#: The head rolls about this face point (the base of the neck), face units.
PIVOT = (0.0, 2.2)
#: Extra margin of the noise field, pixels: each frame takes a shifted window of it.
_NOISE_MARGIN = 32


@dataclass(frozen=True)
class FrameParams:
    """Everything that makes one frame of a subject.

    ``intensities``: the 12 AU intensities in [0, 1] (BP4D order; 0 = absent).
    ``opening``: mouth opening of speech, face units. ``gaze``: iris offset (x, y) in iris
    radii. ``roll``, ``yaw``: head rotation in radians (yaw acts as a horizontal squash by
    ``cos(yaw)``). ``scale``: face size relative to the frame's nominal one. ``shift``: head
    offset (x, y) as fractions of the frame width and height. ``light``: (azimuth, elevation)
    of the light in radians. ``gain``: (r, g, b) exposure multipliers. ``blur``: Gaussian blur
    sigma in frame pixels. ``noise``: sensor noise sigma in grey levels (0-255).
    ``noise_seed``: picks the noise pattern.
    """

    intensities: tuple[float, ...]
    opening: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)
    roll: float = 0.0
    yaw: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    light: tuple[float, float] = (0.0, 0.4)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.5
    noise: float = 2.0
    noise_seed: int = 0

    def with_intensities(self, intensities: np.ndarray) -> FrameParams:
        """The same frame with other AU intensities (12,)."""
        return replace(self, intensities=tuple(float(a) for a in intensities))


@dataclass(frozen=True)
class RenderedFrame:
    """A drawn frame: ``image`` (H, W, 3) uint8 RGB and ``landmarks`` (49, 2) float64,
    0-indexed frame pixels."""

    image: np.ndarray
    landmarks: np.ndarray


class SubjectRenderer:
    """Draws frames of one subject at ``frame_size`` = (width, height) pixels."""

    def __init__(self, face: FaceParams, frame_size: tuple[int, int]) -> None:
        width, height = frame_size
        self.frame_size = (int(width), int(height))
        self.ppu = IOD_FRACTION * width  # frame pixels per face unit at scale 1
        self.model = FaceModel(face, max(self.ppu, 8.0))
        self.motions = au_motions(self.model.neutral, face)
        self._background = self._studio(face)
        rng = np.random.default_rng(face.texture_seed + 1)
        shape = (height + _NOISE_MARGIN, width + _NOISE_MARGIN, 3)
        self._noise = rng.standard_normal(shape, dtype=np.float32)

    @property
    def face(self) -> FaceParams:
        return self.model.face

    def _studio(self, face: FaceParams) -> np.ndarray:
        """The background wall: the subject's colour, darker towards the floor (H, W, 3)."""
        width, height = self.frame_size
        y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
        fall = (1.15 - 0.35 * y) * (1 - 0.25 * x * x)
        return np.float32(face.background) * fall

    def pose_matrix(self, params: FrameParams) -> np.ndarray:
        """The (2, 3) affine matrix from canvas pixels to frame pixels for ``params``."""
        width, height = self.frame_size
        to_units = self.model.canvas.to_units_matrix()
        squash = np.diag([np.cos(params.yaw), 1.0, 1.0])
        c, s = np.cos(params.roll), np.sin(params.roll)
        pivot = np.array(PIVOT)
        rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        rotate[:2, 2] = pivot - rotate[:2, :2] @ pivot
        scale = self.ppu * params.scale
        centre = (
            width * (EYES_AT[0] + params.shift[0]),
            height * (EYES_AT[1] + params.shift[1]),
        )
        place = np.array([[scale, 0, centre[0]], [0, scale, centre[1]], [0, 0, 1.0]])
        return (place @ rotate @ squash @ to_units)[:2]

    def landmarks(self, params: FrameParams) -> np.ndarray:
        """The frame's 49 landmarks, (49, 2) float64, 0-indexed frame pixels."""
        points = deform_landmarks(
            self.model.neutral, self.motions, params.intensities, params.opening
        )
        return self._to_frame(points, self.pose_matrix(params))

    def _to_frame(self, points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Face-unit points (49, 2) to frame pixels with the pose ``matrix`` (2, 3)."""
        return self.model.canvas.to_px(points) @ matrix[:, :2].T + matrix[:, 2]

    def render(self, params: FrameParams) -> RenderedFrame:
        """Draw one frame."""
        width, height = self.frame_size
        model = self.model
        points = deform_landmarks(model.neutral, self.motions, params.intensities, params.opening)
        marks = au_marks(self.motions, params.intensities)
        rgba = model.draw(points, marks, light_vector(*params.light), params.gaze)
        matrix = self.pose_matrix(params)
        layers = cv2.warpAffine(
            rgba,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        frame = layers[..., :3]
        frame += self._background * (1 - layers[..., 3:])
        self._draw_shirt(frame, params)
        frame *= np.float32(params.gain) * np.float32(255)
        if params.blur > 0.05:
            frame = cv2.GaussianBlur(frame, (0, 0), params.blur)
        rng = np.random.default_rng(params.noise_seed)
        dy, dx = rng.integers(0, _NOISE_MARGIN, 2)
        frame += self._noise[dy : dy + height, dx : dx + width] * np.float32(params.noise)
        image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        return RenderedFrame(image, self._to_frame(points, matrix))

    def _draw_shirt(self, frame: np.ndarray, params: FrameParams) -> None:
        """Shoulders and a round neckline below the neck, in place (they do not roll)."""
        width, height = self.frame_size
        scale = self.ppu * params.scale
        x0 = width * (EYES_AT[0] + params.shift[0])
        y0 = height * (EYES_AT[1] + params.shift[1]) + scale * PIVOT[1]
        neck = 0.55 * self.face.jaw_width + 0.2
        t = np.linspace(np.pi, 0.0, 12)
        collar = np.stack([neck * np.cos(t), 0.1 + 0.25 * np.sin(t)], 1)
        shoulders = np.array(
            [[2.6, 0.35], [3.5, 1.2], [3.5, 4.0], [-3.5, 4.0], [-3.5, 1.2], [-2.6, 0.35]]
        )
        outline = np.concatenate([collar, shoulders]) * scale + (x0, y0)
        top = int(np.clip(np.floor(outline[:, 1].min()), 0, height))
        if top >= height:
            return
        mask = np.zeros((height - top, width), dtype=np.uint8)
        points = np.round((outline - (0, top)) * 16).astype(np.int32)
        cv2.fillPoly(mask, [points], 255, cv2.LINE_AA, 4)
        alpha = mask.astype(np.float32)[..., None] * np.float32(1 / 255)
        below = frame[top:]
        below += alpha * (np.float32(self.face.shirt) * 0.8 - below)

    def region_masks(
        self,
        params: FrameParams,
        then: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Every AU's ground-truth region in this frame: (12, H, W) bool.

        In frame pixels by default; ``then`` (2, 3) maps frame pixels further (e.g. the
        alignment matrix) into an image of ``size`` = (width, height). AU k's region is
        where switching it between off and full intensity changes the frame, the other AUs
        as they are (see :func:`~aufacs.data.synthetic.aus_motion.region_masks`).
        """
        regions = region_masks(
            self.model.neutral, self.motions, params.intensities, params.opening, self.model.canvas
        )
        matrix = self.pose_matrix(params)
        if then is not None:
            matrix = (_homogeneous(then) @ _homogeneous(matrix))[:2]
        return warp_masks(regions, matrix, size or self.frame_size)


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A (2, 3) affine matrix as (3, 3)."""
    return np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])


def warp_masks(masks: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Map boolean masks (K, H, W) with an affine (2, 3) matrix to ``size`` = (width, height).

    Returns (K, height, width) bool: a target pixel is set when at least half of its
    bilinear sample falls inside the source mask.
    """
    width, height = size
    stack = np.moveaxis(masks.astype(np.float32), 0, -1)
    warped = cv2.warpAffine(
        stack, np.asarray(matrix, dtype=np.float64), (width, height), flags=cv2.INTER_LINEAR
    )
    return np.moveaxis(warped.reshape(height, width, -1) >= 0.5, -1, 0)
