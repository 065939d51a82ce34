"""What the comparison notebook shows of the papers' protocol: the three-fold table written
beside the report, the paired comparison over every test subject and the sentences between
them, and the runs' evaluations on another data set (``aufacs cross-evaluate``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.analysis import folds, literature
from aufacs.analysis.cross_dataset import cross_dataset_table
from aufacs.analysis.evaluate import Predictions
from aufacs.analysis.subjects import paired_subject_table
from aufacs.engine.runs import PROVENANCE_FILE, load_run_config
from aufacs.report.paper_tables import write_paper_table
from aufacs.report.tables import tidy

#: What the section says when no run was evaluated on another data set.
NO_CROSS_NOTE = (
    "No run was evaluated on another data set. `aufacs cross-evaluate --run RUN --data DISFA "
    "--kind disfa` scores a BP4D run on DISFA's test subjects over the AUs both label (AU1, 2, "
    "4, 6 and 12), as the literature's cross-data-set tables do; its row then shows here."
)
#: What the section says when the study ran one fold.
SINGLE_FOLD_NOTE = (
    "This study ran one fold, so there is no three-fold table. Published numbers are the mean "
    "of three subject-exclusive folds: run `aufacs study --folds 1 2 3` to compare with them "
    "on the papers' protocol."
)


def fold_predictions_of(
    fold_runs: Mapping[str, Sequence[Path | str]], epoch: int | str = "last"
) -> dict[str, dict[int, Predictions]]:
    """``{model: {fold: predictions}}`` of every model's runs (one per fold)."""
    return {name: folds.fold_predictions(runs, epoch) for name, runs in fold_runs.items()}


def three_fold_table(
    predictions: Mapping[str, Mapping[int, Predictions]], out: Path, pooled: bool = False
) -> pd.DataFrame:
    """The papers' table of ``predictions`` with the published rows of the models that have
    them (BP4D's AUs only), written to ``out`` as CSV, Markdown and LaTeX."""
    known = [name for name in predictions if name in literature.PUBLISHED]
    published = literature.literature_table(known) if known else None
    table = folds.fold_table(predictions, published, pooled=pooled)
    write_paper_table(table, out)
    return table


def subject_comparison(predictions: Mapping[str, Mapping[int, Predictions]]) -> pd.DataFrame:
    """Every pair of models compared over all their test subjects
    (:mod:`aufacs.analysis.subjects`)."""
    return paired_subject_table({name: folds.concatenated(p) for name, p in predictions.items()})


def fold_notes(table: pd.DataFrame, paired: pd.DataFrame) -> list[str]:
    """Sentences from the numbers: each model's three-fold mean and spread, and each pair's
    difference with its exact p-value and the smallest one its subjects allow."""
    notes = []
    for model in dict.fromkeys(table.index.get_level_values("model")):
        rows = table.loc[model]
        if folds.MEAN_OF_FOLDS in rows.index:
            mean, spread = rows.loc[folds.MEAN_OF_FOLDS, "Avg"], rows.loc[folds.SPREAD, "Avg"]
            folds_run = sum(name.removeprefix("fold ").isdigit() for name in rows.index)
            spread_text = "no spread with one fold" if np.isnan(spread) else f"sd {spread:.3f}"
            notes.append(f"{model}: mean F1 {mean:.3f} over {folds_run} fold(s) ({spread_text}).")
    for row in paired.itertuples():
        notes.append(
            f"{row.a} vs {row.b}: per-subject mean F1 differs by {row.difference:+.3f} over "
            f"{row.subjects} subjects ({row.a} higher in {row.a_wins}); exact sign-flip "
            f"p = {row.p_value:.3g}, Holm-corrected {row.p_holm:.3g} (the smallest p "
            f"{row.subjects} subjects allow is {row.minimum_p:.3g})."
        )
    return notes


def published_weight_notes(
    fold_runs: Mapping[str, Sequence[Path | str]], table: pd.DataFrame
) -> list[str]:
    """For every set of imported published weights (runs with a ``provenance.json``) of a
    model with published numbers: where, per AU, the weights evaluated here differ from the
    published F1 by more than their fold spread — the question "why can I not reproduce the
    published number?"."""
    notes = []
    for name, runs in fold_runs.items():
        model = load_run_config(runs[0]).model
        if not (Path(runs[0]) / PROVENANCE_FILE).is_file() or model not in literature.PUBLISHED:
            continue
        ours = table.loc[name]
        published = pd.Series(literature.published(model).per_au, index=ours.columns[:-1])
        mean, spread = ours.loc[folds.MEAN_OF_FOLDS].iloc[:-1], ours.loc[folds.SPREAD].iloc[:-1]
        apart = [au for au in published.index if abs(mean[au] - published[au]) > spread[au]]
        listed = ", ".join(f"{au} ({mean[au]:.3f} vs {published[au]:.3f})" for au in apart)
        notes.append(
            f"{name}: the published weights evaluated here score mean F1 "
            f"{ours.loc[folds.MEAN_OF_FOLDS, folds.AVERAGE]:.3f} against "
            f"{literature.published(model).mean_f1 / 100:.3f} published; "
            + (
                f"they differ from the published F1 by more than the fold spread on {listed}."
                if apart
                else "no AU differs from the published F1 by more than the fold spread."
            )
        )
    return notes


def show_papers_table(
    fold_runs: Mapping[str, Sequence[Path | str]],
    out: Path | str,
    epoch: int | str = "last",
    pooled: bool = False,
) -> dict[str, float]:
    """Display, in a notebook, the papers' table of ``fold_runs`` (``{model: [run of each
    fold]}``) with the note under it, the paired comparison over all test subjects and the
    sentences they support; write the table into ``out``. With no ``fold_runs`` it says that
    the study ran one fold. Returns each model's three-fold mean F1 (``<model>_three_fold_f1``)
    for the notebook's metrics."""
    from IPython.display import Markdown, display

    if not fold_runs:
        display(Markdown(SINGLE_FOLD_NOTE))
        return {}
    predictions = fold_predictions_of(fold_runs, epoch)
    table = three_fold_table(predictions, Path(out), pooled=pooled)
    paired = subject_comparison(predictions) if len(predictions) > 1 else pd.DataFrame()
    display(tidy(table.reset_index()), Markdown(folds.table_note(table)))
    if not paired.empty:
        display(tidy(paired))
    notes = fold_notes(table, paired) + published_weight_notes(fold_runs, table)
    display(Markdown("\n".join(f"- {note}" for note in notes)))
    display(Markdown(f"Written as CSV, Markdown and LaTeX to `{out}`."))
    return {
        f"{name}_three_fold_f1": float(table.loc[(name, folds.MEAN_OF_FOLDS), "Avg"])
        for name in predictions
    }


def show_cross_dataset(runs: Mapping[str, Path | str]) -> pd.DataFrame | None:
    """The runs' evaluations on another data set's shared AUs, one row each
    (:func:`aufacs.analysis.cross_dataset.cross_dataset_table`); None, with a sentence saying
    how to add one, where there is none."""
    from IPython.display import Markdown, display

    table = cross_dataset_table(runs)
    if table.empty:
        display(Markdown(NO_CROSS_NOTE))
        return None
    return tidy(table)
