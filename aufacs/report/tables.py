"""Tables as the reports show them: readable numbers, "–" where a value does not exist.

:func:`tidy` is what a notebook wraps a table in before it is displayed: numbers to three
decimals, whole numbers (epochs, counts) without a decimal point, yes / no, and "–" for a
metric a model does not have (a NaN, a pandas ``<NA>``, None), so that no report prints
``NaN``, ``<NA>`` or a Python repr. The other functions build the few tables the notebooks
used to print as raw Python values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from aufacs.analysis import compare

#: What a table shows for a value that does not exist.
MISSING = "–"


def cell(value: Any, decimals: int = 3) -> str:
    """One value as a table shows it (see the module docstring)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if value.is_integer() and abs(value) < 1e9:
            return str(int(value))
        return _number(value, decimals)
    if hasattr(value, "item"):  # numpy scalars
        return cell(value.item(), decimals)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v, decimals) for v in value) or MISSING
    if isinstance(value, Mapping):
        shown = {k: "none" if v is None else cell(v, decimals) for k, v in value.items()}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or MISSING
    return str(value)


def _number(value: float, decimals: int) -> str:
    """``decimals`` decimals, or as many significant digits for a value too small for them."""
    if value != 0 and abs(value) < 10.0**-decimals:
        return f"{value:.{decimals}g}"
    return f"{value:.{decimals}f}"


def tidy(table: pd.DataFrame | pd.Series, decimals: int = 3) -> pd.DataFrame:
    """``table`` with every cell as text (:func:`cell`); a series becomes one column.

    A float column whose values are all whole numbers (e.g. epochs) prints as integers; other
    float columns print every value with ``decimals`` decimals.
    """
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    shown = {}
    for name in frame.columns:
        shown[name] = _column(frame[name], decimals)
    return pd.DataFrame(shown, index=frame.index.map(lambda v: cell(v, decimals)))


def _column(column: pd.Series, decimals: int) -> list[str]:
    """A column's cells: floats all with ``decimals`` decimals unless all are whole."""
    values = pd.to_numeric(column, errors="coerce") if column.dtype.kind == "f" else None
    if values is None or (values.dropna() % 1 == 0).all():
        return [cell(v, decimals) for v in column.astype(object)]
    small = bool(((values.abs() < 10.0**-decimals) & (values != 0)).any())
    return [
        MISSING if pd.isna(v) else f"{v:.{decimals}g}" if small else f"{v:.{decimals}f}"
        for v in values
    ]


def best_epochs(
    runs: Mapping[str, Path | str], baselines: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per run: its best epoch (highest mean F1 on the test subjects) and that mean
    F1, then one row per baseline (label -> mean F1, as
    :func:`aufacs.analysis.baseline.baseline_means`, no epoch), as text."""
    rows = {}
    for name, run in runs.items():
        table = compare.epoch_table(run).set_index("epoch")
        best = compare.best_epoch(run)
        rows[name] = {"best epoch": best, "mean F1": table.loc[best, "mean_f1"]}
    for label, value in (baselines or {}).items():
        rows[label] = {"best epoch": None, "mean F1": value}
    return tidy(pd.DataFrame.from_dict(rows, orient="index"))


def predictions_view(table: pd.DataFrame) -> pd.DataFrame:
    """The per-face predictions of ``06_own_photos`` narrowed to fit a page: the file name
    (not its path), frame and time only for videos, the face, where its landmarks came from,
    each AU's probability (column ``AU12`` for ``AU12_prob``) and the note."""
    shown = _where(table)
    for name in ("face", "landmarks"):
        if name in table:
            shown[name] = table[name]
    probabilities = table.filter(regex=r"^AU\d+_prob$")
    for name in probabilities:
        shown[name.removesuffix("_prob")] = probabilities[name]
    if "note" in table:
        shown["note"] = table["note"].fillna("").replace("", MISSING)
    return tidy(shown, decimals=2)


def long_predictions_view(long: pd.DataFrame) -> pd.DataFrame:
    """The long form of the predictions (:func:`aufacs.inference.results.long_table`, one row
    per face and AU) narrowed like :func:`predictions_view`: the file name, frame and time only
    for videos, the face's track, the AU, its probability and whether it is present."""
    shown = _where(long)
    for name in ("face_id", "au", "prob", "present"):
        shown[name] = long[name]
    return tidy(shown, decimals=2)


def _where(table: pd.DataFrame) -> pd.DataFrame:
    """Column ``file`` (the name of ``source``), then ``frame`` and ``time_s`` when some row
    comes from a video."""
    shown = pd.DataFrame({"file": table["source"].map(lambda s: Path(str(s)).name)})
    for name in ("frame", "time_s"):
        if name in table and table[name].notna().any():
            shown[name] = table[name]
    return shown
