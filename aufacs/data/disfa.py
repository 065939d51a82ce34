"""Raw DISFA on disk -> one :class:`~aufacs.data.table.FrameTable`, and writers for the
same layout (used by the tests).

The layout, relative to the root folder::

    ActionUnit_Labels/SNxxx/SNxxx_au{N}.txt     one file per AU, one "frame,intensity" line
                                                per video frame, intensity 0-5
    img/SNxxx/<frame>.png                       left-camera frames, extracted by the user
    Landmark_Points/SNxxx/tmp_frame_lm/*.mat    66 tracked points per frame, variable pts

DISFA ships videos, not frames: extract the left camera
(``Videos_LeftCamera/LeftVideoSNxxx_comp.avi``) to ``img/SNxxx/<frame>.png`` (``.jpg``
works too) with **0-based** frame names, as ME-GraphAU (``SN001/0.png``) and JAA-Net
(``DISFA/SN002/0.jpg``) name them. Images directly under ``<root>/SNxxx/`` are accepted.

Frame numbers in the table are these 0-based indices: line t of a label file (counted from
0) is frame t, as ME-GraphAU reads them; the files' own frame column (believed to count
from 1; not checked against a copy) must be an integer but is not used. An AU is present
when its intensity is >= 2 (ME-GraphAU, JAA-Net). ``task`` is
``""`` and ``sex`` ``"?"`` (no per-subject source found).

Landmark files are named ``SNxxx_NNNN_lm.mat`` with a 0-based frame NNNN, or
``l0NNNN_lm.mat`` with a 1-based one; both are read. ``pts`` is 66 x 2 (x, y) in
1-indexed MATLAB pixels; the table keeps the 49 non-jaw points, 0-indexed
(:func:`aufacs.core.aus.to_49`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from tqdm.auto import tqdm

from aufacs.core.aus import DISFA, DISFA_AUS, NUM_LANDMARKS, to_49
from aufacs.core.errors import AufacsError, reading_file
from aufacs.data.reading import (
    MATLAB_OFFSET,
    defect_row,
    frame_images,
    frame_table,
    images_folder,
    join_frames,
    landmark_folder,
    load_mat5,
    open_root,
    subfolders,
)
from aufacs.data.table import FrameTable

#: Sub-folders of a DISFA copy, relative to its root.
LABELS_DIR = "ActionUnit_Labels"
IMAGES_DIR = "img"
LANDMARKS_DIR = "Landmark_Points"
LANDMARK_SUBDIR = "tmp_frame_lm"

#: Intensity from which an AU counts as present.
OCCURRENCE_THRESHOLD = 2
MAX_INTENSITY = 5

SUBJECT_PATTERN = re.compile(r"^SN\d{3}$")
ZERO_BASED_LANDMARK = re.compile(r"^SN\d{3}_(?P<frame>\d+)_lm\.mat$")
ONE_BASED_LANDMARK = re.compile(r"^l0(?P<frame>\d+)_lm\.mat$")


# --------------------------------------------------------------------------- paths


def disfa_label_path(root: Path | str, subject: str, au: int) -> Path:
    """``<root>/ActionUnit_Labels/<subject>/<subject>_au<au>.txt``."""
    return Path(root) / LABELS_DIR / subject / f"{subject}_au{au}.txt"


def disfa_image_path(root: Path | str, subject: str, frame: int, suffix: str = ".png") -> Path:
    """``<root>/img/<subject>/<frame><suffix>``, ``frame`` 0-based."""
    return Path(root) / IMAGES_DIR / subject / f"{frame}{suffix}"


def disfa_landmark_path(
    root: Path | str, subject: str, frame: int, *, one_based_name: bool = False
) -> Path:
    """The landmark file of 0-based ``frame``: ``SNxxx_NNNN_lm.mat`` (NNNN = frame) or,
    with ``one_based_name``, ``l0NNNN_lm.mat`` (NNNN = frame + 1)."""
    name = f"l0{frame + 1:04d}_lm.mat" if one_based_name else f"{subject}_{frame:04d}_lm.mat"
    return Path(root) / LANDMARKS_DIR / subject / LANDMARK_SUBDIR / name


# --------------------------------------------------------------------------- writers


def write_disfa_labels(
    root: Path | str, subject: str, intensities: np.ndarray, aus: Sequence[int] = DISFA_AUS
) -> None:
    """One label file per AU of ``aus``: ``intensities`` (T, len(aus)) integers 0-5, line t
    written as ``<t + 1>,<intensity>``."""
    intensities = np.asarray(intensities, dtype=np.int64).reshape(-1, len(aus))
    numbers = np.arange(1, len(intensities) + 1)
    for column, au in enumerate(aus):
        path = disfa_label_path(root, subject, au)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = np.column_stack([numbers, intensities[:, column]])
        np.savetxt(path, lines, fmt="%d", delimiter=",")


def write_disfa_landmarks(path: Path | str, landmarks: np.ndarray) -> None:
    """One landmark file: ``landmarks`` (P, 2) 0-indexed pixels, stored 1-indexed as ``pts``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    points = np.asarray(landmarks, dtype=np.float64) + MATLAB_OFFSET
    scipy.io.savemat(path, {"pts": points})


