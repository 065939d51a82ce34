"""The papers' protocol: per-AU F1 on each subject-exclusive test fold, their arithmetic mean
and spread, beside the published rows.

JAA-Net and ME-GraphAU report, for BP4D and DISFA, the F1 of each AU on each of the three test
folds (threshold 0.5, unknown labels left out) averaged over the folds; the ``Avg`` column is
the mean over the AUs. :func:`fold_table` computes exactly that from each fold's saved
predictions. Pooling the frames of every fold into one F1 gives another number (the folds
weigh by their frames); it is only added on request (``pooled=True``), as its own row labelled
:data:`POOLED`, never in place of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.analysis.compare import chosen_epoch
from aufacs.analysis.evaluate import Predictions, load_predictions
from aufacs.analysis.metrics import confusion
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.engine.runs import load_run_config

#: Row labels of a model's block in :func:`fold_table`.
MEAN_OF_FOLDS = "mean of folds"
SPREAD = "fold spread (sd)"
POOLED = "pooled frames (not the papers' protocol)"
PUBLISHED = "as published"
AVERAGE = "Avg"
#: How the mean is taken, for the note under the table.
MEAN_NOTE = (
    "F1 per AU at threshold 0.5 on each test fold (unknown labels left out); 'mean of folds' is "
    "the arithmetic mean of the folds' F1, as JAA-Net and ME-GraphAU report it, and 'Avg' the "
    "mean over the AUs; 'fold spread (sd)' is the sample standard deviation over the folds."
)
POOLED_NOTE = (
    "'pooled frames' is one F1 over every fold's test frames together: not the papers' "
    "protocol, shown for comparison only."
)


def fold_predictions(
    runs: Sequence[Path | str], epoch: int | str = "last"
) -> dict[int, Predictions]:
    """``{fold: predictions}`` of one model's runs, one run per fold (each run's own
    ``config.json`` says its fold), at ``epoch`` (a number, ``"last"`` or ``"best"``).
    Refuses two runs of one fold and runs that predict different AUs."""
    found: dict[int, Predictions] = {}
    for run in runs:
        fold = load_run_config(run).fold
        if fold in found:
            raise AufacsError(f"two runs test fold {fold}; give one run per fold, got {run} too")
        found[fold] = load_predictions(run, chosen_epoch(run, epoch))
    aus = {tuple(p.aus.tolist()) for p in found.values()}
    if len(aus) > 1:
        raise AufacsError(f"the runs {', '.join(map(str, runs))} predict different AU sets {aus}")
    return dict(sorted(found.items()))


def concatenated(folds: Mapping[int, Predictions]) -> Predictions:
    """Every fold's test frames together (each subject once): the arrays concatenated,
    predicted landmarks left out."""
    parts = list(folds.values())
    arrays = {
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in ("prob", "target", "subject", "task", "frame", "true_landmarks")
    }
    return Predictions(**arrays, landmarks=None, aus=parts[0].aus)


def _f1_row(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-AU F1 (N,) and their mean appended: (N + 1,)."""
    f1 = confusion(prob, target).f1
    return np.append(f1, f1.mean())


def _columns(aus: Sequence[int]) -> list[str]:
    return [au_column(au) for au in aus] + [AVERAGE]


def model_block(folds: Mapping[int, Predictions], pooled: bool = False) -> pd.DataFrame:
    """One model's rows: ``fold k`` for each fold, :data:`MEAN_OF_FOLDS` (the arithmetic mean
    of the fold rows), :data:`SPREAD` and, with ``pooled``, :data:`POOLED`; columns AU… and
    ``Avg`` (fractions)."""
    if not folds:
        raise AufacsError("no fold to tabulate; give at least one evaluated run")
    aus = next(iter(folds.values())).aus
    rows = {f"fold {k}": _f1_row(p.prob, p.target) for k, p in folds.items()}
    values = np.stack(list(rows.values()))
    rows[MEAN_OF_FOLDS] = values.mean(axis=0)
    rows[SPREAD] = (
        values.std(axis=0, ddof=1) if len(values) > 1 else np.full(values.shape[1], np.nan)
    )
    if pooled:
        together = concatenated(folds)
        rows[POOLED] = _f1_row(together.prob, together.target)
    return pd.DataFrame(rows, index=_columns(aus)).T


def fold_table(
    models: Mapping[str, Mapping[int, Predictions]],
    literature: pd.DataFrame | None = None,
    pooled: bool = False,
) -> pd.DataFrame:
    """The papers' table: for every model its :func:`model_block` and, where ``literature``
    (:func:`aufacs.analysis.literature.literature_table`, indexed by model name) has the same
    AUs, a row :data:`PUBLISHED` with the published per-AU F1 and mean in the model's block
    (or a block of its own). Indexed by (``model``, ``row``), columns in the papers' AU order
    and ``Avg`` (fractions)."""
    blocks = {name: model_block(folds, pooled) for name, folds in models.items()}
    columns = next(iter(blocks.values())).columns
    aus = [c for c in columns if c != AVERAGE]
    if literature is not None and set(aus) <= set(literature.columns):
        for name, row in literature.iterrows():
            published = pd.DataFrame(
                [[*row[aus].astype(float), float(row["mean_f1"])]],
                columns=columns,
                index=[PUBLISHED],
            )
            blocks[str(name)] = pd.concat([blocks.get(str(name)), published])
    return pd.concat(blocks, names=["model", "row"])


def comparison_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a reader compares across models: each model's mean of folds and the
    published rows (where the best value per column is marked)."""
    rows = table.index.get_level_values("row")
    return table[np.isin(rows, [MEAN_OF_FOLDS, PUBLISHED])]


def table_note(table: pd.DataFrame) -> str:
    """The sentences under the table: how the mean is taken, and what a pooled row is."""
    rows = set(table.index.get_level_values("row"))
    notes = [MEAN_NOTE]
    if POOLED in rows:
        notes.append(POOLED_NOTE)
    if PUBLISHED in rows:
        notes.append("Rows 'as published' are the papers' numbers on the real data set.")
    return " ".join(notes)
