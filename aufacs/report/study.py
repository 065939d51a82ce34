"""The study: the workbook's notebooks executed in order by papermill, rendered to HTML.

``run_study(StudyConfig())`` runs, with the parameters of a size preset (:data:`PRESETS`):

1. ``01_data_cleaning`` once (for the synthetic data set it first generates the data),
2. ``02_train`` once per model (report ``02_train_<model>``),
3. ``03_evaluate_epochs``, ``04_heatmaps`` and ``05_compare_models`` on all the runs,

writing ``<reports>/<name>/<report>.ipynb`` (the executed notebook) and ``.html`` (nbconvert's
HTMLExporter), ``study.json`` (configuration, seconds and metrics of each report) and
``index.html`` linking them. Runs go to ``<runs>/<name>/<model>``. A notebook that fails
stops the study with :class:`AufacsError` naming it; its partial executed notebook and HTML
are kept, as are the reports before it, and the index says what ran. Widgets need a live
kernel, and a cell that draws them can hang nbclient's batch execution now and then
(jupyter/nbclient#312), so the study turns the heatmap browser and the progress bars off.

The rest of this module is what the notebooks call beyond the engine: the training
configuration of a model at an image size, the run's model at an epoch, heatmap sets and
ground-truth region masks of test samples, the speed of the runs' models, and
:func:`publish`, the last cell of every notebook. Notebooks run with their own folder as the
working directory; the study passes absolute paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from aufacs.analysis.heatmaps import HeatmapSet, attention_mass_inside, heatmap_set
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.data.audit import audit
from aufacs.data.cache import AlignedCache
from aufacs.data.prepare import KINDS, PrepareConfig, Prepared, cache_folder, prepare, read_dataset
from aufacs.data.splits import N_FOLDS, custom_split
from aufacs.data.stats import WEIGHT_SCHEMES, au_weights, occurrence_rates
from aufacs.data.synthetic import SynthConfig, SynthManifest, SynthTruth, generate_synthetic
from aufacs.engine.train import (
    TrainConfig,
    build_run_model,
    checkpoint_paths,
    fold_split,
    load_checkpoint,
    load_run_config,
    make_dataset,
    resolve_device,
)
from aufacs.models import AUModel, available_models, model_options

#: The workbook, in the order the study runs it.
NOTEBOOKS: tuple[str, ...] = (
    "01_data_cleaning",
    "02_train",
    "03_evaluate_epochs",
    "04_heatmaps",
    "05_compare_models",
    "06_own_photos",
)
#: Builder option that sets each model's input side in pixels (``IMAGE_SIZE`` of 02_train).
IMAGE_SIZE_OPTIONS: dict[str, str] = {"jaa_net": "crop_size", "eac_net": "input_size"}
STUDY_FILE = "study.json"
INDEX_FILE = "index.html"
METRICS_MIME = "application/json"


@dataclass(frozen=True)
class ModelPlan:
    """How one model is trained in a preset: ``epochs``, ``batch_size``, ``lr`` (None: the
    recipe's), ``image_size`` (input side in pixels, None: the model's default), builder
    ``options`` and ``max_steps_per_epoch`` (None: every batch)."""

    epochs: int | None
    batch_size: int | None
    lr: float | None = None
    image_size: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    max_steps_per_epoch: int | None = None


@dataclass(frozen=True)
class Preset:
    """A study size: the synthetic data set, the aligned-face size, each model's training,
    and the work of the later notebooks (heatmap samples, bootstrap replicates, speed)."""

    synth: SynthConfig
    aligned_size: int
    models: Mapping[str, ModelPlan]
    heatmap_samples: int
    score_samples: int
    n_boot: int
    speed_batch: int
    speed_repeats: int
    description: str


#: Models without ImageNet weights on a machine like this one start from random weights.
RANDOM_INIT = {"pretrained": None}

PRESETS: dict[str, Preset] = {
    "cpu": Preset(
        synth=SynthConfig(subjects=12, tasks=4, frames_per_task=40),
        aligned_size=112,
        models={
            "jaa_net": ModelPlan(epochs=3, batch_size=8, image_size=96, options={"unit_dim": 4}),
            "eac_net": ModelPlan(
                epochs=4,
                batch_size=8,
                lr=0.01,
                image_size=96,
                options={**RANDOM_INIT, "width_divisor": 4},
            ),
            "me_graph_au": ModelPlan(
                epochs=2, batch_size=16, lr=5e-4, options={**RANDOM_INIT, "backbone": "resnet18"}
            ),
        },
        heatmap_samples=4,
        score_samples=48,
        n_boot=1000,
        speed_batch=8,
        speed_repeats=5,
        description="the default: synthetic data and small models that train on 2 CPU cores; "
        "EAC-Net and ME-GraphAU start from random weights (pretrained=None: no ImageNet "
        "weights here)",
    ),
    "smoke": Preset(
        synth=SynthConfig(subjects=6, tasks=2, frames_per_task=8),
        aligned_size=40,
        models={
            "jaa_net": ModelPlan(
                epochs=2,
                batch_size=4,
                image_size=32,
                options={"unit_dim": 2},
                max_steps_per_epoch=2,
            ),
            "eac_net": ModelPlan(
                epochs=2,
                batch_size=4,
                image_size=32,
                options={**RANDOM_INIT, "width_divisor": 8},
                max_steps_per_epoch=2,
            ),
            "me_graph_au": ModelPlan(
                epochs=1,
                batch_size=4,
                options={**RANDOM_INIT, "backbone": "resnet18"},
                max_steps_per_epoch=1,
            ),
        },
        heatmap_samples=2,
        score_samples=4,
        n_boot=50,
        speed_batch=2,
        speed_repeats=1,
        description="the smallest run of every notebook, for tests (numbers mean nothing)",
    ),
    "paper": Preset(
        synth=SynthConfig(),
        aligned_size=200,
        models={
            "jaa_net": ModelPlan(epochs=None, batch_size=None),
            "eac_net": ModelPlan(epochs=None, batch_size=None, options={"pretrained": "imagenet"}),
            "me_graph_au": ModelPlan(
                epochs=None, batch_size=None, options={"pretrained": "imagenet"}
            ),
        },
        heatmap_samples=6,
        score_samples=64,
        n_boot=1000,
        speed_batch=32,
        speed_repeats=20,
        description="the published recipes at full size (ImageNet weights, a GPU, real data)",
    ),
}


@dataclass(frozen=True)
class StudyConfig:
    """A study: which data, which models at which size, where runs and reports go."""

    name: str = field(default="default", metadata={"help": "study name: reports/<name>/"})
    data: Path = field(
        default=Path("data/synthetic"), metadata={"help": "data folder (generated if synthetic)"}
    )
    kind: str = field(default="synthetic", metadata={"help": "bp4d, disfa or synthetic"})
    fold: int = field(default=1, metadata={"help": "fold (1-3)"})
    size: str = field(default="cpu", metadata={"help": "size preset: cpu, smoke or paper"})
    models: tuple[str, ...] = field(
        default=("jaa_net", "eac_net", "me_graph_au"), metadata={"help": "models to train"}
    )
    epochs: int | None = field(
        default=None, metadata={"help": "epochs of every model (default: the preset's)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    seed: int = field(default=0, metadata={"help": "seed of the synthetic data and training"})
    threads: int = field(
        default=1,
        metadata={
            "help": "CPU threads of each notebook's torch (more help only on an idle machine)"
        },
    )
    reports: Path = field(default=Path("reports"), metadata={"help": "reports root folder"})
    runs: Path = field(default=Path("runs"), metadata={"help": "training runs root folder"})
    notebooks: Path = field(
        default=Path("notebooks"), metadata={"help": "folder of the workbook notebooks"}
    )


@dataclass(frozen=True)
class Step:
    """One notebook execution: the notebook, the report name and its parameters."""

    notebook: str
    report: str
    parameters: dict[str, Any]


@dataclass
class StepResult:
    """What one step produced: ``status`` ``"ok"`` or ``"failed"``, seconds, metrics."""

    step: Step
    status: str
    seconds: float
    metrics: dict[str, Any]
    error: str = ""


# --- the study ---------------------------------------------------------------------------------


def check_study(config: StudyConfig) -> Preset:
    """Refuse a bad study configuration in one sentence before any work; returns its preset."""
    if config.size not in PRESETS:
        raise AufacsError(f"size must be one of {', '.join(PRESETS)}, got {config.size!r}")
    if config.kind not in KINDS:
        raise AufacsError(f"kind must be one of {', '.join(KINDS)}, got {config.kind!r}")
    if isinstance(config.fold, bool) or config.fold not in range(1, N_FOLDS + 1):
        raise AufacsError(f"fold must be one of 1, 2, 3, got {config.fold!r}")
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
    for notebook in NOTEBOOKS:
        path = Path(config.notebooks) / f"{notebook}.ipynb"
        if not path.is_file():
            raise AufacsError(f"notebook {path} does not exist; expected the workbook there")
    return PRESETS[config.size]


def study_plan(config: StudyConfig) -> list[Step]:
    """The notebook executions of a study, in order, with their parameters (absolute paths)."""
    preset = check_study(config)
    data = Path(config.data).resolve()
    runs_root = (Path(config.runs) / config.name).resolve()
    runs = [str(runs_root / model) for model in config.models]
    # the own-photos demo prefers JAA-Net, which predicts its own landmarks
    own_photos_run = str(
        runs_root / ("jaa_net" if "jaa_net" in config.models else config.models[0])
    )
    reports = (Path(config.reports) / config.name).resolve()
    synth = preset.synth
    steps = [
        Step("01_data_cleaning", "01_data_cleaning", {
            "DATA_ROOT": str(data), "KIND": config.kind, "FOLD": config.fold,
            "ALIGNED_SIZE": preset.aligned_size, "SYNTH_SUBJECTS": synth.subjects,
            "SYNTH_TASKS": synth.tasks, "SYNTH_FRAMES": synth.frames_per_task,
            "SEED": config.seed, "OUT_DIR": str(reports / "data"),
        }),
    ]  # fmt: skip
    for model, run in zip(config.models, runs, strict=True):
        plan = preset.models[model]
        steps.append(Step("02_train", f"02_train_{model}", {
            "MODEL": model, "DATA_ROOT": str(data), "FOLD": config.fold,
            "EPOCHS": config.epochs or plan.epochs, "BATCH_SIZE": plan.batch_size,
            "LR": plan.lr, "IMAGE_SIZE": plan.image_size, "DEVICE": config.device,
            "RUN_DIR": run, "MODEL_OPTIONS": dict(plan.options),
            "MAX_STEPS_PER_EPOCH": plan.max_steps_per_epoch, "SEED": config.seed,
            "PROGRESS": False,
        }))  # fmt: skip
    steps += [
        Step("03_evaluate_epochs", "03_evaluate_epochs", {
            "RUN_DIRS": runs, "DEVICE": config.device,
        }),
        Step("04_heatmaps", "04_heatmaps", {
            "RUN_DIRS": runs, "N_SAMPLES": preset.heatmap_samples,
            "SCORE_SAMPLES": preset.score_samples, "DEVICE": config.device,
            "BROWSER": False,
        }),
        Step("05_compare_models", "05_compare_models", {
            "RUN_DIRS": runs, "N_BOOT": preset.n_boot, "SPEED_BATCH": preset.speed_batch,
            "SPEED_REPEATS": preset.speed_repeats,
        }),
        Step("06_own_photos", "06_own_photos", {
            "RUN": own_photos_run, "OUT_DIR": str(reports / "own_photos"),
            "DEVICE": config.device,
        }),
    ]  # fmt: skip
    return steps


def run_study(config: StudyConfig) -> Path:
    """Run the study (module docstring); returns its report folder ``<reports>/<name>``.

    Raises AufacsError naming the notebook that failed, after writing the index.
    """
    steps = study_plan(config)
    out = Path(config.reports) / config.name
    out.mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []
    started = time.perf_counter()
    try:
        for step in steps:
            print(f"running {step.report} ...", flush=True)
            with _threads(config.threads):
                result = run_step(step, Path(config.notebooks), out)
            results.append(result)
            print(f"{step.report}: {result.status} in {result.seconds:.0f} s", flush=True)
            if result.status != "ok":
                raise AufacsError(
                    f"notebook {step.report} failed: {result.error}; its partial output is "
                    f"in {out / step.report}.ipynb and .html"
                )
    finally:
        write_index(out, config, steps, results, time.perf_counter() - started)
    print(f"study reports in {out} ({time.perf_counter() - started:.0f} s)")
    return out


#: Environment variables that set the CPU threads of torch (OpenMP) and of BLAS libraries.
THREAD_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """Let the kernels started inside use ``count`` CPU threads."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(count) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_step(step: Step, notebooks: Path, out: Path) -> StepResult:
    """Execute one notebook with papermill into ``out`` and render it to HTML (also when it
    fails, so that the partial report can be read)."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    source = Path(notebooks).resolve() / f"{step.notebook}.ipynb"
    executed = out / f"{step.report}.ipynb"
    started = time.perf_counter()
    status, error = "ok", ""
    try:
        papermill.execute_notebook(
            str(source), str(executed), parameters=step.parameters, cwd=str(source.parent),
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip
    except PapermillExecutionError as failure:
        status, error = "failed", f"{failure.ename}: {failure.evalue}"
    except DeadKernelError as failure:
        status, error = "failed", f"the kernel died ({failure})"
    seconds = time.perf_counter() - started
    export_html(executed)
    metrics = published_metrics(executed) if status == "ok" else {}
    return StepResult(step, status, seconds, metrics, error)


def export_html(notebook: Path) -> Path:
    """Render an executed notebook to ``<notebook>.html`` beside it (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(node)
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path


def published_metrics(notebook: Path) -> dict[str, Any]:
    """The metrics that :func:`publish` wrote into an executed notebook (the last ones)."""
    import nbformat

    node = nbformat.read(notebook, as_version=4)
    for cell in reversed(node.cells):
        for output in reversed(cell.get("outputs", [])):
            if METRICS_MIME in output.get("data", {}):
                return dict(output["data"][METRICS_MIME])
    return {}


def write_index(
    out: Path, config: StudyConfig, steps: Sequence[Step], results: Sequence[StepResult],
    seconds: float,
) -> Path:  # fmt: skip
    """Write ``study.json`` and ``index.html``: one row per planned report with its links,
    status, seconds and published metrics."""
    done = {r.step.report: r for r in results}
    record = {
        "config": {k: _plain(v) for k, v in dataclasses.asdict(config).items()},
        "seconds": round(seconds, 1),
        "reports": [
            {"report": s.report, "notebook": s.notebook, **_result_record(done.get(s.report))}
            for s in steps
        ],
    }
    (out / STUDY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    rows = "\n".join(_index_row(step, done.get(step.report)) for step in steps)
    settings = ", ".join(f"{k}={html.escape(str(v))}" for k, v in record["config"].items())
    page = _INDEX_PAGE.format(
        name=html.escape(config.name), settings=settings, rows=rows, seconds=seconds,
        description=html.escape(PRESETS[config.size].description),
    )  # fmt: skip
    path = out / INDEX_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """A configuration value as JSON can hold it (paths as strings, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    return list(value) if isinstance(value, tuple) else value


def _result_record(result: StepResult | None) -> dict[str, Any]:
    if result is None:
        return {"status": "not run"}
    return {"status": result.status, "seconds": round(result.seconds, 1),
            "metrics": result.metrics, "error": result.error}  # fmt: skip


def _index_row(step: Step, result: StepResult | None) -> str:
    name = html.escape(step.report)
    if result is None:
        return f"<tr><td>{name}</td><td></td><td></td><td>not run</td><td></td><td></td></tr>"
    metrics = "<br>".join(
        f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in result.metrics.items()
    )
    status = "ok" if result.status == "ok" else f"<b>failed</b>: {html.escape(result.error)}"
    return (
        f'<tr><td>{name}</td><td><a href="{name}.html">report</a></td>'
        f'<td><a href="{name}.ipynb">notebook</a></td><td>{status}</td>'
        f"<td>{result.seconds:.0f}</td><td>{metrics}</td></tr>"
    )


_INDEX_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>aufacs study {name}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}} table{{border-collapse:collapse}}</style></head>
<body><h1>aufacs study: {name}</h1>
<p>Size preset: {description}. Settings: {settings}.</p>
<p>Total time: {seconds:.0f} s.</p>
<table><tr><th>report</th><th>HTML</th><th>executed notebook</th><th>status</th>
<th>seconds</th><th>published metrics</th></tr>
{rows}
</table>
<p>Published numbers of the methods shown in 05_compare_models are literature values on the
real BP4D, not results of this study.</p></body></html>
"""


# --- what the notebooks call -------------------------------------------------------------------


def publish(metrics: Mapping[str, Any]) -> None:
    """The last cell of a notebook: show ``metrics`` and record them in the notebook's output
    (as JSON that :func:`published_metrics` reads back)."""
    from IPython.display import display

    plain = json.loads(json.dumps(dict(metrics), default=float))
    text = "\n".join(f"{k}: {v}" for k, v in plain.items())
    display({METRICS_MIME: plain, "text/plain": text}, raw=True)


def ensure_data(folder: Path | str, kind: str, synth: SynthConfig) -> None:
    """Make sure ``folder`` holds a data set of ``kind``: for ``"synthetic"``, generate it with
    ``synth`` unless the folder already holds that configuration's; for real data sets, check
    that the folder exists."""
    folder = Path(folder)
    if kind != "synthetic":
        if not folder.is_dir():
            raise AufacsError(f"data folder {folder} does not exist; expected a {kind} data set")
        return
    try:
        if SynthManifest.read(folder).config == synth:
            print(f"reusing the synthetic data set in {folder}")
            return
    except AufacsError:
        pass
    generate_synthetic(folder, synth, overwrite=True)


def clean_data(
    data: Path | str,
    kind: str,
    fold: int,
    *,
    size: int = 200,
    train_subjects: Sequence[str] = (),
    test_subjects: Sequence[str] = (),
) -> Prepared:
    """Audit ``data`` and build its aligned-face cache (:func:`aufacs.data.prepare.prepare`).

    With ``train_subjects`` and ``test_subjects`` the returned audit checks that custom split
    (leakage, balance, rates) instead of fold ``fold``; training still uses the fold.
    """
    prepared = prepare(PrepareConfig(data=Path(data), kind=kind, fold=fold, size=size))
    if not train_subjects and not test_subjects:
        return prepared
    split = custom_split(train_subjects, test_subjects)
    report = audit(read_dataset(Path(data), kind), split)
    return Prepared(report, prepared.cache)


def write_clean_data(prepared: Prepared, out: Path | str) -> pd.DataFrame:
    """Write the clean frame table (``clean.csv``), the defects (``defects.csv``) and the AU
    weights of the training split (``au_weights.csv``) to ``out``; returns the weights: per
    AU its training occurrence rate and the weight of each scheme (NaN where undefined)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report, aus = prepared.report, prepared.cache.aus
    report.clean.to_csv(out / "clean.csv", index=False)
    report.defects.to_csv(out / "defects.csv", index=False)
    training = report.clean[report.clean.get("split", "train") == "train"]
    rates = occurrence_rates(training[aus.columns].to_numpy(dtype=float))
    weights = pd.DataFrame({"au": aus.columns, "rate": rates})
    for scheme in WEIGHT_SCHEMES:
        try:
            weights[scheme] = au_weights(rates, scheme, aus.aus)
        except AufacsError:
            weights[scheme] = np.nan
    weights.to_csv(out / "au_weights.csv", index=False)
    return weights


def _spread(count: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(count)`` (all of them if fewer)."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def crop_examples(cache: AlignedCache, n: int = 12) -> tuple[np.ndarray, list[str]]:
    """``n`` aligned crops spread over the cache, (n, S, S, 3) uint8, and their titles
    (subject/task/frame and the AUs present)."""
    rows = _spread(len(cache), n)
    table = cache.table.iloc[rows]
    labels = cache.labels[rows]
    titles = [
        f"{r.subject}/{r.task}/{r.frame}\n"
        + " ".join(au_column(a) for a, on in zip(cache.aus.aus, label > 0, strict=True) if on)
        for r, label in zip(table.itertuples(), labels, strict=True)
    ]
    return np.asarray(cache.images[rows]), titles


def train_config(
    model: str,
    *,
    data: str,
    fold: int = 1,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    image_size: int | None = None,
    device: str = "auto",
    out: str | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps_per_epoch: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TrainConfig:
    """The :class:`TrainConfig` of ``02_train``'s parameters. ``image_size``: the input side
    in pixels, set through the model's own option (:data:`IMAGE_SIZE_OPTIONS`); None keeps
    the model's default. ``options``: further builder options (e.g. ``pretrained``)."""
    options = dict(options or {})
    if image_size is not None:
        if model not in IMAGE_SIZE_OPTIONS:
            raise AufacsError(
                f"IMAGE_SIZE cannot be set for {model}, which takes its fixed input size; "
                f"leave it None (models with a size option: {', '.join(IMAGE_SIZE_OPTIONS)})"
            )
        options[IMAGE_SIZE_OPTIONS[model]] = image_size
    return TrainConfig(
        model=model, data=str(data), fold=fold, out=out, epochs=epochs, batch_size=batch_size,
        lr=lr, device=device, model_options=options, max_steps_per_epoch=max_steps_per_epoch,
        seed=seed, progress=progress,
    )  # fmt: skip


def initialisation(config: TrainConfig) -> str:
    """One sentence on how the model's backbone starts (ImageNet weights or random)."""
    if "pretrained" not in model_options(config.model):
        return f"{config.model} has no pretrained backbone; it starts from random weights."
    source = config.model_options.get("pretrained", "imagenet")
    if source is None:
        return (
            f"{config.model} starts from random weights (pretrained=None): no ImageNet weights "
            "are used, so its scores are not those of the published, ImageNet-initialised model."
        )
    return f"{config.model} starts from pretrained backbone weights ({source})."


def run_settings(run: Path | str) -> pd.DataFrame:
    """The resolved training settings of a run (recipe defaults filled in), one per row."""
    config = load_run_config(run)
    values = {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"}
    return pd.DataFrame({"value": [str(v) for v in values.values()]}, index=list(values))


@dataclass
class RunParts:
    """A run's configuration, cache, model (weights of no epoch yet) and test data set."""

    config: TrainConfig
    cache: AlignedCache
    model: AUModel
    test: torch.utils.data.Dataset


def run_parts(run: Path | str, device: str = "cpu") -> RunParts:
    """Build a run's model as trained (no pretrained weights loaded) and its test set."""
    config = load_run_config(run)
    cache = AlignedCache.open(cache_folder(config.data, config.cache))
    split = fold_split(cache, config.kind, config.fold)
    model = build_run_model(config, cache, pretrained=False).to(resolve_device(device))
    return RunParts(config, cache, model, make_dataset(cache, split.test, model, train=False))


def load_epoch(parts: RunParts, run: Path | str, epoch: int) -> AUModel:
    """Load the weights of ``epoch`` of ``run`` into ``parts.model``; returns the model."""
    saved = checkpoint_paths(run)
    if epoch not in saved:
        raise AufacsError(f"run {run} has no checkpoint of epoch {epoch}; saved: {list(saved)}")
    parts.model.load_state_dict(load_checkpoint(saved[epoch])["model"])
    return parts.model.eval()


def _samples(parts: RunParts, n: int, device: str) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """``n`` test items spread over the test set, as a batch, and their dataset indices."""
    indices = _spread(len(parts.test), n)
    batch = parts.test[indices]
    return {k: v.to(resolve_device(device)) for k, v in batch.items()}, indices


def heatmap_sets(
    runs: Mapping[str, Path | str],
    *,
    epochs: Sequence[int] | None = None,
    n_samples: int = 4,
    method: str = "auto",
    device: str = "cpu",
) -> dict[tuple[str, int], HeatmapSet]:
    """``{(run name, epoch): HeatmapSet}`` of ``n_samples`` test frames (the same frames for
    every run of one data set and fold), for ``epochs`` (default: every saved epoch).
    ``method``: ``"auto"`` (a model's own attention, else Grad-CAM), ``"attention"`` or
    ``"gradcam"`` (see :mod:`aufacs.analysis.heatmaps`)."""
    sets = {}
    for name, run in runs.items():
        parts = run_parts(run, device)
        batch, _ = _samples(parts, n_samples, device)
        for epoch in epochs or list(checkpoint_paths(run)):
            model = load_epoch(parts, run, epoch)
            sets[(name, epoch)] = heatmap_set(model, batch, parts.cache.aus.aus, method=method)
    return sets


def galleries(
    collections: Sequence[Mapping[tuple[str, int], HeatmapSet]], epoch: int | None = None
) -> dict[str, HeatmapSet]:
    """One heatmap set per run and collection, at ``epoch`` (None: the run's last in the
    collection), titled ``"<run>, epoch <e>: <method>"``, in the collections' order."""
    chosen = {}
    for sets in collections:
        for name in dict.fromkeys(name for name, _ in sets):
            number = epoch if epoch is not None else max(e for n, e in sets if n == name)
            if (name, number) not in sets:
                raise AufacsError(f"no heatmaps of {name} at epoch {number}; computed epochs: "
                                  f"{sorted(e for n, e in sets if n == name)}")  # fmt: skip
            maps = sets[(name, number)]
            chosen[f"{name}, epoch {number}: {maps.method}"] = maps
    return chosen


def region_masks(parts: RunParts, indices: np.ndarray) -> torch.Tensor:
    """Ground-truth AU regions of synthetic test items ``indices`` on the model's input grid:
    (S, N, H, W) bool, resized and centre-cropped as the test set crops the faces."""
    rows = parts.cache.table.iloc[parts.test.rows[indices]]
    truth = SynthTruth(parts.config.data)
    masks = truth.region_masks_for(rows, aligned=True, size=parts.cache.size,
                                   box_enlarge=parts.cache.box_enlarge)  # fmt: skip
    masks = torch.as_tensor(masks).float()
    source, crop = parts.test.source_size, parts.test.crop_size
    if source != parts.cache.size:
        masks = F.interpolate(masks, size=(source, source), mode="nearest")
    top = int(round((source - crop) / 2.0))
    return masks[..., top : top + crop, top : top + crop] > 0.5


def attention_scores(
    runs: Mapping[str, Path | str],
    *,
    gradcam_for: Sequence[str] = (),
    epoch: int | None = None,
    n_samples: int = 48,
    device: str = "cpu",
) -> pd.DataFrame:
    """Share of map mass inside each AU's ground-truth region, on synthetic data.

    One row per run (its own maps: attention, or Grad-CAM without attention), one more per
    run named in ``gradcam_for`` (Grad-CAM), and a last row ``uniform map`` (the region's
    share of the image: what a map without preference scores); one column per AU. Each cell
    averages :func:`aufacs.analysis.heatmaps.attention_mass_inside` over the ``n_samples`` test
    faces
    in which the AU is present (NaN if in none). ``epoch``: None for each run's last.
    Runs on real data have no ground-truth regions: the table is then empty.
    """
    rows, uniform, columns = {}, None, []
    for name, run in runs.items():
        parts = run_parts(run, device)
        if parts.config.kind != "synthetic":
            print(f"{name} was trained on {parts.config.kind} data, which has no AU regions")
            continue
        batch, indices = _samples(parts, n_samples, device)
        model = load_epoch(parts, run, epoch or max(checkpoint_paths(run)))
        masks = region_masks(parts, indices).to(resolve_device(device))
        present = batch["au"] > 0
        for method in ("auto", "gradcam") if name in gradcam_for else ("auto",):
            maps = heatmap_set(model, batch, parts.cache.aus.aus, method=method)
            inside = attention_mass_inside(torch.as_tensor(maps.maps.astype(np.float32)), masks)
            rows[f"{name} ({maps.method})"] = _masked_mean(inside.cpu(), present.cpu())
        uniform = _masked_mean(masks.float().mean(dim=(-2, -1)).cpu(), present.cpu())
        columns = [au_column(a) for a in parts.cache.aus.aus]
    if uniform is not None:
        rows["uniform map"] = uniform
    return pd.DataFrame(rows, index=columns, dtype=float).T


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
    """Mean over samples of (S, N) ``values`` where ``keep`` (S, N) holds: (N,), NaN if none."""
    kept = torch.where(keep & ~values.isnan(), values, torch.zeros_like(values))
    count = (keep & ~values.isnan()).sum(dim=0)
    return torch.where(count > 0, kept.sum(dim=0) / count.clamp_min(1), torch.nan).numpy()


def speed_of_runs(
    runs: Mapping[str, Path | str],
    *,
    batch_size: int = 8,
    repeats: int = 10,
    onnx: bool = False,
) -> pd.DataFrame:
    """:func:`aufacs.analysis.speed.speed_table` of the runs' models at their trained sizes, at
    batch
    1 and ``batch_size``: on the CPU, and on the GPU too where there is one."""
    from aufacs.analysis.speed import speed_table

    models = {name: run_parts(run).model for name, run in runs.items()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    tables = [
        speed_table(
            models,
            device=device,
            batch_sizes=(1, batch_size),
            repeats=repeats,
            warmup=1,
            onnx=onnx and device == "cpu",
        )  # fmt: skip
        for device in devices
    ]
    return pd.concat(tables, ignore_index=True)
