"""Drawing a face's result: its crop with an AU's heatmap and the landmarks, beside the bars of
every AU's probability, for one face (:func:`explain_face`, :func:`sample_figure`) or a grid
of many (:func:`heatmap_gallery`).

The heatmap notebook, the widget browser and the pictures of one's own photos share these
functions. They make ``matplotlib.figure.Figure`` objects that pyplot does not track
(nothing to close, safe under the Agg backend); a notebook shows them as images once its
inline backend is on (``%matplotlib inline`` or ``import matplotlib.pyplot``), and
``figure.savefig`` works anywhere. Images to draw are (H, W, 3) uint8 RGB
(:func:`aufacs.analysis.heatmaps.denormalise` turns a model input back into one); heatmaps
are (h, w) floats in [0, 1], stretched over their image.

With no photo of one's own, :func:`demo_image` gives scikit-image's astronaut (Eileen
Collins, NASA, public domain).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from aufacs.analysis.heatmaps import HeatmapSet, heatmap_set
from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.data.table import landmarks_of
from aufacs.inference.faces import rescale_points, working_copy
from aufacs.inference.media import load_image, video_frame
from aufacs.inference.predictor import Predictor, model_inputs

#: Colour map of every heatmap overlay.
HEATMAP_CMAP = "jet"
#: File name of the demo face written by :func:`demo_image_file`.
DEMO_FILE = "astronaut.png"


def _new_axes() -> Axes:
    """The axes of a new 3 x 3 inch figure."""
    return Figure(figsize=(3, 3), layout="constrained").add_subplot()


def overlay(
    image_rgb: np.ndarray, heatmap: np.ndarray, ax: Axes | None = None, alpha: float = 0.45
) -> Axes:
    """Draw ``heatmap`` (h, w) in [0, 1] over ``image_rgb`` (H, W, 3) uint8, stretched to the
    image; ``alpha`` is the heatmap's opacity. Returns the axes (a new figure's if None)."""
    ax = ax if ax is not None else _new_axes()
    image_rgb = np.asarray(image_rgb)
    height, width = image_rgb.shape[:2]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    ax.imshow(image_rgb, extent=extent)
    heat = np.asarray(torch.as_tensor(heatmap).float().cpu())
    ax.imshow(heat, cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, alpha=alpha, extent=extent)
    ax.set_axis_off()
    return ax


def draw_landmarks(
    ax: Axes, landmarks: np.ndarray, *, color: str = "white", size: float = 4
) -> Axes:
    """Mark (P, 2) landmarks (x, y 0-indexed pixels of the drawn image; NaN rows skipped)."""
    points = np.asarray(landmarks, dtype=np.float64)
    known = np.isfinite(points).all(axis=1)
    ax.scatter(points[known, 0], points[known, 1], s=size, c=color, linewidths=0)
    return ax


def au_probability_bars(
    ax: Axes,
    probs: np.ndarray,
    aus: Sequence[int],
    labels: np.ndarray | None = None,
    *,
    highlight: int | None = None,
) -> Axes:
    """Horizontal bars of the N predicted probabilities ``probs`` (N,) with a 0.5 line.

    ``labels`` (N,) colour each bar by its ground truth (present, absent, unknown if NaN);
    without labels every bar has one colour. ``highlight``: index of an AU to outline.
    """
    probs = np.asarray(probs, dtype=np.float64)
    positions = np.arange(len(aus))
    if labels is None:
        colours = ["tab:blue"] * len(aus)
    else:
        truth = np.asarray(labels, dtype=np.float64)
        colours = np.where(truth == 1, "tab:orange", np.where(truth == 0, "tab:blue", "tab:gray"))
    bars = ax.barh(positions, probs, color=colours)
    if highlight is not None:
        bars[highlight].set_edgecolor("black")
        bars[highlight].set_linewidth(2)
    ax.axvline(0.5, color="black", linestyle="--", linewidth=0.8)
    ax.set_yticks(positions, [au_column(a) for a in aus])
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("probability" + ("" if labels is None else " (orange: present, blue: absent)"))
    return ax


def _cell_title(au: int, prob: float | None, label: float | None) -> str:
    title = au_column(au)
    if prob is not None:
        title += f" p={prob:.2f}"
    if label is not None and np.isfinite(label):
        title += " (present)" if label == 1 else " (absent)"
    return title


def heatmap_gallery(
    images: np.ndarray,
    maps: np.ndarray,
    aus: Sequence[int],
    probs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    *,
    max_aus: int = 12,
    per_row: int = 6,
    alpha: float = 0.45,
) -> Figure:
    """A static grid of overlays: each sample's AUs (the first ``max_aus`` of ``aus``) in rows
    of at most ``per_row``, so that titles stay readable, and a colour bar of the map scale.

    ``images`` (S, H, W, 3) uint8 RGB; ``maps`` (S, N, h, w) in [0, 1]; ``probs`` and
    ``labels`` (S, N) add each cell's probability and ground truth to its title.
    """
    images = np.asarray(images)
    maps = np.asarray(torch.as_tensor(maps).float().cpu())
    if maps.ndim != 4 or len(maps) != len(images) or maps.shape[1] != len(aus):
        raise AufacsError(
            f"maps must be (S, N, h, w) with S = {len(images)} images and N = {len(aus)} AUs, "
            f"got shape {maps.shape}"
        )
    shown = min(len(aus), max_aus)
    columns = min(shown, per_row)
    rows_per_sample = -(-shown // columns)
    figure = Figure(figsize=(1.9 * columns + 1, 2.1 * len(images) * rows_per_sample))
    figure.set_layout_engine("constrained")
    grid = figure.subplots(len(images) * rows_per_sample, columns, squeeze=False)
    for s in range(len(images)):
        for n in range(rows_per_sample * columns):
            ax = grid[s * rows_per_sample + n // columns, n % columns]
            if n >= shown:
                ax.set_axis_off()
                continue
            overlay(images[s], maps[s, n], ax=ax, alpha=alpha)
            prob = None if probs is None else float(probs[s][n])
            label = None if labels is None else float(labels[s][n])
            title = _cell_title(aus[n], prob, label)
            ax.set_title(title if n else f"face {s + 1}: {title}", fontsize=10)
    _colour_bar(figure, grid)
    return figure


def _colour_bar(figure: Figure, axes: np.ndarray) -> None:
    """The scale of the heatmap colours, beside ``axes``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scale = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=HEATMAP_CMAP)
    bar = figure.colorbar(scale, ax=axes, shrink=0.5, aspect=30, pad=0.02)
    bar.set_label("map value (0: ignored, 1: most attended)", fontsize=9)


