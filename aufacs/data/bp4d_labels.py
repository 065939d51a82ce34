"""BP4D's AU occurrence CSVs, one file at a time: reading and writing.

An AU CSV (``AUCoding/AU_OCC/<subject>_<task>.csv``) has a header row; the first column is
the frame number (named ``0`` in the distribution; ``frame`` is accepted), then one column
per AU number, then an occlusion flag. Codes are 1 present, 0 absent, 9 not coded (NaN in
the table). AUs other than BP4D's twelve and non-numeric columns are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.aus import BP4D, BP4D_AUS
from aufacs.core.errors import AufacsError

#: Code for "not coded" in the AU CSVs.
NOT_CODED = 9
#: Name written for the trailing occlusion column (the distributed name is unconfirmed).
OCCLUSION_COLUMN = "occlusion"
#: Accepted names of the first (frame number) column of an AU CSV.
FRAME_COLUMNS = ("0", "frame")


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
