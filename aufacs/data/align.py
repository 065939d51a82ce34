"""Similarity alignment of a face to a square crop, and the inter-ocular distance.

This is JAA-Net's alignment (``dataset/face_transform.py`` of the official PyTorch code, the
same as the Caffe ``prep/face_transform.cpp``), re-implemented:

1. the eye centres are the means of the 0-based points 19-24 and 25-30;
2. the face is rotated about the origin so that the line between the eye centres is level;
3. five reference points (both eye centres, nose tip 13, mouth corners 31 and 37), rotated,
   give a box of centre ``c`` and half side ``0.5 * box_enlarge * max(width, height)``;
4. the box is scaled to ``size`` pixels, ``c`` going to ``((size - 1) / 2, (size - 1) / 2)``;
5. the image is warped bilinearly with a constant grey (128) border, and the landmarks are
   mapped with the same matrix.

All coordinates are 0-indexed pixels, ``x`` first. Raw landmark lists in the JAA-Net format
are 1-indexed: subtract 1 before calling anything here.
"""

from __future__ import annotations

import cv2
import numpy as np

from aufacs.core.aus import LEFT_EYE, MOUTH_CORNERS, NOSE_TIP, NUM_LANDMARKS, RIGHT_EYE
from aufacs.core.errors import AufacsError

#: JAA-Net's box enlargement: the crop side is 2.9 times the size of the eyes-nose-mouth box.
BOX_ENLARGE = 2.9
#: Side of the aligned crop, pixels.
ALIGNED_SIZE = 200
#: Grey level of the border where the warp samples outside the image.
BORDER_VALUE = 128


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the image-left and image-right eyes.

    ``landmarks``: (..., 49, 2) pixels. Returns two arrays (..., 2): the mean of points 19-24
    and the mean of points 25-30 (0-based).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    return points[..., LEFT_EYE, :].mean(axis=-2), points[..., RIGHT_EYE, :].mean(axis=-2)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Euclidean distance between the eye centres, pixels.

    ``landmarks``: (..., 49, 2) pixels; returns (...) float64.
    """
    left, right = eye_centres(landmarks)
    return np.linalg.norm(right - left, axis=-1)


def biocular(landmarks: np.ndarray) -> np.ndarray:
    """Squared inter-ocular distance, pixels², as in JAA-Net's ``*_biocular.txt``.

    ``landmarks``: (..., 49, 2) aligned landmarks; returns (...) float64. The JAA-Net
    alignment loss divides by this value.
    """
    left, right = eye_centres(landmarks)
    return np.sum((right - left) ** 2, axis=-1)


def alignment_matrix(
    landmarks: np.ndarray, box_enlarge: float = BOX_ENLARGE, size: int = ALIGNED_SIZE
) -> np.ndarray:
    """The affine matrix that maps raw-image pixels to aligned-crop pixels.

    ``landmarks``: (..., 49, 2) 0-indexed pixels in the raw image, finite. Returns
    (..., 2, 3) float64 matrices ``M`` with ``aligned = M[:, :2] @ raw + M[:, 2]``, the form
    ``cv2.warpAffine`` takes. Leading dimensions are broadcast, so a whole table of frames can
    be processed at once.
    """
    points = _checked_landmarks(landmarks)
    left, right = eye_centres(points)
    delta = right - left  # (..., 2)
    length = np.linalg.norm(delta, axis=-1, keepdims=True)
    if np.any(length == 0):
        raise AufacsError("landmarks have both eye centres at the same point; cannot align")
    cos, sin = np.moveaxis(delta / length, -1, 0)  # each (...)
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # (..., 2, 2)

    reference = np.stack(
        [left, right, points[..., NOSE_TIP, :]] + [points[..., i, :] for i in MOUTH_CORNERS],
        axis=-2,
    )  # (..., 5, 2)
    rotated = reference @ np.swapaxes(rotation, -1, -2)  # (..., 5, 2)
    low, high = rotated.min(axis=-2), rotated.max(axis=-2)  # (..., 2)
    centre = 0.5 * (low + high)
    half_size = 0.5 * box_enlarge * (high - low).max(axis=-1, keepdims=True)  # (..., 1)
    scale = (size - 1) / 2.0 / half_size  # (..., 1)

    linear = scale[..., None] * rotation  # (..., 2, 2)
    offset = scale * (half_size - centre)  # (..., 2)
    return np.concatenate([linear, offset[..., None]], axis=-1)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply affine matrices to points.

    ``points``: (..., P, 2) pixels; ``matrix``: (..., 2, 3) (leading dimensions broadcast).
    Returns (..., P, 2) float64.
    """
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + matrix[..., None, :, 2]


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    box_enlarge: float = BOX_ENLARGE,
    size: int = ALIGNED_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Align one face with JAA-Net's similarity transform.

    ``image``: (H, W, 3) uint8 in any channel order (JAA-Net works on OpenCV's BGR);
    ``landmarks``: (49, 2) float, 0-indexed pixels in ``image``. Returns the aligned crop
    (size, size, 3) uint8, in the same channel order, and the aligned landmarks (49, 2)
    float64 in crop pixels.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise AufacsError(
            f"image must be an (H, W, 3) uint8 array, got shape {image.shape} {image.dtype}"
        )
    points = _checked_landmarks(landmarks)
    if points.shape != (NUM_LANDMARKS, 2):
        raise AufacsError(f"landmarks of one face must be (49, 2), got {points.shape}")
    matrix = alignment_matrix(points, box_enlarge, size)
    aligned = cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(BORDER_VALUE,) * 3,
    )
    return aligned, transform_points(points, matrix)


def _checked_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``landmarks`` as float64 (..., 49, 2), or AufacsError if the shape or values are bad."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (NUM_LANDMARKS, 2):
        raise AufacsError(f"landmarks must be (..., 49, 2) pixels, got shape {points.shape}")
    if np.isnan(points).any():
        raise AufacsError("landmarks contain NaN; drop such frames before alignment")
    if not np.isfinite(points).all():
        raise AufacsError("landmarks contain infinite values; drop such frames before alignment")
    return points
