"""aufacs.analysis.metrics against scikit-learn and direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from aufacs.analysis import metrics


@pytest.fixture
def predictions() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    prob = rng.random((200, 5))
    target = (rng.random((200, 5)) < 0.3).astype(np.float64)
    target[rng.random((200, 5)) < 0.1] = np.nan
    return prob, target


def test_per_au_scores_equal_scikit_learn_on_known_labels(predictions):
    prob, target = predictions
    table = metrics.au_scores(prob, target, aus=[1, 2, 4, 6, 7])
    for k in range(5):
        known = ~np.isnan(target[:, k])
        truth, decision = target[known, k].astype(int), (prob[known, k] >= 0.5).astype(int)
        assert table.f1[k] == pytest.approx(f1_score(truth, decision, zero_division=0))
        assert table.accuracy[k] == pytest.approx(accuracy_score(truth, decision))
        assert table.precision[k] == pytest.approx(
            precision_score(truth, decision, zero_division=0)
        )
        assert table.recall[k] == pytest.approx(recall_score(truth, decision, zero_division=0))
        assert table.known[k] == known.sum()
        assert table.support[k] == truth.sum()


def test_threshold_is_a_parameter(predictions):
    prob, target = predictions
    low = metrics.confusion(prob, target, threshold=0.1)
    high = metrics.confusion(prob, target, threshold=0.9)
    assert (low.tp + low.fp >= high.tp + high.fp).all()


def test_f1_is_zero_when_nothing_is_positive():
    target = np.zeros((10, 1))
    prob = np.zeros((10, 1))
    assert metrics.confusion(prob, target).f1[0] == 0.0
    assert metrics.confusion(prob, target).accuracy[0] == 1.0


def test_landmark_error_is_normalised_by_inter_ocular_distance():
    truth = np.zeros((1, 49, 2))
    truth[0, 19:25, 0] = 0.0
    truth[0, 25:31, 0] = 50.0
    pred = truth + np.array([3.0, 4.0])  # every point off by 5 px
    assert metrics.landmark_errors(pred, truth)[0] == pytest.approx(5.0 / 50.0)


def test_failure_rate_counts_frames_above_a_tenth():
    truth = np.zeros((4, 49, 2))
    truth[:, 25:31, 0] = 100.0
    pred = truth.copy()
    pred[:2] += np.array([20.0, 0.0])  # error 0.2 on two frames
    mean_error, failure = metrics.landmark_summary(pred, truth)
    assert mean_error == pytest.approx(0.1)
    assert failure == pytest.approx(0.5)


def test_bootstrap_interval_contains_the_observed_mean_f1(predictions):
    prob, target = predictions
    subjects = np.repeat([f"S{i}" for i in range(10)], 20)
    result = metrics.bootstrap_mean_f1(prob, target, subjects, n_boot=200)
    observed = metrics.confusion(prob, target).f1.mean()
    assert result["mean_f1"] == pytest.approx(observed)
    assert result["low"] <= observed <= result["high"]
    assert result["per_au_low"].shape == (5,)


def test_paired_difference_of_a_model_with_itself_is_zero(predictions):
    prob, target = predictions
    subjects = np.repeat([f"S{i}" for i in range(10)], 20)
    result = metrics.paired_f1_difference(prob, prob, target, subjects, n_boot=100)
    assert result["difference"] == 0.0
    assert result["low"] == result["high"] == 0.0


def test_paired_difference_detects_a_better_model(predictions):
    _, target = predictions
    subjects = np.repeat([f"S{i}" for i in range(10)], 20)
    perfect = np.nan_to_num(target, nan=0.0)
    rng = np.random.default_rng(0)
    noisy = rng.random(target.shape)
    result = metrics.paired_f1_difference(perfect, noisy, target, subjects, n_boot=200)
    assert result["difference"] > 0.3
    assert result["low"] > 0
    assert result["p_value"] < 0.05


def test_holm_multiplies_the_smallest_p_value_by_the_number_of_tests_and_stays_monotone():
    assert metrics.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert metrics.holm([0.036, 0.2, 0.5]).tolist() == pytest.approx([0.108, 0.4, 0.5])
    assert metrics.holm([0.9, 0.8]).tolist() == pytest.approx([1.0, 1.0])


def test_the_bootstrap_gives_accuracy_intervals_and_counts_the_subjects(predictions):
    prob, target = predictions
    subjects = np.repeat([f"S{i}" for i in range(10)], 20)
    result = metrics.bootstrap_mean_f1(prob, target, subjects, n_boot=200)
    assert result["accuracy_low"] <= result["mean_accuracy"] <= result["accuracy_high"]
    assert result["per_au_accuracy_low"].shape == result["per_au_low"].shape
    assert result["subjects"] == 10
