"""A study's rehearsal and pre-flight: the cut-down plan, the checks before any notebook runs,
and the projection of the real run from what the rehearsal's training measured."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aufacs.core.console import say
from aufacs.core.io import write_text_atomic
from aufacs.data.cache import META_FILE
from aufacs.engine.config import TrainConfig, check_config
from aufacs.engine.device import resolve_amp, resolve_device
from aufacs.engine.runs import RESOURCES_FILE
from aufacs.models import model_options
from aufacs.models.backbones import torchvision_backbone
from aufacs.models.contract import refuse_broken
from aufacs.report.presets import Preset
from aufacs.report.workbook import with_image_size

if TYPE_CHECKING:
    from aufacs.report.steps import Step

#: Training steps of every model (and stage) in a rehearsal, in its one epoch.
REHEARSAL_STEPS = 2
#: The file of the projection in the reports folder.
REHEARSAL_FILE = "rehearsal.json"
#: The torchvision backbone whose ImageNet weights a model starts from, where it takes them.
IMAGENET_BACKBONES: dict[str, str] = {"eac_net": "vgg19", "me_graph_au": "resnet50"}


def rehearsal_preset(preset: Preset) -> Preset:
    """``preset`` cut to a rehearsal: every model keeps its batch size, image size and recipe
    but trains 1 epoch of :data:`REHEARSAL_STEPS` steps; the later notebooks draw and score
    a handful of faces, bootstrap a few replicates and time one pass of a small batch."""
    models = {
        name: dataclasses.replace(plan, epochs=1, max_steps_per_epoch=REHEARSAL_STEPS)
        for name, plan in preset.models.items()
    }
    return dataclasses.replace(
        preset,
        models=models,
        heatmap_samples=2,
        score_samples=4,
        n_boot=20,
        speed_batch=2,
        speed_repeats=1,
    )


def training_runs(steps: Sequence[Step]) -> dict[str, tuple[Path, int | None]]:
    """``{run name: (run folder, epochs)}`` of the ``02_train`` steps of a study plan; the
    name is the report's ``<model>`` or ``<model>_stage2``, epochs None the recipe's."""
    return {
        step.report.removeprefix("02_train_"): (
            Path(step.parameters["RUN_DIR"]),
            step.parameters["EPOCHS"],
        )
        for step in training_steps(steps)
    }


# --- before any notebook runs ------------------------------------------------------------------


def preflight(steps: Sequence[Step]) -> None:
    """Refuse in one sentence, before any notebook runs, a plan whose training cannot run
    here (:func:`check_training`) or whose ImageNet weights cannot be had
    (:func:`check_backbone_weights`)."""
    trainings = [training_config(step.parameters) for step in training_steps(steps)]
    for training in trainings:
        check_training(training)
    check_backbone_weights(trainings)


def training_steps(steps: Sequence[Step]) -> list[Step]:
    """The ``02_train`` steps of a study plan."""
    return [step for step in steps if step.notebook == "02_train"]


def training_config(parameters: Mapping[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` that ``02_train`` makes of a study step's ``parameters``
    (before 01 has made the data folder, so that is not checked here)."""
    config = TrainConfig(
        model=parameters["MODEL"],
        data=Path(parameters["DATA_ROOT"]),
        fold=parameters["FOLD"],
        out=Path(parameters["RUN_DIR"]),
        epochs=parameters["EPOCHS"],
        batch_size=parameters["BATCH_SIZE"],
        lr=parameters["LR"],
        optimizer=parameters["OPTIMIZER"],
        schedule=parameters["SCHEDULE"],
        device=parameters["DEVICE"],
        model_options=dict(parameters["MODEL_OPTIONS"]),
        max_steps_per_epoch=parameters["MAX_STEPS_PER_EPOCH"],
        seed=parameters["SEED"],
    )
    return with_image_size(config, parameters["IMAGE_SIZE"])


def check_training(config: TrainConfig) -> None:
    """Refuse in one sentence a training the device cannot run: a bad setting or option
    (:func:`check_config`), a device that is not there, a CUDA-only option (fp16) on CPU, or
    a plug-in model that breaks the model contract (:func:`refuse_broken`)."""
    check_config(config)
    resolve_amp(config.amp, resolve_device(config.device))
    refuse_broken(config.model, **config.model_options)