def sample_figure(heatmaps: HeatmapSet, sample: int, au_index: int) -> Figure:
    """One sample's map of one AU over its face (with landmarks, if known) beside the bars of
    all its AU probabilities (when known). ``sample``, ``au_index``: 0-based indices."""
    has_bars = heatmaps.probs is not None
    figure = Figure(figsize=(7 if has_bars else 3.5, 3.5), layout="constrained")
    axes = figure.subplots(1, 2 if has_bars else 1, squeeze=False)[0]
    overlay(heatmaps.images[sample], heatmaps.maps[sample, au_index], ax=axes[0])
    if heatmaps.landmarks is not None:
        draw_landmarks(axes[0], heatmaps.landmarks[sample])
    prob = None if heatmaps.probs is None else float(heatmaps.probs[sample, au_index])
    label = None if heatmaps.labels is None else float(heatmaps.labels[sample, au_index])
    axes[0].set_title(_cell_title(heatmaps.aus[au_index], prob, label), fontsize=9)
    if has_bars:
        labels = None if heatmaps.labels is None else heatmaps.labels[sample]
        au_probability_bars(
            axes[1], heatmaps.probs[sample], heatmaps.aus, labels, highlight=au_index
        )
    return figure


def explain_face(
    row: pd.Series,
    predictor: Predictor,
    au: int,
    *,
    image: np.ndarray | None = None,
    method: str = "auto",
) -> Figure:
    """One predicted face: its aligned crop with the model's landmarks (JAA-Net's predicted
    ones, else those it was aligned with) and the heatmap of AU ``au`` (the model's attention,
    or Grad-CAM; ``method`` as in :func:`aufacs.analysis.heatmaps.attention_maps`), beside the
    bars of every AU's probability. ``row``: a row of a prediction table
    (:mod:`aufacs.inference.predict`); ``image``: the frame as (H, W, 3) uint8 RGB, by default
    read again from the row's source (and frame)."""
    if au not in predictor.aus:
        raise AufacsError(f"au must be one of the run's AUs {list(predictor.aus)}, got {au!r}")
    if pd.isna(row.get("face")):
        raise AufacsError(f"row of {row.get('source')} has no face to explain: {row.get('note')}")
    working, factor = working_copy(_source_frame(row) if image is None else image)
    points = rescale_points(landmarks_of(row.to_frame().T), factor)  # (1, 49, 2)
    batch = model_inputs(predictor, working, points).batch
    heatmaps = heatmap_set(predictor.model, batch, predictor.aus, method=method)
    figure = sample_figure(heatmaps, 0, predictor.aus.index(au))
    frame = "" if pd.isna(row.get("frame")) else f", frame {int(row['frame'])}"
    figure.suptitle(f"{Path(str(row['source'])).name}{frame}, face {row['face']}")
    return figure


def _source_frame(row: pd.Series) -> np.ndarray:
    """The frame a table row was predicted on, read again from its source file."""
    path = Path(str(row["source"]))
    return load_image(path) if pd.isna(row.get("frame")) else video_frame(path, int(row["frame"]))


def faces_of(table: pd.DataFrame, limit: int | None = None) -> Iterator[pd.Series]:
    """The rows of prediction table ``table`` that hold a face (at most ``limit``), for
    :func:`explain_face`."""
    found = table[table["face"].notna()]
    for _, row in found.head(limit if limit is not None else len(found)).iterrows():
        yield row


def demo_image() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain): (512, 512, 3) uint8 RGB."""
    try:
        from skimage import data
    except ImportError:
        raise AufacsError(
            "the demo face comes from scikit-image; install it with pip install scikit-image, "
            "or give a photo or video of your own"
        ) from None
    return data.astronaut()


def demo_image_file(folder: str | Path) -> Path:
    """Write :func:`demo_image` to ``<folder>/astronaut.png`` (once) and return the path."""
    path = Path(folder) / DEMO_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(demo_image(), cv2.COLOR_RGB2BGR))
    return path


def inputs_or_demo(input_path: str, folder: str | Path) -> list[Path]:
    """``[input_path]``, or the demo face written to ``folder`` when ``input_path`` is empty."""
    return [Path(input_path)] if input_path else [demo_image_file(folder)]
