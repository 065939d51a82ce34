"""Tiny BP4D and DISFA trees for tests, written with the package's own writers.

``make_bp4d(root)`` and ``make_disfa(root)`` write a standard small tree and return what
they wrote, so tests can compare what the readers give back. The ``write_*`` functions
below them write one sequence (BP4D) or one subject (DISFA) and let a test add defects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aufacs.core.aus import (
    BP4D_AUS,
    DISFA_AUS,
    LEFT_EYE,
    MOUTH_CORNERS,
    NOSE_TIP,
    RIGHT_EYE,
    to_49,
)
from aufacs.data.bp4d import (
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    write_au_occ_csv,
    write_landmark_mat,
)
from aufacs.data.bp4d_landmarks import _write_mat73_cells
from aufacs.data.disfa import (
    disfa_image_path,
    disfa_landmark_path,
    write_disfa_labels,
    write_disfa_landmarks,
)

IMAGE_SHAPE = (12, 16)  # (height, width) of the written frames


@dataclass(frozen=True)
class Written:
    """What a layout helper wrote for one BP4D sequence or one DISFA subject.

    ``frames`` (T,) label frame numbers; ``labels`` (T, n) AU codes as the table holds them
    (1.0, 0.0, NaN); ``landmarks`` (T, 49, 2) 0-indexed pixels, NaN where none were written;
    ``image_frames`` the frames that got an image file.
    """

    frames: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    image_frames: tuple[int, ...]


def write_image(path: Path) -> None:
    """A small grey frame (JPEG or PNG by the suffix of ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*IMAGE_SHAPE, 3), 128, np.uint8))


def random_landmarks(rng: np.random.Generator, count: int, points: int = 49) -> np.ndarray:
    """(count, points, 2) landmarks, 0-indexed pixels inside a 1040 x 1392 frame."""
    return rng.uniform(0.0, 1000.0, (count, points, 2)).round(2)


def face_points(rng: np.random.Generator) -> np.ndarray:
    """49 plausible landmarks (49, 2) in a 64 x 64 frame: level eyes above a nose and mouth."""
    points = rng.uniform(20, 44, (49, 2))
    points[list(LEFT_EYE)] = rng.normal((24, 26), 1.0, (6, 2))
    points[list(RIGHT_EYE)] = rng.normal((40, 26), 1.0, (6, 2))
    points[NOSE_TIP] = (32, 36)
    points[list(MOUTH_CORNERS)] = ((26, 44), (38, 44))
    return points


def write_bp4d_sequence(
    root: Path,
    subject: str,
    task: str,
    frames: np.ndarray,
    labels: np.ndarray | None,
    landmarks: np.ndarray | None,
    *,
    padded: bool = True,
    image_frames: tuple[int, ...] | None = None,
) -> None:
    """One BP4D sequence: images for ``image_frames`` (default ``frames``), the AU CSV when
    ``labels`` (T, 12; NaN = code 9) is given, the ``.mat`` when ``landmarks`` (T, P, 2,
    NaN = empty entry) is given."""
    for frame in frames if image_frames is None else image_frames:
        write_image(bp4d_image_path(root, subject, task, int(frame), padded=padded))
    if labels is not None:
        write_au_occ_csv(bp4d_label_path(root, subject, task), frames, labels, BP4D_AUS)
    if landmarks is not None:
        write_landmark_mat(bp4d_landmark_path(root, subject, task), frames, landmarks)


def insert_line(path: Path, line: int, text: str) -> None:
    """Make ``text`` line ``line`` (1-based) of the text file at ``path``."""
    lines = path.read_text().splitlines()
    lines.insert(line - 1, text)
    path.write_text("\n".join(lines) + "\n")


