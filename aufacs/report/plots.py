"""The workbook's figures: data set statistics, training curves, epoch-by-epoch scores and
model comparisons.

Every function takes tables the package already writes (the audit, ``iterations.csv``,
``evaluation.csv``, the comparison tables of :mod:`aufacs.analysis.compare`) and returns a
``matplotlib.figure.Figure`` that pyplot does not track, as :mod:`aufacs.inference.explain`
does: a notebook shows it as the value of a cell, and ``figure.savefig`` works anywhere. AU
columns are named ``AU1``, ``AU2``, ... (:func:`aufacs.core.aus.au_column`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError

#: Loss-curve smoothing: the rolling mean over this many iterations.
SMOOTHING = 20
#: A loss whose largest value exceeds its median this many times is drawn on a log scale.
LOG_RATIO = 10.0
#: How :func:`comparison_bars` draws its intervals.
ERROR_BARS = {"fmt": "none", "ecolor": "black", "elinewidth": 0.8, "capsize": 2}
#: How each baseline line is drawn, in the order given (the majority baseline first).
BASELINE_STYLES = ({"color": "black", "linestyle": "--"}, {"color": "tab:red", "linestyle": "-."})


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _message(text: str) -> Figure:
    """A small figure that says why there is nothing to draw."""
    figure = _figure(6, 1)
    ax = figure.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return figure


def _integer_ticks(ax: Axes) -> None:
    """Ticks at whole numbers only on the x axis (epochs)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _loss_parts(iterations: pd.DataFrame) -> list[str]:
    """The loss columns of ``iterations.csv`` (after ``lr``), leaving out a part that equals
    the total loss (a model whose loss has one part would draw the same curve twice)."""
    parts = [c for c in iterations.columns if c not in ("epoch", "iteration", "step", "lr")]
    if "loss" not in parts:
        return parts
    total = iterations["loss"].to_numpy(dtype=float)
    return [
        p
        for p in parts
        if p == "loss"
        or not np.allclose(iterations[p].to_numpy(dtype=float), total, equal_nan=True)
    ]


def _loss_scale(ax: Axes, values: pd.Series, name: str = "loss") -> None:
    """A log y axis where the loss's largest value is more than :data:`LOG_RATIO` times its
    median (the first iterations would flatten the rest), said in the axis label."""
    values = values.dropna()
    ratio = values.max() / values.median() if len(values) and values.min() > 0 else 0.0
    ax.set_yscale("log" if ratio > LOG_RATIO else "linear")
    ax.set_ylabel(
        f"{name}, log scale\n(max {ratio:.0f}x the median)" if ratio > LOG_RATIO else name
    )


def _baseline_lines(ax: Axes, baseline: float | Mapping[str, float] | None) -> None:
    """A dashed line per baseline mean F1 (label -> value; a number: the majority baseline)."""
    if baseline is None:
        return
    lines = {"majority baseline": baseline} if np.isscalar(baseline) else baseline
    for style, (label, value) in zip(BASELINE_STYLES, lines.items(), strict=False):
        ax.axhline(value, label=label, **style)


def _au_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("AU") and c[2:].isdigit()]


def _au_label(au: int | str) -> str:
    """``AU12`` for AU 12; the row ``"mean"`` of a per-AU table keeps its name."""
    return au if au == "mean" else au_column(au)


def _annotated_heatmap(
    ax: Axes, table: pd.DataFrame, *, cmap: str, fontsize: float, vmax: float = 1.0
) -> None:
    """A heatmap of ``table`` on a scale from 0 to ``vmax``, each cell labelled with its value."""
    labels = {"fontsize": fontsize}
    sns.heatmap(table, vmin=0, vmax=vmax, cmap=cmap, annot=True, fmt=".2f", annot_kws=labels, ax=ax)


def au_rates_by_split(rates: pd.DataFrame) -> Figure:
    """Grouped bars of each AU's occurrence rate per split.

    ``rates``: the audit's rates (index: split, columns ``frames`` and one rate per AU column).
    """
    long = rates[_au_columns(rates)].rename_axis("split").reset_index()
    long = long.melt(id_vars="split", var_name="AU", value_name="occurrence rate")
    figure = _figure(10, 3.5)
    ax = figure.subplots()
    sns.barplot(long, x="AU", y="occurrence rate", hue="split", ax=ax)
    ax.set_ylim(0, 1)
    ax.set_title("AU occurrence rate per split (clean frames)")
    return figure


