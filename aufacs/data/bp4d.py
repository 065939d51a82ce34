"""Raw BP4D-Spontaneous on disk -> one :class:`~aufacs.data.table.FrameTable`.

:func:`read_bp4d` reads a whole copy. The per-file pieces live beside it and are re-exported
here, so ``aufacs.data.bp4d`` is the one place to read or write the BP4D layout (the
synthetic generator and the tests write copies with the same writers):

=======================  ============================================================
module                   what it holds
=======================  ============================================================
``bp4d_layout``          the sub-folders, file names and path builders of a copy
``bp4d_labels``          one AU occurrence CSV in and out (codes 1 / 0 / 9)
``bp4d_landmarks``       one ``2DFeatures`` ``.mat`` in and out (1-indexed on disk)
=======================  ============================================================

Variants that are accepted besides the distributed layout (see
:mod:`aufacs.data.bp4d_layout`):

- frame names zero-padded to four digits (``0643.jpg``, JAA-Net's copies) or not
  (``643.jpg``, ME-GraphAU's crops), each sequence taken in the style most of its names use
  (:mod:`aufacs.data.naming`); ``.jpg``, ``.jpeg`` and ``.png``;
- images directly under ``<root>/<subject>/<task>/`` when there is no ``2D+3D`` folder;
- the CSVs directly under ``AUCoding/`` when there is no ``AU_OCC`` sub-folder;
- a MATLAB v5 ``.mat`` (read with :func:`scipy.io.loadmat`) holding the same ``fit.pred``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import BP4D, NUM_LANDMARKS
from aufacs.core.errors import AufacsError
from aufacs.data.bp4d_labels import read_au_occ_csv, read_au_occ_rows, write_au_occ_csv
from aufacs.data.bp4d_landmarks import (
    read_landmark_entries,
    read_landmark_mat,
    write_landmark_mat,
)
from aufacs.data.bp4d_layout import (
    IMAGES_DIR,
    LABEL_FILE_PATTERN,
    LABELS_DIR,
    LANDMARKS_DIR,
    SUBJECT_PATTERN,
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    frame_file_name,
)
from aufacs.data.naming import is_padded, unpadded_sequences
from aufacs.data.reading import (
    defect_row,
    frame_images,
    frame_table,
    images_folder,
    join_frames,
    landmark_folder,
    open_root,
    subfolders,
)
from aufacs.data.table import FrameTable

__all__ = [
    "IMAGES_DIR",
    "LABELS_DIR",
    "LANDMARKS_DIR",
    "bp4d_folders",
    "bp4d_image_path",
    "bp4d_label_path",
    "bp4d_landmark_path",
    "read_au_occ_csv",
    "read_au_occ_rows",
    "read_bp4d",
    "read_landmark_entries",
    "read_landmark_mat",
    "write_au_occ_csv",
    "write_landmark_mat",
]


def read_bp4d(root: Path | str, *, progress: bool = False) -> FrameTable:
    """Read a BP4D copy into a frame table (see :mod:`aufacs.data.table` for the columns).

    One row per frame found as an image or as a label row (an outer join: ``has_image`` /
    ``has_labels`` say which). Duplicates are kept as separate rows (``0643.jpg`` and
    ``643.jpg``; a CSV repeating a frame number) for the audit to report. A label row
    without image gets the path its frame would have in the naming most of the sequence's
    images use. Landmarks are 0-indexed pixels in the raw frame, NaN where the ``.mat`` has
    none. A CSV or ``.mat`` that cannot be used becomes one row of ``problems`` and reading
    carries on; a malformed CSV row (``bad_label_row``) or ``.mat`` entry
    (``bad_landmark_entry``) costs only its frame, reported with the file and line or frame.
    A missing root, image folder or label folder raises :class:`AufacsError`. ``progress``
    shows a tqdm bar over the sequences.
    """
    root, images_dir, labels_dir = bp4d_folders(root)
    problems: list[dict] = []
    images = _scan_images(images_dir)
    labels = _read_label_folder(labels_dir, problems)
    unpadded = unpadded_sequences(images)

    def expected_path(subject: str, task: str, frame: int) -> str:
        name = frame_file_name(frame, padded=(subject, task) not in unpadded)
        return str(images_dir / subject / task / name)

    frames = join_frames(images, labels, BP4D, expected_path)
    landmarks = _read_landmark_folder(root, frames, problems, progress)
    return frame_table(frames, landmarks, BP4D, root, problems)


def bp4d_folders(root: Path | str) -> tuple[Path, Path, Path]:
    """The resolved root, image folder and label folder of a BP4D copy, or
    :class:`AufacsError` saying what was expected where; reads no file."""
    root = open_root(root, "BP4D", (IMAGES_DIR, LABELS_DIR, LANDMARKS_DIR))
    images_dir = images_folder(
        root, IMAGES_DIR, SUBJECT_PATTERN, f"the frame images in {IMAGES_DIR}/<subject>/<task>/"
    )
    return root, images_dir, _labels_dir(root)


def _labels_dir(root: Path) -> Path:
    for candidate in (root / LABELS_DIR, root / Path(LABELS_DIR).parent):
        if candidate.is_dir():
            return candidate
    raise AufacsError(
        f"{root} has no {LABELS_DIR}/ folder; expected the AU occurrence CSVs "
        f"in {LABELS_DIR}/<subject>_<task>.csv"
    )


def _scan_images(images_dir: Path) -> pd.DataFrame:
    """Every frame image: subject, task, frame, image_path, padded (leading zeros)."""
    rows = [
        (subject.name, task.name, stem, path)
        for subject in subfolders(images_dir, SUBJECT_PATTERN)
        for task in subfolders(subject.path)
        for stem, path in frame_images(task.path)
    ]
    table = pd.DataFrame(rows, columns=["subject", "task", "stem", "image_path"])
    table["frame"] = table["stem"].astype(np.int64)
    table["padded"] = is_padded(table["stem"])
    return table.drop(columns="stem")


def _read_label_folder(labels_dir: Path, problems: list[dict]) -> pd.DataFrame:
    """All AU CSVs of the folder, concatenated: subject, task, frame, AU columns."""
    parts = []
    for path in sorted(labels_dir.iterdir()):
        match = LABEL_FILE_PATTERN.match(path.name)
        if not match or not path.is_file():
            continue
        subject, task = match["subject"], match["task"]
        try:
            table, bad_rows = read_au_occ_rows(path)
        except AufacsError as error:
            problems.append(defect_row("bad_label_file", path, str(error), subject, task))
            continue
        problems += [
            defect_row(
                "bad_label_row", path, f"{bad.detail}; the row is skipped", subject, task, bad.frame
            )
            for bad in bad_rows
        ]
        parts.append(table.assign(subject=subject, task=task))
    if not parts:
        return pd.DataFrame(columns=["subject", "task", "frame", *BP4D.columns])
    return pd.concat(parts, ignore_index=True)


def _read_landmark_folder(
    root: Path, frames: pd.DataFrame, problems: list[dict], progress: bool
) -> np.ndarray:
    """Landmarks (N, 49, 2) for the rows of ``frames``, NaN where absent."""
    points = np.full((len(frames), NUM_LANDMARKS, 2), np.nan)
    landmarks_dir = landmark_folder(root, LANDMARKS_DIR, problems)
    if landmarks_dir is None:
        return points
    groups = frames.groupby(["subject", "task"], sort=True).indices
    sequences = tqdm(groups.items(), desc="BP4D sequences", unit="seq", disable=not progress)
    frame_numbers = frames["frame"].to_numpy()
    for (subject, task), rows in sequences:
        path = landmarks_dir / f"{subject}_{task}.mat"
        if not path.is_file():
            detail = f"{path} does not exist; the sequence's frames have no landmarks"
            problems.append(defect_row("bad_landmark_file", path, detail, subject, task))
            continue
        try:
            points[rows], bad_entries = read_landmark_entries(path, frame_numbers[rows])
        except AufacsError as error:
            problems.append(defect_row("bad_landmark_file", path, str(error), subject, task))
            continue
        problems += _landmark_problems(path, subject, task, bad_entries, points[rows])
    return points


def _landmark_problems(
    path: Path, subject: str, task: str, bad_entries: list[tuple[int, str]], points: np.ndarray
) -> list[dict]:
    """Problem rows for the bad entries of one ``.mat``: one ``bad_landmark_entry`` per
    frame, or a single ``bad_landmark_file`` when no entry of the file is usable."""
    bad = dict(bad_entries)  # frame -> detail, once per frame (twin rows ask twice)
    if not bad:
        return []
    if not np.isfinite(points).all(axis=(1, 2)).any():
        more = f" (and {len(bad) - 1} more frames)" if len(bad) > 1 else ""
        detail = f"{next(iter(bad.values()))}{more}"
        return [defect_row("bad_landmark_file", path, detail, subject, task)]
    return [
        defect_row(
            "bad_landmark_entry",
            path,
            f"{detail}; the frame has no landmarks",
            subject,
            task,
            frame,
        )
        for frame, detail in bad.items()
    ]
