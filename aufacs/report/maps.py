"""What ``04_heatmaps`` computes: heatmaps of test faces per run and epoch, the galleries'
choice of them, and how much of each map falls inside its AU's ground-truth region.

Runs are opened with :class:`aufacs.engine.runs.LoadedRun`; the maps come from
:func:`aufacs.analysis.heatmaps.heatmap_set`. The browser that shows them is
:mod:`aufacs.report.browser`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from aufacs.analysis.heatmaps import HeatmapSet, attention_mass_inside, heatmap_set
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
