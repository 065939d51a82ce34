"""Where a BP4D copy keeps its files: the sub-folders, file names and path builders.

The distributed layout, relative to the root folder::

    2D+3D/<subject>/<task>/<frame>.jpg       frame images (1040 x 1392, w x h)
    AUCoding/AU_OCC/<subject>_<task>.csv     AU occurrence codes, one CSV per sequence
    2DFeatures/<subject>_<task>.mat          49 tracked landmarks per frame (MATLAB v7.3)

Frame names are zero-padded to four digits (``0643.jpg``, JAA-Net's copies) or not
(``643.jpg``, ME-GraphAU's crops); the builders here write the padded form unless told.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Sub-folders of a BP4D copy, relative to its root.
IMAGES_DIR = "2D+3D"
LABELS_DIR = "AUCoding/AU_OCC"
LANDMARKS_DIR = "2DFeatures"

#: Names of the subject folders (``F001``, ``M018``) and of the AU CSVs (``F001_T1.csv``).
SUBJECT_PATTERN = re.compile(r"^[FM]\d{3}$")
LABEL_FILE_PATTERN = re.compile(r"^(?P<subject>[^_]+)_(?P<task>[^_.]+)\.csv$", re.IGNORECASE)


def bp4d_image_path(
    root: Path | str, subject: str, task: str, frame: int, padded: bool = True
) -> Path:
    """``<root>/2D+3D/<subject>/<task>/<frame>.jpg``, the frame zero-padded to 4 digits
    (``0643.jpg``) when ``padded`` else unpadded (``643.jpg``)."""
    return Path(root) / IMAGES_DIR / subject / task / frame_file_name(frame, padded)


def frame_file_name(frame: int, padded: bool = True) -> str:
    """``0643.jpg`` (zero-padded to 4 digits) or ``643.jpg``."""
    return f"{frame:04d}.jpg" if padded else f"{frame}.jpg"


def bp4d_label_path(root: Path | str, subject: str, task: str) -> Path:
    """``<root>/AUCoding/AU_OCC/<subject>_<task>.csv``."""
    return Path(root) / LABELS_DIR / f"{subject}_{task}.csv"


def bp4d_landmark_path(root: Path | str, subject: str, task: str) -> Path:
    """``<root>/2DFeatures/<subject>_<task>.mat``."""
    return Path(root) / LANDMARKS_DIR / f"{subject}_{task}.mat"
