"""Raw BP4D-Spontaneous on disk -> one :class:`~aufacs.data.table.FrameTable`, and writers
that produce exactly the same layout (used by the synthetic generator and the tests).

The distributed layout, relative to the root folder::

    2D+3D/<subject>/<task>/<frame>.jpg       frame images (1040 x 1392, w x h)
    AUCoding/AU_OCC/<subject>_<task>.csv     AU occurrence codes, one CSV per sequence
    2DFeatures/<subject>_<task>.mat          49 tracked landmarks per frame (MATLAB v7.3)

Variants that are accepted too:

- frame names zero-padded to four digits (``0643.jpg``, JAA-Net's copies) or not
  (``643.jpg``, ME-GraphAU's crops); ``.jpg``, ``.jpeg`` and ``.png``;
- images directly under ``<root>/<subject>/<task>/`` when there is no ``2D+3D`` folder;
- the CSVs directly under ``AUCoding/`` when there is no ``AU_OCC`` sub-folder;
- a MATLAB v5 ``.mat`` (read with :func:`scipy.io.loadmat`) holding the same ``fit.pred``.

AU CSVs: a header row; the first column is the frame number (named ``0`` in the
distribution; ``frame`` is accepted), then one column per AU number, then an occlusion
flag. Codes are 1 present, 0 absent, 9 not coded (NaN in the table). AUs other than
BP4D's twelve and non-numeric columns are ignored.

Landmark files: the cell array ``fit.pred`` holds one entry per video frame, entry
``frame - 1`` for frame number ``frame``; each non-empty entry is a 49 x 2 MATLAB matrix
(stored transposed, 2 x 49, in HDF5: x row, y row). The values are MATLAB pixel
coordinates, **1-indexed**: JAA-Net's raw landmark lists, produced from these files, are
shifted by -1 before alignment, and that shift reproduces the official aligned images
(../shared/fixtures/bp4d_sample). The table stores them 0-indexed. Empty entries (about
21,500 real frames have none) become NaN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
from tqdm.auto import tqdm

from aufacs.core.aus import BP4D, BP4D_AUS, NUM_LANDMARKS
from aufacs.core.errors import AufacsError
from aufacs.data.reading import (
    MAT_READ_ERRORS,
    MATLAB_OFFSET,
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

#: Sub-folders of a BP4D copy, relative to its root.
IMAGES_DIR = "2D+3D"
LABELS_DIR = "AUCoding/AU_OCC"
LANDMARKS_DIR = "2DFeatures"

#: Code for "not coded" in the AU CSVs.
NOT_CODED = 9
#: Name written for the trailing occlusion column (the distributed name is unconfirmed).
OCCLUSION_COLUMN = "occlusion"
#: Accepted names of the first (frame number) column of an AU CSV.
FRAME_COLUMNS = ("0", "frame")

SUBJECT_PATTERN = re.compile(r"^[FM]\d{3}$")
LABEL_FILE_PATTERN = re.compile(r"^(?P<subject>[^_]+)_(?P<task>[^_.]+)\.csv$", re.IGNORECASE)

_MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: aufacs HDF5 schema 1.00 ."


# --------------------------------------------------------------------------- paths


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


# --------------------------------------------------------------------------- writers


def write_au_occ_csv(
    path: Path | str,
    frames: np.ndarray,
    labels: np.ndarray,
    aus: Sequence[int] = BP4D_AUS,
    *,
    occlusion: np.ndarray | None = None,
    frame_column: str = "0",
) -> None:
    """Write one AU occurrence CSV as distributed.

    ``frames``: (T,) frame numbers. ``labels``: (T, len(aus)) codes for ``aus``: 1, 0,
    and 9 or NaN for not coded. The header is ``frame_column``, then every AU number from 1
    to ``max(aus)`` (AUs not in ``aus`` are written as 9, as uncoded AUs are in the
    distribution), then :data:`OCCLUSION_COLUMN` (``occlusion``, (T,) 0/1, default 0).
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(len(frames), len(aus))
    columns = np.arange(1, max(aus) + 1)
    codes = np.full((len(frames), len(columns)), NOT_CODED, dtype=np.int64)
    codes[:, np.asarray(aus) - 1] = np.where(np.isnan(labels), NOT_CODED, labels)
    occ = np.zeros(len(frames), np.int64) if occlusion is None else np.asarray(occlusion)
    table = np.column_stack([frames, codes, occ.astype(np.int64)])
    header = ",".join([frame_column, *map(str, columns), OCCLUSION_COLUMN])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


