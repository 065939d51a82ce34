"""The frame table: the one in-memory form of a data set, whatever its source.

Every reader (raw BP4D, raw DISFA, list files, the synthetic generator's output read back as
BP4D) produces a :class:`FrameTable`. Its ``frames`` DataFrame has one row per frame:

=================  ======================================================================
column             meaning
=================  ======================================================================
``subject``        subject ID, e.g. ``"F001"`` or ``"SN002"``
``task``           task ID, e.g. ``"T1"`` (``""`` for DISFA)
``frame``          frame number (int) as in the label files
``image_path``     absolute path of the frame image (str; may not exist)
``has_image``      the image file exists
``has_labels``     a label row exists for the frame
``sex``            ``"F"``, ``"M"`` or ``"?"``
``AU1`` ...        one float column per AU of the set: 1.0 present, 0.0 absent, NaN unknown
``x0 y0 ... y48``  49 landmarks, interleaved, 0-indexed pixels in the raw frame; NaN if absent
=================  ======================================================================

``problems`` lists the defects found while reading, in the defects-table schema of
:data:`DEFECT_COLUMNS`: file-level ones (a label file with the wrong columns, an unreadable
landmark file, ...) and ones that cost a single frame (``bad_label_row``: a malformed row of a
label file; ``bad_landmark_entry``: one frame's landmarks with the wrong number of points),
which name the frame; the audit adds its frame-level defects to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.aus import NUM_LANDMARKS, AUSet

ID_COLUMNS = ["subject", "task", "frame"]
LANDMARK_COLUMNS = [f"{axis}{i}" for i in range(NUM_LANDMARKS) for axis in ("x", "y")]

#: Columns of a defects table: one row per problem.
DEFECT_COLUMNS = ["kind", "subject", "task", "frame", "path", "detail"]

#: Every kind of defect the readers and the audit report, with what it means.
DEFECT_KINDS: dict[str, str] = {
    "missing_root": "the data folder or one of its expected sub-folders does not exist",
    "bad_label_file": "a label file could not be parsed or has unexpected columns",
    "bad_landmark_file": "a landmark file could not be read or has the wrong number of points",
    "bad_label_row": "one row of a label file is malformed; only that row's frame is dropped",
    "bad_landmark_entry": "one frame's entry of a landmark file has the wrong number of points",
    "missing_image": "a label row has no image file",
    "unreadable_image": "the image file is empty, truncated or not a JPEG/PNG",
    "unlabelled_image": "an image file has no label row",
    "all_unknown_labels": "every AU of the frame is not coded (9) or missing",
    "missing_landmarks": "the frame has no landmarks",
    "nonfinite_landmarks": "the frame's landmarks contain NaN or infinite values",
    "duplicate_frame": (
        "the same subject/task/frame appears more than once; the copy named as most of its "
        "sequence is kept"
    ),
    "subject_leakage": "a subject appears in both the training and the test split",
}


@dataclass
class FrameTable:
    """A data set read from disk: the frame rows and the file-level problems met on the way."""

    frames: pd.DataFrame
    aus: AUSet
    root: Path
    problems: pd.DataFrame = field(default_factory=lambda: empty_defects())


def empty_defects() -> pd.DataFrame:
    """An empty defects table with the :data:`DEFECT_COLUMNS` schema."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in DEFECT_COLUMNS})


def landmarks_of(frames: pd.DataFrame) -> np.ndarray:
    """The landmarks of a frame table as an array (N, 49, 2), float64, NaN where absent."""
    return frames[LANDMARK_COLUMNS].to_numpy(dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2)


def landmark_frame(landmarks: np.ndarray, index: pd.Index | None = None) -> pd.DataFrame:
    """Landmark columns ``x0 y0 ... y48`` from an array (N, 49, 2)."""
    flat = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2 * NUM_LANDMARKS)
    return pd.DataFrame(flat, columns=LANDMARK_COLUMNS, index=index)


def labels_of(frames: pd.DataFrame, aus: AUSet) -> np.ndarray:
    """AU labels (N, len(aus)), float32: 1.0 present, 0.0 absent, NaN unknown."""
    return frames[aus.columns].to_numpy(dtype=np.float32)


def sex_of(subject: str) -> str:
    """``"F"`` or ``"M"`` from a BP4D-style subject ID (``F001``, ``M005``), else ``"?"``."""
    return subject[:1] if subject[:1] in ("F", "M") else "?"
