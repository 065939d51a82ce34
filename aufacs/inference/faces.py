"""Face boxes and 49-point landmarks for users' own photos and videos, offline.

Two detection backends, neither of which downloads anything:

``"dlib"`` (the optional extra, ``pip install "aufacs[landmarks]"``)
    dlib's HOG frontal-face detector, then the 68-point shape predictor that the
    ``face-recognition-models`` package ships, mapped to the 49-point scheme with
    :data:`aufacs.core.aus.FROM_68`. On the two real BP4D frames of the shared fixtures its 49
    points
    are a mean 5.2 % and 5.8 % of the inter-ocular distance from the ground truth.
``"haar"`` (always there)
    OpenCV's frontal-face Haar cascade, as shipped by ``opencv-python-headless`` 4.x (5.x ships
    no cascade files). Boxes only: :func:`box_to_initial_landmarks` places a mean shape in a box
    so that :func:`aufacs.data.align.align_face` can make a first crop, from which a landmark
    model can predict the real points.

Licence of the landmark model: ``shape_predictor_68_face_landmarks.dat`` was trained on the
iBUG 300-W data set, whose licence excludes commercial use, so the model cannot be used in a
commercial product (dlib-models README), although ``face-recognition-models`` labels the package
CC0 / MIT. dlib itself is under the Boost licence, OpenCV and its cascades under Apache-2.0.

Coordinates are 0-indexed pixels of the image given, ``x`` first. A box ``(x0, y0, x1, y1)``
gives the pixel edges: the face covers ``x0 <= x < x1`` and ``y0 <= y < y1``. Detection runs
on a :func:`working_copy` whose longer side is at most :data:`MAX_SIDE` pixels, so that a huge
photo costs no more than a large one; :func:`rescale_points` and :func:`edges_to_source` map
coordinates between the two.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from aufacs.core.aus import to_49
from aufacs.core.errors import AufacsError

BACKENDS = ("auto", "dlib", "haar")
#: The sentence a user sees when the dlib backend is asked for but not installed.
INSTALL_HINT = (
    "the dlib face landmarks are an optional extra; "
    'install them with pip install "aufacs[landmarks]"'
)
#: Longest side, pixels, of the working copy that faces are searched (and aligned) on.
MAX_SIDE = 1600

#: dlib HOG detector: no upsampling (upsampling once found a false face on a space suit).
DLIB_UPSAMPLE = 0
#: Haar cascade settings: scale step, neighbours needed, smallest face side (pixels).
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
HAAR_MIN_SIZE = 30
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
#: Per detector, the default minimum detection score (scores are on each detector's own scale).
#: dlib: real faces score 1.1-2.2 (the astronaut, two astronauts side by side, the two BP4D
#: fixture frames) while the astronaut's mission patch scores 0.045-0.063. Haar: the same real
#: faces score 5.0-7.1.
MIN_SCORE = {"dlib": 0.3, "haar": 1.0}

#: Mean 49-point shape in JAA-Net's 200 x 200 aligned frame, 0-indexed pixels: the mean of the
#: two rows of ``bp4d_sample/aligned_landmarks.txt`` in the shared fixtures (BP4D F001/T1 frames
#: 2440 and 2441, aligned by JAA-Net's official code), rounded to 0.1 px.
MEAN_SHAPE_49 = np.array(
    [
        # brows 0-9
        *[(38.8, 46.4), (49.3, 40.2), (60.9, 39.1), (72.4, 41.8), (83.4, 46.1)],
        *[(114.6, 44.7), (125.0, 40.3), (136.0, 37.5), (147.9, 37.4), (157.5, 44.3)],
        # nose bridge 10-13, nose base 14-18
        *[(100.4, 62.2), (101.0, 76.2), (101.6, 90.0), (101.9, 104.2)],
        *[(84.6, 110.2), (92.6, 111.7), (100.9, 112.8), (108.2, 111.7), (115.5, 110.4)],
        # eyes 19-24 and 25-30
        *[(52.8, 64.7), (62.0, 59.4), (72.0, 60.0), (79.2, 67.8), (70.3, 69.7), (61.1, 69.6)],
        *[(120.2, 67.1), (127.8, 60.1), (137.2, 59.6), (145.6, 64.9), (137.4, 69.7), (128.5, 69.9)],
        # outer lip 31-42
        *[(67.9, 132.0), (77.0, 125.1), (88.7, 121.7), (100.7, 122.4)],
        *[(112.2, 122.2), (122.3, 126.1), (129.4, 133.8), (123.3, 146.0)],
        *[(113.0, 153.3), (100.2, 154.8), (86.8, 151.8), (75.5, 144.3)],
        # inner lip 43-48
        *[(86.6, 130.6), (100.4, 131.5), (112.9, 130.9)],
        *[(113.0, 138.3), (100.5, 140.1), (86.4, 137.7)],
    ]
)
MEAN_SHAPE_49.setflags(write=False)
#: Where the Haar cascade's box falls in that aligned frame on the same two BP4D frames: centre
#: x, centre y and side, pixels (the two frames give sides 165.3 and 159.6).
HAAR_BOX_IN_ALIGNED = (98.8, 88.7, 162.5)


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``box``: (x0, y0, x1, y1) pixel edges in the image given to :func:`detect_faces`;
    ``landmarks``: (49, 2) float64 0-indexed pixels, or None when the backend gives none;
    ``score``: the detector's confidence, on a scale of its own per backend (dlib's SVM margin,
    the Haar cascade's last-stage weight); ``backend``: ``"dlib"`` or ``"haar"``.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    score: float
    backend: str

    @property
    def area(self) -> float:
        """Box area, pixels²."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


