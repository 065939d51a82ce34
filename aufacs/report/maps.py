"""What ``04_heatmaps`` computes: heatmaps of test faces per run and epoch, the galleries'
choice of them, and how much of each map falls inside its AU's ground-truth region, against
what a uniform map would put there.

Runs are opened with :class:`aufacs.engine.runs.LoadedRun`; the maps come from
:func:`aufacs.analysis.heatmaps.heatmap_set`. The browser that shows them is
:mod:`aufacs.report.browser`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from aufacs.analysis.heatmaps import (
    RATIO_COLUMNS,
    HeatmapSet,
    attention_mass_inside,
    heatmap_set,
    uniform_map_ratio,
)
from aufacs.core.aus import au_column
from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.data.dataset import AlignedFaceDataset
from aufacs.data.synthetic import SynthTruth
from aufacs.engine.device import to_device
from aufacs.engine.runs import LoadedRun


def spread_indices(count: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(count)`` (all of them if fewer)."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def _test_batch(
    test: AlignedFaceDataset, n: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """``n`` items spread over the test set, as a batch on ``device``, and their indices."""
    indices = spread_indices(len(test), n)
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


def gradcam_sets(
    runs: Mapping[str, Path | str],
    own: Mapping[tuple[str, int], HeatmapSet],
    **options: Any,
) -> dict[tuple[str, int], HeatmapSet]:
    """Grad-CAM maps (:func:`heatmap_sets` with ``method="gradcam"`` and ``options``) of the
    runs in ``runs`` whose own maps in ``own`` are not Grad-CAM already, so that every run
    has Grad-CAM once."""
    needed = {
        name: folder
        for name, folder in runs.items()
        if any(run == name and maps.method != "gradcam" for (run, _), maps in own.items())
    }
    return heatmap_sets(needed, method="gradcam", **options)


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


@dataclass(frozen=True)
class RegionMass:
    """How one run's maps of ``S`` test faces meet the ``N`` AUs' ground-truth regions:
    ``inside`` (S, N) the share of each map's mass inside its AU's region (NaN for a map
    without mass), ``uniform`` (S, N) the region's share of the image (what a map without
    preference scores), ``present`` (S, N) bool, whether the face shows the AU; ``aus`` the
    N column names."""

    inside: np.ndarray
    uniform: np.ndarray
    present: np.ndarray
    aus: list[str]


def region_mass(
    runs: Mapping[str, Path | str],
    *,
    gradcam_for: Sequence[str] = (),
    epoch: int | None = None,
    n_samples: int = 48,
    device: str = "cpu",
) -> dict[str, RegionMass]:
    """:class:`RegionMass` of every run's own maps (attention, or Grad-CAM without
    attention), keyed ``"<run> (<method>)"``, and of Grad-CAM for the runs named in
    ``gradcam_for``, on ``n_samples`` test faces spread over the test set; synthetic data
    only (a run on real data has no ground-truth regions and is left out, with a line saying
    so). ``epoch``: None for each run's last."""
    masses = {}
    for name, folder in runs.items():
        run = LoadedRun.open(folder, device)
        if run.config.kind != "synthetic":
            say(f"{name} was trained on {run.config.kind} data, which has no AU regions")
            continue
        test = run.test_set()
        batch, indices = _test_batch(test, n_samples, run.device)
        model = run.load_epoch(epoch)
        masks = region_masks(run, test, indices)
        uniform = masks.float().mean(dim=(-2, -1)).numpy()
        present = batch["au"].cpu().numpy() > 0
        aus = [au_column(a) for a in run.cache.aus.aus]
        for method in ("auto", "gradcam") if name in gradcam_for else ("auto",):
            maps = heatmap_set(model, batch, run.cache.aus.aus, method=method)
            inside = attention_mass_inside(torch.as_tensor(maps.maps.astype(np.float32)), masks)
            masses[f"{name} ({maps.method})"] = RegionMass(inside.numpy(), uniform, present, aus)
    return masses


def attention_scores(masses: Mapping[str, RegionMass]) -> pd.DataFrame:
    """Share of map mass inside each AU's ground-truth region: one row per map of
    :func:`region_mass`, and a last row ``uniform map`` (what a map without preference
    scores); one column per AU. Each cell averages over the test faces in which the AU is
    present (NaN if in none). Empty when no run has regions (real data)."""
    rows = {name: _masked_mean(mass.inside, mass.present) for name, mass in masses.items()}
    if not masses:
        return pd.DataFrame(dtype=float)
    last = list(masses.values())[-1]
    rows["uniform map"] = _masked_mean(last.uniform, last.present)
    return pd.DataFrame(rows, index=last.aus, dtype=float).T


def uniform_ratios(
    masses: Mapping[str, RegionMass], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """How many times a uniform map's mass each map puts inside the AU regions, over the
    test faces and the AUs they show: one row per map (the index) with ``inside`` and
    ``uniform`` (mean shares), ``ratio`` (their quotient) and its 95 % bootstrap interval over
    test faces (``low``, ``high``), ``faces`` and a ``verdict``: better than a uniform map
    when the whole interval lies above 1, worse when below, else no different from one."""
    rows = []
    for name, mass in masses.items():
        ratio = uniform_map_ratio(mass.inside, mass.uniform, mass.present, n_boot, seed)
        rows.append({"map": name, **ratio, "verdict": _ratio_verdict(ratio["low"], ratio["high"])})
    return pd.DataFrame(rows, columns=[*RATIO_COLUMNS, "verdict"]).set_index("map")


def map_metrics(scores: pd.DataFrame, ratios: pd.DataFrame) -> dict[str, float]:
    """What 04 publishes: each map's mean share inside the AU regions (the row means of
    :func:`attention_scores`) and its ratio to a uniform map (:func:`uniform_ratios`)."""
    metrics = scores.mean(axis=1).round(3).to_dict()
    for row in ratios.itertuples():
        metrics[f"{row.Index} ratio to uniform"] = round(float(row.ratio), 2)
    return metrics


def _ratio_verdict(low: float, high: float) -> str:
    if low > 1:
        return "better than a uniform map"
    if high < 1:
        return "worse than a uniform map"
    return "no different from a uniform map"


def ratio_notes(ratios: pd.DataFrame) -> str:
    """One Markdown bullet per map of :func:`uniform_ratios`: its verdict, ratio and interval."""
    return "\n".join(
        f"- **{row.Index}** is {row.verdict}: {row.ratio:.2f}× its mass inside the AU regions "
        f"(95 % interval {row.low:.2f}–{row.high:.2f}, {row.faces} test faces)."
        for row in ratios.itertuples()
    )


def _masked_mean(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mean over samples of (S, N) ``values`` where ``keep`` (S, N) holds: (N,), NaN if none."""
    kept = keep & ~np.isnan(values)
    count = kept.sum(axis=0)
    total = np.where(kept, values, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
