"""What the workbook's notebooks call beyond the engine and the analysis, one notebook after
another.

- every notebook: :func:`publish`, its last cell, which records its headline metrics (the
  cell after its parameters is :func:`aufacs.report.inputs.check_parameters`);
- ``01_data_cleaning``: :func:`ensure_data`, :func:`clean_data`, :func:`crop_examples` and
  :func:`write_clean_data`;
- ``02_train``: :func:`train_config`, :func:`initialisation_note` and :func:`run_settings`;
- ``04_heatmaps``: :func:`heatmap_sets`, :func:`galleries` and :func:`attention_scores`;
- ``05_compare_models``: :func:`speed_of_runs`.

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
import torch.nn.functional as F

from aufacs.analysis.heatmaps import HeatmapSet, attention_mass_inside, heatmap_set
from aufacs.analysis.speed import speed_table
from aufacs.core.aus import au_column
from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.data.audit import audit
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import AlignedFaceDataset
from aufacs.data.prepare import PrepareConfig, Prepared, prepare, read_dataset
from aufacs.data.splits import custom_split
from aufacs.data.stats import WEIGHT_SCHEMES, au_weights, occurrence_rates
from aufacs.data.synthetic import SynthConfig, SynthManifest, SynthTruth, generate_synthetic
from aufacs.engine.config import TrainConfig, check_config
from aufacs.engine.device import to_device
from aufacs.engine.runs import LoadedRun, load_run_config
from aufacs.models import model_options
from aufacs.report.inputs import found

#: MIME type of the metrics :func:`publish` writes into a notebook's output.
METRICS_MIME = "application/json"
#: Builder option that sets each model's input side in pixels (``IMAGE_SIZE`` of 02_train).
IMAGE_SIZE_OPTIONS: dict[str, str] = {"jaa_net": "crop_size", "eac_net": "input_size"}


def publish(metrics: Mapping[str, Any]) -> None:
    """The last cell of a notebook: show ``metrics`` and record them in the notebook's output
    (as JSON that :func:`aufacs.report.study.published_metrics` reads back)."""
    from IPython.display import display

    plain = json.loads(json.dumps(dict(metrics), default=float))
    text = "\n".join(f"{k}: {v}" for k, v in plain.items())
    display({METRICS_MIME: plain, "text/plain": text}, raw=True)


# --- 01_data_cleaning --------------------------------------------------------------------------


def ensure_data(folder: Path | str, kind: str, synth: SynthConfig) -> None:
    """Make sure ``folder`` holds a data set of ``kind``: for ``"synthetic"``, generate it with
    ``synth`` unless the folder already holds that configuration's; for real data sets, check
    that the folder exists (:func:`aufacs.report.inputs.found`)."""
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


def _spread_indices(count: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(count)`` (all of them if fewer)."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def crop_examples(cache: AlignedCache, n: int = 12) -> tuple[np.ndarray, list[str]]:
    """``n`` aligned crops spread over the cache, (n, S, S, 3) uint8, and their titles
    (subject/task/frame and the AUs present)."""
    rows = _spread_indices(len(cache), n)
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
    then the settings, then the data folder). ``image_size``: the input side in pixels, set
    through the model's own option (:data:`IMAGE_SIZE_OPTIONS`); None keeps the model's
    default. ``options``: further builder options (e.g. ``pretrained``)."""
    config = TrainConfig(
        model=model,
        data=Path(data),
        fold=fold,
        out=None if out is None else Path(out),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=device,
        model_options={} if options is None else options,
        max_steps_per_epoch=max_steps_per_epoch,
        seed=seed,
        threads=threads,
        progress=progress,
    )
    check_config(config)
    found(data, "data folder")
    if image_size is None:
        return config
    if model not in IMAGE_SIZE_OPTIONS:
        raise AufacsError(
            f"IMAGE_SIZE cannot be set for {model}, which takes its fixed input size; "
            f"leave it None (models with a size option: {', '.join(IMAGE_SIZE_OPTIONS)})"
        )
    options = {**config.model_options, IMAGE_SIZE_OPTIONS[model]: image_size}
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


