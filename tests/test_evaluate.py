"""Epoch-by-epoch evaluation: tidy tables, saved predictions, the JAA-Net log, the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from train_worker import FRAMES_PER_SUBJECT, make_data, tiny_config

from aufacs.analysis.evaluate import (
    Predictions,
    baseline_scores,
    evaluate_run,
    load_predictions,
    majority_prob,
    score,
)
from aufacs.analysis.metrics import au_scores
from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.engine.train import train

TEST_FRAMES = 2 * FRAMES_PER_SUBJECT  # fold 1 tests on two of the six subjects


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-epoch tiny JAA-Net run, evaluated once."""
    root = tmp_path_factory.mktemp("evaluate")
    out = train(tiny_config(make_data(root / "data"), root / "run", max_steps_per_epoch=2))
    evaluate_run(out, progress=False)
    return out


def test_the_evaluation_table_has_one_row_per_epoch_and_au(run):
    table = pd.read_csv(run / "evaluation.csv")
    assert list(table.columns[:2]) == ["epoch", "au"]
    assert {"f1", "accuracy", "precision", "recall", "support"} <= set(table.columns)
    assert len(table) == 2 * len(BP4D_AUS)
    assert (table.groupby("epoch")["known"].max() == TEST_FRAMES).all()


def test_the_summary_gives_mean_f1_accuracy_and_landmark_error_per_epoch(run):
    summary = pd.read_csv(run / "evaluation_summary.csv")
    table = pd.read_csv(run / "evaluation.csv")
    assert list(summary["epoch"]) == [1, 2]
    np.testing.assert_allclose(summary["mean_f1"], table.groupby("epoch")["f1"].mean())
    assert summary["nme"].notna().all() and summary["failure_rate"].between(0, 1).all()


def test_saved_predictions_reproduce_the_table(run):
    predictions = load_predictions(run, 2)
    assert predictions.prob.shape == (TEST_FRAMES, len(BP4D_AUS))
    assert predictions.landmarks.shape == (TEST_FRAMES, 49, 2)
    assert set(predictions.subject) == {"F003", "M003"}
    table = pd.read_csv(run / "evaluation.csv").query("epoch == 2").reset_index(drop=True)
    again = au_scores(predictions.prob, predictions.target, BP4D_AUS)
    np.testing.assert_allclose(again["f1"], table["f1"])


def test_the_jaa_net_log_has_one_tab_separated_line_per_epoch(run):
    lines = (run / "AU_pred.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2"]
    assert all(len(line.split("\t")) == 5 for line in lines)


def test_evaluating_one_epoch_again_keeps_the_rows_of_the_others(run):
    before = pd.read_csv(run / "evaluation_summary.csv")
    again = evaluate_run(run, [2], progress=False)
    after = pd.read_csv(run / "evaluation_summary.csv")
    assert list(again["epoch"]) == [2]
    pd.testing.assert_frame_equal(before, after)


def test_an_epoch_without_a_checkpoint_is_refused(run):
    with pytest.raises(
        AufacsError, match=r"no checkpoint for epoch\(s\) \[7\]; saved epochs: \[1, 2\]"
    ):
        evaluate_run(run, [7], progress=False)


def test_a_model_without_landmarks_has_no_landmark_error():
    target = np.array([[1.0, 0.0], [0.0, np.nan]])
    predictions = Predictions(
        prob=np.array([[0.9, 0.2], [0.1, 0.7]]),
        target=target,
        subject=np.array(["F001"] * 2),
        task=np.array(["T1"] * 2),
        frame=np.arange(2),
        true_landmarks=np.zeros((2, 49, 2)),
        landmarks=None,
        aus=np.array([1, 2]),
    )
    _, summary = score(predictions)
    assert np.isnan(summary["nme"]) and summary["mean_f1"] == 0.5


def test_the_majority_baseline_predicts_each_aus_most_frequent_training_class():
    train_target = np.array([[1.0, 0.0], [1.0, np.nan], [0.0, 0.0]])
    np.testing.assert_array_equal(majority_prob(train_target, 2), [[1.0, 0.0], [1.0, 0.0]])


def test_the_majority_baseline_scores_the_folds_test_subjects(run):
    baseline = baseline_scores(run, "majority")
    assert list(baseline["au"]) == list(BP4D_AUS)
    assert (baseline["known"] <= TEST_FRAMES).all() and baseline["f1"].between(0, 1).all()


def test_always_present_has_recall_one_for_every_au_that_occurs(run):
    baseline = baseline_scores(run, "present")
    assert (baseline.loc[baseline["support"] > 0, "recall"] == 1).all()
