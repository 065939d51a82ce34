"""Where a results table goes: a CSV file in aufacs's own columns or in OpenFace's.

``aufacs`` writes every column of the results table (:mod:`aufacs.inference.rows`);
``openface`` writes OpenFace 2's per-frame columns (:mod:`aufacs.inference.openface`). Both
are written atomically: the file appears whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aufacs.core.io import atomic_write, write_text_atomic
from aufacs.inference.openface import openface_text

#: The ``--format`` values of ``aufacs predict``.
FORMATS = ("aufacs", "openface")


def write_table(table: pd.DataFrame, path: str | Path, format: str, aus: Sequence[int]) -> None:
    """Write results ``table`` (of AUs ``aus``) to CSV file ``path`` in ``format``."""
    if format == "openface":
        write_text_atomic(path, openface_text(table, aus))
        return
    with atomic_write(path) as handle:
        table.to_csv(handle, index=False)
