"""Building the aligned-crop cache: every clean frame decoded and aligned once, in parallel.

:func:`build_cache` returns the existing cache when the fingerprint of its inputs (image
paths, file sizes and modification times, labels, landmarks, ids, ``size`` and
``box_enlarge``) matches, and rebuilds it otherwise. A build goes to a sibling
``<name>.partial`` folder that replaces the cache only once complete, under a lock beside the
folder (``.<name>.lock``) that keeps a second process from building it at the same time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.errors import AufacsError
from aufacs.data.align import ALIGNED_SIZE, BOX_ENLARGE, align_face, biocular
from aufacs.data.cache import (
    AU_COLUMN,
    CACHE_VERSION,
    DEFECTS_FILE,
    ID_COLUMNS,
    IMAGES_FILE,
    LANDMARKS_FILE,
    META_FILE,
    TABLE_FILE,
    AlignedCache,
)
from aufacs.data.cache_lock import cache_lock
from aufacs.data.table import DEFECT_COLUMNS, LANDMARK_COLUMNS, empty_defects, landmarks_of, sex_of


def build_cache(
    frames: pd.DataFrame,
    cache_dir: Path | str,
    *,
    size: int = ALIGNED_SIZE,
    box_enlarge: float = BOX_ENLARGE,
    workers: int = 1,
    progress: bool = True,
) -> AlignedCache:
    """Align every frame of ``frames`` once and store the crops in ``cache_dir``.

    ``frames``: a clean frame table (the audit's ``clean``): ``subject``, ``task``,
    ``frame``, ``image_path``, the AU columns ``AU<n>``, finite landmarks ``x0 y0 ... y48``
    (0-indexed pixels of the source frame), optionally ``sex`` and ``split``. ``size``: side
    of the aligned crop, pixels; ``box_enlarge``: JAA-Net's face-box enlargement;
    ``workers``: processes that decode and align (1: this process).

    Returns the cache as it is on disk; reuses it when its inputs have not changed. A frame
    that cannot be decoded is left out and reported as ``unreadable_image`` in the cache's
    ``defects``. Holds the folder's lock (:mod:`aufacs.data.cache_lock`) meanwhile: a build
    of the same folder in another process refuses with :class:`AufacsError`.
    """
    cache_dir = Path(cache_dir).resolve()
    frames = _checked_frames(frames)
    if workers < 1:
        raise AufacsError(f"workers must be at least 1, got {workers}")
    if size < 1 or not box_enlarge > 0:
        raise AufacsError(f"size and box_enlarge must be positive, got {size} and {box_enlarge}")
    key = fingerprint(frames, size, box_enlarge)
    with cache_lock(cache_dir):
        return _build(frames, cache_dir, key, size, box_enlarge, workers, progress)


def _build(
    frames: pd.DataFrame,
    cache_dir: Path,
    key: str,
    size: int,
    box_enlarge: float,
    workers: int,
    progress: bool,
) -> AlignedCache:
    """:func:`build_cache` once the arguments are checked and the lock is held."""
    if (cache_dir / META_FILE).is_file():
        existing = _open_if_whole(cache_dir)
        if existing is not None and existing.fingerprint == key:
            return existing
    elif cache_dir.is_dir() and any(cache_dir.iterdir()):
        raise AufacsError(
            f"{cache_dir} is not empty and holds no aligned-face cache; give a new or empty folder"
        )
    partial = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    kept, points, failed = _write_crops(
        frames, partial / IMAGES_FILE, size, box_enlarge, workers, progress
    )
    if not kept:
        shutil.rmtree(partial)
        raise AufacsError(f"none of the {len(frames)} frames could be decoded; nothing to cache")
    _cache_table(frames.iloc[kept], points).to_csv(partial / TABLE_FILE, index=False)
    np.save(partial / LANDMARKS_FILE, points)
    _unreadable(frames.iloc[failed]).to_csv(partial / DEFECTS_FILE, index=False)
    meta = {
        "version": CACHE_VERSION,
        "fingerprint": key,
        "size": size,
        "box_enlarge": box_enlarge,
        "aus": list(_au_numbers(frames)),
        "frames": len(kept),
    }
    (partial / META_FILE).write_text(json.dumps(meta, indent=1))
    _replace_folder(partial, cache_dir)
    return AlignedCache.open(cache_dir)


def _open_if_whole(cache_dir: Path) -> AlignedCache | None:
    """The cache in ``cache_dir``, or None if its files do not agree (it will be rebuilt)."""
    try:
        return AlignedCache.open(cache_dir)
    except (AufacsError, OSError, ValueError, KeyError):
        return None


def fingerprint(frames: pd.DataFrame, size: int, box_enlarge: float) -> str:
    """A hash (hex) of everything a cache depends on: settings, ids, labels, landmarks, and
    each image's path, size and modification time."""
    digest = hashlib.sha256()
    settings = {
        "version": CACHE_VERSION,
        "size": int(size),
        "box_enlarge": float(box_enlarge),
        "aus": _au_columns(frames),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(frames[[*ID_COLUMNS, "image_path"]].to_csv(index=False).encode())
    numbers = [*_au_columns(frames), *LANDMARK_COLUMNS]
    digest.update(frames[numbers].to_numpy(dtype=np.float64).tobytes())
    digest.update(np.array([_file_stamp(p) for p in frames["image_path"]], np.int64).tobytes())
    return digest.hexdigest()


def _file_stamp(path: str) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of a file; (-1, -1) if it does not exist."""
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _checked_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` with a fresh index and ``sex`` / ``split`` filled in, or AufacsError."""
    required = ["subject", "task", "frame", "image_path", *LANDMARK_COLUMNS]
    missing = [c for c in required if c not in frames.columns]
    if missing:
        raise AufacsError(f"the frame table lacks the columns {missing[:5]} needed for the cache")
    if not _au_columns(frames):
        raise AufacsError("the frame table has no AU columns (AU1, AU2, ...) for the cache")
    if frames.empty:
        raise AufacsError("the frame table is empty; there is nothing to cache")
    bad = ~np.isfinite(landmarks_of(frames)).all(axis=(1, 2))
    if bad.any():
        raise AufacsError(
            f"{bad.sum()} frames have missing or non-finite landmarks; cache the audit's clean "
            "table, which leaves them out"
        )
    frames = frames.reset_index(drop=True)
    return frames.assign(
        sex=frames["sex"].astype(str) if "sex" in frames.columns else frames["subject"].map(sex_of),
        split=frames["split"].fillna("").astype(str) if "split" in frames.columns else "",
    )


def _au_columns(frames: pd.DataFrame) -> list[str]:
    """The ``AU<n>`` columns of a frame table, in table order."""
    return [c for c in frames.columns if AU_COLUMN.fullmatch(str(c))]


def _au_numbers(frames: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(c[2:]) for c in _au_columns(frames))


def _align_file(job: tuple[str, np.ndarray, float, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Decode one frame and align it: (RGB crop (size, size, 3), landmarks (49, 2)), or None
    when OpenCV cannot decode the file."""
    path, points, box_enlarge, size = job
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    crop, aligned = align_face(image, points, box_enlarge=box_enlarge, size=size)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), aligned


def _write_crops(
    frames: pd.DataFrame, path: Path, size: int, box_enlarge: float, workers: int, progress: bool
) -> tuple[list[int], np.ndarray, list[int]]:
    """Align every frame into the .npy at ``path``, in order, skipping undecodable ones.

    Returns the kept row positions, their aligned landmarks (K, 49, 2) and the failed rows.
    """
    points = landmarks_of(frames)
    jobs = ((p, points[i], box_enlarge, size) for i, p in enumerate(frames["image_path"]))
    shape = (len(frames), size, size, 3)
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    kept: list[int] = []
    aligned: list[np.ndarray] = []
    failed: list[int] = []
    pool = Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_align_file, jobs, chunksize=8) if pool else map(_align_file, jobs)
        bar = tqdm(results, total=len(frames), desc="aligning", unit="frame", disable=not progress)
        for row, result in enumerate(bar):
            if result is None:
                failed.append(row)
                continue
            images[len(kept)] = result[0]
            aligned.append(result[1])
            kept.append(row)
    finally:
        if pool:
            pool.close()
            pool.join()
    images.flush()
    del images
    _shrink_npy(path, len(kept))
    return kept, np.asarray(aligned, dtype=np.float64).reshape(-1, 49, 2), failed


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut a .npy file to its first ``rows`` rows in place (header rewritten, file truncated).

    NumPy pads .npy headers so that the first dimension can change without moving the data.
    """
    with open(path, "r+b") as handle:
        npy = np.lib.format
        if npy.read_magic(handle) != (1, 0):
            raise RuntimeError(f"cannot shrink {path} in place: not a version 1.0 .npy file")
        shape, fortran, dtype = npy.read_array_header_1_0(handle)
        offset = handle.tell()
        if shape[0] == rows:
            return
        handle.seek(0)
        header = {"descr": npy.dtype_to_descr(dtype), "fortran_order": fortran}
        npy.write_array_header_1_0(handle, {**header, "shape": (rows, *shape[1:])})
        if handle.tell() != offset:
            raise RuntimeError(f"cannot shrink {path} in place: the .npy header changed length")
        handle.truncate(offset + rows * int(np.prod(shape[1:])) * dtype.itemsize)


def _cache_table(frames: pd.DataFrame, points: np.ndarray) -> pd.DataFrame:
    """The CSV part of the cache table: ids, labels, biocular of the aligned landmarks
    (K, 49, 2) and the source path of the kept frames."""
    return frames[[*ID_COLUMNS, *_au_columns(frames)]].assign(
        biocular=biocular(points), image_path=frames["image_path"]
    )


def _unreadable(frames: pd.DataFrame) -> pd.DataFrame:
    """``unreadable_image`` defect rows for frames OpenCV could not decode."""
    if frames.empty:
        return empty_defects()
    return pd.DataFrame(
        {
            "kind": "unreadable_image",
            "subject": frames["subject"],
            "task": frames["task"],
            "frame": frames["frame"],
            "path": frames["image_path"],
            "detail": "OpenCV could not decode the image; left out of the cache",
        },
        columns=DEFECT_COLUMNS,
    )


def _replace_folder(partial: Path, cache_dir: Path) -> None:
    """Move the finished ``partial`` folder to ``cache_dir``, replacing an old cache."""
    if not cache_dir.exists():
        partial.rename(cache_dir)
        return
    old = cache_dir.with_name(cache_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    cache_dir.rename(old)
    partial.rename(cache_dir)
    shutil.rmtree(old)
