"""Published weights as a run folder: ``aufacs import`` turns weight files into a run.

Accepted (:func:`read_weights` tells them apart by their keys): the six ``.pth`` files of the
official JAA-Net v1 (``region_learning_<epoch>.pth`` ... ``au_net_<epoch>.pth``, a folder or
the files one by one; :mod:`aufacs.models.jaa_net.official`), one official ME-GraphAU
ResNet-50 checkpoint of stage 1 or 2 (:mod:`aufacs.models.me_graph_au.checkpoints`), and
aufacs's own weights (a training checkpoint ``epoch_NNN.pt`` or a bare state dict).

The run folder has what a trained run has for ``aufacs evaluate``, ``aufacs predict`` and the
notebooks: ``config.json`` (its data set, fold and model options),
``checkpoints/epoch_NNN.pt`` and ``model.json`` (what prediction needs without the data,
:mod:`aufacs.engine.model_spec`), plus ``provenance.json`` (:data:`PROVENANCE_FILE`): the label
"published weights", the weight format, each file's name, path, size and sha256, and the AU
list the weights predict. It has no training logs (``iterations.csv``, ``epochs.csv``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from aufacs.core.config import config_to_dict, save_config
from aufacs.core.errors import AufacsError, reading_file
from aufacs.core.io import write_text_atomic
from aufacs.data.cache import META_FILE, AlignedCache
from aufacs.data.prepare import cache_folder
from aufacs.engine.checkpoints import (
    CHECKPOINT_FORMAT,
    checkpoint_path,
    save_checkpoint,
    unpickling_damage,
)
from aufacs.engine.config import TrainConfig, check_config, resolve_config
from aufacs.engine.fold_names import checked_fold, named_fold
from aufacs.engine.model_spec import write_model_spec
from aufacs.engine.published_formats import Weights, read_weights
from aufacs.engine.runs import CONFIG_FILE, PROVENANCE_FILE, build_run_model, data_kind
from aufacs.models import AUModel, available_models, model_options
from aufacs.models.jaa_net.official import OFFICIAL_MODULES

#: The file of an imported run that says where its weights came from.
#: How reports label an imported run, beside the runs trained here.
PUBLISHED_LABEL = "published weights"


@dataclass(frozen=True)
class ImportConfig:
    """Which weights to import, and the data set and fold their run is evaluated on."""

    weights: tuple[Path, ...] = field(
        default=(), metadata={"help": "weight files, or a folder of JAA-Net's six files"}
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "jaa_net, me_graph_au, eac_net or a plug-in (default: told by the files; a "
            "plug-in's state dict needs it)"
        },
    )
    data: Path = field(
        default=Path("data/synthetic"), metadata={"help": "prepared data set root folder"}
    )
    cache: Path | None = field(
        default=None, metadata={"help": "aligned-crop cache folder (default <data>/aufacs_cache)"}
    )
    kind: str | None = field(
        default=None, metadata={"help": "bp4d, disfa or synthetic (default: as prepared)"}
    )
    fold: int | None = field(
        default=None,
        metadata={
            "help": "fold 1-3 whose test subjects to evaluate (default: the fold the files' "
            "names imply, else 1)"
        },
    )
    folds: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "import each WEIGHTS as one fold's: 'auto' (the fold its name implies) or "
            "one fold number per WEIGHTS; the runs go to <out>/fold<k>"
        },
    )
    out: Path | None = field(
        default=None,
        metadata={
            "help": "run folder (default runs/published_<model>_fold<fold>; with --folds, "
            "the folder of the fold runs, default runs/published_<model>)"
        },
    )
    epoch: int | None = field(
        default=None,
        metadata={
            "help": "the snapshot to take from a folder of JAA-Net snapshots, and the epoch "
            "the run records (default: from the file names or checkpoint, else 1)"
        },
    )
    model_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": 'model builder options as JSON, e.g. {"crop_size": 176}'},
    )


@dataclass(frozen=True)
class ReadWeights:
    """Weights read for an import: the ``cache`` of the data set, the weight ``files`` and
    what they hold (``weights``)."""

    cache: AlignedCache
    files: list[Path]
    weights: Weights


def import_weights(config: ImportConfig) -> Path:
    """Write the run folder of ``config.weights``; returns its path. Refuses, in one sentence,
    files that are not weights of the kinds above, weights of another model or AU count than
    the cache's, a ``config.fold`` other than the one the files' names imply
    (:mod:`aufacs.engine.fold_names`), and an output folder that is not empty."""
    read = read_import(config, config.weights)
    fold = checked_fold(named_fold(read.weights), config.fold)
    out = config.out or Path("runs") / f"published_{read.weights.model}_fold{fold}"
    return write_import(prepare_import(config, read, fold, out))


def read_import(config: ImportConfig, paths: tuple[Path, ...]) -> ReadWeights:
    """The weights of ``paths`` for ``config``'s model and data set, checked as
    :func:`import_weights` says."""
    if config.epoch is not None and not (isinstance(config.epoch, int) and config.epoch >= 1):
        raise AufacsError(f"epoch must be a positive integer, got {config.epoch!r}")
    if config.model is not None and config.model not in available_models():
        raise AufacsError(
            f"unknown model {config.model!r}; available models: {', '.join(available_models())}"
        )
    cache = _open_cache(config)
    files = weight_files(paths, config.epoch)
    weights = read_weights({path: read_weight_file(path) for path in files}, config.model)
    _check_au_count(weights, cache)
    return ReadWeights(cache, files, weights)


@dataclass(frozen=True)
class ImportedRun:
    """A run folder ready to be written: its resolved ``config`` (``out`` is the folder),
    the ``model`` with the imported weights, the ``epoch`` it records and its
    ``provenance``."""

    config: TrainConfig
    model: AUModel
    epoch: int
    provenance: dict[str, Any]


def prepare_import(config: ImportConfig, read: ReadWeights, fold: int, out: Path) -> ImportedRun:
    """The run of ``read`` for test fold ``fold`` in the empty folder ``out``, checked (the
    weights loaded into their model) but not written."""
    weights = read.weights
    epoch = config.epoch or weights.epoch or 1
    options = {**weights.options, **config.model_options}
    if "pretrained" in model_options(weights.model):
        options.setdefault("pretrained", None)  # the imported weights replace the backbone's
    train_config = TrainConfig(
        model=weights.model,
        data=config.data,
        cache=config.cache,
        kind=config.kind,
        fold=fold,
        out=out,
        epochs=epoch,
        model_options=options,
    )
    check_config(train_config)
    check_empty(out)
    model = build_run_model(train_config, read.cache, pretrained=False)
    load_weights(model, weights)
    resolved = resolve_config(train_config, model, data_kind(train_config, read.cache))
    provenance = describe_provenance(weights, read.files, read.cache, epoch)
    return ImportedRun(resolved, model, epoch, provenance)


def write_import(run: ImportedRun) -> Path:
    """Write the run folder of ``run``; returns its path."""
    out = Path(run.config.out)
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": run.epoch,
        "config": config_to_dict(run.config),
        "model": run.model.state_dict(),
        "provenance": run.provenance,
    }
    save_checkpoint(state, checkpoint_path(out, run.epoch))
    write_text_atomic(out / PROVENANCE_FILE, json.dumps(run.provenance, indent=2) + "\n")
    write_model_spec(out, run.config, run.model)
    save_config(run.config, out / CONFIG_FILE)  # last: the folder is a run once this exists
    return out


def check_empty(out: Path) -> None:
    """Refuse an output folder ``out`` that exists and is not empty."""
    if out.exists() and any(out.iterdir()):
        raise AufacsError(f"output folder {out} is not empty; choose a new folder for the import")


def _open_cache(config: ImportConfig) -> AlignedCache:
    folder = cache_folder(config.data, config.cache)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"data folder {config.data} has no aligned-face cache in {folder}; run "
            f"`aufacs prepare --data {config.data}` first, so that the imported run has test "
            "frames and an AU list"
        )
    return AlignedCache.open(folder)


_SNAPSHOT_NAME = re.compile(rf"(?P<module>{'|'.join(OFFICIAL_MODULES)})_(?P<epoch>\d+)\.pth")


def weight_files(paths: tuple[Path, ...], epoch: int | None = None) -> list[Path]:
    """The weight files ``paths`` name: files as given, a folder as its ``.pth`` / ``.pt``
    files. From a folder of several epochs' snapshots (``<module>_<epoch>.pth``), the files
    of ``epoch``; refused without it."""
    if not paths:
        raise AufacsError("no weight files given; name the files or their folder")
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt"))
        elif path.is_file():
            files.append(path)
        else:
            raise AufacsError(f"weight file {path} does not exist")
    epochs: dict[int, list[Path]] = {}
    for path in files:
        match = _SNAPSHOT_NAME.fullmatch(path.name)
        if match:
            epochs.setdefault(int(match["epoch"]), []).append(path)
    if epoch is not None and epochs:
        if epoch not in epochs:
            raise AufacsError(f"no snapshot files of epoch {epoch}; found epochs {sorted(epochs)}")
        return epochs[epoch]
    if len(epochs) > 1:
        raise AufacsError(
            f"{', '.join(map(str, paths))} hold snapshots of epochs {sorted(epochs)}; choose "
            "one with --epoch"
        )
    if not files:
        raise AufacsError(f"{', '.join(map(str, paths))} holds no .pth or .pt weight files")
    return files


def read_weight_file(path: Path) -> Mapping:
    """What torch loads from ``path`` with ``weights_only=True``; refuses, in one sentence, a
    file that torch cannot read, one of other pickled objects, and one that holds no dict."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        damage = unpickling_damage(error)
        if damage:
            message = f"{path.name} is not a weight file that torch can read ({damage})"
            raise AufacsError(message) from None
        raise AufacsError(
            f"{path.name} holds pickled objects other than tensors, which aufacs refuses to load"
        ) from None
    except Exception as error:  # noqa: BLE001 - any load failure is the same user mistake
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise AufacsError(
            f"{path.name} is not a weight file that torch can read ({reason})"
        ) from None
    if not isinstance(content, Mapping):
        raise AufacsError(f"{path.name} holds a {type(content).__name__}, not weights")
    return content