def cooccurrence_heatmap(matrix: np.ndarray, aus: Sequence[int]) -> Figure:
    """Heatmap of ``matrix`` (N, N), ``C[i, j] = P(AU j present | AU i present)``."""
    names = [au_column(a) for a in aus]
    frame = pd.DataFrame(np.asarray(matrix, dtype=float), index=names, columns=names)
    figure = _figure(7, 6)
    ax = figure.subplots()
    _annotated_heatmap(ax, frame, cmap="viridis", fontsize=7)
    ax.set_xlabel("AU j")
    ax.set_ylabel("given AU i")
    ax.set_title("Co-occurrence P(AU j | AU i)")
    return figure


def split_balance(balance: pd.DataFrame) -> Figure:
    """Subjects by sex and frames per split, side by side.

    ``balance``: the audit's balance (index: split; ``subjects``, ``frames``,
    ``female_subjects``, ``male_subjects``).
    """
    figure = _figure(9, 3)
    subjects, frames = figure.subplots(1, 2)
    splits = [str(s) or "(none)" for s in balance.index]
    female, male = balance["female_subjects"], balance["male_subjects"]
    subjects.bar(splits, female, label="female", color="tab:red")
    subjects.bar(splits, male, bottom=female, label="male", color="tab:blue")
    subjects.set_ylabel("subjects")
    subjects.legend()
    subjects.set_title("Subjects per split, by sex")
    frames.bar(splits, balance["frames"], color="tab:gray")
    frames.set_ylabel("clean frames")
    frames.set_title("Frames per split")
    return figure


