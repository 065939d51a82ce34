"""Epoch-by-epoch evaluation of a training run on its fold's test subjects.

``evaluate_run("runs/jaa")`` loads every checkpoint of the run (or the chosen epochs),
predicts the test subjects' centre crops and writes, beside the run:

===================================  ========================================================
``evaluation.csv``                   one row per epoch x AU: ``epoch``, ``au``, ``f1``,
                                     ``accuracy``, ``precision``, ``recall``, ``support``
                                     (known positives), ``known`` (frames with a label)
``evaluation_summary.csv``           one row per epoch: ``mean_f1``, ``mean_accuracy``,
                                     ``nme`` and ``failure_rate`` (landmark models only,
                                     else empty), ``frames``
``AU_pred.txt``                      the official JAA-Net log: epoch, meanF1, meanAcc,
                                     meanError, failureRate, tab-separated
``predictions/epoch_NNN.npz``        :class:`Predictions`, so that later analyses
                                     (thresholds, bootstrap) need no model run
===================================  ========================================================

Metrics are those of :mod:`aufacs.analysis.metrics` (threshold 0.5 unless given). Re-evaluating an
epoch replaces its rows; rows of other epochs are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aufacs.analysis.metrics import au_scores, landmark_summary
from aufacs.core.console import say
from aufacs.core.errors import AufacsError, reading_file
from aufacs.core.io import atomic_write, write_text_atomic
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import batch_loader
from aufacs.engine.checkpoints import UnreadableCheckpoint
from aufacs.engine.device import (
    AMP_HELP,
    THREADS_HELP,
    autocast,
    resolve_amp,
    to_device,
    use_threads,
)
from aufacs.engine.logs import read_run_table
from aufacs.engine.runs import EPOCHS_FILE, LoadedRun
from aufacs.models import AUModel

EVALUATION_FILE = "evaluation.csv"
SUMMARY_FILE = "evaluation_summary.csv"
JAA_LOG_FILE = "AU_pred.txt"
PREDICTIONS_FOLDER = "predictions"
#: The columns each table of a run folder must hold to be read (:func:`run_table`).
RUN_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    EVALUATION_FILE: ("epoch", "au", "f1", "accuracy", "precision", "recall", "support", "known"),
    SUMMARY_FILE: ("epoch", "mean_f1", "mean_accuracy", "nme", "failure_rate", "frames"),
    EPOCHS_FILE: ("epoch", "loss", "seconds", "samples_per_s"),
}


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate and how."""

    run: Path = field(default=Path("runs/jaa_net_fold1"), metadata={"help": "training run folder"})
    epochs: tuple[int, ...] | None = field(
        default=None, metadata={"help": "epochs to evaluate (default: every saved one)"}
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "evaluation batch size (default: the training one)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    amp: str = field(default="auto", metadata={"help": AMP_HELP})
    threshold: float = field(default=0.5, metadata={"help": "probability threshold of 'present'"})
    num_workers: int = field(default=0, metadata={"help": "data-loading worker processes"})
    cache: Path | None = field(
        default=None,
        metadata={"help": "the run's aligned-crop cache, if it has moved since training"},
    )
    threads: int | None = field(default=None, metadata={"help": THREADS_HELP})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


@dataclass
class Predictions:
    """A model's output on the F test frames of a fold, for N AUs.

    ``prob`` (F, N) probabilities; ``target`` (F, N) labels (1, 0, NaN unknown);
    ``subject``, ``task`` (F,) strings and ``frame`` (F,) ints identify the frames;
    ``true_landmarks`` (F, 49, 2) and ``landmarks`` (F, 49, 2, predicted; None for models
    without an alignment branch) are 0-indexed pixels of the centre crop; ``aus`` (N,) the
    AU numbers.
    """

    prob: np.ndarray
    target: np.ndarray
    subject: np.ndarray
    task: np.ndarray
    frame: np.ndarray
    true_landmarks: np.ndarray
    landmarks: np.ndarray | None
    aus: np.ndarray

    def save(self, path: Path) -> None:
        """Write a compressed ``.npz`` (no pickled objects), atomically."""
        arrays = {k: v for k, v in vars(self).items() if v is not None}
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path | str) -> Predictions:
        """Read what :meth:`save` wrote; :class:`AufacsError` naming a damaged file."""
        with reading_file(path, "saved predictions"), np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
            return cls(**{"landmarks": None, **arrays})


