"""Evaluation metrics, vectorized over frames and AUs.

Conventions (as the official JAA-Net evaluation computes them):

- ``prob`` (F, N): predicted probability that each of N AUs is present in each of F frames.
- ``target`` (F, N): 1 present, 0 absent, NaN unknown. Unknown labels are left out of every
  count (the official code skips label 9 the same way).
- A frame is predicted positive when ``prob >= threshold`` (0.5 by default).
- F1 = 2·TP / (2·TP + FP + FN), 0 when that denominator is 0 (scikit-learn's zero_division=0).
- Landmark error per frame: mean over the 49 points of the Euclidean error divided by the
  inter-ocular distance of the ground truth (distance between the eye centres, points 19-24
  and 25-30); the failure rate is the share of frames whose error exceeds 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aufacs.core.aus import LEFT_EYE, RIGHT_EYE

FAIL_THRESHOLD = 0.1


@dataclass(frozen=True)
class Confusion:
    """Per-AU counts over the known labels: each array has shape (..., N)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> Confusion:
        """From an array (..., 4) of TP, FP, FN, TN counts."""
        return cls(*(counts[..., k] for k in range(4)))

    @property
    def known(self) -> np.ndarray:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def f1(self) -> np.ndarray:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def precision(self) -> np.ndarray:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> np.ndarray:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def accuracy(self) -> np.ndarray:
        return _ratio(self.tp + self.tn, self.known)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _indicators(prob: np.ndarray, target: np.ndarray, threshold: float) -> np.ndarray:
    """(F, N, 4) one-hot of TP, FP, FN, TN per frame and AU; all zero where the label is unknown."""
    prob = np.asarray(prob, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prob.shape != target.shape:
        raise ValueError(f"prob {prob.shape} and target {target.shape} must have the same shape")
    known = ~np.isnan(target)
    predicted = prob >= threshold
    actual = target == 1
    return np.stack(
        [
            known & predicted & actual,
            known & predicted & ~actual,
            known & ~predicted & actual,
            known & ~predicted & ~actual,
        ],
        axis=-1,
    ).astype(np.int64)


def confusion(prob: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> Confusion:
    """TP/FP/FN/TN per AU (arrays (N,)) over the frames whose label is known."""
    counts = _indicators(prob, target, threshold).sum(axis=0)
    return Confusion.from_counts(counts)


def au_scores(
    prob: np.ndarray, target: np.ndarray, aus: Sequence[int], threshold: float = 0.5
) -> pd.DataFrame:
    """One row per AU: ``au``, ``f1``, ``accuracy``, ``precision``, ``recall``, ``support``
    (known positives) and ``known`` (frames with a known label)."""
    c = confusion(prob, target, threshold)
    return pd.DataFrame(
        {
            "au": list(aus),
            "f1": c.f1,
            "accuracy": c.accuracy,
            "precision": c.precision,
            "recall": c.recall,
            "support": c.tp + c.fn,
            "known": c.known,
        }
    )


def landmark_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame landmark error (F,): mean point error over 49 points / inter-ocular distance.

    ``pred``, ``truth``: (F, 49, 2) in the same pixel frame. Frames whose ground truth is
    missing (NaN) give NaN.
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    eyes = truth[:, list(LEFT_EYE)].mean(axis=1) - truth[:, list(RIGHT_EYE)].mean(axis=1)
    inter_ocular = np.linalg.norm(eyes, axis=-1)
    point_error = np.linalg.norm(pred - truth, axis=-1).mean(axis=1)
    return point_error / inter_ocular


def landmark_summary(
    pred: np.ndarray, truth: np.ndarray, fail_threshold: float = FAIL_THRESHOLD
) -> tuple[float, float]:
    """(mean normalised error, failure rate) over frames with known ground truth."""
    errors = landmark_errors(pred, truth)
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return float("nan"), float("nan")
    return float(errors.mean()), float((errors > fail_threshold).mean())


def bootstrap_mean_f1(
    prob: np.ndarray,
    target: np.ndarray,
    groups: Sequence[str],
    *,
    n_boot: int = 1000,
    threshold: float = 0.5,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, np.ndarray | float]:
    """Bootstrap confidence intervals of F1 and accuracy, resampling ``groups`` (test subjects).

    Each replicate draws as many subjects as there are, with replacement, and pools their
    frames. Returns ``mean_f1`` (observed), ``low`` and ``high`` (its percentile interval),
    ``per_au_low`` / ``per_au_high`` (N,); the same for accuracy: ``mean_accuracy``,
    ``accuracy_low``, ``accuracy_high``, ``per_au_accuracy_low`` / ``per_au_accuracy_high``;
    and ``subjects``, the number of groups resampled.
    """
    counts, names = group_counts(prob, target, groups, threshold)
    observed = Confusion.from_counts(counts.sum(axis=0))
    replicates = _replicate_confusion(counts, n_boot, seed)
    alpha = (1 - confidence) / 2
    result: dict[str, np.ndarray | float] = {"subjects": len(names)}
    for prefix, values in (("", replicates.f1), ("accuracy_", replicates.accuracy)):
        per_au_low, per_au_high = np.quantile(values, [alpha, 1 - alpha], axis=0)
        low, high = np.quantile(values.mean(axis=1), [alpha, 1 - alpha])
        result |= {
            f"{prefix}low": float(low),
            f"{prefix}high": float(high),
            f"per_au_{prefix}low": per_au_low,
            f"per_au_{prefix}high": per_au_high,
        }
    result["mean_f1"] = float(observed.f1.mean())
    result["mean_accuracy"] = float(observed.accuracy.mean())
    return result


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` for multiple comparisons: the family-wise
    error stays at the level a corrected p-value is compared with (capped at 1, monotone)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def paired_f1_difference(
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    target: np.ndarray,
    groups: Sequence[str],
    *,
    n_boot: int = 1000,
    threshold: float = 0.5,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Paired comparison of two models on the same test frames: mean F1 of A minus B.

    The same subject resample is applied to both models in each replicate. Returns the
    observed ``difference``, its percentile interval ``low``/``high`` at ``confidence``,
    ``p_value``: the two-sided bootstrap share of replicates on the other side of zero (as
    ``(1 + count) / (1 + n_boot)``, so never exactly zero), and
    ``subjects``: the number of groups resampled.
    """
    counts_a, names = group_counts(prob_a, target, groups, threshold)
    counts_b, _ = group_counts(prob_b, target, groups, threshold)
    f1_a = Confusion.from_counts(counts_a.sum(axis=0)).f1.mean()
    f1_b = Confusion.from_counts(counts_b.sum(axis=0)).f1.mean()
    difference = _replicate_f1(counts_a, n_boot, seed).mean(axis=1) - _replicate_f1(
        counts_b, n_boot, seed
    ).mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(difference, [alpha, 1 - alpha])
    # (1 + count) / (1 + replicates): a bootstrap p-value is never exactly zero
    below, above = (difference <= 0).sum(), (difference >= 0).sum()
    return {
        "difference": float(f1_a - f1_b),
        "low": float(low),
        "high": float(high),
        "p_value": float(min(1.0, 2 * (min(below, above) + 1) / (n_boot + 1))),
        "subjects": len(names),
    }


def group_counts(
    prob: np.ndarray, target: np.ndarray, groups: Sequence[str], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Confusion counts (TP, FP, FN, TN) of each AU per group: (G, N, 4), and the group
    names (G,), sorted, e.g. per test subject."""
    names, index = np.unique(np.asarray(groups), return_inverse=True)
    indicators = _indicators(prob, target, threshold)
    counts = np.zeros((len(names),) + indicators.shape[1:], dtype=np.int64)
    np.add.at(counts, index, indicators)
    return counts, names


def _replicate_f1(counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """F1 per AU of ``n_boot`` group resamples: (n_boot, N)."""
    return _replicate_confusion(counts, n_boot, seed).f1


def _replicate_confusion(counts: np.ndarray, n_boot: int, seed: int) -> Confusion:
    """Confusion counts per AU of ``n_boot`` group resamples: arrays (n_boot, N)."""
    rng = np.random.default_rng(seed)
    n_groups = counts.shape[0]
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    multiplicity = np.zeros((n_boot, n_groups), dtype=np.int64)
    np.add.at(multiplicity, (np.arange(n_boot)[:, None], draws), 1)
    pooled = np.einsum("bg,gnk->bnk", multiplicity, counts)
    return Confusion.from_counts(pooled)
