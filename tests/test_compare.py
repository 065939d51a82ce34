"""Comparison tables and notes, on run folders whose predictions are made up (no training):
a perfect run, a run that guesses at random, and the real cache of a tiny synthetic set."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aufacs.analysis import compare, literature
from aufacs.analysis.evaluate import Predictions, predictions_path, score
from aufacs.core.config import save_config
from aufacs.core.errors import AufacsError
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.data.synthetic.planning import DEFECT_FIELDS
from aufacs.engine.config import TrainConfig
from aufacs.engine.runs import fold_split

NO_DEFECTS = dict.fromkeys(DEFECT_FIELDS.values(), 0)


def write_run(folder: Path, model: str, data: Path, cache, probs: dict[int, np.ndarray]) -> Path:
    """A run folder as training and evaluation leave it, with ``probs`` per epoch."""
    folder.mkdir(parents=True)
    save_config(
        TrainConfig(
            model=model,
            data=str(data),
            kind="synthetic",
            out=str(folder),
            epochs=len(probs),
            batch_size=4,
        ),
        folder / "config.json",
    )
    test = cache.table["subject"].isin(fold_split(cache, "synthetic", 1).test).to_numpy()
    rows, per_au, summaries = cache.table[test], [], []
    for epoch, prob in probs.items():
        predictions = Predictions(
            prob=prob,
            target=cache.labels[test],
            subject=rows["subject"].to_numpy(str),
            task=rows["task"].to_numpy(str),
            frame=rows["frame"].to_numpy(np.int64),
            true_landmarks=cache.landmarks[test],
            landmarks=None,
            aus=np.asarray(cache.aus.aus),
        )
        predictions.save(predictions_path(folder, epoch))
        table, summary = score(predictions)
        per_au.append(table.assign(epoch=epoch))
        summaries.append({"epoch": epoch, **summary})
    pd.concat(per_au).to_csv(folder / "evaluation.csv", index=False)
    pd.DataFrame(summaries).to_csv(folder / "evaluation_summary.csv", index=False)
    epochs = pd.DataFrame(
        {"epoch": list(probs), "loss": 1.0, "seconds": 2.0, "samples_per_s": 10.0}
    )
    epochs.to_csv(folder / "epochs.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    data = root / "data"
    generate_synthetic(
        data, SynthConfig(subjects=6, tasks=2, frames_per_task=6, **NO_DEFECTS), progress=False
    )
    cache = prepare(PrepareConfig(data=data, size=32), progress=False).cache
    test = cache.table["subject"].isin(fold_split(cache, "synthetic", 1).test).to_numpy()
    truth = np.nan_to_num(cache.labels[test])
    guess = np.random.default_rng(0).random(truth.shape)
    perfect = write_run(root / "perfect", "jaa_net", data, cache, {1: guess, 2: truth})
    random = write_run(root / "random", "eac_net", data, cache, {1: guess, 2: 1 - truth})
    return {"jaa_net": perfect, "eac_net": random}


def test_runs_are_named_after_their_models(runs):
    assert list(compare.name_runs(list(runs.values()))) == ["jaa_net", "eac_net"]


def test_a_model_trained_twice_is_told_apart_by_its_folder(runs):
    names = compare.name_runs([runs["jaa_net"], runs["jaa_net"]])
    assert list(names) == ["jaa_net (perfect)"]


def test_the_epoch_table_has_a_row_per_epoch_with_its_training_seconds(runs):
    table = compare.epoch_table(runs["jaa_net"])
    assert table["epoch"].tolist() == [1, 2] and table["seconds"].tolist() == [2.0, 2.0]


def test_the_best_epoch_has_the_highest_mean_f1(runs):
    assert compare.best_epoch(runs["jaa_net"]) == 2
    assert compare.best_epoch(runs["eac_net"]) == 1


def test_an_epoch_that_was_not_evaluated_is_refused(runs):
    with pytest.raises(AufacsError, match=r"evaluated epochs \[1, 2\]"):
        compare.chosen_epoch(runs["jaa_net"], 7)


def test_perfect_predictions_score_f1_one_on_every_au_the_test_frames_show(runs):
    table = compare.per_au_table({"jaa_net": runs["jaa_net"]}, "last", n_boot=50)
    shown = compare.evaluation_table(runs["jaa_net"]).query("epoch == 2 and support > 0")["au"]
    assert (table.set_index("au").loc[shown.tolist(), "f1"] == 1.0).all()


def test_every_run_gets_a_mean_row_whose_interval_holds_its_mean(runs):
    table = compare.per_au_table(runs, "best", n_boot=200)
    means = table[table["au"] == "mean"]
    assert len(means) == 2
    assert ((means["low"] <= means["f1"]) & (means["f1"] <= means["high"])).all()


@pytest.mark.parametrize("value", ["f1", "accuracy"])
def test_the_wide_table_shows_f1_and_accuracy_with_their_intervals_per_au(runs, value):
    wide = compare.wide_table(compare.per_au_table(runs, "last", n_boot=20), value)
    cell = r"\d\.\d\d\d \[\d\.\d\d\d, \d\.\d\d\d\]"
    assert re.fullmatch(cell, wide.loc["AU1", "eac_net"])
    assert wide.index[-1] == "mean" and list(wide.columns) == ["jaa_net", "eac_net"]


def test_accuracy_has_a_subject_bootstrap_interval_around_it(runs):
    table = compare.per_au_table(runs, "last", n_boot=200)
    assert (table["accuracy_low"] <= table["accuracy"] + 1e-12).all()
    assert (table["accuracy"] <= table["accuracy_high"] + 1e-12).all()
    assert table["subjects"].nunique() == 1 and table["subjects"].iloc[0] >= 2


def test_a_perfect_run_minus_an_inverted_one_is_a_clear_positive_difference(runs):
    paired = compare.paired_table(runs, "last", n_boot=200)
    row = paired.iloc[0]
    assert row["pair"] == "jaa_net - eac_net" and row["low"] > 0
    assert list(paired.columns) == compare.PAIRED_COLUMNS and row["p_holm"] >= row["p_value"]


def test_the_baseline_table_ends_with_the_mean_row(runs):
    baseline = compare.baseline_table(runs["jaa_net"])
    assert baseline["au"].iloc[-1] == "mean"
    assert baseline["f1"].iloc[-1] == pytest.approx(compare.baseline_mean_f1(runs["jaa_net"]))


def test_gap_notes_name_the_best_epoch_and_the_margin_over_the_baseline(runs):
    notes = compare.gap_notes(runs["eac_net"], "best")
    assert "the best is epoch 1" in notes[0] and "majority-class baseline" in notes[-1]


def test_gap_notes_name_the_aus_with_the_largest_accuracy_f1_gap(runs):
    rows = compare.evaluation_table(runs["eac_net"]).query("epoch == 1")
    worst = rows.assign(gap=rows["accuracy"] - rows["f1"]).nlargest(1, "gap")["au"].iloc[0]
    assert f"comes from AU{worst} " in compare.gap_notes(runs["eac_net"], 1)[1]


def test_comparison_notes_put_the_perfect_run_above_the_baseline(runs):
    per_au = compare.per_au_table(runs, "last", n_boot=50)
    baseline = compare.baseline_table(runs["jaa_net"])
    notes = compare.comparison_notes(per_au, baseline, compare.paired_table(runs, n_boot=50))
    assert notes[0].startswith("jaa_net: mean F1") and "is above the majority" in notes[0]
    assert "a difference that holds after correcting" in notes[-2]
    assert "Holm-corrected p = " in notes[-2] and " test subjects resampled" in notes[-2]
    assert any(n.startswith("jaa_net has the highest mean F1") for n in notes)
    assert notes[-1].startswith("Every pair differs after correction") and "one seed" in notes[-1]


def test_the_published_summary_says_whether_every_model_beats_the_baseline(runs):
    per_au = compare.per_au_table(runs, "last", n_boot=20)
    summary = compare.metric_summary(per_au, compare.baseline_table(runs["jaa_net"]))
    mean = per_au.query("model == 'jaa_net' and au == 'mean'")["f1"].iloc[0]
    assert summary["jaa_net mean F1"] == round(mean, 4)
    assert summary["every model above the baseline"] is False


def test_training_time_comes_from_the_epoch_log(runs):
    table = compare.training_time_table(runs)
    assert table["seconds_per_epoch"].tolist() == [2.0, 2.0]


def test_published_numbers_are_labelled_as_literature_values_with_their_source():
    table = literature.literature_table()
    assert set(table["label"]) == {literature.LABEL} and table["source"].str.len().min() > 20


def test_published_per_au_f1_averages_to_the_reported_mean_within_rounding():
    table = literature.literature_table()
    per_au = table.filter(regex=r"^AU\d+$").mean(axis=1)
    assert (per_au - table["mean_f1"]).abs().max() < 0.005


def test_a_method_without_published_numbers_is_refused():
    with pytest.raises(AufacsError, match="no published BP4D result for model 'resnet'"):
        literature.literature_table(["resnet"])


def test_the_seed_replication_peaks_at_epoch_6():
    seed = literature.seed_epoch_table()
    assert len(seed) == 12 and seed.loc[seed["mean_f1"].idxmax(), "epoch"] == 6


def test_the_training_report_publishes_epochs_loss_and_time(runs):
    assert compare.training_metrics(runs["jaa_net"]) == {
        "epochs": 2,
        "final_loss": 1.0,
        "seconds_per_epoch": 2.0,
    }


def test_the_epoch_report_publishes_each_runs_best_epoch(runs):
    metrics = compare.best_metrics(runs)
    assert metrics["jaa_net best epoch"] == 2 and metrics["eac_net best epoch"] == 1


def paired_row(low: float, high: float, p_holm: float) -> pd.DataFrame:
    return pd.DataFrame(
        [{"pair": "a - b", "difference": 0.05, "low": low, "high": high, "p_value": p_holm / 3}]
    ).assign(p_holm=p_holm, subjects=4)


@pytest.mark.parametrize(
    ("low", "high", "p_holm", "holds"),
    [(0.01, 0.09, 0.01, True), (-0.01, 0.09, 0.03, False), (0.01, 0.09, 0.108, False)],
)
def test_a_difference_is_called_one_only_when_it_survives_the_correction(
    runs, low, high, p_holm, holds
):
    per_au = compare.per_au_table(runs, "last", n_boot=20)
    baseline = compare.baseline_table(runs["jaa_net"])
    *_, note, ranking = compare.comparison_notes(per_au, baseline, paired_row(low, high, p_holm))
    assert ("holds after correcting" in note) is holds and "clear" not in note
    assert "4 test subjects" in note and "1 comparison," in note
    assert ranking.startswith("The ranking is not stable: a - b cannot") is not holds


def test_a_model_run_on_several_folds_is_told_apart_by_its_fold(runs, monkeypatch):
    folds = iter([1, 2, 2, 1])
    real = compare.load_run_config
    monkeypatch.setattr(
        compare, "load_run_config", lambda run: dataclasses.replace(real(run), fold=next(folds))
    )
    names = compare.name_runs([runs["jaa_net"], runs["eac_net"], runs["jaa_net"], runs["eac_net"]])
    assert list(names) == [
        "jaa_net (fold 1)",
        "eac_net (fold 2)",
        "jaa_net (fold 2)",
        "eac_net (fold 1)",
    ]
