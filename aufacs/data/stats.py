"""AU statistics: occurrence rates, class weights for the losses, and co-occurrence.

Labels are arrays (N, n_au) of 1.0 (present), 0.0 (absent) and NaN (not coded or missing),
the form :func:`aufacs.data.table.labels_of` returns. A value counts as present when it is
greater than 0, as in the official JAA-Net scripts. NaN is never counted, in the numerator or
in the denominator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aufacs.core.aus import AUSet
from aufacs.core.errors import AufacsError

#: Class-weight schemes of :func:`au_weights`, each a function of the occurrence rates r.
WEIGHT_SCHEMES: dict[str, str] = {
    "inverse": "w = 1 / r (official JAA-Net write_AU_weight.py and ME-GraphAU scripts)",
    "inverse_plus_one": "w = 1 / (r + 1) (the seed replication's variant)",
}


def occurrence_rates(labels: np.ndarray) -> np.ndarray:
    """Fraction of labelled frames in which each AU is present.

    ``labels``: (N, n_au) with NaN for unknown. Returns (n_au,) float64 in [0, 1]; NaN for an
    AU that no frame labels.
    """
    labels = _checked_labels(labels)
    known = (~np.isnan(labels)).sum(axis=0)
    present = (labels > 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, present / np.maximum(known, 1), np.nan)


def au_weights(
    occurrence: np.ndarray, scheme: str = "inverse", aus: Sequence[int] | None = None
) -> np.ndarray:
    """Per-AU loss weights from occurrence rates, normalised so that they average 1.

    ``occurrence``: (n_au,) rates from :func:`occurrence_rates`; ``scheme``: a key of
    :data:`WEIGHT_SCHEMES`; ``aus``: the AU numbers, only used to name an AU in an error.
    Returns (n_au,) float64.

    ``"inverse"`` cannot weight an AU that never occurs (r = 0, infinite weight): rather than
    let one AU take all the weight, this raises :class:`AufacsError` naming the AU. A NaN rate
    (an AU with no labelled frame) raises for both schemes.
    """
    if scheme not in WEIGHT_SCHEMES:
        raise AufacsError(
            f"unknown AU weight scheme {scheme!r}; expected one of {sorted(WEIGHT_SCHEMES)}"
        )
    rates = np.asarray(occurrence, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0:
        raise AufacsError(f"occurrence rates must be a non-empty (n_au,) array, not {rates.shape}")
    if aus is not None and len(aus) != rates.size:
        raise AufacsError(f"aus names {len(aus)} AUs but occurrence has {rates.size} rates")
    names = [f"AU{a}" for a in aus] if aus is not None else [f"AU #{i}" for i in range(rates.size)]
    bad = np.flatnonzero(np.isnan(rates) | (rates < 0) | (rates > 1))
    if bad.size:
        raise AufacsError(
            f"occurrence rate of {names[bad[0]]} is {rates[bad[0]]}; expected a value in [0, 1]"
        )
    if scheme == "inverse":
        never = np.flatnonzero(rates == 0)
        if never.size:
            raise AufacsError(
                f"{names[never[0]]} never occurs in the training labels, so weight scheme "
                "'inverse' (1 / rate) is infinite; use 'inverse_plus_one' or more data"
            )
        raw = 1.0 / rates
    else:
        raw = 1.0 / (rates + 1.0)
    return raw / raw.mean()


def cooccurrence(labels: np.ndarray) -> np.ndarray:
    """Conditional co-occurrence of AUs: ``C[i, j] = P(AU j present | AU i present)``.

    ``labels``: (N, n_au) with NaN for unknown. ``C[i, j]`` is the number of frames where both
    AUs are present divided by the number of frames where AU i is present and AU j is labelled
    (pairwise: a frame with AU j unknown does not count for that pair). Returns (n_au, n_au)
    float64; the diagonal is 1; row i is NaN when AU i is never present with AU j labelled.
    """
    labels = _checked_labels(labels)
    present = (labels > 0).astype(np.float64)  # NaN > 0 is False
    known = (~np.isnan(labels)).astype(np.float64)
    both = present.T @ present  # (n_au, n_au): i and j present
    given = present.T @ known  # (n_au, n_au): i present, j labelled
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(given > 0, both / np.maximum(given, 1), np.nan)


def rates_by(frames: pd.DataFrame, aus: AUSet, by: str) -> pd.DataFrame:
    """Occurrence rate of each AU per group of frames (e.g. per split or per subject).

    ``frames``: a frame table with the AU columns of ``aus`` and a column ``by``. Returns one
    row per group (index: the group values) with columns ``frames`` (row count) and one rate
    per AU column (NaN where the group labels none).
    """
    missing = [c for c in [by, *aus.columns] if c not in frames.columns]
    if missing:
        raise AufacsError(f"frame table lacks the columns {missing} needed for AU rates")
    labels = frames[aus.columns]
    key = frames[by]
    present = (labels > 0).groupby(key, sort=True).sum()
    known = labels.notna().groupby(key, sort=True).sum()
    rates = present / known.where(known > 0)
    rates.insert(0, "frames", key.value_counts().reindex(rates.index))
    return rates


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` as float64 (N, n_au), or AufacsError when it is not two-dimensional."""
    array = np.asarray(labels, dtype=np.float64)
    if array.ndim != 2:
        raise AufacsError(f"AU labels must be an (N, n_au) array, got shape {array.shape}")
    return array
