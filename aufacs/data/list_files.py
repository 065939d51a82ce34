"""Single JAA-Net / ME-GraphAU list files: paths, AU labels, landmarks, values and weights.

Each list is a line-aligned text file, one line per frame (see :mod:`aufacs.data.lists` for
the file names): relative image paths, space-separated AU codes (9 or -1 = unknown),
98 landmark coordinates, one value per line, or one line of AU weights. The readers here
read one file into an array; the writers write one back in the projects' own number formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.aus import NUM_LANDMARKS
from aufacs.core.errors import AufacsError, reading_file

#: Codes that mean "unknown" in label lists: 9 (BP4D, JAA-Net) and -1 (OpenGraphAU).
UNKNOWN_CODES = (9, -1)


def read_paths(path: Path | str) -> list[str]:
    """Relative image paths of a ``_path`` / ``img_path`` list (LF or CRLF; blank lines
    skipped)."""
    lines = (line.strip() for line in _text(path).splitlines())
    return [line for line in lines if line]


def write_paths(path: Path | str, rel_paths: Sequence[str], *, newline: str = "\n") -> None:
    """One relative path per line, each ended by ``newline`` (``"\\r\\n"`` reproduces the
    official JAA-Net BP4D lists byte for byte)."""
    _write_text(path, "".join(f"{p}{newline}" for p in rel_paths))


def read_label_matrix(path: Path | str) -> np.ndarray:
    """AU labels of an ``_AUoccur`` / ``label`` list, (N, n) float64: 1.0, 0.0, and NaN for
    the unknown codes 9 and -1."""
    labels = _read_matrix(path)
    labels[np.isin(labels, UNKNOWN_CODES)] = np.nan
    return labels


def write_label_matrix(path: Path | str, labels: np.ndarray, *, unknown: int = 9) -> None:
    """``labels`` (N, n) as space-separated ``%d``, NaN written as ``unknown``."""
    labels = np.asarray(labels, dtype=np.float64)
    codes = np.where(np.isnan(labels), unknown, labels).astype(np.int64)
    _savetxt(path, codes, "%d", " ")


def read_landmark_list(path: Path | str) -> np.ndarray:
    """Landmarks of a ``_land`` list, (N, 49, 2) float64 as written (tabs or spaces)."""
    values = _read_matrix(path)
    if values.shape[1] != 2 * NUM_LANDMARKS:
        raise AufacsError(
            f"{path} has {values.shape[1]} values per line; expected {2 * NUM_LANDMARKS} "
            f"(x1 y1 ... x{NUM_LANDMARKS} y{NUM_LANDMARKS})"
        )
    return values.reshape(-1, NUM_LANDMARKS, 2)


def write_landmark_list(path: Path | str, landmarks: np.ndarray) -> None:
    """``landmarks`` (N, 49, 2) as JAA-Net writes them: 98 tab-separated ``%f`` per line."""
    flat = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2 * NUM_LANDMARKS)
    _savetxt(path, flat, "%f", "\t")


def read_values(path: Path | str) -> np.ndarray:
    """One number per line (``_biocular``), (N,) float64."""
    return _read_matrix(path)[:, 0]


def write_values(path: Path | str, values: np.ndarray) -> None:
    """(N,) values, one ``%f`` per line."""
    _savetxt(path, np.asarray(values, dtype=np.float64).reshape(-1, 1), "%f", "\t")


def read_weights(path: Path | str) -> np.ndarray:
    """AU weights of a ``_weight`` / ``weight_fold`` file, (n,) float64."""
    return _read_matrix(path).reshape(-1)


def write_weights(path: Path | str, weights: np.ndarray) -> None:
    """(n,) weights on one line of tab-separated ``%f`` (JAA-Net and ME-GraphAU)."""
    _savetxt(path, np.asarray(weights, dtype=np.float64).reshape(1, -1), "%f", "\t")


def au_relations(labels: np.ndarray) -> np.ndarray:
    """ME-GraphAU's edge labels from AU labels (N, n): (N, n * n) with column j * n + k
    equal to 2 * y_j + y_k (0-3); NaN where either AU is unknown."""
    labels = np.asarray(labels, dtype=np.float64)
    pairs = 2 * labels[:, :, None] + labels[:, None, :]
    return pairs.reshape(len(labels), -1)


def _text(path: Path | str) -> str:
    _check_exists(path)
    with reading_file(path, "a list of image paths"):
        return Path(path).read_text(encoding="utf-8-sig")


def _read_matrix(path: Path | str) -> np.ndarray:
    """A whitespace-separated numeric file as (N, m) float64 (a writable copy)."""
    _check_exists(path)
    with reading_file(path, "a table of numbers"):
        table = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64)
        return table.to_numpy(dtype=np.float64, copy=True)


def _check_exists(path: Path | str) -> None:
    if not Path(path).is_file():
        raise AufacsError(f"{path} does not exist")


def _savetxt(path: Path | str, array: np.ndarray, fmt: str, delimiter: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, array, fmt=fmt, delimiter=delimiter)


def _write_text(path: Path | str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, newline="")