# --------------------------------------------------------------------------- readers


def read_disfa_au_file(path: Path | str) -> np.ndarray:
    """Intensities of one label file, (T,) int64, line order. Raises :class:`AufacsError`
    unless every line is ``frame,intensity`` with an integer frame and an intensity 0-5."""
    path = Path(path)
    with reading_file(path, "'frame,intensity' lines"):
        raw = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    if raw.shape[1] != 2:
        raise AufacsError(f"{path} has {raw.shape[1]} columns; expected 'frame,intensity'")
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    frames, intensity = values[:, 0], values[:, 1]
    valid = (frames == np.round(frames)) & np.isin(intensity, np.arange(MAX_INTENSITY + 1))
    if not valid.all():
        line = int(np.flatnonzero(~valid)[0]) + 1
        raise AufacsError(
            f"{path} line {line}: expected 'frame,intensity' with an integer frame and an "
            f"intensity 0-{MAX_INTENSITY}"
        )
    return intensity.astype(np.int64)


def read_disfa(root: Path | str, *, progress: bool = False) -> FrameTable:
    """Read a DISFA copy into a frame table (see :mod:`aufacs.data.table` for the columns).

    One row per frame found as an image or as a label line (outer join: ``has_image`` /
    ``has_labels``); frames are 0-based; AU columns are the occurrence (intensity >= 2) of
    DISFA's 8 AUs; landmarks the 49 non-jaw points of the 66, 0-indexed, NaN where no file
    exists. A label or landmark file that cannot be used becomes one row of ``problems``
    (the subject's AU is then NaN); a missing root, label folder or image folder raises
    :class:`AufacsError`. ``progress`` shows a tqdm bar over the subjects.
    """
    root, labels_dir, images_dir = disfa_folders(root)
    problems: list[dict] = []
    labels = pd.concat(
        [
            _read_subject_labels(labels_dir, subject.name, problems)
            for subject in subfolders(labels_dir, SUBJECT_PATTERN)
        ]
        or [pd.DataFrame(columns=["subject", "task", "frame", *DISFA.columns])],
        ignore_index=True,
    )
    images = pd.DataFrame(
        [
            (subject.name, "", int(stem), path)
            for subject in subfolders(images_dir, SUBJECT_PATTERN)
            for stem, path in frame_images(subject.path)
        ],
        columns=["subject", "task", "frame", "image_path"],
    )
    suffixes = dict(zip(images["subject"], images["image_path"].map(_suffix), strict=True))

    def expected_path(subject: str, task: str, frame: int) -> str:
        return str(images_dir / subject / f"{frame}{suffixes.get(subject, '.png')}")

    frames = join_frames(images, labels, DISFA, expected_path)
    landmarks = _read_landmarks(root, frames, problems, progress)
    return frame_table(frames, landmarks, DISFA, root, problems)