def landmarks_available() -> bool:
    """Whether the optional extra (dlib and face-recognition-models' 68-point model) is there."""
    path = _predictor_path()
    return importlib.util.find_spec("dlib") is not None and path is not None and path.is_file()


def detect_faces(
    image_rgb: np.ndarray,
    *,
    backend: str = "auto",
    max_side: int = MAX_SIDE,
    min_score: float | None = None,
) -> list[Face]:
    """Every face in an image scoring at least ``min_score``, largest box first; an empty list
    when there is none.

    ``image_rgb``: (H, W, 3) uint8 RGB. ``backend``: ``"dlib"`` (boxes and 49 landmarks),
    ``"haar"`` (boxes only) or ``"auto"`` (see :func:`resolve_backend`). ``min_score``: None
    for the detector's default (:data:`MIN_SCORE`). Detection runs on :func:`working_copy`
    ``(image_rgb, max_side)`` and the boxes are mapped back; dlib's landmarks are then placed
    on the full-size image.
    """
    image = _checked_image(image_rgb)
    faces = detect_boxes(image, backend=backend, max_side=max_side, min_score=min_score)
    return add_landmarks(image, faces)


def detect_boxes(
    image_rgb: np.ndarray,
    *,
    backend: str = "auto",
    max_side: int = MAX_SIDE,
    min_score: float | None = None,
) -> list[Face]:
    """:func:`detect_faces` without the landmarks: every face box scoring at least
    ``min_score``, largest first, each with ``landmarks`` None."""
    image = _checked_image(image_rgb)
    chosen = resolve_backend(backend)
    small, scale = working_copy(image, max_side)
    floor = min_score_of(chosen, min_score)
    if chosen == "dlib":
        boxes, scores = _dlib_boxes(small, scale)
        faces = [Face(b, None, s, "dlib") for b, s in zip(boxes, scores, strict=True)]
    else:
        faces = _detect_haar(small, scale)
    faces = [face for face in faces if face.score >= floor]
    return sorted(faces, key=lambda face: face.area, reverse=True)


def add_landmarks(image_rgb: np.ndarray, faces: list[Face]) -> list[Face]:
    """``faces`` of ``image_rgb`` with dlib's 49 landmarks (:func:`dlib_landmarks`) for those
    the dlib detector found; Haar faces unchanged."""
    return [
        Face(face.box, dlib_landmarks(image_rgb, face.box), face.score, face.backend)
        if face.backend == "dlib" and face.landmarks is None
        else face
        for face in faces
    ]


def min_score_of(backend: str, min_score: float | None) -> float:
    """The minimum detection score in force: ``min_score``, or ``backend``'s default
    (:data:`MIN_SCORE`) when None."""
    return MIN_SCORE[backend] if min_score is None else float(min_score)


def resolve_backend(backend: str) -> str:
    """The detector that ``backend`` stands for, ``"dlib"`` or ``"haar"``: ``"auto"`` is dlib
    when the optional extra is installed (:func:`landmarks_available`), else haar. Raises
    AufacsError for an unknown backend, or ``"dlib"`` without the extra (:data:`INSTALL_HINT`).
    """
    if backend not in BACKENDS:
        raise AufacsError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "dlib" if landmarks_available() else "haar"
    if backend == "dlib" and not landmarks_available():
        raise AufacsError(INSTALL_HINT)
    return backend


