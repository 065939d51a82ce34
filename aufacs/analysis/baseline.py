"""Baselines every comparison is drawn against: the majority class, and HOG + logistic regression.

The classical baseline describes each aligned crop of the run's cache by a HOG descriptor
(grey, resized to :data:`HOG_SIZE` pixels, :data:`HOG_CELL`-pixel cells, 9 orientations, 2x2-cell
blocks; scikit-image) and fits one logistic regression per AU (scikit-learn, balanced class
weights, standardised features) on the fold's training subjects, at most
:data:`MAX_TRAIN_FRAMES` frames drawn with a fixed seed. It predicts the same test frames as
:func:`aufacs.analysis.evaluate.evaluate_run`, in the same order, and is scored with the same
metrics. Its test predictions are kept in the run folder (``hog_baseline_<key>.npz``, a
:class:`~aufacs.analysis.evaluate.Predictions`), keyed by the cache, the fold and the settings.

:mod:`aufacs.data.synthetic.proof` computes its own HOG features (OpenCV) for the learnability
check: the data room cannot import this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from aufacs.analysis.evaluate import Predictions, baseline_scores
from aufacs.analysis.metrics import au_scores
from aufacs.core.errors import AufacsError
from aufacs.engine.runs import LoadedRun

#: Side of the grey crop the HOG descriptor is computed on, pixels.
HOG_SIZE = 64
#: Side of a HOG cell, pixels.
HOG_CELL = 8
#: Inverse L2 strength of each logistic regression.
HOG_C = 0.1
#: At most this many training frames are used (drawn with :data:`SEED`).
MAX_TRAIN_FRAMES = 20_000
SEED = 0
#: Crops read from the cache at a time.
CHUNK = 512
#: The baselines, as tables, notes and plots name them.
BASELINE_LABELS: dict[str, str] = {
    "majority": "majority baseline",
    "hog": "HOG + logistic regression baseline",
}
#: Grey values from RGB (ITU-R BT.601, as OpenCV).
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def hog_features(images: np.ndarray, size: int = HOG_SIZE, cell: int = HOG_CELL) -> np.ndarray:
    """HOG descriptors of crops ``images`` (N, S, S, 3) uint8 RGB (a memory map is read once,
    :data:`CHUNK` crops at a time): (N, D) float32, D = 36 (size / cell - 1)^2."""
    from skimage.feature import hog

    features = []
    for start in range(0, len(images), CHUNK):
        grey = np.asarray(images[start : start + CHUNK], dtype=np.float32) @ GREY / 255.0
        for crop in grey:  # (S, S)
            small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            descriptor = hog(small, 9, (cell, cell), (2, 2), feature_vector=True)
            features.append(descriptor.astype(np.float32))
    return np.stack(features)


def fit_predict(
    train_x: np.ndarray,
    train_target: np.ndarray,
    test_x: np.ndarray,
    *,
    c: float = HOG_C,
    seed: int = SEED,
) -> np.ndarray:
    """Per AU, a logistic regression fitted on the known labels of ``train_target`` (F_train, N;
    1, 0 or NaN) from features ``train_x`` (F_train, D); returns its probabilities (F_test, N)
    for ``test_x`` (F_test, D). Features are standardised with the training mean and standard
    deviation; an AU whose known training labels are all one class is predicted as that class."""
    from sklearn.linear_model import LogisticRegression

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    prob = np.zeros((len(test_x), train_target.shape[1]))
    for au in range(train_target.shape[1]):
        known = ~np.isnan(train_target[:, au])
        y = train_target[known, au] > 0
        if not known.any() or y.all() or not y.any():
            prob[:, au] = float(known.any() and y[0])
            continue
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000, random_state=seed)
        prob[:, au] = model.fit(train_x[known], y).predict_proba(test_x)[:, 1]
    return prob


def _predictions_path(loaded: LoadedRun) -> Path:
    """Where the HOG baseline's test predictions of the run's cache and fold are kept."""
    settings = (loaded.cache.fingerprint, loaded.config.kind, loaded.config.fold, loaded.split)
    settings += (HOG_SIZE, HOG_CELL, HOG_C, MAX_TRAIN_FRAMES, SEED)
    key = hashlib.sha1(repr(settings).encode()).hexdigest()[:12]
    return loaded.folder / f"hog_baseline_{key}.npz"


def hog_predictions(run: Path | str) -> Predictions:
    """The HOG baseline's :class:`Predictions` on the test frames of the run's fold: read from
    the run folder where an earlier call kept them, else fitted (module docstring) and kept."""
    loaded = LoadedRun.open(run)
    path = _predictions_path(loaded)
    if path.is_file():
        return Predictions.load(path)
    cache, split = loaded.cache, loaded.split
    subjects = cache.table["subject"]
    test = np.flatnonzero(subjects.isin(split.test).to_numpy())
    train = np.flatnonzero(subjects.isin(split.train).to_numpy())
    if not len(test) or not len(train):
        raise AufacsError(f"the fold of run {run} has no training or no test frames in its cache")
    if len(train) > MAX_TRAIN_FRAMES:
        train = np.sort(np.random.default_rng(SEED).choice(train, MAX_TRAIN_FRAMES, replace=False))
    rows = np.concatenate([train, test])
    order = np.argsort(rows)  # read the cache front to back
    features = hog_features(cache.images[rows[order]])[np.argsort(order)]
    labels = cache.labels
    table = cache.table.iloc[test]
    predictions = Predictions(
        prob=fit_predict(features[: len(train)], labels[train], features[len(train) :]),
        target=labels[test],
        subject=table["subject"].to_numpy(dtype=str),
        task=table["task"].to_numpy(dtype=str),
        frame=table["frame"].to_numpy(dtype=np.int64),
        true_landmarks=cache.landmarks[test],  # cache pixels: the baseline uses no crop
        landmarks=None,
        aus=np.asarray(cache.aus.aus, dtype=np.int64),
    )
    predictions.save(path)
    return predictions


def _with_mean(table: pd.DataFrame) -> pd.DataFrame:
    mean = {"au": "mean", "f1": table["f1"].mean(), "accuracy": table["accuracy"].mean()}
    return pd.concat([table.astype({"au": object}), pd.DataFrame([mean])], ignore_index=True)


def baseline_table(
    run: Path | str, baseline: str = "majority", threshold: float = 0.5
) -> pd.DataFrame:
    """Per-AU ``f1``, ``accuracy``, ``support`` and ``known`` of a baseline (a key of
    :data:`BASELINE_LABELS`) on the test frames of the run's fold, with a last row
    ``au == "mean"`` holding the means (F1 and accuracy)."""
    if baseline == "hog":
        predictions = hog_predictions(run)
        scores = au_scores(predictions.prob, predictions.target, predictions.aus, threshold)
    elif baseline in BASELINE_LABELS:
        scores = baseline_scores(run, baseline, threshold)
    else:
        raise AufacsError(
            f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINE_LABELS)}"
        )
    return _with_mean(scores[["au", "f1", "accuracy", "support", "known"]])


def baseline_tables(run: Path | str) -> dict[str, pd.DataFrame]:
    """:func:`baseline_table` of every baseline, by its label (majority first)."""
    return {label: baseline_table(run, name) for name, label in BASELINE_LABELS.items()}


def baseline_mean_f1(run: Path | str, baseline: str = "majority") -> float:
    """Mean F1 of a baseline (a key of :data:`BASELINE_LABELS`) on the run's test frames."""
    return mean_f1_of(baseline_table(run, baseline))


def mean_f1_of(table: pd.DataFrame) -> float:
    """The mean F1 of a :func:`baseline_table` (its ``mean`` row)."""
    return float(table.loc[table["au"] == "mean", "f1"].iloc[0])


def baseline_means(
    baselines: pd.DataFrame | Mapping[str, pd.DataFrame] | Path | str,
) -> dict[str, float]:
    """Mean F1 of each baseline, by label: of :func:`baseline_tables` (a mapping), of one
    majority-baseline table, or of every baseline of a run folder."""
    if isinstance(baselines, Path | str):
        baselines = baseline_tables(baselines)
    elif isinstance(baselines, pd.DataFrame):
        baselines = {BASELINE_LABELS["majority"]: baselines}
    return {label: mean_f1_of(table) for label, table in baselines.items()}