def load_predictions(run: Path | str, epoch: int) -> Predictions:
    """The saved predictions of ``epoch`` of a run (written by :func:`evaluate_run`)."""
    path = predictions_path(run, epoch)
    if not path.is_file():
        raise AufacsError(f"{path} does not exist; run `aufacs evaluate --run {run}` first")
    return Predictions.load(path)


def run_table(run: Path | str, file: str) -> pd.DataFrame:
    """Table ``file`` (a key of :data:`RUN_TABLE_COLUMNS`) of run folder ``run``; one
    sentence when it is missing or damaged (:func:`~aufacs.engine.logs.read_run_table`)."""
    path = Path(run) / file
    if not path.is_file():
        raise AufacsError(f"{path} does not exist; run `aufacs evaluate --run {run}` first")
    return read_run_table(path, RUN_TABLE_COLUMNS[file])


def predictions_path(run: Path | str, epoch: int) -> Path:
    return Path(run) / PREDICTIONS_FOLDER / f"epoch_{epoch:03d}.npz"


@torch.inference_mode()
def predict(
    model: AUModel,
    loader: DataLoader,
    cache: AlignedCache,
    *,
    device: torch.device,
    amp: torch.dtype | None = None,
    progress: bool = False,
) -> Predictions:
    """Run ``model`` (in eval mode) over every batch of ``loader`` (a test set of ``cache``)."""
    model.eval()
    collected: dict[str, list[np.ndarray]] = {"prob": [], "target": [], "index": [], "truth": []}
    predicted: list[np.ndarray] = []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress, leave=False):
        with autocast(device, amp):
            output = model(to_device(batch, device))
        collected["prob"].append(output.au_prob.float().cpu().numpy())
        collected["target"].append(batch["au"].numpy())
        collected["index"].append(batch["index"].numpy())
        collected["truth"].append(batch["landmarks"].numpy())
        if output.landmarks is not None:
            predicted.append(output.landmarks.float().cpu().numpy())
    rows = cache.table.iloc[np.concatenate(collected["index"])]
    return Predictions(
        prob=np.concatenate(collected["prob"]),
        target=np.concatenate(collected["target"]),
        subject=rows["subject"].to_numpy(dtype=str),
        task=rows["task"].to_numpy(dtype=str),
        frame=rows["frame"].to_numpy(dtype=np.int64),
        true_landmarks=np.concatenate(collected["truth"]),
        landmarks=np.concatenate(predicted) if predicted else None,
        aus=np.asarray(cache.aus.aus, dtype=np.int64),
    )