def set_field(path: Path, line: int, column: str, value: str) -> None:
    """Set the field under header ``column`` on line ``line`` (1-based) of a CSV file."""
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[lines[0].split(",").index(column)] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def write_landmark_entries(path: Path, entries: list[np.ndarray | None]) -> None:
    """A MATLAB v7.3 ``2DFeatures`` file whose entry i (frame i + 1) is ``entries[i]``:
    (P, 2) 0-indexed points, any P, or None for an empty entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mat73_cells(path, [None if e is None else e + 1.0 for e in entries])


def make_bp4d(root: Path, seed: int = 0) -> dict[tuple[str, str], Written]:
    """A tree of three sequences, 5 labelled frames each:

    - ``F001/T1``: frames 1-5, zero-padded names; AU1 of frame 3 not coded (9);
      frame 4 has no landmarks;
    - ``F001/T2``: frames 11-15, unpadded names;
    - ``M001/T1``: frames 1-5 labelled, images for 1-4 and 6 (frame 5 has labels but no
      image, frame 6 an image but no labels).
    """
    rng = np.random.default_rng(seed)
    plan = {
        ("F001", "T1"): (np.arange(1, 6), True, (1, 2, 3, 4, 5)),
        ("F001", "T2"): (np.arange(11, 16), False, (11, 12, 13, 14, 15)),
        ("M001", "T1"): (np.arange(1, 6), True, (1, 2, 3, 4, 6)),
    }
    written = {}
    for (subject, task), (frames, padded, image_frames) in plan.items():
        labels = rng.integers(0, 2, (len(frames), len(BP4D_AUS))).astype(np.float64)
        landmarks = random_landmarks(rng, len(frames))
        if (subject, task) == ("F001", "T1"):
            labels[2, 0] = np.nan
            landmarks[3] = np.nan
        write_bp4d_sequence(
            root,
            subject,
            task,
            frames,
            labels,
            landmarks,
            padded=padded,
            image_frames=image_frames,
        )
        written[subject, task] = Written(frames, labels, landmarks, image_frames)
    return written


def write_disfa_subject(
    root: Path,
    subject: str,
    intensities: np.ndarray,
    landmarks: np.ndarray | None,
    *,
    image_frames: tuple[int, ...] | None = None,
    one_based_names: bool = False,
    suffix: str = ".png",
) -> None:
    """One DISFA subject: ``intensities`` (T, 8) 0-5 in DISFA AU order, images for
    ``image_frames`` (default every frame 0..T-1), one 66-point ``.mat`` per frame whose
    ``landmarks`` (T, 66, 2) are finite, named ``SNxxx_NNNN_lm.mat`` or, with
    ``one_based_names``, ``l0NNNN_lm.mat``."""
    write_disfa_labels(root, subject, intensities, DISFA_AUS)
    count = len(intensities)
    for frame in range(count) if image_frames is None else image_frames:
        write_image(disfa_image_path(root, subject, frame, suffix=suffix))
    if landmarks is None:
        return
    for frame, points in enumerate(landmarks):
        if np.isfinite(points).all():
            path = disfa_landmark_path(root, subject, frame, one_based_name=one_based_names)
            write_disfa_landmarks(path, points)


def make_disfa(root: Path, seed: int = 0) -> dict[str, Written]:
    """Two subjects of 5 frames:

    - ``SN001``: ``SNxxx_NNNN_lm.mat`` landmark names, frame 2 without landmarks;
    - ``SN002``: ``l0NNNN_lm.mat`` names, images only for frames 0-3 plus 6 (frame 4 has
      labels but no image, frame 6 an image but no labels).

    ``Written.labels`` holds the occurrence (intensity >= 2); ``landmarks`` the 49 points.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for subject, one_based, image_frames in (
        ("SN001", False, (0, 1, 2, 3, 4)),
        ("SN002", True, (0, 1, 2, 3, 6)),
    ):
        intensities = rng.integers(0, 6, (5, len(DISFA_AUS)))
        landmarks = random_landmarks(rng, 5, points=66)
        if subject == "SN001":
            landmarks[2] = np.nan
        write_disfa_subject(
            root,
            subject,
            intensities,
            landmarks,
            image_frames=image_frames,
            one_based_names=one_based,
        )
        occurrence = (intensities >= 2).astype(np.float64)
        written[subject] = Written(np.arange(5), occurrence, to_49(landmarks), image_frames)
    return written
