"""A run evaluated on another data set's test subjects, over the AUs the two share.

The literature's cross-data-set check (train on BP4D, test on DISFA) scores only the AUs both
data sets label (BP4D → DISFA: AU1, 2, 4, 6 and 12). :func:`evaluate_across` runs a trained
model on the test subjects of a fold of another prepared data set, keeps the shared AUs of
its output and of the labels, and writes, beside the run, ``cross/<kind>_fold<k>/``:
``evaluation.csv`` (one row per shared AU, the columns of
:func:`aufacs.analysis.metrics.au_scores`), ``predictions.npz``
(:class:`~aufacs.analysis.evaluate.Predictions` on the shared AUs) and ``about.json`` (run,
epoch, data set, kind, fold, shared AUs). :func:`cross_dataset_table` gathers them as rows of
their own. Two data sets that share no AU are refused in one sentence.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.analysis.evaluate import predict, score
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.core.io import write_text_atomic
from aufacs.data.cache import META_FILE, AlignedCache
from aufacs.data.dataset import batch_loader
from aufacs.data.prepare import cache_folder
from aufacs.engine.device import THREADS_HELP, resolve_device, use_threads
from aufacs.engine.model_spec import load_run_model
from aufacs.engine.runs import fold_split, load_run_config, make_dataset

#: Folder of a run that holds its evaluations on other data sets.
CROSS_FOLDER = "cross"


@dataclass(frozen=True)
class CrossConfig:
    """Which run to test on which other data set."""

    run: Path = field(default=Path("runs/jaa_net_fold1"), metadata={"help": "run folder"})
    data: Path = field(default=Path("data/disfa"), metadata={"help": "the other data set"})
    kind: str = field(default="disfa", metadata={"help": "its kind: bp4d, disfa or synthetic"})
    fold: int | None = field(
        default=None, metadata={"help": "whose test subjects (default: the run's fold)"}
    )
    epoch: int | None = field(default=None, metadata={"help": "epoch (default: the last)"})
    batch_size: int = field(default=16, metadata={"help": "evaluation batch size"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int | None = field(default=None, metadata={"help": THREADS_HELP})


def shared_aus(run_aus: tuple[int, ...], data_aus: tuple[int, ...], where: str) -> list[int]:
    """The AUs both lists hold, in the run's order; refuses, naming ``where``, lists that
    share none."""
    shared = [au for au in run_aus if au in data_aus]
    if not shared:
        raise AufacsError(
            f"the run predicts AUs {', '.join(map(str, run_aus))} and {where} labels AUs "
            f"{', '.join(map(str, data_aus))}: they share no AU, so nothing can be scored"
        )
    return shared


def _other_cache(config: CrossConfig, size: int) -> AlignedCache:
    folder = cache_folder(config.data)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"{config.data} has no aligned-face cache; prepare it first: aufacs prepare --data "
            f"{config.data} --kind {config.kind} --size {size}"
        )
    cache = AlignedCache.open(folder)
    if cache.size != size:
        raise AufacsError(
            f"{config.data}'s faces are aligned at {cache.size} px and the run's at {size} px; "
            f"prepare it again with --size {size}"
        )
    return cache


def evaluate_across(config: CrossConfig) -> pd.DataFrame:
    """Evaluate ``config.run`` on the test subjects of ``config.fold`` of another data set
    (module docstring); returns the per-AU scores of the shared AUs."""
    use_threads(config.threads, announce=False)
    device = resolve_device(config.device)
    model, spec, epoch = load_run_model(config.run, config.epoch, str(device))
    cache = _other_cache(config, spec.size)
    aus = shared_aus(tuple(spec.aus), tuple(cache.aus.aus), f"{config.data}")
    fold = config.fold or load_run_config(config.run).fold
    test = fold_split(cache, config.kind, fold).test
    loader = batch_loader(make_dataset(cache, test, model, train=False), config.batch_size)
    full = predict(model, loader, cache, device=device)
    columns = [list(spec.aus).index(au) for au in aus]
    labels = [list(cache.aus.aus).index(au) for au in aus]
    kept = dataclasses.replace(
        full, prob=full.prob[:, columns], target=full.target[:, labels], aus=np.asarray(aus)
    )
    per_au, summary = score(kept)
    out = Path(config.run) / CROSS_FOLDER / f"{config.kind}_fold{fold}"
    out.mkdir(parents=True, exist_ok=True)
    kept.save(out / "predictions.npz")
    write_text_atomic(out / "evaluation.csv", per_au.to_csv(index=False))
    about = {"epoch": epoch, "data": str(config.data), "kind": config.kind, "fold": fold}
    about |= {"aus": aus, "frames": summary["frames"], "mean_f1": summary["mean_f1"]}
    write_text_atomic(out / "about.json", json.dumps(about, indent=2) + "\n")
    return per_au


def cross_dataset_table(runs: Mapping[str, Path | str]) -> pd.DataFrame:
    """One row per run and other data set it was evaluated on (:func:`evaluate_across`):
    ``run``, ``tested on`` (kind and fold), F1 of each shared AU and their ``mean_f1``;
    empty where no run has such an evaluation."""
    rows = []
    for name, run in runs.items():
        for folder in sorted((Path(run) / CROSS_FOLDER).glob("*/about.json")):
            about = json.loads(folder.read_text())
            scores = pd.read_csv(folder.parent / "evaluation.csv")
            f1 = {au_column(int(r.au)): r.f1 for r in scores.itertuples()}
            tested = f"{about['kind']} fold {about['fold']} (epoch {about['epoch']})"
            rows.append({"run": name, "tested on": tested, **f1, "mean_f1": about["mean_f1"]})
    return pd.DataFrame(rows)
