"""What the workbook's notebooks call beyond the engine and the analysis, one notebook after
another.

- every notebook: :func:`publish`, its last cell, which records its headline metrics (the
  cell after its parameters is :func:`aufacs.report.inputs.check_parameters`);
- ``01_data_cleaning``: :func:`ensure_data`, :func:`clean_data`, :func:`crop_examples` and
  :func:`write_clean_data`;
- ``02_train``: :func:`train_config`, :func:`initialisation_note`, :func:`recipe_note` and
  :func:`run_settings`;
- ``04_heatmaps``: :mod:`aufacs.report.maps` and the browser, :mod:`aufacs.report.browser`;
- ``05_compare_models``: :func:`speed_of_runs`;
- ``06_own_photos``: :func:`training_data_note`.

Runs are opened with :class:`aufacs.engine.runs.LoadedRun`. Notebooks run with their own folder
as the working directory; the study (:mod:`aufacs.report.study`) passes absolute paths, and
the folders a notebook reads are looked up with :func:`aufacs.report.inputs.found`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aufacs.analysis.speed import speed_table
from aufacs.core.aus import au_column
from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.data.audit import audit
from aufacs.data.cache import AlignedCache
from aufacs.data.prepare import PrepareConfig, Prepared, prepare, read_dataset
from aufacs.data.splits import custom_split
from aufacs.data.stats import WEIGHT_SCHEMES, au_weights, occurrence_rates
from aufacs.data.synthetic import SynthConfig, SynthManifest, generate_synthetic
from aufacs.engine.config import TrainConfig, check_config
from aufacs.engine.recipes import recipe_source
from aufacs.engine.runs import LoadedRun, load_run_config
from aufacs.models import model_options
from aufacs.models.registry import image_size_option
from aufacs.report.inputs import found
from aufacs.report.maps import spread_indices
from aufacs.report.tables import cell

#: MIME type of the metrics :func:`publish` writes into a notebook's output.
METRICS_MIME = "application/json"


def publish(metrics: Mapping[str, Any]) -> None:
    """The last cell of a notebook: show ``metrics`` and record them in the notebook's output
    (as JSON that :func:`aufacs.report.steps.published_metrics` reads back)."""
    from IPython.display import display

    plain = json.loads(json.dumps(dict(metrics), default=float))
    text = "\n".join(f"{k}: {cell(v)}" for k, v in plain.items())
    display({METRICS_MIME: plain, "text/plain": text}, raw=True)


# --- 01_data_cleaning --------------------------------------------------------------------------


def ensure_data(
    folder: Path | str, kind: str, synth: SynthConfig, *, progress: bool = True
) -> None:
    """Make sure ``folder`` holds a data set of ``kind``: for ``"synthetic"``, generate it with
    ``synth`` unless the folder already holds that configuration's; for real data sets, check
    that the folder exists (:func:`aufacs.report.inputs.found`). ``progress``: a progress bar."""
    if kind != "synthetic":
        found(folder, f"{kind} data folder")
        return
    folder = Path(folder)
    try:
        if SynthManifest.read(folder).config == synth:
            say(f"reusing the synthetic data set in {folder.resolve()}")
            return
    except AufacsError:
        pass
    say(f"generating the synthetic data set in {folder.resolve()}")
    generate_synthetic(folder, synth, overwrite=True, progress=progress)


def clean_data(
    data: Path | str,
    kind: str,
    fold: int,
    *,
    size: int = 200,
    train_subjects: Sequence[str] = (),
    test_subjects: Sequence[str] = (),
    progress: bool = True,
) -> Prepared:
    """Audit ``data`` and build its aligned-face cache (:func:`aufacs.data.prepare.prepare`).

    With ``train_subjects`` and ``test_subjects`` the returned audit checks that custom split
    (leakage, balance, rates) instead of fold ``fold``; training still uses the fold.
    ``progress``: progress bars while reading, checking and aligning.
    """
    config = PrepareConfig(data=Path(data), kind=kind, fold=fold, size=size)
    prepared = prepare(config, progress=progress)
    if not train_subjects and not test_subjects:
        return prepared
    split = custom_split(train_subjects, test_subjects)
    report = audit(read_dataset(Path(data), kind), split, progress=progress)
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


def crop_examples(cache: AlignedCache, n: int = 12) -> tuple[np.ndarray, list[str]]:
    """``n`` aligned crops spread over the cache, (n, S, S, 3) uint8, and their titles
    (subject/task/frame and the AUs present)."""
    rows = spread_indices(len(cache), n)
    table = cache.table.iloc[rows]
    labels = cache.labels[rows]
    titles = [
        f"{r.subject}/{r.task}/{r.frame}\n"
        + " ".join(au_column(a) for a, on in zip(cache.aus.aus, label > 0, strict=True) if on)
        for r, label in zip(table.itertuples(), labels, strict=True)
    ]
    return np.asarray(cache.images[rows]), titles


# --- 02_train ----------------------------------------------------------------------------------


def train_config(
    model: str,
    *,
    data: Path | str,
    fold: int = 1,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    schedule: str | None = None,
    image_size: int | None = None,
    device: str = "auto",
    out: Path | str | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps_per_epoch: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
) -> TrainConfig:
    """The :class:`TrainConfig` of ``02_train``'s parameters, checked (an unknown model first,
    then the settings, then the data folder). ``lr``, ``optimizer``, ``schedule``: None keeps
    the model's recipe (:mod:`aufacs.engine.recipes`). ``image_size``: the input side in
    pixels, set through the model's own option (:func:`with_image_size`); None keeps the
    model's default. ``options``: further builder options (e.g. ``pretrained``)."""
    config = TrainConfig(
        model=model,
        data=Path(data),
        fold=fold,
        out=None if out is None else Path(out),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        device=device,
        model_options={} if options is None else options,
        max_steps_per_epoch=max_steps_per_epoch,
        seed=seed,
        threads=threads,
        progress=progress,
    )
    check_config(config)
    found(data, "data folder")
    return with_image_size(config, image_size)