def disfa_folders(root: Path | str) -> tuple[Path, Path, Path]:
    """The resolved root, label folder and image folder of a DISFA copy, or
    :class:`AufacsError` saying what was expected where; reads no file."""
    root = open_root(root, "DISFA", (LABELS_DIR, IMAGES_DIR, LANDMARKS_DIR))
    labels_dir = root / LABELS_DIR
    if not labels_dir.is_dir():
        raise AufacsError(
            f"{root} has no {LABELS_DIR}/ folder; expected the AU files in "
            f"{LABELS_DIR}/SNxxx/SNxxx_au<N>.txt"
        )
    images_dir = images_folder(
        root,
        IMAGES_DIR,
        SUBJECT_PATTERN,
        f"the left-camera frames extracted to {IMAGES_DIR}/SNxxx/<frame>.png, 0-based",
    )
    return root, labels_dir, images_dir


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1]


def _read_subject_labels(labels_dir: Path, subject: str, problems: list[dict]) -> pd.DataFrame:
    """subject, task, frame, AU columns of one subject; an AU whose file is missing or bad
    is NaN (and reported), shorter files are NaN-padded (and reported)."""
    columns: dict[str, np.ndarray] = {}
    for au, column in zip(DISFA_AUS, DISFA.columns, strict=True):
        path = disfa_label_path(labels_dir.parent, subject, au)
        try:
            if not path.is_file():
                raise AufacsError(f"{path} does not exist; the AU is unknown for the subject")
            intensity = read_disfa_au_file(path)
        except AufacsError as error:
            problems.append(defect_row("bad_label_file", path, str(error), subject, ""))
            continue
        columns[column] = (intensity >= OCCURRENCE_THRESHOLD).astype(np.float64)
    lengths = {len(v) for v in columns.values()}
    count = max(lengths, default=0)
    if len(lengths) > 1:
        detail = f"the AU files of {subject} have {sorted(lengths)} lines; expected one length"
        problems.append(defect_row("bad_label_file", labels_dir / subject, detail, subject, ""))
    table = pd.DataFrame({"subject": subject, "task": "", "frame": np.arange(count)})
    for column in DISFA.columns:
        values = np.full(count, np.nan)
        if column in columns:
            values[: len(columns[column])] = columns[column]
        table[column] = values
    return table


def _read_landmarks(
    root: Path, frames: pd.DataFrame, problems: list[dict], progress: bool
) -> np.ndarray:
    """Landmarks (N, 49, 2) for the rows of ``frames``, NaN where absent."""
    points = np.full((len(frames), NUM_LANDMARKS, 2), np.nan)
    landmarks_dir = landmark_folder(root, LANDMARKS_DIR, problems)
    if landmarks_dir is None:
        return points
    groups = frames.groupby("subject", sort=True).indices
    frame_numbers = frames["frame"].to_numpy()
    for subject, rows in tqdm(groups.items(), desc="DISFA subjects", disable=not progress):
        files = _landmark_files(landmarks_dir / subject / LANDMARK_SUBDIR)
        for row in rows:
            path = files.get(int(frame_numbers[row]))
            if path is None:
                continue
            try:
                points[row] = read_disfa_landmarks(path)
            except AufacsError as error:
                problems.append(defect_row("bad_landmark_file", path, str(error), subject, ""))
    return points


def _landmark_files(folder: Path) -> dict[int, str]:
    """0-based frame -> landmark file of one subject, both name variants (the
    ``SNxxx_NNNN`` name wins when both exist)."""
    if not folder.is_dir():
        return {}
    files: dict[int, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            one_based = ONE_BASED_LANDMARK.match(entry.name)
            zero_based = ZERO_BASED_LANDMARK.match(entry.name)
            if zero_based:
                files[int(zero_based["frame"])] = entry.path
            elif one_based:
                files.setdefault(int(one_based["frame"]) - 1, entry.path)
    return files


def read_disfa_landmarks(path: Path | str) -> np.ndarray:
    """One landmark file as (49, 2) float64, 0-indexed pixels (``pts`` 66 x 2, 1-indexed,
    mapped with :func:`aufacs.core.aus.to_49`). Raises :class:`AufacsError` when unreadable or
    not 66 (or 49 / 68) points."""
    content = load_mat5(path)
    with reading_file(path, "a MAT-file with 'pts'"):
        points = np.asarray(content["pts"], dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] not in (49, 66, 68):
        shape = " x ".join(map(str, points.shape))
        raise AufacsError(f"{path} holds pts of shape {shape}; expected 66 x 2")
    return to_49(points) - MATLAB_OFFSET
