"""The papers' three-fold table, its files, and paired tests over subjects (on made-up
predictions, checked against scikit-learn and direct enumeration)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from aufacs.analysis import folds, subjects
from aufacs.analysis.evaluate import Predictions
from aufacs.analysis.literature import literature_table
from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.report import paper_tables
from aufacs.report.three_folds import fold_notes as three_fold_notes


def predictions(seed: int, names: list[str], frames: int = 40, skill: float = 0.7) -> Predictions:
    """Frames of ``names`` subjects, 12 AUs, labels with some unknown, a model right with
    probability ``skill``."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(names, frames)
    target = (rng.random((len(subject), 12)) < 0.3).astype(np.float64)
    target[rng.random(target.shape) < 0.05] = np.nan
    right = rng.random(target.shape) < skill
    prob = np.where(right, np.nan_to_num(target), 1 - np.nan_to_num(target)) * 0.8 + 0.1
    n = len(subject)
    return Predictions(
        prob=prob,
        target=target,
        subject=subject,
        task=np.full(n, "T1"),
        frame=np.arange(n),
        true_landmarks=np.zeros((n, 49, 2)),
        landmarks=None,
        aus=np.array(BP4D_AUS),
    )


def three_folds(skill: float, seed: int = 0) -> dict[int, Predictions]:
    parts = [["F001", "F002"], ["F003", "M001", "M002"], ["M003", "M004"]]
    return {k + 1: predictions(seed + k, part, skill=skill) for k, part in enumerate(parts)}


def sklearn_f1(p: Predictions) -> np.ndarray:
    known = ~np.isnan(p.target)
    return np.array(
        [
            f1_score(p.target[known[:, j], j], p.prob[known[:, j], j] >= 0.5, zero_division=0)
            for j in range(p.target.shape[1])
        ]
    )


def test_fold_rows_are_each_folds_f1_and_the_mean_is_their_arithmetic_mean():
    model = three_folds(0.7)
    block = folds.fold_table({"mine": model}).loc["mine"]
    by_fold = np.stack([sklearn_f1(p) for p in model.values()])
    for k in (1, 2, 3):
        np.testing.assert_allclose(block.loc[f"fold {k}"].iloc[:12], by_fold[k - 1])
        assert block.loc[f"fold {k}", "Avg"] == pytest.approx(by_fold[k - 1].mean())
    np.testing.assert_allclose(block.loc[folds.MEAN_OF_FOLDS].iloc[:12], by_fold.mean(axis=0))
    assert block.loc[folds.MEAN_OF_FOLDS, "Avg"] == pytest.approx(by_fold.mean())
    np.testing.assert_allclose(block.loc[folds.SPREAD].iloc[:12], by_fold.std(axis=0, ddof=1))
    assert list(block.columns) == [f"AU{au}" for au in BP4D_AUS] + ["Avg"]
    assert folds.POOLED not in block.index


def test_pooling_the_frames_is_a_labelled_row_of_its_own_and_differs_from_the_mean():
    model = three_folds(0.7)
    block = folds.fold_table({"mine": model}, pooled=True).loc["mine"]
    pooled = folds.concatenated(model)
    assert len(pooled.subject) == sum(len(p.subject) for p in model.values())
    np.testing.assert_allclose(block.loc[folds.POOLED].iloc[:12], sklearn_f1(pooled))
    assert block.loc[folds.POOLED, "Avg"] != block.loc[folds.MEAN_OF_FOLDS, "Avg"]
    assert "not the papers' protocol" in folds.POOLED


