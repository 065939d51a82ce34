"""What the notebooks call: the training configuration, the data, and the choice of galleries.

The functions that open runs (heatmaps, attention scores, speed) run in the smoke study of
tests/test_notebooks.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aufacs.analysis.heatmaps import HeatmapSet
from aufacs.core.errors import AufacsError
from aufacs.data.synthetic import SynthConfig
from aufacs.data.synthetic.planning import DEFECT_FIELDS
from aufacs.report.maps import galleries
from aufacs.report.workbook import (
    ensure_data,
    initialisation_note,
    train_config,
)


def test_image_size_sets_each_models_own_size_option(tmp_path):
    jaa = train_config("jaa_net", data=tmp_path, image_size=64, options={"unit_dim": 2})
    assert jaa.model_options == {"unit_dim": 2, "crop_size": 64}
    assert train_config("eac_net", data=tmp_path, image_size=64).model_options == {"input_size": 64}
    me = train_config("me_graph_au", data=tmp_path, image_size=96)
    assert me.model_options == {"input_size": 96}


def test_an_unknown_model_is_named_before_any_other_setting(tmp_path):
    with pytest.raises(AufacsError, match="unknown model 'eacnet'; available models: eac_net"):
        train_config("eacnet", data=tmp_path / "nowhere", image_size=96, epochs=0)


def test_a_data_folder_missing_from_the_working_directory_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AufacsError, match=r"data folder \.\./data not found relative to the "):
        train_config("jaa_net", data="../data")


def test_the_notebooks_string_folders_become_paths_in_the_training_configuration(
    tmp_path, monkeypatch
):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    config = train_config("jaa_net", data="data", out="../runs/jaa_net", threads=2)
    assert config.data == Path("data") and config.out == Path("../runs/jaa_net")
    assert config.threads == 2 and train_config("jaa_net", data="data").out is None


def test_the_initialisation_note_says_when_no_imagenet_weights_are_used(tmp_path):
    config = train_config("me_graph_au", data=tmp_path, options={"pretrained": None})
    assert "random weights (pretrained=None)" in initialisation_note(config)


def test_real_data_must_exist_where_the_study_looks(tmp_path):
    with pytest.raises(AufacsError, match=r"bp4d data folder .*BP4D does not exist"):
        ensure_data(tmp_path / "BP4D", "bp4d", SynthConfig())


def test_the_synthetic_data_set_is_generated_once_and_then_reused(tmp_path, capsys):
    no_defects = dict.fromkeys(DEFECT_FIELDS.values(), 0)
    tiny = SynthConfig(subjects=2, tasks=1, frames_per_task=2, **no_defects)
    ensure_data(tmp_path, "synthetic", tiny)
    ensure_data(tmp_path, "synthetic", tiny)
    assert "reusing the synthetic data set" in capsys.readouterr().out


def heatmaps(method: str) -> HeatmapSet:
    return HeatmapSet(
        images=np.zeros((1, 8, 8, 3), dtype=np.uint8),
        maps=np.zeros((1, 2, 4, 4)),
        aus=(1, 2),
        probs=np.zeros((1, 2)),
        labels=None,
        landmarks=None,
        method=method,
    )


def test_galleries_take_each_runs_last_epoch_of_each_collection_in_order():
    own = {("jaa_net", 1): heatmaps("attention"), ("jaa_net", 3): heatmaps("attention")}
    gradcam = {("jaa_net", 3): heatmaps("gradcam")}
    chosen = galleries([own, gradcam])
    assert list(chosen) == ["jaa_net, epoch 3: attention", "jaa_net, epoch 3: gradcam"]
    assert chosen["jaa_net, epoch 3: gradcam"] is gradcam[("jaa_net", 3)]


def test_a_gallery_epoch_that_was_not_computed_is_refused_naming_the_computed_ones():
    with pytest.raises(AufacsError, match=r"no heatmaps of jaa_net at epoch 2; .*\[1, 3\]"):
        galleries([{("jaa_net", 1): heatmaps("attention"), ("jaa_net", 3): heatmaps("a")}], 2)