def write_landmark_mat(
    path: Path | str,
    frames: np.ndarray,
    landmarks: np.ndarray,
    *,
    matlab_version: str = "7.3",
) -> None:
    """Write a ``2DFeatures`` landmark file that :func:`read_landmark_mat` reads back.

    ``frames``: (T,) frame numbers >= 1. ``landmarks``: (T, P, 2) in 0-indexed pixels
    (P = 49 for a valid file); a frame whose landmarks contain NaN gets an empty entry.
    ``fit.pred`` gets ``max(frames)`` entries (entry ``frame - 1``); frames not listed are
    empty. Values are written 1-indexed, as MATLAB stores them. ``matlab_version`` ``"7.3"``
    writes HDF5 with a MATLAB header (what h5py-based community scripts read); ``"5"``
    writes a classic MAT-file through :func:`scipy.io.savemat`.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if len(frames) and frames.min() < 1:
        raise AufacsError(f"frame numbers for {path} must be >= 1, got {frames.min()}")
    entries: list[np.ndarray | None] = [None] * int(frames.max(initial=0))
    for frame, points in zip(frames, landmarks, strict=True):
        if np.isfinite(points).all():
            entries[frame - 1] = points + MATLAB_OFFSET  # MATLAB shape (P, 2)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if matlab_version == "7.3":
        _write_mat73_cells(Path(path), entries)
    elif matlab_version == "5":
        cells = np.empty((1, len(entries)), dtype=object)
        for i, entry in enumerate(entries):
            cells[0, i] = np.zeros((0, 0)) if entry is None else entry
        scipy.io.savemat(path, {"fit": {"pred": cells}})
    else:
        raise AufacsError(f"matlab_version must be '7.3' or '5', got {matlab_version!r}")


def _write_mat73_cells(path: Path, entries: list[np.ndarray | None]) -> None:
    """``fit.pred`` as a MATLAB v7.3 1 x N cell array: an (N, 1) HDF5 dataset of object
    references into ``#refs#``, each entry stored transposed (2, P); empty entries point
    to one MATLAB empty matrix."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        empty = refs.create_dataset("empty", data=np.zeros(2, dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("double")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        cells = np.empty((len(entries), 1), dtype=h5py.ref_dtype)
        for i, entry in enumerate(entries):
            if entry is None:
                cells[i, 0] = empty.ref
                continue
            data = refs.create_dataset(f"p{i}", data=entry.T)
            data.attrs["MATLAB_class"] = np.bytes_("double")
            cells[i, 0] = data.ref
        fit = f.create_group("fit")
        fit.attrs["MATLAB_class"] = np.bytes_("struct")
        pred = fit.create_dataset("pred", data=cells)
        pred.attrs["MATLAB_class"] = np.bytes_("cell")
    header = _MATLAB_HEADER.ljust(116) + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as raw:
        raw.write(header)


# --------------------------------------------------------------------------- landmarks


def read_landmark_mat(path: Path | str, frames: np.ndarray | None = None) -> np.ndarray:
    """Landmarks of one ``2DFeatures`` file, (M, 49, 2) float64, 0-indexed pixels.

    Row i holds frame ``frames[i]`` (default: every entry, frames 1..N); frames past the
    end of ``fit.pred`` and empty entries are NaN. Like EAC-Net's reader, an entry is
    taken in MATLAB's storage order, x1..x49 then y1..y49. Raises :class:`AufacsError` when
    the file cannot be read or an entry does not hold 49 points.
    """
    path = Path(path)
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                cells = _mat73_cells(f, path)
                wanted = _wanted_entries(len(cells), frames)
                entries = [_mat73_entry(f, cells[i]) if i >= 0 else None for i in wanted]
        else:
            cells = _mat5_cells(path)
            wanted = _wanted_entries(len(cells), frames)
            entries = [_mat5_entry(cells[i]) if i >= 0 else None for i in wanted]
    except MAT_READ_ERRORS as error:
        raise AufacsError(f"{path} could not be read as a MAT-file ({error})") from None
    out = np.full((len(entries), NUM_LANDMARKS, 2), np.nan)
    for row, flat in enumerate(entries):
        if flat is None:
            continue
        if flat.size != 2 * NUM_LANDMARKS:
            raise AufacsError(
                f"{path} holds {flat.size / 2:g} points for frame {wanted[row] + 1}; "
                f"expected {NUM_LANDMARKS}"
            )
        out[row] = flat.reshape(2, NUM_LANDMARKS).T - MATLAB_OFFSET
    return out


def _wanted_entries(count: int, frames: np.ndarray | None) -> np.ndarray:
    """0-based ``fit.pred`` entry per requested frame, -1 where past the end."""
    if frames is None:
        return np.arange(count)
    index = np.asarray(frames, dtype=np.int64).reshape(-1) - 1
    return np.where((index >= 0) & (index < count), index, -1)


def _mat73_cells(f: h5py.File, path: Path) -> np.ndarray:
    if "fit" not in f or "pred" not in f["fit"]:
        raise AufacsError(f"{path} has no fit/pred cell array")
    return f["fit"]["pred"][()].reshape(-1)


def _mat73_entry(f: h5py.File, ref: h5py.Reference) -> np.ndarray | None:
    """One cell flattened in MATLAB order (HDF5 stores MATLAB arrays transposed, so C
    order); ``None`` when empty. Uses h5py's low-level calls: ~3x faster than ``f[ref]``,
    which matters for ~150k BP4D frames."""
    data = h5py.h5r.dereference(ref, f.id)
    if h5py.h5a.exists(data, b"MATLAB_empty") or not np.prod(data.shape):
        return None
    values = np.empty(data.shape, dtype=np.float64)
    data.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
    return values.reshape(-1)


