"""Tables that compare evaluated runs, and notes derived from their numbers.

Everything here reads what :func:`aufacs.analysis.evaluate.evaluate_run` and training wrote into run
folders (``evaluation.csv``, ``evaluation_summary.csv``, ``predictions/epoch_NNN.npz``,
``epochs.csv``); no model runs. Confidence intervals come from
:func:`aufacs.analysis.metrics.bootstrap_mean_f1` and
:func:`aufacs.analysis.metrics.paired_f1_difference`,
which resample test *subjects* (frames of one subject are not independent).

Runs are given as ``{name: run folder}``; :func:`name_runs` makes such a mapping from a list
of folders, naming each run after its model.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from aufacs.analysis.baseline import baseline_mean_f1, baseline_means
from aufacs.analysis.baseline import baseline_table as baseline_table  # compare's tables too
from aufacs.analysis.evaluate import EVALUATION_FILE, SUMMARY_FILE, Predictions, load_predictions
from aufacs.analysis.evaluate import run_table as _read  # refuses damaged tables
from aufacs.analysis.metrics import bootstrap_mean_f1, holm, paired_f1_difference
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.engine.runs import EPOCHS_FILE, load_run_config

#: Epoch choices besides a number: the last evaluated epoch, or the one with the best mean F1.
EPOCH_CHOICES: tuple[str, ...] = ("last", "best")
#: How many AUs a note names as the cause of a gap.
NOTE_AUS = 3
#: Family-wise error rate of the paired comparisons (Holm p-values, Bonferroni intervals).
FAMILY_ALPHA = 0.05
#: Below this many test subjects, a note says that the subject bootstrap is rough.
FEW_SUBJECTS = 10
#: Columns of :func:`paired_table`.
PAIRED_COLUMNS = ["pair", "difference", "low", "high", "p_value", "p_holm", "subjects"]

Runs = Mapping[str, Path | str]
#: One majority-baseline table (:func:`baseline_table`) or every baseline's, by label.
Baselines = pd.DataFrame | Mapping[str, pd.DataFrame]


def name_runs(folders: Sequence[Path | str]) -> dict[str, Path]:
    """``{model name: folder}`` for run folders; a model trained more than once gets
    ``model (fold k)`` where its runs test different folds, else ``model (folder)``."""
    configs = [load_run_config(folder) for folder in folders]
    folds = {c.model: [d.fold for d in configs if d.model == c.model] for c in configs}
    return {
        _run_label(config.model, config.fold, folds[config.model], Path(folder)): Path(folder)
        for config, folder in zip(configs, folders, strict=True)
    }


def _run_label(model: str, fold: int, folds_of_model: list[int], folder: Path) -> str:
    if len(folds_of_model) == 1:
        return model
    if len(set(folds_of_model)) == len(folds_of_model):
        return f"{model} (fold {fold})"
    return f"{model} ({folder.name})"


def epoch_table(run: Path | str) -> pd.DataFrame:
    """One row per evaluated epoch, as the seed's Table 2: ``epoch``, ``mean_f1``,
    ``mean_accuracy``, ``nme``, ``failure_rate`` (NaN without a landmark branch), plus
    ``train_loss`` (the epoch's mean training loss) and ``seconds`` of training of that epoch
    where the training log (``epochs.csv``) has them."""
    summary = _read(run, SUMMARY_FILE).drop(columns="frames", errors="ignore")
    if (Path(run) / EPOCHS_FILE).is_file():
        log = _read(run, EPOCHS_FILE).rename(columns={"loss": "train_loss"})
        logged = [c for c in ("epoch", "train_loss", "seconds") if c in log]
        summary = summary.merge(log[logged], on="epoch", how="left")
    return summary


def evaluation_table(run: Path | str) -> pd.DataFrame:
    """``evaluation.csv`` of a run: one row per epoch x AU."""
    return _read(run, EVALUATION_FILE)


def best_epoch(run: Path | str) -> int:
    """The evaluated epoch with the highest mean F1 (the earliest on a tie)."""
    summary = _read(run, SUMMARY_FILE)
    return int(summary.loc[summary["mean_f1"].idxmax(), "epoch"])


def chosen_epoch(run: Path | str, epoch: int | str = "last") -> int:
    """``epoch`` as a number: itself, the ``"last"`` evaluated epoch or the ``"best"`` one."""
    evaluated = _read(run, SUMMARY_FILE)["epoch"].astype(int).tolist()
    if epoch == "best":
        return best_epoch(run)
    if epoch == "last":
        return max(evaluated)
    if isinstance(epoch, str) or int(epoch) not in evaluated:
        raise AufacsError(
            f"epoch must be a number among the evaluated epochs {evaluated} of {run}, or one of "
            f"{', '.join(EPOCH_CHOICES)}; got {epoch!r}"
        )
    return int(epoch)


def gap_notes(run: Path | str, epoch: int | str = "best") -> list[str]:
    """Sentences the numbers of one evaluated epoch support: the best and last epochs, how
    far accuracy exceeds F1 and the AUs that cause it, and the margin over the majority-class
    baseline."""
    epoch = chosen_epoch(run, epoch)
    summary = _read(run, SUMMARY_FILE).set_index("epoch")
    rows = evaluation_table(run)
    rows = rows[rows["epoch"] == epoch].assign(gap=lambda t: t["accuracy"] - t["f1"])
    rows = rows.assign(rate=rows["support"] / rows["known"])
    first, last, best = summary.index.min(), summary.index.max(), best_epoch(run)
    f1 = summary["mean_f1"]
    notes = [
        f"Mean F1 goes from {f1[first]:.3f} (epoch {first}) to {f1[last]:.3f} (epoch {last}); "
        f"the best is epoch {best} with {f1[best]:.3f}."
    ]
    mean_f1, mean_accuracy = rows["f1"].mean(), rows["accuracy"].mean()
    causes = rows.nlargest(NOTE_AUS, "gap")
    named = ", ".join(
        f"{au_column(r.au)} (accuracy {r.accuracy:.2f}, F1 {r.f1:.2f}, present in "
        f"{r.rate:.0%} of test frames)"
        for r in causes.itertuples()
    )
    notes.append(
        f"At epoch {epoch} mean accuracy ({mean_accuracy:.3f}) exceeds mean F1 ({mean_f1:.3f}) "
        f"by {mean_accuracy - mean_f1:.3f}; most of the gap comes from {named}: for a rare AU, "
        "saying 'absent' is usually right, so accuracy stays high while F1 is low."
    )
    majority = baseline_mean_f1(run)
    verdict = "above" if mean_f1 > majority else "NOT above"
    notes.append(
        f"The majority-class baseline scores mean F1 {majority:.3f}; epoch {epoch} is {verdict} "
        f"it by {mean_f1 - majority:+.3f}."
    )
    return notes


def _predictions(runs: Runs, epoch: int | str) -> dict[str, Predictions]:
    return {name: load_predictions(run, chosen_epoch(run, epoch)) for name, run in runs.items()}


def _check_same_frames(predictions: Mapping[str, Predictions]) -> None:
    """Paired statistics need every run's predictions on the same frames in the same order."""
    (first_name, first), *others = predictions.items()
    for name, other in others:
        same = (
            len(other.frame) == len(first.frame)
            and (other.subject == first.subject).all()
            and (other.task == first.task).all()
            and (other.frame == first.frame).all()
        )
        if not same:
            raise AufacsError(
                f"runs {first_name} and {name} were evaluated on different test frames; "
                "compare runs of one data set and fold"
            )


def per_au_table(
    runs: Runs, epoch: int | str = "last", *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per run and AU: ``f1`` with its 95% bootstrap interval ``low`` / ``high`` (test
    subjects resampled), ``accuracy`` with its interval ``accuracy_low`` / ``accuracy_high``
    (the same resamples), ``epoch`` and the number of test ``subjects``; a row
    ``au == "mean"`` per run holds the means with their intervals."""
    tables = []
    for name, run in runs.items():
        number = chosen_epoch(run, epoch)
        scores = evaluation_table(run).query("epoch == @number")
        predictions = load_predictions(run, number)
        interval = bootstrap_mean_f1(
            predictions.prob, predictions.target, predictions.subject, n_boot=n_boot, seed=seed
        )
        per_au = scores[["au", "f1", "accuracy"]].assign(
            low=interval["per_au_low"],
            high=interval["per_au_high"],
            accuracy_low=interval["per_au_accuracy_low"],
            accuracy_high=interval["per_au_accuracy_high"],
        )
        mean = {
            "au": "mean",
            "f1": interval["mean_f1"],
            "accuracy": scores["accuracy"].mean(),
            **{k: interval[k] for k in ("low", "high", "accuracy_low", "accuracy_high")},
        }
        table = pd.concat([per_au.astype({"au": object}), pd.DataFrame([mean])])
        tables.append(table.assign(model=name, epoch=number, subjects=interval["subjects"]))
    columns = ["model", "au", "epoch", "f1", "low", "high", "accuracy", "accuracy_low"]
    columns += ["accuracy_high", "subjects"]
    return pd.concat(tables, ignore_index=True)[columns]


def wide_table(per_au: pd.DataFrame, value: str = "f1") -> pd.DataFrame:
    """``per_au`` as one row per AU (and ``mean``) and one column per run; cells
    ``"0.610 [0.550, 0.660]"``: ``value`` (``f1`` or ``accuracy``) with its 95% interval."""
    table = per_au.assign(au=per_au["au"].map(lambda a: a if a == "mean" else au_column(a)))
    low, high = ("low", "high") if value == "f1" else (f"{value}_low", f"{value}_high")
    cells = table.apply(lambda r: f"{r[value]:.3f} [{r[low]:.3f}, {r[high]:.3f}]", axis=1)
    table = table.assign(cell=cells)
    wide = table.pivot(index="au", columns="model", values="cell")
    return wide.reindex(
        index=list(dict.fromkeys(table["au"])), columns=list(dict.fromkeys(table["model"]))
    )


def paired_table(
    runs: Runs, epoch: int | str = "last", *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Every pair of runs (A, B): ``pair`` ("A - B"), ``difference`` in mean F1, its paired
    bootstrap interval ``low`` / ``high`` at family-wise 95% (Bonferroni: each at
    1 - 0.05 / pairs), the bootstrap ``p_value``, ``p_holm`` (Holm-corrected over the pairs)
    and the number of test ``subjects`` resampled; the same subject resample is used for
    both runs of a pair."""
    predictions = _predictions(runs, epoch)
    if len(predictions) < 2:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    _check_same_frames(predictions)
    pairs = list(itertools.combinations(predictions, 2))
    rows = []
    for a, b in pairs:
        first, second = predictions[a], predictions[b]
        result = paired_f1_difference(
            first.prob,
            second.prob,
            first.target,
            first.subject,
            n_boot=n_boot,
            seed=seed,
            confidence=1 - FAMILY_ALPHA / len(pairs),
        )
        rows.append({"pair": f"{a} - {b}", **result})
    table = pd.DataFrame(rows)
    table.insert(5, "p_holm", holm(table["p_value"]))
    return table[PAIRED_COLUMNS]


def training_time_table(runs: Runs) -> pd.DataFrame:
    """Per run: ``epochs`` trained, mean ``seconds_per_epoch`` and ``samples_per_s`` from
    ``epochs.csv``, and the configuration that sets them (``device``, ``batch_size``)."""
    rows = []
    for name, run in runs.items():
        epochs = _read(run, EPOCHS_FILE)
        config = load_run_config(run)
        rows.append(
            {
                "model": name,
                "epochs": len(epochs),
                "seconds_per_epoch": epochs["seconds"].mean(),
                "samples_per_s": epochs["samples_per_s"].mean(),
                "batch_size": config.batch_size,
                "device": config.device,
            }
        )
    return pd.DataFrame(rows)


def training_metrics(run: Path | str) -> dict[str, float]:
    """What a training report publishes: epochs trained, the last epoch's mean loss and the
    mean seconds per epoch (``epochs.csv``)."""
    epochs = _read(run, EPOCHS_FILE)
    return {
        "epochs": len(epochs),
        "final_loss": round(float(epochs["loss"].iloc[-1]), 4),
        "seconds_per_epoch": round(float(epochs["seconds"].mean()), 1),
    }


def best_metrics(runs: Runs) -> dict[str, float]:
    """What the epoch report publishes: each run's best epoch and its mean F1."""
    metrics: dict[str, float] = {}
    for name, run in runs.items():
        summary = _read(run, SUMMARY_FILE).set_index("epoch")
        best = best_epoch(run)
        metrics[f"{name} best epoch"] = best
        metrics[f"{name} best mean F1"] = round(float(summary.loc[best, "mean_f1"]), 4)
    return metrics


def comparison_notes(per_au: pd.DataFrame, baseline: Baselines, paired: pd.DataFrame) -> list[str]:
    """Sentences derived from the comparison: each run against each baseline (a
    majority-baseline table, or :func:`aufacs.analysis.baseline.baseline_tables`), the best
    run, the AUs each run does best, each paired difference, called a difference only
    where it survives the correction for multiple comparisons (Holm p-value and family-wise
    interval), and whether the ranking is stable."""
    means = per_au[per_au["au"] == "mean"].set_index("model")
    notes = []
    for name, row in means.iterrows():
        verdicts = "; ".join(
            _verdict(row, label, value) for label, value in baseline_means(baseline).items()
        )
        notes.append(
            f"{name}: mean F1 {row['f1']:.3f} [{row['low']:.3f}, {row['high']:.3f}] {verdicts}."
        )
    if len(means) > 1:
        best = means["f1"].idxmax()
        per = per_au[per_au["au"] != "mean"].pivot(index="au", columns="model", values="f1")
        ahead = per[best] > per.drop(columns=best).max(axis=1)
        won = ", ".join(au_column(a) for a in per.index[ahead]) or "no AU alone"
        notes.append(f"{best} has the highest mean F1, and the best F1 of all runs on {won}.")
    notes += [_paired_note(row, len(paired)) for row in paired.itertuples()]
    if len(means) > 1:
        notes.append(_ranking_note(paired))
    return notes


def _difference_holds(row) -> bool:
    """Whether a paired difference survives the correction: its family-wise interval
    excludes zero and its Holm-corrected p-value is below the family-wise level."""
    return (row.low > 0 or row.high < 0) and row.p_holm < FAMILY_ALPHA


def _ranking_note(paired: pd.DataFrame) -> str:
    """Whether the runs' order is settled: by the test subjects (every paired difference
    holds) and, beyond them, by the one training seed each run had."""
    open_pairs = [row.pair for row in paired.itertuples() if not _difference_holds(row)]
    if not open_pairs:
        return (
            "Every pair differs after correction on these test subjects; each model was still "
            "trained once (one seed), and only reruns with other seeds (`--seed`) show that "
            "the order does not depend on it."
        )
    return (
        f"The ranking is not stable: {', '.join(open_pairs)} cannot be told apart on these "
        "test subjects, and each model was trained once (one seed), so a rerun with another "
        "seed (`--seed`) can reverse these pairs."
    )


def _verdict(row: pd.Series, label: str, value: float) -> str:
    """Where a run's mean F1 and its interval (``f1``, ``low``) lie against a baseline's."""
    if row["low"] > value:
        return f"is above the {label} ({value:.3f})"
    if row["f1"] > value:
        return f"overlaps the {label} ({value:.3f}) (its interval reaches below it)"
    return f"is below the {label} ({value:.3f})"


def _paired_note(row, pairs: int) -> str:
    """One paired difference in words: a difference only where it holds
    (:func:`_difference_holds`)."""
    verdict = (
        "a difference that holds after correcting for the comparisons."
        if _difference_holds(row)
        else "not distinguishable with these test subjects."
    )
    few = (
        f" With only {row.subjects} test subjects the subject bootstrap understates the "
        "uncertainty: read this as indicative."
        if row.subjects < FEW_SUBJECTS
        else ""
    )
    return (
        f"{row.pair}: mean F1 difference {row.difference:+.3f}, family-wise 95% interval "
        f"[{row.low:+.3f}, {row.high:+.3f}], Holm-corrected p = {row.p_holm:.3f} "
        f"({pairs} comparison{'s' if pairs > 1 else ''}, {row.subjects} test subjects "
        f"resampled): {verdict}{few}"
    )


def above_baseline(per_au: pd.DataFrame, baseline: Baselines) -> dict[str, dict[str, bool]]:
    """Per baseline label (:func:`aufacs.analysis.baseline.baseline_means`), whether each
    run's mean F1 exceeds the baseline's."""
    means = per_au[per_au["au"] == "mean"].set_index("model")["f1"]
    return {
        label: {name: bool(value > floor) for name, value in means.items()}
        for label, floor in baseline_means(baseline).items()
    }


def ours_table(per_au: pd.DataFrame, baseline: Baselines | None = None) -> pd.DataFrame:
    """``model``, ``mean_f1`` and ``mean_accuracy`` of each run (the ``mean`` rows), then one
    row per baseline (a majority-baseline table or every baseline's, by label) when given."""
    means = per_au[per_au["au"] == "mean"]
    tables = {} if baseline is None else baseline
    tables = {"majority baseline": tables} if isinstance(tables, pd.DataFrame) else tables
    rows = [t[t["au"] == "mean"].assign(model=label) for label, t in tables.items()]
    return (
        pd.concat([means, *rows])
        .rename(columns={"f1": "mean_f1", "accuracy": "mean_accuracy"})[
            ["model", "mean_f1", "mean_accuracy"]
        ]
        .reset_index(drop=True)
    )


def metric_summary(per_au: pd.DataFrame, baseline: Baselines) -> dict[str, float | bool]:
    """What a comparison publishes: each run's mean F1, each baseline's, and whether every run
    is above the majority baseline ("the baseline", the first one) and above each other one."""
    means = per_au[per_au["au"] == "mean"]
    summary: dict[str, float | bool] = {
        f"{r.model} mean F1": round(float(r.f1), 4) for r in means.itertuples()
    }
    for label, value in baseline_means(baseline).items():
        summary[f"{label} mean F1"] = round(value, 4)
    for k, (label, above) in enumerate(above_baseline(per_au, baseline).items()):
        summary[f"every model above the {'baseline' if k == 0 else label}"] = all(above.values())
    return summary