def imagenet_backbone(model: str, options: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The backbone architecture and the ``pretrained`` weights a model built with
    ``options`` loads, or None where it loads none (random weights, no backbone option, or a
    stage 2 that starts from stage 1's weights). Builders default to ``"imagenet"``."""
    pretrained = options.get("pretrained", "imagenet")
    if "pretrained" not in model_options(model) or pretrained is None:
        return None
    if options.get("stage1_weights") is not None or model not in IMAGENET_BACKBONES:
        return None
    return options.get("backbone", IMAGENET_BACKBONES[model]), pretrained


def check_backbone_weights(trainings: Iterable[TrainConfig]) -> None:
    """Load once each backbone's weights that ``trainings`` need
    (:func:`aufacs.models.backbones.torchvision_backbone`), which raises AufacsError with a
    sentence when they cannot be had (not cached and downloads off or failing)."""
    needed = {imagenet_backbone(t.model, t.model_options) for t in trainings} - {None}
    for arch, pretrained in sorted(needed, key=str):
        say(f"checking the {arch} weights ({pretrained}) ...")
        torchvision_backbone(arch, pretrained)


# --- the projection ----------------------------------------------------------------------------


def seconds_per_step(step_seconds: Sequence[float]) -> float:
    """The mean seconds of a training step, leaving out the first (warm-up: allocation,
    kernel choice) when there are two or more."""
    timed = list(step_seconds[1:] if len(step_seconds) >= 2 else step_seconds)
    if not timed:
        raise ValueError("no training step was timed")
    return sum(timed) / len(timed)


def steps_per_epoch(train_frames: int, batch_size: int) -> int:
    """Full batches in an epoch of ``train_frames`` (the last partial batch is dropped)."""
    return train_frames // batch_size


def project_run(name: str, resources: Mapping[str, Any], epochs: int | None) -> dict[str, Any]:
    """The real run of one model and stage from its rehearsal's ``resources.json``: seconds
    per step, steps per epoch of the fold's training frames at the batch size, ``epochs``
    (None: the recipe's), hours per epoch and in all, and the peak memory."""
    per_step = seconds_per_step(resources["step_seconds"])
    steps = steps_per_epoch(resources["train_frames"], resources["batch_size"])
    epochs = epochs or resources["recipe_epochs"]
    epoch_hours = per_step * steps / 3600
    return {
        "run": name,
        "model": resources["model"],
        "stage": resources["stage"],
        "device": resources["device"],
        "batch_size": resources["batch_size"],
        "seconds_per_step": per_step,
        "steps_per_epoch": steps,
        "epochs": epochs,
        "hours_per_epoch": epoch_hours,
        "total_hours": epoch_hours * epochs,
        "peak_memory_bytes": resources["peak_memory_bytes"],
        "peak_memory": resources["peak_memory"],
    }


def cache_disk(cache_bytes: int, cached_frames: int, clean_frames: int) -> dict[str, float]:
    """The aligned-face cache of ``clean_frames`` frames, from one holding ``cached_frames``
    in ``cache_bytes`` bytes: bytes per face and bytes in all."""
    per_face = cache_bytes / cached_frames
    return {"bytes_per_face": per_face, "frames": clean_frames, "bytes": per_face * clean_frames}


def measured_cache(folder: Path) -> dict[str, float]:
    """:func:`cache_disk` of the aligned-face cache in ``folder`` (every file counted)."""
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    frames = int(json.loads((folder / META_FILE).read_text())["frames"])
    return cache_disk(size, frames, frames)


def projection(runs: Mapping[str, tuple[Path, int | None]], cache: Path) -> dict[str, Any]:
    """The projection of every training run, ``{name: (run folder, epochs of the real run,
    None: the recipe's)}``, and of the cache in folder ``cache``."""
    projected = [
        project_run(name, json.loads((folder / RESOURCES_FILE).read_text()), epochs)
        for name, (folder, epochs) in runs.items()
    ]
    return {
        "runs": projected,
        "total_hours": sum(run["total_hours"] for run in projected),
        "cache": measured_cache(cache),
    }


def projection_lines(record: Mapping[str, Any]) -> list[str]:
    """``record`` (:func:`projection`) as a table of text lines."""
    header = ("run", "batch", "s/step", "steps/epoch", "epochs", "h/epoch", "hours", "peak GiB")
    rows = [header] + [
        (
            run["run"],
            str(run["batch_size"]),
            f"{run['seconds_per_step']:.3f}",
            str(run["steps_per_epoch"]),
            str(run["epochs"]),
            f"{run['hours_per_epoch']:.2f}",
            f"{run['total_hours']:.1f}",
            f"{run['peak_memory_bytes'] / 2**30:.2f}",
        )
        for run in record["runs"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    devices = ", ".join(sorted({run["device"] for run in record["runs"]}))
    memory = ", ".join(sorted({run["peak_memory"] for run in record["runs"]}))
    cache = record["cache"]
    return [
        f"projection of the real run on {devices} (peak memory: {memory}):",
        *lines,
        f"training in all: {record['total_hours']:.1f} hours",
        f"aligned-face cache: {cache['bytes_per_face'] / 1024:.1f} KiB per face x "
        f"{cache['frames']} clean frames = {cache['bytes'] / 2**30:.2f} GiB",
    ]


def write_projection(
    out: Path, runs: Mapping[str, tuple[Path, int | None]], cache: Path
) -> dict[str, Any]:
    """Write the :func:`projection` to ``<out>/rehearsal.json``, print it, and return it."""
    record = projection(runs, cache)
    write_text_atomic(out / REHEARSAL_FILE, json.dumps(record, indent=2) + "\n")
    for line in projection_lines(record):
        say(line)
    return record
