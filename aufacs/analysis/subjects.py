"""Paired comparisons at the unit that was sampled: the test subjects, not their frames.

Frames of one subject are not independent draws, so a comparison of two models rests on
their per-subject scores: each subject's mean F1 over the AUs it can be scored on (an AU
with no positive label and no positive prediction in that subject's frames has no F1 and is
left out). The test is an exact sign-flip (permutation) test of the mean per-subject
difference: under "no difference" each subject's difference is as likely positive as
negative, so all 2^S sign patterns are equally likely. With S subjects the smallest two-sided
p-value it can give is 2 / 2^S (0.125 with 4 subjects): :func:`minimum_p`. Above
:data:`EXACT_LIMIT` subjects the patterns are sampled instead (a Monte Carlo p-value with the
usual +1 correction).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from aufacs.analysis.evaluate import Predictions
from aufacs.analysis.metrics import Confusion, group_counts, holm
from aufacs.core.errors import AufacsError

#: Up to this many subjects every sign pattern is enumerated (2^16 = 65,536 patterns).
EXACT_LIMIT = 16
#: Sign patterns drawn above :data:`EXACT_LIMIT` subjects.
MONTE_CARLO_DRAWS = 100_000


def subject_f1(predictions: Predictions, threshold: float = 0.5) -> pd.Series:
    """Mean F1 of each test subject over the AUs it can be scored on (see the module
    docstring), indexed by subject (sorted); NaN for a subject with no scorable AU."""
    counts, subjects = group_counts(
        predictions.prob, predictions.target, predictions.subject, threshold
    )
    matrix = Confusion.from_counts(counts)  # arrays (S, N)
    scorable = (matrix.tp + matrix.fp + matrix.fn) > 0
    n = scorable.sum(axis=1)
    means = np.divide(
        matrix.f1.sum(axis=1),  # F1 is 0 where an AU cannot be scored, so only n counts them
        n,
        out=np.full(len(subjects), np.nan),
        where=n > 0,
    )
    return pd.Series(means, index=subjects, name="mean_f1")


def minimum_p(subjects: int) -> float:
    """The smallest two-sided p-value an exact sign-flip test over ``subjects`` can give."""
    return min(1.0, 2.0 / 2.0**subjects)


def sign_flip_p(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of the mean of ``differences`` (S,) under random signs: exact up to
    :data:`EXACT_LIMIT` values, else from :data:`MONTE_CARLO_DRAWS` sampled patterns."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        raise AufacsError("no subject to compare on")
    if d.size <= EXACT_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        extreme = np.abs(signs @ d) >= abs(d.sum()) - 1e-12
        return float(extreme.mean())
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(MONTE_CARLO_DRAWS, d.size))
    extreme = np.abs(signs @ d) >= abs(d.sum()) - 1e-12
    return float((extreme.sum() + 1) / (MONTE_CARLO_DRAWS + 1))


def paired_subject_table(models: Mapping[str, Predictions], threshold: float = 0.5) -> pd.DataFrame:
    """Every pair of models on their common test subjects: ``a``, ``b``, ``subjects`` (S),
    ``difference`` (mean over subjects of A's minus B's per-subject mean F1), ``a_wins``
    (subjects where A scores higher), ``p_value`` (exact sign flip), ``p_holm`` (Holm over
    the pairs) and ``minimum_p`` (the smallest p S subjects allow)."""
    scores = {name: subject_f1(p, threshold) for name, p in models.items()}
    rows = []
    for a, b in itertools.combinations(scores, 2):
        both = pd.concat([scores[a], scores[b]], axis=1, join="inner").dropna()
        if both.empty:
            raise AufacsError(f"{a} and {b} share no test subject; they cannot be paired")
        d = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
        rows.append(
            {
                "a": a,
                "b": b,
                "subjects": len(d),
                "difference": float(d.mean()),
                "a_wins": int((d > 0).sum()),
                "p_value": sign_flip_p(d),
                "minimum_p": minimum_p(len(d)),
            }
        )
    columns = ["a", "b", "subjects", "difference", "a_wins", "p_value", "minimum_p"]
    table = pd.DataFrame(rows, columns=columns)
    table.insert(len(columns) - 1, "p_holm", holm(table["p_value"]) if rows else [])
    return table
