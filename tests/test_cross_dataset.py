"""A run tested on another data set's subjects over the AUs both label (BP4D -> DISFA), from
the command line, with a tiny JAA-Net trained on a BP4D-labelled set and a small DISFA tree."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from layout import make_disfa
from sklearn.metrics import f1_score
from train_worker import CACHE_SIZE, make_data, tiny_config

from aufacs.analysis.cross_dataset import cross_dataset_table, shared_aus
from aufacs.analysis.evaluate import Predictions
from aufacs.core.errors import AufacsError
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.engine.train import train

#: The AUs BP4D and DISFA both label, as the literature's cross-data-set tables list them.
BP4D_DISFA = [1, 2, 4, 6, 12]


def aufacs(*arguments, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "aufacs.cli", *map(str, arguments)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def crossed(tmp_path_factory):
    """A BP4D-AU run, a prepared DISFA tree at its aligned size, and the command's result."""
    root = tmp_path_factory.mktemp("cross")
    run = train(tiny_config(make_data(root / "bp4d"), root / "run", epochs=1))
    make_disfa(root / "disfa")
    prepare(PrepareConfig(data=root / "disfa", kind="disfa", size=CACHE_SIZE))
    # DISFA's SN001 and SN002 are in part 1, which fold 3 tests
    argv = ["--run", run, "--data", root / "disfa", "--kind", "disfa", "--fold", "3"]
    result = aufacs("cross-evaluate", *argv, "--device", "cpu", "--threads", "1", cwd=root)
    return run, result


def test_the_run_is_scored_on_the_shared_aus_of_the_other_data_sets_test_subjects(crossed):
    run, result = crossed
    assert result.returncode == 0, result.stderr
    out = run / "cross" / "disfa_fold3"
    about = json.loads((out / "about.json").read_text())
    assert about["aus"] == BP4D_DISFA and about["kind"] == "disfa" and about["fold"] == 3
    kept = Predictions.load(out / "predictions.npz")
    assert set(kept.subject) == {"SN001", "SN002"} and kept.prob.shape[1] == 5
    scores = pd.read_csv(out / "evaluation.csv")
    for j, row in enumerate(scores.itertuples()):
        known = ~np.isnan(kept.target[:, j])
        expected = f1_score(kept.target[known, j], kept.prob[known, j] >= 0.5, zero_division=0)
        assert row.au == BP4D_DISFA[j] and row.f1 == pytest.approx(expected)
    assert f"mean F1 over the 5 shared AUs: {scores['f1'].mean():.3f}" in result.stdout


def test_the_evaluation_is_a_row_of_its_own(crossed):
    run, _ = crossed
    table = cross_dataset_table({"jaa_net": run})
    assert table["tested on"].tolist() == ["disfa fold 3 (epoch 1)"]
    assert [c for c in table.columns if c.startswith("AU")] == [f"AU{au}" for au in BP4D_DISFA]


def test_data_sets_that_share_no_au_are_refused_in_one_sentence():
    with pytest.raises(AufacsError, match="they share no AU"):
        shared_aus((1, 2), (9, 25), "data/disfa")
