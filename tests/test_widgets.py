"""The heatmap browser, driven from Python: each control change redraws the figure."""

from __future__ import annotations

import numpy as np
import pytest

from aufacs.analysis.heatmaps import HeatmapSet
from aufacs.core.errors import AufacsError
from aufacs.report.widgets import HeatmapBrowser


def heatmaps(samples: int, aus: tuple[int, ...], seed: int) -> HeatmapSet:
    rng = np.random.default_rng(seed)
    return HeatmapSet(
        images=rng.integers(0, 256, (samples, 12, 12, 3), dtype=np.uint8),
        maps=rng.random((samples, len(aus), 6, 6)),
        aus=aus,
        probs=rng.random((samples, len(aus))),
        labels=rng.integers(0, 2, (samples, len(aus))).astype(float),
        landmarks=rng.random((samples, 49, 2)) * 12,
    )


@pytest.fixture
def browser() -> HeatmapBrowser:
    return HeatmapBrowser(
        {
            ("jaa_net", 1): heatmaps(3, (1, 2, 4), seed=0),
            ("jaa_net", 2): heatmaps(3, (1, 2, 4), seed=1),
            ("me_graph_au", 5): heatmaps(2, (6, 12), seed=2),
        }
    )


def test_the_first_figure_shows_the_first_model_epoch_sample_and_au(browser):
    assert browser.figure.get_suptitle() == "jaa_net, epoch 1: sample 0, AU1 (attention)"


def test_choosing_an_au_redraws_the_figure_for_that_au(browser):
    browser.au.value = 2
    assert browser.figure.get_suptitle() == "jaa_net, epoch 1: sample 0, AU4 (attention)"
    assert browser.figure.axes[0].get_title().startswith("AU4 p=")


def test_choosing_a_sample_draws_that_samples_map(browser):
    browser.sample.value = 2
    drawn = browser.figure.axes[0].get_images()[1].get_array()
    assert np.allclose(drawn, browser.current.maps[2, 0])


def test_choosing_an_epoch_draws_that_epochs_maps(browser):
    browser.epoch.value = 2
    drawn = browser.figure.axes[0].get_images()[1].get_array()
    assert "epoch 2" in browser.figure.get_suptitle()
    assert np.allclose(drawn, browser.source[("jaa_net", 2)].maps[0, 0])


def test_choosing_a_model_offers_its_epochs_samples_and_aus(browser):
    browser.au.value = 2
    browser.model.value = "me_graph_au"
    assert list(browser.epoch.options) == [5]
    assert browser.sample.max == 1
    assert [label for label, _ in browser.au.options] == ["AU6", "AU12"]
    assert browser.figure.get_suptitle() == "me_graph_au, epoch 5: sample 0, AU6 (attention)"


def test_redraw_returns_the_figure_it_keeps(browser):
    assert browser.redraw() is browser.figure


def test_an_empty_source_is_refused_in_one_sentence():
    with pytest.raises(AufacsError, match="at least one"):
        HeatmapBrowser({})
