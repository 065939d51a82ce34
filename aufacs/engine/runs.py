"""Run folders: what a training run writes where, and opening a run with its data and model."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from aufacs.core.config import config_from_dict
from aufacs.core.errors import AufacsError, reading_file
from aufacs.core.io import write_text_atomic
from aufacs.core.locks import exclusive_lock
from aufacs.data.cache import META_FILE, AlignedCache
from aufacs.data.dataset import AlignedFaceDataset
from aufacs.data.prepare import KINDS, cache_folder, dataset_split
from aufacs.data.splits import Split
from aufacs.data.table import FrameTable
from aufacs.engine.checkpoints import UnreadableCheckpoint, checkpoint_paths, load_checkpoint
from aufacs.engine.config import TrainConfig, resolve_model_options, run_folder
from aufacs.engine.device import resolve_device
from aufacs.engine.distributed import DistributedContext
from aufacs.engine.recipes import recipe_for
from aufacs.models import AUModel, build_model, model_options

#: The files of a run folder (see :mod:`aufacs.engine.train`).
CONFIG_FILE = "config.json"
ITERATIONS_FILE = "iterations.csv"
EPOCHS_FILE = "epochs.csv"
#: Where published weights imported as a run came from (:mod:`aufacs.engine.published`).
PROVENANCE_FILE = "provenance.json"
#: The lock a training process holds on its run folder (:mod:`aufacs.core.locks`).
LOCK_FILE = ".aufacs.lock"
#: What training measured in its last epoch: seconds of each step, peak memory, the fold's
#: training frames and the recipe's epochs (:func:`write_resources`).
RESOURCES_FILE = "resources.json"


def check_run_folders(config: TrainConfig) -> None:
    """Refuse a run whose data has no aligned-crop cache yet, or whose output folder holds
    something other than a run of the same model."""
    folder = cache_folder(config.data, config.cache)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"data folder {config.data} has no aligned-face cache in {folder}; run "
            f"`aufacs prepare --data {config.data}` first"
        )
    _check_out_folder(run_folder(config), config.model)


@contextlib.contextmanager
def locked_run_folder(out: Path, context: DistributedContext) -> Iterator[None]:
    """The main process holds the run folder's lock for the block; when another process
    holds it, every process of this job refuses with the same sentence."""
    with contextlib.ExitStack() as stack:
        refusal = None
        if context.main:
            try:
                stack.enter_context(exclusive_lock(out / LOCK_FILE, f"run folder {out}"))
            except AufacsError as error:
                refusal = str(error)
        refusal = context.from_main(refusal)
        if refusal is not None:
            raise AufacsError(refusal)
        yield


def load_run_config(run: Path | str) -> TrainConfig:
    """The resolved configuration saved in run folder ``run``; :class:`AufacsError` naming
    the file when it is missing or damaged (not JSON, not an object, keys or values that
    are no training configuration's)."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise AufacsError(f"{run} is not a training run folder: it has no {CONFIG_FILE}")
    with reading_file(path, "a run configuration"):
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise AufacsError(f"run configuration {path} holds no JSON object; it is damaged")
        return config_from_dict(TrainConfig, values, source=str(path))


def _check_out_folder(out: Path, model: str) -> None:
    """Refuse an output folder that holds another model's run or something else."""
    if not out.exists() or all(path.name == LOCK_FILE for path in out.iterdir()):
        return
    if not (out / CONFIG_FILE).is_file():
        raise AufacsError(
            f"output folder {out} is not empty and holds no training run ({CONFIG_FILE}); "
            "choose a new folder"
        )
    if (out / PROVENANCE_FILE).is_file():
        raise AufacsError(
            f"output folder {out} holds published weights imported with `aufacs import`, "
            "which have no optimiser state to resume; train into a new folder"
        )
    previous = load_run_config(out)
    if previous.model != model:
        raise AufacsError(
            f"output folder {out} holds a {previous.model} run, not {model}; choose another "
            "folder to train a new run"
        )


def data_kind(config: TrainConfig, cache: AlignedCache) -> str:
    """``config.kind``, else the kind ``aufacs prepare`` recorded in the cache's audit.json."""
    if config.kind is not None:
        return config.kind
    audit = cache.path / "audit.json"
    kind = json.loads(audit.read_text()).get("kind") if audit.is_file() else None
    if kind not in KINDS:
        raise AufacsError(
            f"cache {cache.path} does not record its data set kind; pass kind=bp4d, disfa or "
            "synthetic"
        )
    return kind


def fold_split(cache: AlignedCache, kind: str, fold: int) -> Split:
    """The subject split of ``fold`` for the frames in ``cache`` (see ``dataset_split``)."""
    return dataset_split(FrameTable(cache.table, cache.aus, cache.path), kind, fold)


def build_run_model(
    config: TrainConfig, cache: AlignedCache, *, pretrained: bool = True
) -> AUModel:
    """The configured model for the cache's AUs (their numbers passed when the builder takes
    ``aus``, so that attention rules pick the right regions). ``pretrained=False`` skips
    loading pretrained backbone and stage-1 weights (a checkpoint will replace them); a run
    folder given as ``stage1_weights`` stands for its last checkpoint."""
    options = resolve_model_options(config.model_options)
    built = builder_options(config.model, options, cache.aus.aus, pretrained=pretrained)
    return build_model(config.model, len(cache.aus), **built)


def builder_options(
    model: str, options: Mapping[str, Any], aus: Sequence[int], *, pretrained: bool
) -> dict[str, Any]:
    """The keyword options that build ``model`` for AU numbers ``aus`` from a run's model
    ``options``, with or without ``pretrained`` weights (see :func:`build_run_model`)."""
    options = dict(options)
    accepted = model_options(model)
    if "aus" in accepted:
        options.setdefault("aus", tuple(aus))
    if not pretrained and "pretrained" in accepted:
        options["pretrained"] = None
    if not pretrained:
        options.pop("stage1_weights", None)
    return options


def peak_memory(device: torch.device) -> tuple[int, str]:
    """This process's peak memory so far in bytes and what was measured: on CUDA the tensors
    torch allocated on ``device``, elsewhere the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "CUDA max_memory_allocated"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak * (1 if sys.platform == "darwin" else 1024), "peak RSS of the process"


def write_resources(
    run: Path | str,
    config: TrainConfig,
    stage: int | str | None,
    device: torch.device,
    measured: Mapping[str, Any],
) -> Path:
    """Write ``<run>/resources.json``: what training ``measured`` (the epoch, its seconds per
    step, the fold's training frames and steps per epoch) with the model, its ``stage``, the
    batch size, the recipe's epochs, the device and this process's peak memory."""
    peak, what = peak_memory(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    record = {
        "model": config.model,
        "stage": stage,
        "device": f"{device} ({name})",
        "batch_size": config.batch_size,
        "recipe_epochs": recipe_for(config.model, stage).epochs,
        **measured,
        "peak_memory_bytes": peak,
        "peak_memory": what,
    }
    path = Path(run) / RESOURCES_FILE
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    return path


def make_dataset(
    cache: AlignedCache,
    subjects: tuple[str, ...] | None,
    model: AUModel,
    *,
    train: bool,
    flip: bool = True,
    seed: int = 0,
) -> AlignedFaceDataset:
    """The frames of ``subjects`` (None: all) as the model's input spec wants them; ``seed``
    seeds the training augmentations."""
    spec = model.input_spec
    return AlignedFaceDataset(
        cache,
        subjects=subjects,
        train=train,
        crop_size=spec.crop_size,
        resize_to=spec.resize_to,
        mean=spec.mean,
        std=spec.std,
        flip=flip,
        seed=seed,
    )


def saved_epochs(
    run: Path | str, checkpoints: Mapping[int, Path], epochs: Sequence[int] | None = None
) -> list[int]:
    """``epochs`` (default: every one in ``checkpoints``, epoch -> path, of run folder
    ``run``) sorted, each once; refuses, in one sentence, any that has no checkpoint."""
    chosen = list(checkpoints) if epochs is None else sorted({int(e) for e in epochs})
    missing = [e for e in chosen if e not in checkpoints]
    if not checkpoints or missing:
        raise AufacsError(
            f"run {run} has no checkpoint for epoch(s) {missing or 'any'}; saved "
            f"epochs: {list(checkpoints) or 'none, train it first'}"
        )
    return chosen


@dataclass
class LoadedRun:
    """A run folder opened again: its resolved settings, aligned-crop cache, fold split and
    saved checkpoints (epoch -> path). ``model`` is built on first use as the run trained it
    (no pretrained weights, on ``device``); :meth:`load_epoch` puts a checkpoint's weights in.
    """

    folder: Path
    config: TrainConfig
    cache: AlignedCache
    split: Split
    checkpoints: dict[int, Path]
    device: torch.device

    @classmethod
    def open(
        cls, run: Path | str, device: str = "cpu", *, cache: Path | str | None = None
    ) -> LoadedRun:
        """Open run folder ``run`` (``cache``: its aligned-crop cache, where that has moved
        since training); refuses a folder without a run, or whose cache is gone."""
        folder = Path(run)
        config = load_run_config(folder)
        cache_path = cache_folder(config.data, cache if cache is not None else config.cache)
        if not (cache_path / META_FILE).is_file():
            raise AufacsError(
                f"run {folder} needs its aligned-face cache {cache_path} (for its frames, AU "
                f"list and crop size), which is not there; run `aufacs prepare --data "
                f"{config.data}` again"
            )
        cache = AlignedCache.open(cache_path)
        split = fold_split(cache, config.kind, config.fold)
        saved = checkpoint_paths(folder)
        return cls(folder, config, cache, split, saved, resolve_device(device))

    @cached_property
    def model(self) -> AUModel:
        """The run's model as configured, on ``device``, with no epoch's weights yet."""
        return build_run_model(self.config, self.cache, pretrained=False).to(self.device)

    def saved_epochs(self, epochs: Sequence[int] | None = None) -> list[int]:
        """``epochs`` (default: every saved one) sorted, each once; refuses any not saved."""
        return saved_epochs(self.folder, self.checkpoints, epochs)

    def load_epoch(self, epoch: int | None = None) -> AUModel:
        """:attr:`model` with the weights of ``epoch`` (None: the last saved), in eval mode;
        :class:`~aufacs.engine.checkpoints.UnreadableCheckpoint` when the checkpoint is
        damaged or its weights do not fit the model."""
        chosen = self.saved_epochs(None if epoch is None else [epoch])[-1]
        path = self.checkpoints[chosen]
        state, model = load_checkpoint(path), self.model
        with reading_file(path, f"weights of this run's {self.config.model}", UnreadableCheckpoint):
            model.load_state_dict(state["model"])
        return model.eval()

    def test_set(self) -> AlignedFaceDataset:
        """The fold's test frames as the model's input spec wants them (no augmentation)."""
        return make_dataset(self.cache, self.split.test, self.model, train=False)