def _mat5_cells(path: Path) -> np.ndarray:
    content = scipy.io.loadmat(path)
    try:
        return content["fit"]["pred"][0, 0].reshape(-1)
    except (KeyError, ValueError, IndexError):
        raise AufacsError(f"{path} has no fit.pred cell array") from None


def _mat5_entry(cell: np.ndarray) -> np.ndarray | None:
    """One cell flattened in MATLAB (column-major) order; ``None`` when empty."""
    if cell.size == 0:
        return None
    return np.asarray(cell, dtype=np.float64).reshape(-1, order="F")


# --------------------------------------------------------------------------- labels


def read_au_occ_csv(path: Path | str) -> pd.DataFrame:
    """One AU occurrence CSV as a DataFrame: ``frame`` (int64) and ``AU1`` ... ``AU24``
    (BP4D's twelve, float64: 1.0, 0.0, NaN for code 9), in file order (repeated frame
    numbers are kept). Raises :class:`AufacsError` on unparsable content, a first column
    other than ``0``/``frame``, a missing BP4D AU column, or a code other than 0, 1, 9.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AufacsError(f"{path} could not be parsed as CSV ({error})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if not len(raw.columns) or raw.columns[0].lower() not in FRAME_COLUMNS:
        first = raw.columns[0] if len(raw.columns) else "nothing"
        raise AufacsError(f"{path} starts with column {first!r}; expected the frame column '0'")
    missing = [a for a in BP4D_AUS if str(a) not in raw.columns]
    if missing:
        raise AufacsError(
            f"{path} lacks the AU columns {', '.join(map(str, missing))}; "
            f"expected one column per BP4D AU ({', '.join(map(str, BP4D_AUS))})"
        )
    frames = pd.to_numeric(raw.iloc[:, 0], errors="coerce")
    codes = raw[[str(a) for a in BP4D_AUS]].apply(pd.to_numeric, errors="coerce")
    _check_values(path, raw.columns[0], frames.notna() & (frames == frames.round()))
    for au in BP4D_AUS:
        _check_values(path, str(au), codes[str(au)].isin((0, 1, NOT_CODED)))
    labels = codes.to_numpy(dtype=np.float64, copy=True)
    labels[labels == NOT_CODED] = np.nan
    out = pd.DataFrame(labels, columns=BP4D.columns)
    out.insert(0, "frame", frames.to_numpy(dtype=np.int64))
    return out


def _check_values(path: Path, column: str, valid: pd.Series) -> None:
    if not valid.all():
        row = int(np.flatnonzero(~valid.to_numpy())[0])
        expected = "an integer frame number" if column.lower() in FRAME_COLUMNS else "0, 1 or 9"
        raise AufacsError(f"{path} column {column!r}, data row {row + 1}: expected {expected}")


# --------------------------------------------------------------------------- reader


def read_bp4d(root: Path | str, *, progress: bool = False) -> FrameTable:
    """Read a BP4D copy into a frame table (see :mod:`aufacs.data.table` for the columns).

    One row per frame found as an image or as a label row (an outer join: ``has_image`` /
    ``has_labels`` say which). Duplicates are kept as separate rows (``0643.jpg`` and
    ``643.jpg``; a CSV repeating a frame number) for the audit to report. Landmarks are
    0-indexed pixels in the raw frame, NaN where the ``.mat`` has none. A CSV or ``.mat``
    that cannot be used becomes one row of ``problems`` and reading carries on; a missing
    root, image folder or label folder raises :class:`AufacsError`. ``progress`` shows a
    tqdm bar over the sequences.
    """
    root = open_root(root, "BP4D", (IMAGES_DIR, LABELS_DIR, LANDMARKS_DIR))
    images_dir = images_folder(
        root, IMAGES_DIR, SUBJECT_PATTERN, f"the frame images in {IMAGES_DIR}/<subject>/<task>/"
    )
    labels_dir = _labels_dir(root)
    problems: list[dict] = []
    images = _scan_images(images_dir)
    labels = _read_label_folder(labels_dir, problems)
    # A sequence's naming style: unpadded only if an image below 1000 is named without zeros.
    short = images[(images["frame"] < 1000) & ~images["padded"]]
    unpadded = set(zip(short["subject"], short["task"], strict=True))

    def expected_path(subject: str, task: str, frame: int) -> str:
        name = frame_file_name(frame, padded=(subject, task) not in unpadded)
        return str(images_dir / subject / task / name)

    frames = join_frames(images, labels, BP4D, expected_path)
    landmarks = _read_landmark_folder(root, frames, problems, progress)
    return frame_table(frames, landmarks, BP4D, root, problems)


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
    table["padded"] = table["stem"].str.startswith("0") & (table["stem"].str.len() > 1)
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
            table = read_au_occ_csv(path)
        except AufacsError as error:
            problems.append(defect_row("bad_label_file", path, str(error), subject, task))
            continue
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
            points[rows] = read_landmark_mat(path, frame_numbers[rows])
        except AufacsError as error:
            problems.append(defect_row("bad_landmark_file", path, str(error), subject, task))
    return points
