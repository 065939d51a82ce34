"""Measurements that SynthBP4D is learnable and that each AU acts locally.

* :func:`learnability`: HOG features of the aligned crops (OpenCV's ``HOGDescriptor``) and
  one logistic regression per AU (scikit-learn), evaluated by 3-fold
  subject-exclusive cross-validation: F1 of every AU over the pooled held-out predictions,
  the same with the training labels shuffled, and the chance level (F1 of calling every
  frame positive).
* :func:`locality`: for each AU, the share of the absolute pixel change made by switching it
  from off to full intensity (every other parameter of the frame kept) that falls inside the
  AU's ground-truth region.

``python -m aufacs.data.synthetic.proof --seeds 0 1 2`` prints both for the sizes used in
``tests/test_synthetic.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import cv2
import numpy as np

from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.align import align_face
from aufacs.data.synthetic.planning import SynthConfig, labels_of, plan
from aufacs.data.synthetic.render import SubjectRenderer

#: The smallest data set on which the learnability test holds with a margin.
LEARNABILITY_CONFIG = SynthConfig(subjects=9, tasks=3, frames_per_task=30, seed=0)
#: Frames checked by the locality test.
LOCALITY_CONFIG = SynthConfig(subjects=4, tasks=1, frames_per_task=3, seed=0)
#: Side of the aligned crop the HOG features are computed on, pixels.
HOG_SIZE = 128
HOG_CELL = 8


@dataclass(frozen=True)
class Learnability:
    """Per-AU F1 (12,) each, BP4D order: trained on true labels, on shuffled labels, and
    the chance level (every frame called positive)."""

    f1: np.ndarray
    shuffled_f1: np.ndarray
    chance_f1: np.ndarray


def aligned_samples(
    config: SynthConfig, size: int = HOG_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw every frame of ``config`` in memory and align it as the cache does.

    Returns crops (N, size, size, 3) uint8 RGB, labels (N, 12) float64 and subjects (N,).
    """
    faces, sequences = plan(config)
    renderers = {face.subject: SubjectRenderer(face, config.frame_size) for face in faces}
    crops, labels, subjects = [], [], []
    for sequence in sequences:
        renderer = renderers[sequence.subject]
        for params in sequence.params:
            drawn = renderer.render(params)
            crops.append(align_face(drawn.image, drawn.landmarks, size=size)[0])
        labels.append(labels_of(sequence.params))
        subjects += [sequence.subject] * len(sequence.params)
    return np.stack(crops), np.concatenate(labels), np.array(subjects)


def hog_features(crops: np.ndarray, cell: int = HOG_CELL) -> np.ndarray:
    """HOG descriptors of grey crops (N, S, S, 3) uint8: (N, D) float32 (9 bins, 2x2-cell
    blocks, one-cell stride)."""
    size = crops.shape[1]
    hog = cv2.HOGDescriptor((size, size), (2 * cell, 2 * cell), (cell, cell), (cell, cell), 9)
    return np.stack([hog.compute(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)).ravel() for c in crops])


def subject_cv_f1(
    features: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    *,
    folds: int = 3,
    shuffle_seed: int | None = None,
    c: float = 0.1,
) -> np.ndarray:
    """Per-AU F1 (12,) of logistic regressions under subject-exclusive cross-validation.

    Subjects are dealt to ``folds`` folds in sorted order; each fold's frames are predicted
    by models trained on the other folds (balanced class weights, L2 strength ``1 / c``,
    standardised features) and F1 is computed over all pooled predictions. With
    ``shuffle_seed`` the training labels are permuted across frames first.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise AufacsError(
            "the learnability check needs scikit-learn: pip install scikit-learn"
        ) from None
    targets = labels.astype(bool)
    train_targets = targets
    if shuffle_seed is not None:
        train_targets = targets[np.random.default_rng(shuffle_seed).permutation(len(targets))]
    names = np.unique(subjects)
    predicted = np.zeros_like(targets)
    with threadpool_limits(1):  # small problems: BLAS threads only add overhead
        for k in range(folds):
            test = np.isin(subjects, names[k::folds])
            mean, std = features[~test].mean(axis=0), features[~test].std(axis=0) + 1e-6
            train_x, test_x = (features[~test] - mean) / std, (features[test] - mean) / std
            for au in range(targets.shape[1]):
                y = train_targets[~test, au]
                if y.all() or not y.any():
                    predicted[test, au] = y[0]
                    continue
                model = LogisticRegression(C=c, class_weight="balanced", max_iter=300)
                predicted[test, au] = model.fit(train_x, y).predict(test_x)
    return np.array(
        [f1_score(targets[:, k], predicted[:, k], zero_division=0) for k in range(targets.shape[1])]
    )


def chance_f1(labels: np.ndarray) -> np.ndarray:
    """Per-AU F1 (12,) of calling every frame positive: ``2 r / (1 + r)`` for rate ``r``."""
    rate = labels.mean(axis=0)
    return 2 * rate / (1 + rate)


def learnability(config: SynthConfig = LEARNABILITY_CONFIG) -> Learnability:
    """HOG + logistic regression on ``config``'s frames (see the module docstring)."""
    crops, labels, subjects = aligned_samples(config)
    features = hog_features(crops)
    return Learnability(
        f1=subject_cv_f1(features, labels, subjects),
        shuffled_f1=subject_cv_f1(features, labels, subjects, shuffle_seed=config.seed),
        chance_f1=chance_f1(labels),
    )


def locality(config: SynthConfig = LOCALITY_CONFIG) -> np.ndarray:
    """Share of each AU's pixel change inside its region, per checked frame: (N, 12).

    Every frame of ``config`` is drawn with each AU at 0 and at 1 (the rest unchanged);
    the change is the absolute difference of the uint8 frames summed over channels.
    """
    faces, sequences = plan(config)
    renderers = {face.subject: SubjectRenderer(face, config.frame_size) for face in faces}
    shares = []
    for sequence in sequences:
        renderer = renderers[sequence.subject]
        for params in sequence.params:
            masks = renderer.region_masks(params)
            row = []
            for k in range(len(BP4D_AUS)):
                state = np.array(params.intensities)
                state[k] = 1.0
                on = renderer.render(params.with_intensities(state)).image.astype(np.int32)
                state[k] = 0.0
                off = renderer.render(params.with_intensities(state)).image.astype(np.int32)
                change = np.abs(on - off).sum(axis=-1)
                row.append(change[masks[k]].sum() / max(change.sum(), 1))
            shares.append(row)
    return np.array(shares)


def main(argv: list[str] | None = None) -> None:
    """Print the learnability and locality figures for some seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    header = " ".join(f"{f'AU{a}':>5}" for a in BP4D_AUS)
    for seed in args.seeds:
        result = learnability(replace(LEARNABILITY_CONFIG, seed=seed))
        print(f"seed {seed}: learnability on {LEARNABILITY_CONFIG.subjects} subjects")
        print(f"{'':>9} {header}   mean")
        for name, values in (
            ("F1", result.f1),
            ("shuffled", result.shuffled_f1),
            ("chance", result.chance_f1),
        ):
            print(f"{name:>9} " + " ".join(f"{v:5.2f}" for v in values) + f"  {values.mean():5.3f}")
        shares = locality(replace(LOCALITY_CONFIG, seed=seed))
        print(f"locality over {len(shares)} frames (share of the change inside the region)")
        print(f"{'min':>9} " + " ".join(f"{v:5.3f}" for v in shares.min(axis=0)))
        print(f"{'mean':>9} " + " ".join(f"{v:5.3f}" for v in shares.mean(axis=0)))


if __name__ == "__main__":
    main()