def test_published_rows_join_their_models_block_and_the_files_mark_the_best_values(tmp_path):
    table = folds.fold_table(
        {"jaa_net": three_folds(0.6), "mine": three_folds(0.9, seed=7)},
        literature=literature_table(["jaa_net"]),
    )
    assert table.loc[("jaa_net", folds.PUBLISHED), "Avg"] == pytest.approx(0.600)
    paths = paper_tables.write_paper_table(table, tmp_path)
    csv = pd.read_csv(paths["csv"], index_col=[0, 1])
    np.testing.assert_allclose(csv.to_numpy(), table.to_numpy(), equal_nan=True)
    markdown, latex = paths["md"].read_text(), paths["tex"].read_text()
    best = 100 * table.loc[("mine", folds.MEAN_OF_FOLDS), "Avg"]
    assert f"**{best:.1f}**" in markdown and rf"\textbf{{{best:.1f}}}" in latex
    assert "arithmetic mean of the folds" in markdown and "arithmetic mean" in latex
    assert latex.count(r"\midrule") == 2 and r"\toprule" in latex and r"\bottomrule" in latex
    assert "jaa\\_net" in latex


def test_two_runs_of_one_fold_are_refused(tmp_path, monkeypatch):
    class Config:
        fold = 1

    monkeypatch.setattr(folds, "load_run_config", lambda run: Config())
    monkeypatch.setattr(folds, "chosen_epoch", lambda run, epoch: 1)
    monkeypatch.setattr(folds, "load_predictions", lambda run, epoch: three_folds(0.5)[1])
    with pytest.raises(AufacsError, match="two runs test fold 1"):
        folds.fold_predictions([tmp_path / "a", tmp_path / "b"])


def test_subject_f1_leaves_out_aus_a_subject_cannot_be_scored_on():
    p = predictions(0, ["S1"], frames=4)
    p.target[:] = 0
    p.prob[:] = 0.1
    p.target[0, 0], p.prob[0, 0] = 1, 0.9  # AU1: one true positive; every other AU unscorable
    assert subjects.subject_f1(p).loc["S1"] == 1.0


def test_the_sign_flip_p_is_exact_and_never_below_what_the_subjects_allow():
    d = np.array([0.05, 0.02, 0.03, 0.04])
    assert subjects.sign_flip_p(d) == subjects.minimum_p(4) == 0.125
    d = np.array([0.05, -0.02, 0.03, 0.01, -0.04, 0.02])
    flips = [np.dot(s, d) for s in itertools.product((1, -1), repeat=6)]
    expected = np.mean(np.abs(flips) >= abs(d.sum()) - 1e-12)
    assert subjects.sign_flip_p(d) == pytest.approx(expected)
    big = np.full(30, 0.01)
    assert subjects.minimum_p(30) < subjects.sign_flip_p(big) <= 2 / 100_001


def test_paired_table_pairs_every_model_on_its_subjects_with_holm_correction():
    a, b, c = (
        predictions(s, ["S1", "S2", "S3", "S4"], skill=k) for s, k in ((0, 0.9), (1, 0.6), (2, 0.5))
    )
    table = subjects.paired_subject_table({"a": a, "b": b, "c": c})
    assert len(table) == 3 and (table["subjects"] == 4).all()
    assert (table["p_value"] >= table["minimum_p"]).all()
    assert (table["p_holm"] >= table["p_value"]).all()
    first = table.iloc[0]
    expected = (subjects.subject_f1(a) - subjects.subject_f1(b)).mean()
    assert first["difference"] == pytest.approx(expected)


def test_the_notes_give_each_models_folds_and_never_round_a_p_value_to_zero():
    models = {"a": three_folds(0.9), "b": three_folds(0.5, seed=3)}
    table = folds.fold_table(models)
    paired = pd.DataFrame([{"a": "a", "b": "b", "subjects": 12, "difference": 0.1, "a_wins": 12}])
    paired = paired.assign(p_value=2 / 4096, p_holm=2 / 4096, minimum_p=2 / 4096)
    notes = three_fold_notes(table, paired)
    assert notes[0].startswith("a: mean F1") and "over 3 fold(s)" in notes[0]
    assert "p = 0.000488" in notes[-1] and "p = 0.000," not in notes[-1]