def run_settings(run: Path | str) -> pd.DataFrame:
    """The resolved training settings of a run (recipe defaults filled in), one per row."""
    config = load_run_config(run)
    values = {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"}
    return pd.DataFrame({"value": [str(v) for v in values.values()]}, index=list(values))


# --- 04_heatmaps -------------------------------------------------------------------------------


def _test_batch(
    test: AlignedFaceDataset, n: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """``n`` items spread over the test set, as a batch on ``device``, and their indices."""
    indices = _spread_indices(len(test), n)
    return to_device(test[indices], device), indices


def heatmap_sets(
    runs: Mapping[str, Path | str],
    *,
    epochs: Sequence[int] | None = None,
    n_samples: int = 4,
    method: str = "auto",
    device: str = "cpu",
) -> dict[tuple[str, int], HeatmapSet]:
    """``{(run name, epoch): HeatmapSet}`` of ``n_samples`` test frames (the same frames for
    every run of one data set and fold), for ``epochs`` (None or empty: every saved epoch).
    ``method``: ``"auto"`` (a model's own attention, else Grad-CAM), ``"attention"`` or
    ``"gradcam"`` (see :mod:`aufacs.analysis.heatmaps`)."""
    sets = {}
    for name, folder in runs.items():
        run = LoadedRun.open(folder, device)
        batch, _ = _test_batch(run.test_set(), n_samples, run.device)
        for epoch in run.saved_epochs(epochs or None):
            model = run.load_epoch(epoch)
            sets[(name, epoch)] = heatmap_set(model, batch, run.cache.aus.aus, method=method)
    return sets


def galleries(
    collections: Sequence[Mapping[tuple[str, int], HeatmapSet]], epoch: int | None = None
) -> dict[str, HeatmapSet]:
    """One heatmap set per run and collection, at ``epoch`` (None: the run's last in the
    collection), titled ``"<run>, epoch <e>: <method>"``, in the collections' order."""
    chosen = {}
    for sets in collections:
        for name in dict.fromkeys(name for name, _ in sets):
            computed = sorted(e for n, e in sets if n == name)
            number = epoch if epoch is not None else computed[-1]
            if number not in computed:
                raise AufacsError(
                    f"no heatmaps of {name} at epoch {number}; computed epochs: {computed}"
                )
            maps = sets[(name, number)]
            chosen[f"{name}, epoch {number}: {maps.method}"] = maps
    return chosen


def region_masks(run: LoadedRun, test: AlignedFaceDataset, indices: np.ndarray) -> torch.Tensor:
    """Ground-truth AU regions of the synthetic items ``indices`` of ``test`` (the run's test
    set) on the model's input grid: (S, N, H, W) bool, resized and centre-cropped as the test
    set crops the faces."""
    rows = run.cache.table.iloc[test.rows[indices]]
    truth = SynthTruth(run.config.data)
    masks = truth.region_masks_for(
        rows, aligned=True, size=run.cache.size, box_enlarge=run.cache.box_enlarge
    )
    masks = torch.as_tensor(masks).float()
    source, crop = test.source_size, test.crop_size
    if source != run.cache.size:
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
    averages :func:`aufacs.analysis.heatmaps.attention_mass_inside` over the ``n_samples``
    test faces in which the AU is present (NaN if in none). ``epoch``: None for each run's
    last. Runs on real data have no ground-truth regions: the table is then empty.
    """
    rows, uniform, columns = {}, None, []
    for name, folder in runs.items():
        run = LoadedRun.open(folder, device)
        if run.config.kind != "synthetic":
            say(f"{name} was trained on {run.config.kind} data, which has no AU regions")
            continue
        test = run.test_set()
        batch, indices = _test_batch(test, n_samples, run.device)
        model = run.load_epoch(epoch)
        masks = region_masks(run, test, indices)
        present = batch["au"].cpu() > 0
        for method in ("auto", "gradcam") if name in gradcam_for else ("auto",):
            maps = heatmap_set(model, batch, run.cache.aus.aus, method=method)
            inside = attention_mass_inside(torch.as_tensor(maps.maps.astype(np.float32)), masks)
            rows[f"{name} ({maps.method})"] = _masked_mean(inside, present)
        uniform = _masked_mean(masks.float().mean(dim=(-2, -1)), present)
        columns = [au_column(a) for a in run.cache.aus.aus]
    if uniform is not None:
        rows["uniform map"] = uniform
    return pd.DataFrame(rows, index=columns, dtype=float).T


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
    """Mean over samples of (S, N) ``values`` where ``keep`` (S, N) holds: (N,), NaN if none."""
    kept = keep & ~values.isnan()
    total = torch.where(kept, values, torch.zeros_like(values)).sum(dim=0)
    count = kept.sum(dim=0)
    return torch.where(count > 0, total / count.clamp_min(1), torch.nan).numpy()


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
