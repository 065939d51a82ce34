"""BP4D's AU occurrence CSVs, one file at a time: reading and writing.

An AU CSV (``AUCoding/AU_OCC/<subject>_<task>.csv``) has a header row; the first column is
the frame number (named ``0`` in the distribution; ``frame`` is accepted), then one column
per AU number, then an occlusion flag. Codes are 1 present, 0 absent, 9 not coded (NaN in
the table). AUs other than BP4D's twelve and non-numeric columns are ignored. A malformed row
(garbage, a code other than 0/1/9) costs only that row: :func:`read_au_occ_rows` skips it and
says which line it was; :func:`read_au_occ_csv` refuses the file.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.aus import BP4D, BP4D_AUS
from aufacs.core.errors import AufacsError, reading_file

#: Code for "not coded" in the AU CSVs.
NOT_CODED = 9
#: Name written for the trailing occlusion column (the distributed name is unconfirmed).
OCCLUSION_COLUMN = "occlusion"
#: Accepted names of the first (frame number) column of an AU CSV.
FRAME_COLUMNS = ("0", "frame")
#: Frame numbers at or past this are taken as damage (no video has 2**31 frames).
_FRAME_LIMIT = 2**31


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
    other than ``0``/``frame``, a missing BP4D AU column, or a malformed row (a code other
    than 0, 1, 9, a frame that is no integer, too many fields): :func:`read_au_occ_rows`
    is the forgiving form that skips such rows.
    """
    table, bad_rows = read_au_occ_rows(path)
    if bad_rows:
        raise AufacsError(bad_rows[0].detail)
    return table


@dataclass(frozen=True)
class BadRow:
    """A row of an AU CSV that was skipped: its 1-based ``line`` in the file, its ``frame``
    number when that much could be read (else None) and a one-sentence ``detail``."""

    line: int
    frame: int | None
    detail: str


def read_au_occ_rows(path: Path | str) -> tuple[pd.DataFrame, list[BadRow]]:
    """Like :func:`read_au_occ_csv`, but a malformed row costs only itself: the table holds
    the well-formed rows and the list says which rows were skipped and why. A file whose
    header is unusable, or that cannot be read at all (not UTF-8 text, a folder, ...),
    still raises :class:`AufacsError` naming it."""
    path = Path(path)
    with reading_file(path, "an AU occurrence CSV"):
        return _parse_rows(path, path.read_text(encoding="utf-8-sig"))


def _parse_rows(path: Path, text: str) -> tuple[pd.DataFrame, list[BadRow]]:
    """:func:`read_au_occ_rows` of the file's ``text``."""
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    # Each line parsed alone: a stray quote mark costs its own row, not the rows after it.
    records = [[f.strip() for f in next(csv.reader([line]))] for _, line in numbered]
    if not records:
        raise AufacsError(f"{path} is empty; expected a header row and one row per frame")
    header, lines = records[0], [n for n, _ in numbered]
    wanted = _wanted_columns(path, header)
    cells, kept, bad_rows = [], [], []
    for line, fields in zip(lines[1:], records[1:], strict=True):
        while len(fields) > len(header) and not fields[-1]:
            fields.pop()  # a trailing comma adds no value
        if len(fields) > len(header):
            detail = f"{path} line {line}: {len(fields)} fields where the header has {len(header)}"
            bad_rows.append(BadRow(line, _frame_number(fields[0]), detail))
            continue
        fields += [""] * (len(header) - len(fields))
        cells.append([fields[i] for i in wanted])
        kept.append(line)
    raw = pd.DataFrame(cells, columns=[header[i] for i in wanted], dtype=object)
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    values = values.reshape(len(cells), len(wanted))
    valid = np.column_stack(
        [(np.abs(values[:, 0]) < _FRAME_LIMIT) & (values[:, 0] == np.round(values[:, 0]))]
        + [np.isin(values[:, 1:], (0, 1, NOT_CODED))]
    )
    for row in np.flatnonzero(~valid.all(axis=1)):
        column = int(np.flatnonzero(~valid[row])[0])
        bad_rows.append(_bad_row(path, kept[row], raw.iloc[row], column))
    good = valid.all(axis=1)
    labels = values[good, 1:]
    labels[labels == NOT_CODED] = np.nan
    out = pd.DataFrame(labels, columns=BP4D.columns)
    out.insert(0, "frame", values[good, 0].astype(np.int64))
    return out, sorted(bad_rows, key=lambda bad: bad.line)


def _wanted_columns(path: Path, header: list[str]) -> list[int]:
    """Positions of the frame column and of BP4D's twelve AU columns in ``header``, or
    :class:`AufacsError` when the header lacks them."""
    if not header or header[0].lower() not in FRAME_COLUMNS:
        first = header[0] if header else "nothing"
        raise AufacsError(f"{path} starts with column {first!r}; expected the frame column '0'")
    missing = [a for a in BP4D_AUS if str(a) not in header]
    if missing:
        raise AufacsError(
            f"{path} lacks the AU columns {', '.join(map(str, missing))}; "
            f"expected one column per BP4D AU ({', '.join(map(str, BP4D_AUS))})"
        )
    return [0, *(header.index(str(a)) for a in BP4D_AUS)]


def _frame_number(text: str) -> int | None:
    """The integer frame number ``text`` spells, or None."""
    value = pd.to_numeric(text, errors="coerce")
    return int(value) if abs(value) < _FRAME_LIMIT and value == round(value) else None


def _bad_row(path: Path, line: int, cells: pd.Series, column: int) -> BadRow:
    """The :class:`BadRow` of a row whose ``column`` (0: the frame) holds an invalid value."""
    name, value = cells.index[column], cells.iloc[column]
    expected = "an integer frame number" if column == 0 else "0, 1 or 9"
    shown = repr(value) if value else "nothing"
    detail = f"{path} line {line}: column {name!r} holds {shown}; expected {expected}"
    return BadRow(line, _frame_number(cells.iloc[0]), detail)
