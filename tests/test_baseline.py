"""The HOG + logistic-regression baseline on a tiny synthetic set, its place in the comparison
tables and plots, and the learning-curve figures of 02 and 03."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aufacs.analysis import baseline, compare
from aufacs.core.config import save_config
from aufacs.core.errors import AufacsError
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.data.synthetic.planning import DEFECT_FIELDS
from aufacs.engine.config import TrainConfig
from aufacs.engine.runs import fold_split
from aufacs.report import plots, tables

HOG = baseline.BASELINE_LABELS["hog"]
MAJORITY = baseline.BASELINE_LABELS["majority"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder (configuration and one evaluated epoch, no checkpoint) over the aligned
    cache of a small synthetic set without defects."""
    root = tmp_path_factory.mktemp("baseline")
    data, folder = root / "data", root / "run"
    synth = SynthConfig(subjects=9, tasks=2, frames_per_task=10)
    no_defects = dict.fromkeys(DEFECT_FIELDS.values(), 0)
    generate_synthetic(data, SynthConfig(**{**vars(synth), **no_defects}), progress=False)
    prepare(PrepareConfig(data=data, size=64), progress=False)
    folder.mkdir()
    config = TrainConfig(model="jaa_net", data=str(data), kind="synthetic", out=str(folder))
    save_config(config, folder / "config.json")
    summary = {"epoch": [1], "mean_f1": [0.2], "mean_accuracy": [0.5], "nme": [np.nan]}
    summary |= {"failure_rate": [np.nan], "frames": [90]}  # every column evaluate writes
    pd.DataFrame(summary).to_csv(folder / "evaluation_summary.csv", index=False)
    return folder


def test_the_hog_baseline_beats_the_majority_baseline_on_a_learnable_set(run):
    means = baseline.baseline_means(run)
    assert list(means) == [MAJORITY, HOG]
    assert means[HOG] > means[MAJORITY]


def test_hog_predictions_hold_a_probability_per_test_frame_and_au_in_cache_order(run):
    predictions = baseline.hog_predictions(run)
    loaded = compare.load_run_config(run)
    cache = prepare(PrepareConfig(data=Path(loaded.data), size=64), progress=False).cache
    test = cache.table["subject"].isin(fold_split(cache, "synthetic", 1).test).to_numpy()
    assert predictions.prob.shape == (test.sum(), len(cache.aus))
    assert ((predictions.prob >= 0) & (predictions.prob <= 1)).all()
    np.testing.assert_array_equal(predictions.frame, cache.table["frame"][test])
    np.testing.assert_array_equal(predictions.target, cache.labels[test])


def test_hog_predictions_are_kept_in_the_run_folder_and_read_back(run):
    first = baseline.hog_predictions(run)
    assert len(list(run.glob("hog_baseline_*.npz"))) == 1
    np.testing.assert_array_equal(baseline.hog_predictions(run).prob, first.prob)


def test_hog_features_have_one_descriptor_per_crop():
    crops = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    assert baseline.hog_features(crops).shape == (3, 36 * 7 * 7)


def test_an_au_with_a_single_training_class_is_predicted_as_that_class():
    rng = np.random.default_rng(0)
    target = np.stack([np.ones(20), np.r_[np.zeros(10), np.ones(10)]], axis=1)
    features = rng.normal(size=(20, 4)) + target[:, 1:] * 3
    prob = baseline.fit_predict(features, target, features[:5])
    assert prob.shape == (5, 2) and (prob[:, 0] == 1).all()


def test_an_unknown_baseline_is_refused(run):
    with pytest.raises(AufacsError, match="unknown baseline 'svm'"):
        baseline.baseline_table(run, "svm")


def test_each_baseline_is_a_row_of_the_epoch_and_comparison_tables(run):
    best = tables.best_epochs({"jaa_net": run}, baseline.baseline_means(run))
    assert list(best.index) == ["jaa_net", MAJORITY, HOG] and best.loc[HOG, "best epoch"] == "–"
    per_au = pd.DataFrame({"model": ["jaa_net"], "au": ["mean"], "f1": [0.5], "accuracy": [0.7]})
    ours = compare.ours_table(per_au, baseline.baseline_tables(run))
    assert ours["model"].tolist() == ["jaa_net", MAJORITY, HOG]


def test_notes_and_published_metrics_place_every_run_against_each_baseline(run):
    per_au = pd.DataFrame(
        {"model": ["jaa_net"], "au": ["mean"], "f1": [0.99], "low": [0.98], "high": [1.0]}
    )
    baselines = baseline.baseline_tables(run)
    empty = pd.DataFrame(columns=compare.PAIRED_COLUMNS)
    (note,) = compare.comparison_notes(per_au, baselines, empty)
    assert f"is above the {MAJORITY}" in note and f"is above the {HOG}" in note
    summary = compare.metric_summary(per_au, baselines)
    assert summary[f"{HOG} mean F1"] == round(baseline.baseline_mean_f1(run, "hog"), 4)
    assert summary["every model above the baseline"] and summary[f"every model above the {HOG}"]


def test_the_epoch_and_comparison_plots_draw_every_baseline(run):
    summary = pd.DataFrame({"epoch": [1, 2], "mean_f1": [0.3, 0.5], "mean_accuracy": [0.7, 0.8]})
    means = baseline.baseline_means(run)
    f1 = plots.epoch_curves({"a": summary}, baseline=means).axes[0]
    assert [t.get_text() for t in f1.get_legend().get_texts()] == ["a", MAJORITY, HOG]
    per_au = pd.DataFrame(
        {"model": "a", "au": [1, "mean"], "f1": 0.5, "low": 0.4, "high": 0.6, "accuracy": 0.7}
    )
    ax = plots.comparison_bars(per_au, baseline.baseline_tables(run)).axes[0]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"a", MAJORITY, HOG}


def test_learning_curves_put_each_runs_mean_f1_beside_its_training_loss_on_whole_epochs():
    table = pd.DataFrame({"epoch": [1, 2, 3], "mean_f1": [0.2, 0.3, 0.4], "train_loss": 0.5})
    figure = plots.learning_curves({"a": table, "b": table}, {MAJORITY: 0.1})
    f1_axes = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in f1_axes] == ["a", "b"] and len(figure.axes) == 4
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert labels == ["mean F1", MAJORITY, "training loss"]
    figure.canvas.draw()
    assert all(float(t).is_integer() for t in f1_axes[0].get_xticks())


def iterations(first: float) -> pd.DataFrame:
    """A log of 40 iterations over 2 epochs whose first loss is ``first`` and the rest 1."""
    step = np.arange(1, 41)
    loss = np.r_[first, np.ones(39)]
    return pd.DataFrame(
        {"epoch": (step - 1) // 20 + 1, "iteration": (step - 1) % 20 + 1, "step": step, "lr": 0.1}
    ).assign(loss=loss)


def test_a_loss_whose_first_iterations_dwarf_the_rest_is_drawn_on_a_log_scale():
    ax = plots.loss_curves(iterations(first=50.0)).axes[0]
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()


def test_a_loss_of_one_scale_stays_on_a_linear_axis():
    ax = plots.loss_curves(iterations(first=2.0)).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "loss"