def working_copy(image_rgb: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """``image_rgb`` (H, W, 3) uint8 RGB shrunk (area interpolation) so that its longer side
    is at most ``max_side`` pixels, and the (x, y) factors: working pixels per source pixel
    (ones, and the image itself, when it is small enough). AufacsError for anything but a
    non-empty (H, W, 3) uint8 array, or a ``max_side`` that is not a positive whole number."""
    image = _checked_image(image_rgb)
    if not isinstance(max_side, int) or max_side < 1:
        raise AufacsError(f"max_side must be a positive number of pixels, got {max_side!r}")
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image, np.ones(2)
    size = (max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, np.array([size[0] / width, size[1] / height])


def rescale_points(points: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) in an image resized by ``factor`` (x, y): pixel centres
    ``p`` map to ``(p + 0.5) * factor - 0.5``. Returns float64."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * factor - 0.5


def edges_to_source(boxes: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Boxes (..., 4) ``x0 y0 x1 y1``, pixel edges of a :func:`working_copy` made with
    ``factor`` (x, y), as pixel edges of its source image."""
    return np.asarray(boxes, dtype=np.float64) / np.tile(factor, 2)


def box_to_initial_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    """A first guess at the 49 landmarks of a face from its Haar box.

    ``box``: (x0, y0, x1, y1) pixel edges, as in :attr:`Face.box`. Returns (49, 2) float64
    0-indexed pixels: :data:`MEAN_SHAPE_49` scaled and moved so that
    :data:`HAAR_BOX_IN_ALIGNED` lands on ``box`` (no rotation). Good enough for
    :func:`aufacs.data.align.align_face` to make a first crop, not for measuring anything.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise AufacsError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
    centre_x, centre_y, side = HAAR_BOX_IN_ALIGNED
    scale = 0.5 * ((x1 - x0) + (y1 - y0)) / side
    box_centre = np.array([0.5 * (x0 + x1) - 0.5, 0.5 * (y0 + y1) - 0.5])
    return (MEAN_SHAPE_49 - (centre_x, centre_y)) * scale + box_centre


def _checked_image(image_rgb: np.ndarray) -> np.ndarray:
    """``image_rgb`` as a C-contiguous (H, W, 3) uint8 array, or AufacsError."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise AufacsError(
            f"image must be an (H, W, 3) uint8 RGB array, got shape {image.shape} {image.dtype}"
        )
    return np.ascontiguousarray(image)


def _predictor_path() -> Path | None:
    """The 68-point model file inside face-recognition-models; None without the package.

    The package is located, not imported: its ``__init__`` needs ``pkg_resources``, which
    recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "models" / "shape_predictor_68_face_landmarks.dat"


@cache
def _dlib_models() -> tuple[object, object]:
    """dlib's HOG face detector and the 68-point shape predictor, loaded once (about 1 s)."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_predictor_path()))


def _dlib_boxes(small: np.ndarray, scale: np.ndarray) -> tuple[list[tuple], list[float]]:
    """dlib's HOG face boxes on ``small`` as pixel edges of the source image, and their
    scores."""
    detector, _ = _dlib_models()
    rects, scores, _ = detector.run(small, DLIB_UPSAMPLE)
    edges = np.array(
        [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], dtype=np.float64
    ).reshape(-1, 4)
    boxes = edges_to_source(edges, scale)
    return [tuple(box.tolist()) for box in boxes], [float(score) for score in scores]


def dlib_landmarks(image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 68-point shape predictor in ``box`` (pixel edges) of ``image_rgb``, as the
    49-point scheme: (49, 2) float64 pixels. Needs the landmarks extra."""
    import dlib

    _, predictor = _dlib_models()
    x0, y0, x1, y1 = np.round(np.asarray(box, dtype=np.float64)).astype(int)
    shape = predictor(image_rgb, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
    return to_49(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64))


@cache
def _haar_cascade() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face cascade, or AufacsError when this OpenCV ships none."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_CASCADE))
    if cascade.empty():
        raise AufacsError(
            f"OpenCV {cv2.__version__} ships no {HAAR_CASCADE}; install "
            '"opencv-python-headless>=4.8,<5", whose wheels include the Haar cascades'
        )
    return cascade


def _detect_haar(small: np.ndarray, scale: np.ndarray) -> list[Face]:
    """Face boxes (no landmarks) found by the Haar cascade on ``small``."""
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    rects, _, weights = _haar_cascade().detectMultiScale3(
        gray,
        scaleFactor=HAAR_SCALE_FACTOR,
        minNeighbors=HAAR_MIN_NEIGHBORS,
        minSize=(HAAR_MIN_SIZE, HAAR_MIN_SIZE),
        outputRejectLevels=True,
    )
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    edges = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    boxes = edges_to_source(edges, scale)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    return [
        Face(tuple(box.tolist()), None, float(weight), "haar")
        for box, weight in zip(boxes, weights, strict=True)
    ]