def crop_grid(images: np.ndarray, titles: Sequence[str], columns: int = 6) -> Figure:
    """A grid of aligned crops ``images`` (S, H, W, 3) uint8 RGB with one title each."""
    images = np.asarray(images)
    if len(images) != len(titles) or not len(images):
        raise AufacsError(
            f"crop_grid needs one title per image, got {len(images)} images "
            f"and {len(titles)} titles"
        )
    rows = -(-len(images) // columns)
    figure = _figure(2 * columns, 2.2 * rows)
    for ax, image, title in zip(
        figure.subplots(rows, columns, squeeze=False).flat, images, titles, strict=False
    ):
        ax.imshow(image)
        ax.set_title(title, fontsize=7)
    for ax in figure.axes:
        ax.set_axis_off()
    return figure


def loss_curves(iterations: pd.DataFrame, title: str = "") -> Figure:
    """One panel per loss part of ``iterations.csv`` (columns after ``lr``): the loss per
    iteration, its rolling mean over :data:`SMOOTHING` iterations, and epoch boundaries."""
    parts = _loss_parts(iterations)
    if not parts:
        raise AufacsError("the iteration log has no loss column; expected iterations.csv")
    figure = _figure(min(4 * len(parts), 16), 3)
    starts = iterations.groupby("epoch")["step"].min().to_numpy()[1:]
    for ax, part in zip(figure.subplots(1, len(parts), squeeze=False)[0], parts, strict=True):
        values = iterations[part]
        ax.plot(iterations["step"], values, color="tab:blue", alpha=0.3, linewidth=0.8)
        smooth = values.rolling(SMOOTHING, min_periods=1).mean()
        ax.plot(iterations["step"], smooth, color="tab:blue")
        for start in starts:
            ax.axvline(start, color="gray", linewidth=0.6, linestyle=":")
        ax.set_title("loss (its only part)" if len(parts) == 1 else part)
        ax.set_xlabel("iteration (dotted: new epoch)")
        _loss_scale(ax, values)
    figure.suptitle(title or "Training loss and its parts")
    return figure


def loss_curves_by_run(iterations: Mapping[str, pd.DataFrame]) -> Figure:
    """The total loss of several runs (name -> iterations.csv table), smoothed, on one axes
    per run (their losses are on different scales)."""
    figure = _figure(4 * len(iterations), 3)
    for ax, (name, table) in zip(
        figure.subplots(1, len(iterations), squeeze=False)[0], iterations.items(), strict=True
    ):
        # the end of an epoch's last iteration is at the epoch's number
        epoch = (
            table["epoch"]
            - 1
            + table["iteration"] / table.groupby("epoch")["iteration"].transform("max")
        )
        smooth = table["loss"].rolling(SMOOTHING, min_periods=1).mean()
        ax.plot(epoch, smooth, marker="o" if len(table) < 5 else None)
        ax.set_xlim(0, max(1.0, float(epoch.max())))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        _integer_ticks(ax)
        _loss_scale(ax, smooth, "smoothed loss")
    return figure


def f1_by_epoch(evaluation: pd.DataFrame, title: str = "") -> Figure:
    """Heatmap of per-AU F1 (rows: AUs, columns: epochs) from ``evaluation.csv`` rows."""
    table = evaluation.pivot(index="au", columns="epoch", values="f1")
    table.index = [au_column(a) for a in table.index]
    figure = _figure(max(4, 0.6 * table.shape[1] + 2), 5)
    ax = figure.subplots()
    _annotated_heatmap(ax, table, cmap="magma", fontsize=7)
    ax.set_title(title or "F1 per AU and epoch")
    return figure


def epoch_curves(
    summaries: Mapping[str, pd.DataFrame], baseline: float | Mapping[str, float] | None = None
) -> Figure:
    """Mean F1 and mean accuracy by epoch for each run (name -> evaluation_summary.csv);
    ``baseline``: each baseline's mean F1 drawn as a line (label -> value, as
    :func:`aufacs.analysis.baseline.baseline_means`; a number: the majority baseline)."""
    figure = _figure(10, 3.2)
    f1, accuracy = figure.subplots(1, 2)
    for name, table in summaries.items():
        f1.plot(table["epoch"], table["mean_f1"], marker="o", label=name)
        accuracy.plot(table["epoch"], table["mean_accuracy"], marker="o", label=name)
    _baseline_lines(f1, baseline)
    for ax, name in ((f1, "mean F1"), (accuracy, "mean accuracy")):
        ax.set_xlabel("epoch")
        _integer_ticks(ax)
        ax.set_ylabel(name)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    return figure


def learning_curves(
    tables: Mapping[str, pd.DataFrame], baseline: Mapping[str, float] | None = None
) -> Figure:
    """Per run (name -> :func:`aufacs.analysis.compare.epoch_table`), one panel: the test mean
    F1 of each epoch (left axis, with the baselines' mean F1 as in :func:`epoch_curves`)
    beside the epoch's mean training loss ``train_loss`` (right axis, where logged)."""
    figure = _figure(4.5 * len(tables), 3.2)
    for ax, (name, table) in zip(
        figure.subplots(1, len(tables), squeeze=False)[0], tables.items(), strict=True
    ):
        ax.plot(table["epoch"], table["mean_f1"], marker="o", color="tab:blue", label="mean F1")
        _baseline_lines(ax, baseline)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test mean F1", color="tab:blue")
        ax.set_xlabel("epoch")
        _integer_ticks(ax)
        ax.set_title(name)
        if "train_loss" in table and table["train_loss"].notna().any():
            loss = ax.twinx()
            loss.plot(table["epoch"], table["train_loss"], "s-", color="tab:orange")
            loss.set_ylabel("training loss (epoch mean)", color="tab:orange")
            ax.plot([], [], "s-", color="tab:orange", label="training loss")  # legend entry
    legend = figure.axes[0].get_legend_handles_labels()
    figure.legend(*legend, loc="outside lower center", ncols=len(legend[0]), fontsize=8)
    return figure


def _error_bars(ax: Axes, table: pd.DataFrame, x: str, value: str, hue: str) -> None:
    """Grouped bars of ``value`` by ``x`` and ``hue`` with ``low`` / ``high`` error bars."""
    groups = list(dict.fromkeys(table[hue]))
    positions = list(dict.fromkeys(table[x]))
    width = 0.8 / len(groups)
    for k, group in enumerate(groups):
        rows = table[table[hue] == group].set_index(x).reindex(positions)
        centre = np.arange(len(positions)) - 0.4 + width * (k + 0.5)
        errors = np.vstack([rows[value] - rows["low"], rows["high"] - rows[value]])
        ax.bar(centre, rows[value], width, label=group)
        ax.errorbar(centre, rows[value], yerr=np.clip(errors, 0, None), **ERROR_BARS)
    ax.set_xticks(np.arange(len(positions)), positions)


def comparison_bars(
    per_au: pd.DataFrame, baseline: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None
) -> Figure:
    """Per-AU F1 of every run with bootstrap 95% intervals, and the mean F1.

    ``per_au``: :func:`aufacs.analysis.compare.per_au_table` (``model``, ``au``, ``f1``,
    ``low``, ``high``; the row ``au == "mean"`` holds the mean F1). ``baseline``: per-AU F1
    (``au``, ``f1``) of each baseline, drawn as a line over each AU's bars (label -> table, as
    :func:`aufacs.analysis.baseline.baseline_tables`; one table: the majority baseline).
    """
    table = per_au.assign(au=per_au["au"].map(_au_label))
    figure = _figure(13, 4)
    ax = figure.subplots()
    _error_bars(ax, table, "au", "f1", "model")
    ticks = list(dict.fromkeys(table["au"]))
    baselines = {"majority baseline": baseline} if isinstance(baseline, pd.DataFrame) else baseline
    for style, (label, rows) in zip(BASELINE_STYLES, (baselines or {}).items(), strict=False):
        values = rows.assign(au=rows["au"].map(_au_label)).set_index("au")["f1"].reindex(ticks)
        x = np.arange(len(ticks))
        ax.hlines(values, x - 0.45, x + 0.45, label=label, zorder=3, linewidth=2, **style)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (bars: 95% bootstrap interval over test subjects)")
    ax.legend(ncols=4, fontsize=8)
    ax.set_title("F1 per AU and mean F1, our runs")
    return figure


def paired_differences(differences: pd.DataFrame) -> Figure:
    """Mean-F1 differences of run pairs with their 95% intervals (a forest plot).

    ``differences``: :func:`aufacs.analysis.compare.paired_table` (``pair``, ``difference``,
    ``low``, ``high``, ``p_value``).
    """
    if differences.empty:
        return _message("one run only: no pair to compare")
    figure = _figure(7, 0.6 * len(differences) + 1.2)
    ax = figure.subplots()
    positions = np.arange(len(differences))
    lower = differences["difference"] - differences["low"]
    errors = np.vstack([lower, differences["high"] - differences["difference"]])
    ax.errorbar(
        differences["difference"], positions, xerr=np.clip(errors, 0, None), fmt="o", capsize=3
    )
    ax.axvline(0, color="gray", linestyle="--")
    ax.set_yticks(positions, differences["pair"])
    ax.invert_yaxis()
    ax.set_xlabel("difference in mean F1 (A - B), family-wise 95% paired bootstrap interval")
    return figure


def speed_bars(speed: pd.DataFrame) -> Figure:
    """Frames per second of every model, runtime and batch size (a
    :func:`aufacs.analysis.speed.speed_table`) on a linear axis, each bar labelled with its
    value, one panel per device, the legend below the bars."""
    devices = list(dict.fromkeys(speed["device"]))
    figure = _figure(5 * len(devices), 3.2)
    for ax, device in zip(figure.subplots(1, len(devices), squeeze=False)[0], devices, strict=True):
        rows = speed[speed["device"] == device]
        label = rows["runtime"] + ", batch " + rows["batch_size"].astype(str)
        sns.barplot(rows.assign(setting=label), x="model", y="frames_per_s", hue="setting", ax=ax)
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_title(_device_title(device, rows))
        ax.set_ylabel("frames per second")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    return figure


def _device_title(device: str, rows: pd.DataFrame) -> str:
    """``"CPU, 4 threads"`` or ``"GPU"``: the kind of device, not its model string (which
    the speed table keeps)."""
    gpu = ("cuda", "gpu", "nvidia", "tesla", "radeon", "instinct", "rtx", "h100", "a100", "h200")
    kind = "GPU" if any(word in str(device).lower() for word in gpu) else "CPU"
    if kind == "CPU" and "threads" in rows and rows["threads"].notna().any():
        threads = int(rows["threads"].dropna().iloc[0])
        return f"CPU, {threads} thread{'s' if threads > 1 else ''}"
    return kind


def ours_and_literature(ours: pd.DataFrame, literature: pd.DataFrame) -> Figure:
    """Our mean F1 per model (``model``, ``mean_f1``) beside the published BP4D mean F1 of
    the same method (:func:`aufacs.analysis.literature.literature_table`), hatched and
    labelled as literature values."""
    models = list(ours["model"])
    figure = _figure(7, 3.2)
    ax = figure.subplots()
    positions = np.arange(len(models))
    ax.bar(positions - 0.2, ours["mean_f1"], 0.4, label="ours (this study's data)")
    theirs = literature["mean_f1"].reindex(models)
    style = {"hatch": "//", "color": "white", "edgecolor": "tab:gray"}
    ax.bar(positions + 0.2, theirs, 0.4, label="literature value (published, real BP4D)", **style)
    ax.set_xticks(positions, models)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean F1")
    ax.legend(fontsize=8)
    ax.set_title("Mean F1: ours beside published BP4D results (not comparable data)")
    return figure


def score_heatmap(scores: pd.DataFrame, title: str, *, vmax: float = 1.0) -> Figure:
    """Heatmap of a (model x AU) score table, e.g. the attention mass inside each AU region."""
    if scores.empty:
        return _message("no scores (real data has no ground-truth AU regions)")
    figure = _figure(10, 0.7 * len(scores) + 1.5)
    ax = figure.subplots()
    _annotated_heatmap(ax, scores.astype(float), cmap="viridis", fontsize=8, vmax=vmax)
    ax.set_title(title)
    return figure
