"""The study runner: the workbook's notebooks executed in order by papermill, rendered to HTML.

``run_study(StudyConfig())`` runs, with the parameters of a size preset
(:data:`aufacs.report.presets.PRESETS`):

1. ``01_data_cleaning`` once (for the synthetic data set it first generates the data),
2. ``02_train`` once per model (report ``02_train_<model>``), and for a model whose preset
   asks for two stages (the ``paper`` preset's ME-GraphAU) once more, the second stage
   starting from the first's last checkpoint (report ``02_train_<model>_stage2``),
3. ``03_evaluate_epochs``, ``04_heatmaps`` and ``05_compare_models`` on all the runs,
4. ``06_own_photos`` on the demo face with the run of the first plug-in model the study
   trains (``docs/your_model.md``), else with the JAA-Net run, else with the first run,

writing ``<reports>/<name>/<report>.ipynb`` (the executed notebook) and ``.html`` (a page
that opens offline: :func:`aufacs.report.pages.export_html`), ``study.json`` (configuration,
seconds and metrics of each report) and ``index.html`` linking them. Runs go to
``<runs>/<name>/<model>`` (and ``<model>_stage2``). Before any notebook runs, each training
is checked (settings, options, device) and the ImageNet weights the plan needs are loaded
once (:func:`run_study`). A notebook that fails stops the study with :class:`AufacsError`
naming it; its partial executed notebook and HTML are kept, as are the reports before it,
and the index says what ran. Widgets need a live kernel, and a cell that draws them can hang
nbclient's batch execution now and then (jupyter/nbclient#312), so the study turns the
progress bars off; the heatmap browser it shows is plain HTML and JavaScript
(:mod:`aufacs.report.browser`).

One study at a time writes a reports folder (a lock, see :func:`run_study`); every notebook
gets the study's ``THREADS`` (None: :func:`default_threads`, announced once).

**Rehearsal** (``rehearse``): every notebook runs with the preset's full-size models and
recipes, but each model and stage trains 1 epoch of a few steps and the later notebooks use a
handful of faces (:func:`aufacs.report.rehearsal.rehearsal_preset`); then the study writes
``rehearsal.json`` and prints a projection of the real run on this device: seconds per step,
hours per epoch and in all, peak memory, and the disk of the aligned-face cache.

What the notebooks themselves call is :mod:`aufacs.report.workbook`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.core.locks import exclusive_lock
from aufacs.data.prepare import KINDS, cache_folder, check_dataset
from aufacs.data.splits import check_fold
from aufacs.engine.device import (
    THREADS_HELP,
    default_threads,
    resolve_device,
    thread_limit,
    use_threads,
)
from aufacs.engine.runs import LOCK_FILE
from aufacs.models import available_models
from aufacs.models.registry import plugin_package
from aufacs.report.index import write_index
from aufacs.report.notebook_files import check_notebooks, packaged_notebooks
from aufacs.report.presets import PRESETS, ModelPlan, Preset, adjusted_preset
from aufacs.report.rehearsal import preflight, rehearsal_preset, training_runs, write_projection
from aufacs.report.steps import Step, StepResult, page_links, run_step


@dataclass(frozen=True)
class StudyConfig:
    """A study: which data, which models at which size, where runs and reports go."""

    name: str = field(default="default", metadata={"help": "study name: reports/<name>/"})
    data: Path = field(
        default=Path("data/synthetic"), metadata={"help": "data folder (generated if synthetic)"}
    )
    kind: str = field(default="synthetic", metadata={"help": "bp4d, disfa or synthetic"})
    fold: int = field(default=1, metadata={"help": "fold (1-3)"})
    folds: tuple[int, ...] | None = field(
        default=None,
        metadata={
            "help": "folds to study, e.g. 1 2 3: every model trained and evaluated on each, and "
            "05 writes the papers' three-fold table (default: --fold alone)"
        },
    )
    size: str = field(default="cpu", metadata={"help": "size preset: cpu, smoke or paper"})
    models: tuple[str, ...] = field(
        default=("jaa_net", "eac_net", "me_graph_au"),
        metadata={"help": "models to train: built-in ones and installed plug-ins"},
    )
    epochs: int | None = field(
        default=None, metadata={"help": "epochs of every model (default: the preset's)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    seed: int = field(default=0, metadata={"help": "seed of the synthetic data and training"})
    threads: int | None = field(default=None, metadata={"help": THREADS_HELP})
    reports: Path = field(default=Path("reports"), metadata={"help": "reports root folder"})
    runs: Path = field(default=Path("runs"), metadata={"help": "training runs root folder"})
    notebooks: Path | None = field(
        default=None,
        metadata={
            "help": "folder of the workbook notebooks (default: those installed with aufacs)"
        },
    )
    rehearse: bool = field(
        default=False,
        metadata={
            "help": "run every notebook with the full-size models and recipes for a few steps "
            "per epoch and stage, then print a projection of the real run"
        },
    )
    random_init: bool = field(
        default=False,
        metadata={
            "help": "EAC-Net, ME-GraphAU and plug-ins with a pretrained option start from "
            "random weights instead of ImageNet's, e.g. for a rehearsal on a machine without them"
        },
    )


# --- the plan ----------------------------------------------------------------------------------


def check_study(config: StudyConfig) -> Preset:
    """Refuse a bad study configuration in one sentence before any work; returns its preset."""
    if config.size not in PRESETS:
        raise AufacsError(f"size must be one of {', '.join(PRESETS)}, got {config.size!r}")
    if config.kind not in KINDS:
        raise AufacsError(f"kind must be one of {', '.join(KINDS)}, got {config.kind!r}")
    for fold in study_folds(config):
        check_fold(fold)
    if config.folds is not None and len(set(config.folds)) != len(config.folds):
        raise AufacsError(
            f"folds must differ from each other, got {' '.join(map(str, config.folds))}"
        )
    unknown = [m for m in config.models if m not in available_models()]
    if not config.models or unknown:
        raise AufacsError(
            f"models must name one or more of {', '.join(available_models())}, got "
            f"{', '.join(config.models) or 'none'}"
        )
    for name in ("epochs", "threads"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or value < 1):
            raise AufacsError(f"{name} must be a positive integer, got {value}")
    check_notebooks(config.notebooks or packaged_notebooks())
    resolve_device(config.device)
    if config.kind != "synthetic":
        check_dataset(config.data, config.kind)
    return PRESETS[config.size]


def planned_preset(config: StudyConfig) -> Preset:
    """The study's preset (checked, :func:`check_study`) with its ``epochs`` and
    ``random_init``, cut to a rehearsal with ``rehearse``."""
    preset = check_study(config)
    preset = adjusted_preset(
        preset, config.models, epochs=config.epochs, random_init=config.random_init
    )
    return rehearsal_preset(preset) if config.rehearse else preset


def study_folds(config: StudyConfig) -> tuple[int, ...]:
    """The folds a study runs: ``folds``, else ``(fold,)``."""
    return tuple(config.folds) if config.folds else (config.fold,)


def study_plan(config: StudyConfig) -> list[Step]:
    """The notebook executions of a study, in order, with their parameters (absolute paths;
    every notebook gets the study's ``THREADS``). With several folds every model is trained
    on each, into ``<runs>/<name>/<model>_fold<k>``; evaluation covers every run, and the
    comparison gets each model's runs of all folds (its three-fold table)."""
    preset = planned_preset(config)
    data = config.data.resolve()
    reports = (config.reports / config.name).resolve()
    folds = study_folds(config)
    steps = [_cleaning_step(config, preset, data, reports, folds[0])]
    root = (config.runs / config.name).resolve()
    by_fold: dict[int, dict[str, Path]] = {}
    for fold in folds:
        suffix = f"_fold{fold}" if len(folds) > 1 else ""
        trainings = [
            step
            for model in config.models
            for step in _training_steps(
                config, model, preset.models[model], data, root, fold, suffix
            )
        ]
        steps += trainings
        by_fold[fold] = {
            (name.replace(suffix, "", 1) if suffix else name): folder
            for name, (folder, _) in training_runs(trainings).items()
        }
    steps += _steps_on_the_runs(config, preset, by_fold, reports)
    return [
        Step(step.notebook, step.report, {**step.parameters, "THREADS": config.threads})
        for step in steps
    ]


def _cleaning_step(
    config: StudyConfig, preset: Preset, data: Path, reports: Path, fold: int
) -> Step:
    synth = preset.synth
    parameters = {
        "DATA_ROOT": str(data),
        "KIND": config.kind,
        "FOLD": fold,
        "ALIGNED_SIZE": preset.aligned_size,
        "SYNTH_SUBJECTS": synth.subjects,
        "SYNTH_TASKS": synth.tasks,
        "SYNTH_FRAMES": synth.frames_per_task,
        "SEED": config.seed,
        "OUT_DIR": str(reports / "data"),
        "PROGRESS": False,
    }
    return Step("01_data_cleaning", "01_data_cleaning", parameters)


def _training_steps(
    config: StudyConfig,
    model: str,
    plan: ModelPlan,
    data: Path,
    root: Path,
    fold: int,
    suffix: str = "",
) -> list[Step]:
    """The training of ``model`` on ``fold`` into ``<root>/<model><suffix>``; with two
    ``stages``, then the second stage into ``<root>/<model><suffix>_stage<k>``, loading the
    first run's last checkpoint."""
    first_run = root / f"{model}{suffix}"
    if len(plan.stages) < 2:
        return [_training_step(config, model, plan, data, first_run, fold, dict(plan.options))]
    first, second = plan.stages
    later = {**plan.options, "stage": second, "stage1_weights": str(first_run)}
    return [
        _training_step(
            config, model, plan, data, first_run, fold, {**plan.options, "stage": first}
        ),
        _training_step(
            config, model, plan, data, root / f"{model}{suffix}_stage{second}", fold, later
        ),
    ]


def _training_step(
    config: StudyConfig,
    model: str,
    plan: ModelPlan,
    data: Path,
    run: Path,
    fold: int,
    options: dict[str, Any],
) -> Step:
    parameters = {
        "MODEL": model,
        "DATA_ROOT": str(data),
        "FOLD": fold,
        "EPOCHS": plan.epochs,
        "BATCH_SIZE": plan.batch_size,
        "LR": plan.lr,
        "OPTIMIZER": plan.optimizer,
        "SCHEDULE": plan.schedule,
        "IMAGE_SIZE": plan.image_size,
        "DEVICE": config.device,
        "RUN_DIR": str(run),
        "MODEL_OPTIONS": options,
        "MAX_STEPS_PER_EPOCH": plan.max_steps_per_epoch,
        "SEED": config.seed,
        "PROGRESS": False,
    }
    return Step("02_train", f"02_train_{run.name}", parameters)


def _steps_on_the_runs(
    config: StudyConfig, preset: Preset, by_fold: dict[int, dict[str, Path]], reports: Path
) -> list[Step]:
    """Evaluation of every run; heatmaps (Grad-CAM for every model), the comparison and own
    photos on the first fold's runs (module docstring); with several folds the comparison
    also gets every model's runs of all folds (``FOLD_RUNS``)."""
    runs = next(iter(by_fold.values()))
    folders = [str(run) for run in runs.values()]
    every_run = [str(run) for fold_runs in by_fold.values() for run in fold_runs.values()]
    fold_runs = {name: [str(r[name]) for r in by_fold.values()] for name in runs}
    # the own-photos demo shows the researcher's own model where there is one, else JAA-Net,
    # which predicts its own landmarks
    plugins = [model for model in config.models if plugin_package(model) is not None]
    own_photos_run = runs[plugins[0]] if plugins else runs.get("jaa_net", next(iter(runs.values())))
    evaluation = {"RUN_DIRS": every_run, "DEVICE": config.device, "PROGRESS": False}
    heatmaps = {
        "RUN_DIRS": folders,
        "N_SAMPLES": preset.heatmap_samples,
        "GRADCAM_FOR": list(config.models),
        "SCORE_SAMPLES": preset.score_samples,
        "DEVICE": config.device,
    }
    comparison = {
        "RUN_DIRS": folders,
        "N_BOOT": preset.n_boot,
        "SPEED_BATCH": preset.speed_batch,
        "SPEED_REPEATS": preset.speed_repeats,
        "FOLD_RUNS": fold_runs if len(by_fold) > 1 else {},
        "OUT_DIR": str(reports / "papers_table"),
    }
    own_photos = {
        "RUN": str(own_photos_run),
        "OUT_DIR": str(reports / "own_photos"),
        "DEVICE": config.device,
    }
    return [
        Step("03_evaluate_epochs", "03_evaluate_epochs", evaluation),
        Step("04_heatmaps", "04_heatmaps", heatmaps),
        Step("05_compare_models", "05_compare_models", comparison),
        Step("06_own_photos", "06_own_photos", own_photos),
    ]


# --- running it --------------------------------------------------------------------------------


def resolved_study(config: StudyConfig) -> StudyConfig:
    """``config`` as the study runs and records it: its threads chosen (None:
    :func:`default_threads`), its notebooks found (None: :func:`packaged_notebooks`) and its
    folders absolute."""
    if config.notebooks is None:
        config = dataclasses.replace(config, notebooks=packaged_notebooks())
    folders = {
        name: value.resolve() for name, value in vars(config).items() if isinstance(value, Path)
    }
    threads = default_threads() if config.threads is None else config.threads
    return dataclasses.replace(config, threads=threads, **folders)


def describe_study(config: StudyConfig) -> str:
    """What :func:`run_study` would run for ``config``: one line per notebook with its
    parameters. Checks the configuration as the run does; runs and writes nothing."""
    config = resolved_study(config)
    steps = study_plan(config)
    lines = [
        f"study {config.name} ({config.size}): {len(config.models)} model(s) "
        f"({', '.join(config.models)}) x fold(s) {', '.join(map(str, study_folds(config)))}, "
        f"{len(steps)} notebooks into {config.reports / config.name} on {config.threads} CPU "
        "thread(s)"
    ]
    for step in steps:
        values = " ".join(f"{name}={value!r}" for name, value in step.parameters.items())
        lines.append(f"{step.report}: {values}")
    return "\n".join(lines)


def run_study(config: StudyConfig) -> Path:
    """Run the study (module docstring); returns its report folder ``<reports>/<name>``.

    Refuses a bad configuration, or a reports folder that another study holds (its
    ``.aufacs.lock``, held to the end: :func:`aufacs.core.locks.exclusive_lock`), before any
    notebook runs. Raises AufacsError naming the notebook that failed, after writing the index.
    """
    config = resolved_study(config)
    steps = study_plan(config)
    preflight(steps)
    out = config.reports / config.name
    with exclusive_lock(out / LOCK_FILE, f"reports folder {out}"), thread_limit(config.threads):
        use_threads(config.threads)
        _run_steps(config, steps, out)
        if config.rehearse:
            real = study_plan(dataclasses.replace(config, rehearse=False))
            write_projection(out, training_runs(real), cache_folder(config.data))
    return out


def _run_steps(config: StudyConfig, steps: Sequence[Step], out: Path) -> None:
    """Run ``steps`` into ``out`` until one fails; write the index however it ends."""
    results: list[StepResult] = []
    started = time.perf_counter()
    try:
        for step in steps:
            say(f"running {step.report} ...")
            result = run_step(step, config.notebooks, out, page_links(steps, step))
            results.append(result)
            say(f"{step.report}: {result.status} in {result.seconds:.0f} s")
            if result.status != "ok":
                raise AufacsError(
                    f"notebook {step.report} failed: {result.error}; its partial output is "
                    f"in {out / step.report}.ipynb and .html"
                )
    finally:
        write_index(out, config, steps, results, time.perf_counter() - started)
    say(f"study reports in {out} ({time.perf_counter() - started:.0f} s)")