def _check_au_count(weights: Weights, cache: AlignedCache) -> None:
    if weights.num_aus is not None and weights.num_aus != len(cache.aus):
        raise AufacsError(
            f"{weights.au_file.name} holds weights for {weights.num_aus} AUs, but the "
            f"aligned-face cache {cache.path} has {len(cache.aus)} "
            f"({', '.join(cache.aus.columns)}); import them with a data set of the AUs "
            "they were trained on"
        )


def load_weights(model: AUModel, weights: Weights) -> None:
    """Put ``weights`` into ``model``, refusing a tensor the model lacks or holds in another
    shape, and a model tensor the weights lack (BatchNorm batch counters excepted)."""
    own = model.state_dict()
    for key, value in weights.state.items():
        where = weights.file_of(key).name
        if key not in own:
            raise AufacsError(
                f"{where} holds {key!r}, which the {weights.model} model with options "
                f"{weights.options} lacks; it does not fit that model"
            )
        if tuple(value.shape) != tuple(own[key].shape):
            raise AufacsError(
                f"{where} holds {key!r} of shape {tuple(value.shape)}, where the "
                f"{weights.model} model built for these weights needs {tuple(own[key].shape)} "
                "(another crop size, channel width or backbone: see --model-options)"
            )
    missing = [k for k in own if k not in weights.state and not k.endswith("num_batches_tracked")]
    if missing:
        names = ", ".join(sorted({p.name for p in weights.files}))
        raise AufacsError(
            f"{names} lack {len(missing)} of the {len(own)} tensors of the {weights.model} "
            f"model (first: {missing[0]!r}); they hold {weights.source}, not all of it"
        )
    merged = {k: weights.state.get(k, v).to(v.dtype) for k, v in own.items()}
    model.load_state_dict(merged)


def describe_provenance(
    weights: Weights, files: list[Path], cache: AlignedCache, epoch: int
) -> dict[str, Any]:
    """What ``provenance.json`` holds (see the module docstring)."""
    return {
        "label": PUBLISHED_LABEL,
        "model": weights.model,
        "format": weights.source,
        "epoch": epoch,
        "aus": list(cache.aus.aus),
        "files": [
            {
                "name": path.name,
                "path": str(path.resolve()),
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "holds": weights.holds.get(path, weights.source),
            }
            for path in files
        ],
        "imported": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_provenance(run: Path | str) -> dict[str, Any] | None:
    """The ``provenance.json`` of run folder ``run``, or None for a run trained here."""
    path = Path(run) / PROVENANCE_FILE
    if not path.is_file():
        return None
    with reading_file(path, "the provenance of imported weights"):
        provenance = json.loads(path.read_text())
    if not isinstance(provenance, dict):
        raise AufacsError(f"{path} holds no JSON object; the file is damaged")
    return provenance


def run_origin(run: Path | str) -> str:
    """``"published weights"`` for an imported run, ``"trained here"`` for the others."""
    provenance = load_provenance(run)
    return provenance.get("label", PUBLISHED_LABEL) if provenance else "trained here"