def with_image_size(config: TrainConfig, image_size: int | None) -> TrainConfig:
    """``config`` with the input side ``image_size`` (pixels) set through the model's own
    option (:func:`aufacs.models.registry.image_size_option`); None keeps the model's default.
    Raises AufacsError for a plug-in model without an ``image_size`` option."""
    if image_size is None:
        return config
    option = image_size_option(config.model)
    if option is None:
        raise AufacsError(
            f"model {config.model} has no image_size option, so its input size cannot be set "
            f"to {image_size} pixels; leave IMAGE_SIZE at None (docs/your_model.md)"
        )
    options = {**config.model_options, option: image_size}
    return dataclasses.replace(config, model_options=options)


def initialisation_note(config: TrainConfig) -> str:
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


def recipe_note(config: TrainConfig) -> str:
    """One sentence on where the settings that ``config`` leaves unset come from: the
    published recipe, the one a plug-in declares, or the default for plug-ins."""
    return (
        f"{config.model} trains with {recipe_source(config.model)} wherever this notebook's "
        "parameters leave a setting at None."
    )


def run_settings(run: Path | str) -> pd.DataFrame:
    """The resolved training settings of a run (recipe defaults filled in), one per row, as
    text (:func:`aufacs.report.tables.cell`: "–" for a setting left unset)."""
    config = load_run_config(run)
    values = {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"}
    return pd.DataFrame({"value": [cell(v) for v in values.values()]}, index=list(values))


# --- 06_own_photos ----------------------------------------------------------------------------


def training_data_note(run: Path | str) -> str:
    """One sentence on the data the run's model learnt from, for wherever its predictions
    are shown on real faces: a warning when that data was synthetic."""
    config = load_run_config(run)
    if config.kind == "synthetic":
        return (
            f"Trained on synthetic faces: this {config.model} run learnt from the generated "
            f"SynthBP4D data set ({config.data}), not from photographs of people, so its AU "
            "probabilities on a real face show how the pipeline works, not what the face does."
        )
    kind = (config.kind or "an unrecorded data set").upper()
    return f"This {config.model} run was trained on {kind} ({config.data})."


# --- 05_compare_models -------------------------------------------------------------------------


def speed_of_runs(
    runs: Mapping[str, Path | str],
    *,
    batch_size: int = 8,
    repeats: int = 10,
    onnx: bool = False,
) -> pd.DataFrame:
    """:func:`aufacs.analysis.speed.speed_table` of the runs' models at their trained sizes, at
    batch 1 and ``batch_size``: on the CPU, and on the GPU too where there is one."""
    models = {name: LoadedRun.open(folder).model for name, folder in runs.items()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    tables = [
        speed_table(
            models,
            device=device,
            batch_sizes=(1, batch_size),
            repeats=repeats,
            warmup=1,
            onnx=onnx and device == "cpu",
        )
        for device in devices
    ]
    return pd.concat(tables, ignore_index=True)
