"""The results table in OpenFace 2's per-frame CSV layout, which AU analysis scripts read.

:func:`openface_table` keeps, of the results table (:mod:`aufacs.inference.rows`), the columns
that OpenFace 2's ``FeatureExtraction`` writes first and its AU occurrence columns:
:data:`OPENFACE_COLUMNS` then ``AUxx_c`` per AU of the model (two-digit AU numbers, as
OpenFace names them: ``AU01_c``). ``frame`` is 1-based as OpenFace's (aufacs's 0-based index
+ 1; photos: 1), ``timestamp`` in seconds, ``confidence`` 1.0 and ``success`` 1 where a face
was found, 0 in a frame without one (whose AU columns are then 0, as OpenFace writes them).
OpenFace's ``AUxx_r`` intensities are left out: the models give occurrence probabilities, not
intensities. :func:`openface_text` writes the table as OpenFace does: ", " between fields.
``docs/own_photos.md`` ("OpenFace's CSV") documents the columns one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from aufacs.core.aus import au_column

#: The columns OpenFace 2 writes first for a sequence, in its order.
OPENFACE_COLUMNS = ["frame", "face_id", "timestamp", "confidence", "success"]
#: How each column is written (as OpenFace does: 3 decimals for time, 2 for confidence).
_FORMATS = {"timestamp": "{:.3f}", "confidence": "{:.2f}"}


def openface_column(au: int) -> str:
    """OpenFace's occurrence column of an AU number: ``openface_column(1) == "AU01_c"``."""
    return f"AU{au:02d}_c"


def openface_table(table: pd.DataFrame, aus: Sequence[int]) -> pd.DataFrame:
    """The results ``table`` of AUs ``aus`` in OpenFace's columns (module docstring)."""
    found = table["face"].notna().to_numpy()
    columns = {
        "frame": table["frame"].fillna(0).astype(int) + 1,
        "face_id": table["face_id"].fillna(0).astype(int),
        "timestamp": table["time_s"].fillna(0.0).astype(float),
        "confidence": found.astype(float),
        "success": found.astype(int),
    }
    for au in aus:
        columns[openface_column(au)] = table[au_column(au)].fillna(0).astype(int)
    return pd.DataFrame(columns, index=table.index).reset_index(drop=True)


def openface_text(table: pd.DataFrame, aus: Sequence[int]) -> str:
    """The CSV text of :func:`openface_table`: a header line, then one line per row, fields
    separated by ", " as OpenFace writes them."""
    wide = openface_table(table, aus)
    cells = pd.DataFrame(
        {name: wide[name].map(_FORMATS.get(name, "{}").format) for name in wide.columns}
    )
    lines = [", ".join(wide.columns), *(", ".join(row) for row in cells.itertuples(index=False))]
    return "\n".join(lines) + "\n"