def score(
    predictions: Predictions, threshold: float = 0.5
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-AU scores (see :func:`aufacs.analysis.metrics.au_scores`) and the means: ``mean_f1``,
    ``mean_accuracy``, ``nme``, ``failure_rate`` (NaN without predicted landmarks), ``frames``."""
    per_au = au_scores(predictions.prob, predictions.target, predictions.aus.tolist(), threshold)
    nme, failure = float("nan"), float("nan")
    if predictions.landmarks is not None:
        nme, failure = landmark_summary(predictions.landmarks, predictions.true_landmarks)
    summary = {
        "mean_f1": float(per_au["f1"].mean()),
        "mean_accuracy": float(per_au["accuracy"].mean()),
        "nme": nme,
        "failure_rate": failure,
        "frames": len(predictions.prob),
    }
    return per_au, summary


def evaluate_run(
    run: Path | str,
    epochs: Sequence[int] | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "auto",
    threshold: float = 0.5,
    num_workers: int = 0,
    cache: Path | str | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate the saved epochs of a run on its fold's test subjects (module docstring).

    ``epochs``: which checkpoints (default: every saved one); one that cannot be read is
    skipped with a warning. ``batch_size``: default the training batch size. ``cache``: the
    run's aligned-crop cache, where it has moved since training. ``threads``: CPU threads
    (see :func:`aufacs.engine.device.use_threads`). Returns the summary table of the evaluated
    epochs (one row each).
    """
    if batch_size is not None and batch_size < 1:
        raise AufacsError(f"batch_size must be a positive integer, got {batch_size}")
    use_threads(threads, announce=progress)
    loaded = LoadedRun.open(run, device, cache=cache)
    chosen = loaded.saved_epochs(epochs)
    run, cache = loaded.folder, loaded.cache
    dtype = resolve_amp(amp, loaded.device)
    loader = batch_loader(
        loaded.test_set(),
        batch_size or loaded.config.batch_size,
        num_workers=num_workers,
        pin_memory=loaded.device.type == "cuda",
    )
    tables, summaries = [], []
    for epoch in chosen:
        try:
            model = loaded.load_epoch(epoch)
        except UnreadableCheckpoint as error:
            say(f"warning: skipping epoch {epoch}: {error}")
            continue
        predictions = predict(
            model, loader, cache, device=loaded.device, amp=dtype, progress=progress
        )
        predictions.save(predictions_path(run, epoch))
        per_au, summary = score(predictions, threshold)
        tables.append(per_au.assign(epoch=epoch))
        summaries.append({"epoch": epoch, **summary})
    if not summaries:
        raise AufacsError(f"no checkpoint of run {run} could be read; train it again")
    per_au_table = _merge(run / EVALUATION_FILE, pd.concat(tables), ["epoch", "au"])
    summary_table = _merge(run / SUMMARY_FILE, pd.DataFrame(summaries), ["epoch"])
    for table, name in ((per_au_table, EVALUATION_FILE), (summary_table, SUMMARY_FILE)):
        with atomic_write(run / name) as handle:
            table.to_csv(handle, index=False)
    _write_jaa_log(summary_table, run / JAA_LOG_FILE)
    return pd.DataFrame(summaries)


def evaluate(config: EvaluateConfig) -> pd.DataFrame:
    """:func:`evaluate_run` with the settings of an :class:`EvaluateConfig`."""
    return evaluate_run(
        config.run,
        config.epochs,
        batch_size=config.batch_size,
        device=config.device,
        amp=config.amp,
        threshold=config.threshold,
        num_workers=config.num_workers,
        cache=config.cache,
        threads=config.threads,
        progress=config.progress,
    )


def _merge(path: Path, new: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``new`` rows plus the rows of the CSV at ``path`` for other ``epoch`` values, sorted;
    a damaged CSV is replaced by ``new``, with a warning."""
    columns = keys + [c for c in new.columns if c not in keys]
    new = new[columns]
    if path.is_file():
        try:
            old = run_table(path.parent, path.name)
        except AufacsError as error:
            say(f"warning: {error}; it is written again with the epochs evaluated now")
        else:
            new = pd.concat([old[~old["epoch"].isin(new["epoch"])], new], ignore_index=True)
    return new.sort_values(keys, ignore_index=True)


def _write_jaa_log(summary: pd.DataFrame, path: Path) -> None:
    """JAA-Net's ``AU_pred.txt``: ``epoch meanF1 meanAcc meanError failureRate`` per line."""
    lines = [
        f"{int(r.epoch)}\t{r.mean_f1:f}\t{r.mean_accuracy:f}\t{r.nme:f}\t{r.failure_rate:f}"
        for r in summary.itertuples()
    ]
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def majority_prob(train_target: np.ndarray, frames: int) -> np.ndarray:
    """The majority-class baseline: per AU, predict for every one of ``frames`` frames the
    class most frequent among the known training labels ``train_target`` (F_train, N)
    (present on a tie). Returns probabilities (frames, N) of 0.0 or 1.0."""
    known = ~np.isnan(train_target)
    present = (train_target > 0).sum(axis=0)
    majority = (2 * present >= known.sum(axis=0)).astype(np.float64)
    return np.broadcast_to(majority, (frames, train_target.shape[1])).copy()


#: Constant predictors of :func:`baseline_scores`.
BASELINES: dict[str, str] = {
    "majority": "each AU's majority class among the training labels",
    "present": "every AU present (the constant prediction with the highest F1)",
}


def baseline_scores(
    run: Path | str, baseline: str = "majority", threshold: float = 0.5
) -> pd.DataFrame:
    """Per-AU scores (as in ``evaluation.csv``) of a constant predictor (a key of
    :data:`BASELINES`) on the test subjects of a run's fold; the majority class is learnt
    from the fold's training subjects."""
    if baseline not in BASELINES:
        raise AufacsError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    loaded = LoadedRun.open(run)
    cache, split = loaded.cache, loaded.split
    labels = cache.labels
    subjects = cache.table["subject"]
    test_target = labels[subjects.isin(split.test).to_numpy()]
    if baseline == "majority":
        prob = majority_prob(labels[subjects.isin(split.train).to_numpy()], len(test_target))
    else:
        prob = np.ones_like(test_target)
    return au_scores(prob, test_target, cache.aus.aus, threshold)
