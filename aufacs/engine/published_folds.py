"""Published weights of every fold at once: ``aufacs import A B C --folds auto`` makes one run
per fold, each tested on the part its weights did not train on.

Each WEIGHTS path is one fold's weights (ME-GraphAU's ``MEFARG_resnet50_BP4D_fold{k}.pth``, a
folder of one JAA-Net snapshot such as ``JAAv1_combine_1_2/``); the fold is the one its name
implies (:mod:`aufacs.engine.fold_names`) or given in order with ``--folds 1 2 3``, checked
against the names. Everything is read and checked before any run folder is written, so a
refused import leaves nothing behind. The runs are ``<out>/fold<k>`` (default ``out``:
``runs/published_<model>``).
"""

from __future__ import annotations

from pathlib import Path

from aufacs.core.errors import AufacsError
from aufacs.engine.fold_names import checked_fold, named_fold, requested_folds
from aufacs.engine.published import (
    ImportConfig,
    ReadWeights,
    import_weights,
    prepare_import,
    read_import,
    write_import,
)


def import_runs(config: ImportConfig) -> list[Path]:
    """The run folders of ``config``: one per fold with ``config.folds``
    (:func:`import_folds`), else the one run of :func:`aufacs.engine.published.import_weights`."""
    return import_folds(config) if config.folds else [import_weights(config)]


def import_folds(config: ImportConfig) -> list[Path]:
    """One run folder per path of ``config.weights``, in fold order; returns their paths.
    Refuses, in one sentence, ``--fold`` beside ``--folds``, a path whose fold is neither
    named nor given, two paths of one fold, weights of different models, and what
    :func:`aufacs.engine.published.import_weights` refuses."""
    if config.fold is not None:
        raise AufacsError(
            "--fold imports one set of weights and --folds one per fold; give one of them"
        )
    requested = requested_folds(config.folds, len(config.weights))
    by_fold: dict[int, tuple[Path, ReadWeights]] = {}
    for path, fold in zip(config.weights, requested, strict=True):
        read = read_import(config, (path,))
        named = named_fold(read.weights)
        if fold is None and named is None:
            raise AufacsError(
                f"{path} names no fold (no ME-GraphAU fold<k> file name, no JAA-Net "
                "combine_<a>_<b> folder); give the folds in order with --folds 1 2 3"
            )
        fold = checked_fold(named, fold)
        if fold in by_fold:
            raise AufacsError(
                f"{by_fold[fold][0]} and {path} are both fold {fold}'s weights; give one set "
                "of weights per fold"
            )
        by_fold[fold] = (path, read)
    models = {read.weights.model for _, read in by_fold.values()}
    if len(models) > 1:
        raise AufacsError(
            f"{', '.join(map(str, config.weights))} hold weights of {', '.join(sorted(models))}; "
            "import one model's weights for all folds"
        )
    out = config.out or Path("runs") / f"published_{models.pop()}"
    runs = [
        prepare_import(config, read, k, out / f"fold{k}")
        for k, (_, read) in sorted(by_fold.items())
    ]
    return [write_import(run) for run in runs]
