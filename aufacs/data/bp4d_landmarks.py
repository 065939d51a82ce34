"""BP4D's ``2DFeatures`` landmark files, one at a time: reading and writing ``.mat``.

The cell array ``fit.pred`` holds one entry per video frame, entry ``frame - 1`` for frame
number ``frame``; each non-empty entry is a 49 x 2 MATLAB matrix (stored transposed, 2 x 49,
in HDF5: x row, y row). Files are MATLAB v7.3 (HDF5) as distributed; a MATLAB v5 ``.mat``
(read with :func:`scipy.io.loadmat`) holding the same ``fit.pred`` is accepted too, as is one
whose ``fit`` is a 1 x N struct array with frame i's matrix in ``fit(i).pred``. The
values are MATLAB pixel coordinates, **1-indexed**: JAA-Net's raw landmark lists, produced
from these files, are shifted by -1 before alignment, and that shift reproduces the official
aligned images (../shared/fixtures/bp4d_sample). The readers return them 0-indexed. Empty
entries (about 21,500 real frames have none) become NaN; so does an entry that does not hold
49 points, which :func:`read_landmark_entries` reports for its frame alone.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from aufacs.core.aus import NUM_LANDMARKS
from aufacs.core.errors import AufacsError, reading_file
from aufacs.data.reading import MATLAB_OFFSET, load_mat5

_MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: aufacs HDF5 schema 1.00 ."


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


def read_landmark_mat(path: Path | str, frames: np.ndarray | None = None) -> np.ndarray:
    """Landmarks of one ``2DFeatures`` file, (M, 49, 2) float64, 0-indexed pixels.

    Row i holds frame ``frames[i]`` (default: every entry, frames 1..N); frames past the
    end of ``fit.pred`` and empty entries are NaN. Like EAC-Net's reader, an entry is
    taken in MATLAB's storage order, x1..x49 then y1..y49. Raises :class:`AufacsError` when
    the file cannot be read, whatever the damage, or an entry does not hold 49 points
    (:func:`read_landmark_entries` is the forgiving form).
    """
    points, bad_entries = read_landmark_entries(path, frames)
    if bad_entries:
        raise AufacsError(bad_entries[0][1])
    return points


def read_landmark_entries(
    path: Path | str, frames: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Like :func:`read_landmark_mat`, but an entry that does not hold 49 points costs only
    its frame: its row is NaN and the list names it, as (frame number, one sentence). A file
    that cannot be read (empty, cut short, random bytes, not a MAT-file: any failure of
    h5py or SciPy on it) still raises :class:`AufacsError` naming it."""
    path = Path(path)
    with reading_file(path, "a MAT-file"):
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                cells = _mat73_cells(f, path)
                wanted = _wanted_entries(len(cells), frames)
                entries = [_mat73_entry(f, cells[i]) if i >= 0 else None for i in wanted]
        else:
            cells = _mat5_cells(path)
            wanted = _wanted_entries(len(cells), frames)
            entries = [_mat5_entry(cells[i]) if i >= 0 else None for i in wanted]
    out = np.full((len(entries), NUM_LANDMARKS, 2), np.nan)
    bad_entries: list[tuple[int, str]] = []
    for row, flat in enumerate(entries):
        if flat is None:
            continue
        if flat.size != 2 * NUM_LANDMARKS:
            frame = int(wanted[row]) + 1
            detail = (
                f"{path} holds {flat.size / 2:g} points for frame {frame}; expected {NUM_LANDMARKS}"
            )
            bad_entries.append((frame, detail))
            continue
        out[row] = flat.reshape(2, NUM_LANDMARKS).T - MATLAB_OFFSET
    return out, bad_entries


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
    """The entries of ``fit.pred`` in a MATLAB v5 file, in MATLAB's linear order: ``fit`` a
    struct whose ``pred`` is a cell array (one cell per frame), or a struct array whose
    ``fit(i).pred`` is frame i's matrix."""
    content = load_mat5(path)
    try:
        pred = content["fit"]["pred"]
    except (KeyError, ValueError, IndexError):
        raise AufacsError(f"{path} has no fit.pred cell array") from None
    if pred.size == 1 and np.asarray(pred.flat[0]).dtype == object:
        return np.asarray(pred.flat[0]).reshape(-1, order="F")  # fit.pred{i}
    return pred.reshape(-1, order="F")  # fit(i).pred


def _mat5_entry(cell: np.ndarray) -> np.ndarray | None:
    """One cell flattened in MATLAB (column-major) order; ``None`` when empty."""
    if cell.size == 0:
        return None
    return np.asarray(cell, dtype=np.float64).reshape(-1, order="F")
