"""The aligned-crop cache: every clean frame aligned once, stored compactly on disk.

A cache folder holds

* ``images.npy``: (N, size, size, 3) uint8 RGB aligned crops, written incrementally and
  read back as a memory map;
* ``table.csv``: one row per crop, in the same order: ``subject``, ``task``, ``frame``,
  ``sex``, ``split``, the AU columns (1.0 / 0.0 / NaN), ``biocular`` (squared inter-ocular
  distance, crop pixels²) and ``image_path`` (the source frame);
* ``landmarks.npy``: (N, 49, 2) float64 aligned landmarks, 0-indexed crop pixels (the
  opened cache's table holds them as the columns ``x0 y0 ... y48``);
* ``cache_defects.csv``: frames that could not be decoded (``unreadable_image``), left out;
* ``cache.json``: the settings and a fingerprint of the inputs, written last, so a folder
  without it is not a (complete) cache.

:func:`~aufacs.data.cache_build.build_cache` writes a cache; :meth:`AlignedCache.open` reads it,
and :meth:`AlignedCache.in_memory` holds faces aligned on the fly (a user's photo) the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aufacs.core.aus import AU_SETS, AUSet
from aufacs.core.errors import AufacsError
from aufacs.data.align import biocular
from aufacs.data.table import DEFECT_COLUMNS, empty_defects, landmark_frame, landmarks_of

IMAGES_FILE = "images.npy"


TABLE_FILE = "table.csv"


LANDMARKS_FILE = "landmarks.npy"


DEFECTS_FILE = "cache_defects.csv"


META_FILE = "cache.json"


#: Bumped whenever the cache layout or the alignment changes, so old caches are rebuilt.
CACHE_VERSION = 1


ID_COLUMNS = ["subject", "task", "frame", "sex", "split"]


_TEXT_COLUMNS = ["subject", "task", "sex", "split", "image_path"]


AU_COLUMN = re.compile(r"AU\d+")


@dataclass
class AlignedCache:
    """An aligned-crop cache opened from its folder (see the module docstring).

    ``images``: (N, size, size, 3) uint8 RGB memory map; ``table``: N rows, same order;
    ``aus``: the AU set of the label columns; ``defects``: frames left out of the build.
    """

    path: Path
    images: np.ndarray
    table: pd.DataFrame
    aus: AUSet
    size: int
    box_enlarge: float
    fingerprint: str
    defects: pd.DataFrame

    @classmethod
    def open(cls, cache_dir: Path | str) -> AlignedCache:
        """Open the cache in ``cache_dir``; AufacsError if the folder holds no complete cache."""
        cache_dir = Path(cache_dir)
        meta = read_cache_meta(cache_dir)
        table = _read_csv(cache_dir / TABLE_FILE)
        points = np.load(cache_dir / LANDMARKS_FILE)
        table = pd.concat([table, landmark_frame(points, table.index)], axis=1)
        images = np.load(cache_dir / IMAGES_FILE, mmap_mode="r")
        size = int(meta["size"])
        if images.shape != (len(table), size, size, 3):
            raise AufacsError(
                f"{cache_dir / IMAGES_FILE} holds {images.shape} crops but {TABLE_FILE} has "
                f"{len(table)} rows of size {size}; rebuild the cache"
            )
        return cls(
            path=cache_dir,
            images=images,
            table=table,
            aus=_au_set(tuple(meta["aus"])),
            size=size,
            box_enlarge=float(meta["box_enlarge"]),
            fingerprint=meta["fingerprint"],
            defects=_read_csv(cache_dir / DEFECTS_FILE).reindex(columns=DEFECT_COLUMNS),
        )

    @classmethod
    def in_memory(
        cls, crops: np.ndarray, points: np.ndarray, aus: AUSet, box_enlarge: float
    ) -> AlignedCache:
        """Faces aligned on the fly, held like a cache with no folder behind it: ``crops``
        (F, S, S, 3) uint8 RGB aligned faces, ``points`` (F, 49, 2) their landmarks in crop
        pixels, ``box_enlarge`` the alignment's; every label of ``aus`` unknown."""
        labels = pd.DataFrame(np.nan, index=range(len(crops)), columns=list(aus.columns))
        table = pd.concat(
            [labels, pd.DataFrame({"biocular": biocular(points)}), landmark_frame(points)],
            axis=1,
        )
        return cls(
            path=Path("<faces in memory>"),
            images=crops,
            table=table,
            aus=aus,
            size=crops.shape[1],
            box_enlarge=box_enlarge,
            fingerprint="",
            defects=empty_defects(),
        )

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> np.ndarray:
        """AU labels (N, n_au) float32: 1.0 present, 0.0 absent, NaN unknown."""
        return self.table[self.aus.columns].to_numpy(dtype=np.float32)

    @property
    def landmarks(self) -> np.ndarray:
        """Aligned landmarks (N, 49, 2) float32, 0-indexed crop pixels."""
        return landmarks_of(self.table).astype(np.float32)

    @property
    def biocular(self) -> np.ndarray:
        """Squared inter-ocular distances (N,) float32, crop pixels²."""
        return self.table["biocular"].to_numpy(dtype=np.float32)


def read_cache_meta(cache_dir: Path | str) -> dict[str, Any]:
    """The settings of the cache in ``cache_dir`` (its ``cache.json``: ``aus``, ``size``,
    ``box_enlarge``, ``fingerprint``, ...) without reading its crops or tables; AufacsError
    if the folder holds no complete cache."""
    meta_path = Path(cache_dir) / META_FILE
    if not meta_path.is_file():
        raise AufacsError(
            f"{cache_dir} holds no aligned-face cache (no {META_FILE}); build one with "
            "`aufacs prepare` on its data set"
        )
    return json.loads(meta_path.read_text())


def _au_set(aus: tuple[int, ...]) -> AUSet:
    """The named AU set with these AUs in this order, else a ``"custom"`` one."""
    return next((s for s in AU_SETS.values() if s.aus == aus), AUSet("custom", aus))


def _read_csv(path: Path) -> pd.DataFrame:
    """A cache CSV, text columns as strings (``""`` for empty)."""
    table = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS})
    text = [c for c in _TEXT_COLUMNS if c in table.columns]
    table[text] = table[text].fillna("")
    return table
