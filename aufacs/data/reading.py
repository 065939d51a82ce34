"""Pieces shared by the raw data-set readers (BP4D, DISFA): folder scans, the outer join of
images and labels into frame-table rows, and file-level problem rows."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from aufacs.core.aus import NUM_LANDMARKS, AUSet
from aufacs.core.errors import AufacsError, reading_file
from aufacs.data.table import DEFECT_COLUMNS, LANDMARK_COLUMNS, FrameTable, sex_of

#: Image file extensions recognised in the image folders.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

#: One-based MATLAB pixel coordinates in the .mat files; the table is 0-indexed.
MATLAB_OFFSET = 1.0
#: Bytes of the header that every MATLAB v5 (and v7.3) MAT-file starts with.
MAT_HEADER_BYTES = 128


def load_mat5(path: Path | str) -> dict:
    """The variables of a MATLAB v5 MAT-file (:func:`scipy.io.loadmat`). A file shorter than
    the 128-byte header, or one that does not read as a MAT-file whatever the cause, raises
    :class:`AufacsError` naming it."""
    with reading_file(path, "a MAT-file"):
        size = os.path.getsize(path)
        if size < MAT_HEADER_BYTES:
            raise AufacsError(
                f"{path} could not be read as a MAT-file: it holds {size} bytes, fewer than the "
                f"{MAT_HEADER_BYTES}-byte header every MAT-file starts with (cut short?)"
            )
        return scipy.io.loadmat(path)


def join_frames(
    images: pd.DataFrame,
    labels: pd.DataFrame,
    aus: AUSet,
    expected_path: Callable[[str, str, int], str],
) -> pd.DataFrame:
    """Outer join of image rows (subject, task, frame, image_path) and label rows (subject,
    task, frame, AU columns) into the frame-table columns, sorted by subject/task/frame.

    Duplicated keys stay separate rows (a key with several images and one label row gives
    one labelled row per image). Label rows without an image get ``expected_path(subject,
    task, frame)`` as image path; ``sex`` comes from the subject ID.
    """
    keys = ["subject", "task", "frame"]
    images = images[[*keys, "image_path"]].astype({"frame": np.int64})
    labels = labels.astype({"frame": np.int64, **dict.fromkeys(aus.columns, np.float64)})
    frames = images.merge(labels, on=keys, how="outer", indicator=True)
    frames["has_image"] = frames["_merge"] != "right_only"
    frames["has_labels"] = frames["_merge"] != "left_only"
    missing = ~frames["has_image"]
    frames.loc[missing, "image_path"] = [
        expected_path(*key) for key in frames.loc[missing, keys].itertuples(index=False)
    ]
    frames["sex"] = frames["subject"].map(sex_of)
    frames = frames.sort_values(keys, kind="stable", ignore_index=True)
    columns = [*keys, "image_path", "has_image", "has_labels", "sex", *aus.columns]
    return frames[columns].astype({"frame": np.int64, "image_path": str})


def frame_images(folder: str | Path) -> list[tuple[str, str]]:
    """(name stem, path) of every image in ``folder`` whose stem is a frame number
    (``0643.jpg``, ``643.png``), from one os.scandir."""
    with os.scandir(folder) as entries:
        return [
            (stem, entry.path)
            for entry in entries
            for stem, suffix in [os.path.splitext(entry.name)]
            if suffix.lower() in IMAGE_SUFFIXES and _is_frame_number(stem) and entry.is_file()
        ]


def _is_frame_number(stem: str) -> bool:
    """Whether a file name stem is a frame number: ASCII digits, at most nine of them."""
    return stem.isascii() and stem.isdigit() and len(stem) <= 9


def subfolders(folder: str | Path, pattern: re.Pattern | None = None) -> list[os.DirEntry]:
    """Sub-folders of ``folder`` (names matching ``pattern``), sorted by name."""
    with os.scandir(folder) as entries:
        found = [e for e in entries if e.is_dir() and (pattern is None or pattern.match(e.name))]
    return sorted(found, key=lambda e: e.name)


def open_root(root: Path | str, dataset: str, folders: Sequence[str]) -> Path:
    """``root`` resolved; :class:`AufacsError` naming ``folders`` if it is no folder."""
    resolved = Path(root).expanduser().resolve()
    if not resolved.is_dir():
        expected = ", ".join(f"{f}/" for f in folders)
        state = "is a file, not a folder" if resolved.exists() else "does not exist"
        raise AufacsError(
            f"{dataset} folder {resolved} {state}; expected a folder holding {expected}"
        )
    return resolved


def images_folder(root: Path, name: str, subject_pattern: re.Pattern, expected: str) -> Path:
    """``root/name``, or ``root`` itself when subject folders sit directly in it;
    :class:`AufacsError` (saying ``expected``) when neither holds images."""
    if (root / name).is_dir():
        return root / name
    if subfolders(root, subject_pattern):
        return root
    raise AufacsError(f"{root} has no {name}/ folder; expected {expected}")


def landmark_folder(root: Path, name: str, problems: list[dict]) -> Path | None:
    """``root/name``, or ``None`` after adding a ``missing_root`` problem when absent."""
    if (root / name).is_dir():
        return root / name
    detail = f"{root} has no {name}/ folder; no frame has landmarks"
    problems.append(defect_row("missing_root", root / name, detail))
    return None


def frame_table(
    frames: pd.DataFrame, landmarks: np.ndarray, aus: AUSet, root: Path, problems: list[dict]
) -> FrameTable:
    """The reader's result: ``frames`` (from :func:`join_frames`) with the landmark columns
    from ``landmarks`` (N, 49, 2), and ``problems`` (rows from :func:`defect_row`)."""
    flat = landmarks.reshape(len(frames), 2 * NUM_LANDMARKS)
    points = pd.DataFrame(flat, columns=LANDMARK_COLUMNS, index=frames.index)
    return FrameTable(
        frames=pd.concat([frames, points], axis=1),
        aus=aus,
        root=root,
        problems=pd.DataFrame(problems, columns=DEFECT_COLUMNS),
    )


def defect_row(
    kind: str,
    path: Path,
    detail: str,
    subject: str | None = None,
    task: str | None = None,
    frame: int | None = None,
) -> dict:
    """One row of a defects table (:data:`~aufacs.data.table.DEFECT_COLUMNS`) for a file, or
    for one ``frame`` of a file."""
    return {
        "kind": kind,
        "subject": subject,
        "task": task,
        "frame": frame,
        "path": str(path),
        "detail": detail,
    }
