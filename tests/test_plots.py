"""The workbook's figures, drawn from small made-up tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from aufacs.analysis.literature import literature_table
from aufacs.core.errors import AufacsError
from aufacs.report import plots

AUS = (1, 2, 4)


def rates() -> pd.DataFrame:
    table = pd.DataFrame(
        {"frames": [10, 5], "AU1": [0.2, 0.3], "AU2": [0.5, 0.1], "AU4": [0.0, 0.4]},
        index=["test", "train"],
    )
    return table.rename_axis("split")


def iterations(epochs: int = 2, steps: int = 5) -> pd.DataFrame:
    step = np.arange(1, epochs * steps + 1)
    epoch, iteration = (step - 1) // steps + 1, (step - 1) % steps + 1
    return pd.DataFrame(
        {
            "epoch": epoch,
            "iteration": iteration,
            "step": step,
            "lr": 0.01,
            "loss": 1 / step,
            "dice": 0.5 / step,
        }
    )


def per_au() -> pd.DataFrame:
    rows = [
        {"model": m, "au": au, "f1": f, "low": f - 0.1, "high": f + 0.1, "accuracy": 0.8}
        for m, f in (("jaa_net", 0.6), ("eac_net", 0.4))
        for au in (*AUS, "mean")
    ]
    return pd.DataFrame(rows)


def bars(figure: Figure) -> int:
    return sum(len(container) for ax in figure.axes for container in ax.containers)


def test_occurrence_bars_have_one_bar_per_split_and_au():
    assert bars(plots.au_rates_by_split(rates())) == 2 * len(AUS)


def test_the_cooccurrence_heatmap_is_labelled_with_the_aus():
    figure = plots.cooccurrence_heatmap(np.eye(3), AUS)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["AU1", "AU2", "AU4"]


def test_the_balance_figure_stacks_subjects_by_sex_beside_the_frames():
    balance = pd.DataFrame(
        {
            "subjects": [2, 4],
            "frames": [10, 20],
            "female_subjects": [1, 2],
            "male_subjects": [1, 2],
        },
        index=["test", "train"],
    )
    subjects, frames = plots.split_balance(balance).axes
    assert len(subjects.patches) == 4 and len(frames.patches) == 2


def test_the_crop_grid_shows_every_image_with_its_title():
    figure = plots.crop_grid(np.zeros((7, 8, 8, 3), np.uint8), [f"f{i}" for i in range(7)], 3)
    assert [ax.get_title() for ax in figure.axes if ax.images] == [f"f{i}" for i in range(7)]


def test_the_crop_grid_refuses_titles_that_do_not_match_the_images():
    with pytest.raises(AufacsError, match="one title per image"):
        plots.crop_grid(np.zeros((2, 8, 8, 3), np.uint8), ["only one"])


def test_loss_curves_draw_one_panel_per_loss_part():
    figure = plots.loss_curves(iterations())
    assert [ax.get_title() for ax in figure.axes] == ["loss", "dice"]


def test_loss_curves_mark_where_each_new_epoch_starts():
    ax = plots.loss_curves(iterations(epochs=3)).axes[0]
    assert len(ax.lines) == 2 + 2  # raw and smoothed loss, two epoch boundaries


def test_loss_curves_refuse_a_log_without_losses():
    with pytest.raises(AufacsError, match="no loss column"):
        plots.loss_curves(iterations()[["epoch", "iteration", "step", "lr"]])


def test_loss_curves_of_several_runs_get_one_panel_each():
    figure = plots.loss_curves_by_run({"a": iterations(), "b": iterations()})
    assert [ax.get_title() for ax in figure.axes] == ["a", "b"]


def test_the_f1_heatmap_has_a_row_per_au_and_a_column_per_epoch():
    evaluation = pd.DataFrame(
        {"epoch": [1, 1, 2, 2], "au": [1, 2, 1, 2], "f1": [0.1, 0.2, 0.3, 0.4]}
    )
    ax = plots.f1_by_epoch(evaluation).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AU1", "AU2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]


def test_epoch_curves_draw_each_run_and_the_baseline():
    summary = pd.DataFrame({"epoch": [1, 2], "mean_f1": [0.3, 0.5], "mean_accuracy": [0.7, 0.8]})
    f1, accuracy = plots.epoch_curves({"a": summary, "b": summary}, baseline=0.2).axes
    assert len(f1.lines) == 3 and len(accuracy.lines) == 2


def test_comparison_bars_have_a_bar_per_run_and_au_with_the_mean():
    figure = plots.comparison_bars(per_au())
    assert len(figure.axes[0].patches) == 2 * (len(AUS) + 1)


def test_comparison_bars_mark_the_baseline():
    baseline = pd.DataFrame({"au": [*AUS, "mean"], "f1": [0.1, 0.0, 0.3, 0.13]})
    ax = plots.comparison_bars(per_au(), baseline).axes[0]
    assert "majority baseline" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_paired_differences_show_a_row_per_pair():
    paired = pd.DataFrame(
        {
            "pair": ["a - b", "a - c"],
            "difference": [0.1, -0.2],
            "low": [0.0, -0.3],
            "high": [0.2, -0.1],
            "p_value": [0.1, 0.01],
        }
    )
    ax = plots.paired_differences(paired).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a - b", "a - c"]


def test_paired_differences_of_a_single_run_say_there_is_no_pair():
    empty = pd.DataFrame(columns=["pair", "difference", "low", "high", "p_value"])
    assert "no pair" in plots.paired_differences(empty).axes[0].texts[0].get_text()


def test_speed_bars_get_one_panel_per_device():
    speed = pd.DataFrame(
        {
            "model": ["a", "a", "a"],
            "runtime": "torch",
            "device": [
                "AMD EPYC 7B13 64-Core Processor",
                "AMD EPYC 7B13 64-Core Processor",
                "H100",
            ],
            "threads": [2, 2, 2],
            "batch_size": [1, 8, 1],
            "frames_per_s": [5.0, 20.0, 300.0],
        }
    )
    axes = plots.speed_bars(speed).axes
    assert [ax.get_title() for ax in axes] == ["CPU, 2 threads", "GPU"]
    assert axes[0].get_yscale() == "linear"  # 5 vs 20 fps looks like 1:4, not 1:2
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == ["5", "20"]  # every bar says its value


def test_epoch_axes_have_whole_epochs_only():
    summary = pd.DataFrame({"epoch": [1, 2], "mean_f1": [0.2, 0.3], "mean_accuracy": [0.5, 0.6]})
    figure = plots.epoch_curves({"a": summary})
    figure.canvas.draw()
    ticks = figure.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)


def test_a_loss_part_equal_to_the_total_loss_is_not_drawn_twice():
    log = iterations()
    log = log[["epoch", "iteration", "step", "lr", "loss"]].assign(wa=log["loss"])
    figure = plots.loss_curves(log)
    assert [ax.get_title() for ax in figure.axes] == ["loss (its only part)"]


def test_literature_values_are_drawn_beside_ours_and_labelled_as_such():
    ours = pd.DataFrame({"model": ["jaa_net", "me_graph_au"], "mean_f1": [0.5, 0.6]})
    ax = plots.ours_and_literature(ours, literature_table()).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "literature value (published, real BP4D)" in labels
    assert [p.get_height() for p in ax.patches][2:] == pytest.approx([0.600, 0.647])


def test_an_empty_score_table_gives_a_figure_that_says_why():
    figure = plots.score_heatmap(pd.DataFrame(), "scores")
    assert "no scores" in figure.axes[0].texts[0].get_text()


def test_the_score_heatmap_has_a_row_per_model():
    scores = pd.DataFrame(
        [[0.5, 0.7], [0.1, 0.2]], index=["a", "uniform map"], columns=["AU1", "AU2"]
    )
    ax = plots.score_heatmap(scores, "scores").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "uniform map"]
