"""Every ``aufacs`` subcommand run as users run it: a subprocess, at the smallest size.

Bad input must end with a non-zero status and one sentence on standard error, never a Python
traceback, and must leave the files it was pointed at as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

AUFACS = [sys.executable, "-m", "aufacs.cli"]
TINY_JAA_NET = json.dumps({"crop_size": 32, "unit_dim": 1})


def aufacs(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``aufacs ARGS`` in ``cwd`` on one thread; ``check``: it must succeed."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*AUFACS, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def refused(result: subprocess.CompletedProcess, sentence: str) -> None:
    """The command failed with one ``aufacs: error:`` sentence containing ``sentence``."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("aufacs: error:"), result.stderr
    assert sentence in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder where ``synth``, ``prepare`` and a one-step ``train`` have run."""
    folder = tmp_path_factory.mktemp("cli")
    aufacs(
        "synth", "--out", "data", "--subjects", 6, "--tasks", 2, "--frames-per-task", 6, cwd=folder
    )
    aufacs("prepare", "--data", "data", "--size", 40, cwd=folder)
    aufacs(
        "train",
        "--model",
        "jaa_net",
        "--data",
        "data",
        "--out",
        "runs/jaa",
        "--epochs",
        1,
        "--batch-size",
        2,
        "--max-steps-per-epoch",
        1,
        "--device",
        "cpu",
        "--model-options",
        TINY_JAA_NET,
        "--no-progress",
        cwd=folder,
    )
    return folder


def test_synth_writes_a_bp4d_tree_and_prepare_caches_it(work):
    assert (work / "data" / "AUCoding").is_dir() and (work / "data" / "2D+3D").is_dir()
    assert (work / "data" / "aufacs_cache" / "cache.json").is_file()


def test_preview_draws_a_picture(work):
    aufacs("preview", "--out", "grid.png", "--n", 2, "--subjects", 2, "--tasks", 1, cwd=work)
    assert (work / "grid.png").stat().st_size > 1000


def test_audit_writes_its_tables(work):
    result = aufacs("audit", "--data", "data", "--out", "audit", cwd=work)
    assert "clean frames" in result.stdout
    assert (work / "audit" / "clean.csv").is_file()


def test_train_writes_a_run_with_absolute_paths(work):
    config = json.loads((work / "runs" / "jaa" / "config.json").read_text())
    assert Path(config["data"]).is_absolute() and Path(config["out"]).is_absolute()
    assert (work / "runs" / "jaa" / "checkpoints" / "epoch_001.pt").is_file()


def test_evaluate_scores_every_saved_epoch(work):
    result = aufacs("evaluate", "--run", "runs/jaa", "--device", "cpu", "--no-progress", cwd=work)
    assert "mean_f1" in result.stdout
    summary = pd.read_csv(work / "runs" / "jaa" / "evaluation_summary.csv")
    assert list(summary["epoch"]) == [1]


def test_predict_tables_the_faces_of_a_photo(work):
    photo = next((work / "data" / "2D+3D").rglob("*.jpg"))
    result = aufacs(
        "predict",
        "--run",
        "runs/jaa",
        photo,
        "--out",
        "faces.csv",
        "--device",
        "cpu",
        "--threads",
        1,
        "--no-progress",
        cwd=work,
    )
    assert "rows to faces.csv" in result.stdout
    assert len(pd.read_csv(work / "faces.csv")) >= 1


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--model", "eacnet"], "unknown model 'eacnet'"),
        (["--fold", 4], "fold must be one of 1, 2, 3"),
        (["--epochs", 0], "epochs must be a positive integer"),
        (["--epochs", -1], "epochs must be a positive integer"),
        (["--data", "nowhere"], "has no aligned-face cache"),
    ],
)
def test_train_refuses_bad_settings_in_one_sentence(work, args, sentence):
    base = ["--model", "jaa_net", "--data", "data", "--out", "runs/new"]
    refused(aufacs("train", *base, *args, cwd=work, check=False), sentence)
    assert not (work / "runs" / "new").exists()


def test_train_refuses_a_folder_holding_another_models_run(work):
    before = sorted(p.name for p in (work / "runs" / "jaa").rglob("*"))
    result = aufacs(
        "train", "--model", "eac_net", "--data", "data", "--out", "runs/jaa", cwd=work, check=False
    )
    refused(result, "holds a jaa_net run, not eac_net")
    assert sorted(p.name for p in (work / "runs" / "jaa").rglob("*")) == before


def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(work, tmp_path):
    run = Path(shutil.copytree(work / "runs" / "jaa", tmp_path / "run"))
    marker = tmp_path / "payload-ran"
    torch.save({"format": 1, "model": _Payload(str(marker))}, run / "checkpoints" / "epoch_001.pt")
    result = aufacs("evaluate", "--run", run, "--device", "cpu", cwd=work, check=False)
    refused(result, "holds arbitrary pickled objects")
    assert not marker.exists()


class _Payload:
    """A pickle that would create ``path`` when unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_evaluate_on_a_folder_without_a_run_is_refused(work, tmp_path):
    result = aufacs("evaluate", "--run", tmp_path, cwd=work, check=False)
    refused(result, "is not a training run folder")


@pytest.mark.parametrize("content", [b"", b"this is not a picture"], ids=["empty", "text"])
def test_predict_on_a_file_that_is_no_image_is_refused(work, tmp_path, content):
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(content)
    result = aufacs(
        "predict",
        "--run",
        "runs/jaa",
        fake,
        "--out",
        tmp_path / "faces.csv",
        "--device",
        "cpu",
        cwd=work,
        check=False,
    )
    refused(result, "is not an image file")
    assert not (tmp_path / "faces.csv").exists()


@pytest.mark.parametrize("command", ["audit", "prepare"])
def test_a_missing_data_folder_or_unknown_kind_is_refused(work, tmp_path, command):
    extra = ["--out", tmp_path / "audit"] if command == "audit" else []
    refused(
        aufacs(command, "--data", tmp_path / "nowhere", *extra, cwd=work, check=False), "nowhere"
    )
    refused(
        aufacs(command, "--data", "data", "--kind", "bp4dx", *extra, cwd=work, check=False),
        "unknown data set kind 'bp4dx'",
    )


def test_study_refuses_a_misspelled_size(work):
    refused(aufacs("study", "--size", "smol", cwd=work, check=False), "smol")


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_study_plan_lists_every_notebook_and_runs_nothing(work, tmp_path):
    notebooks = NOTEBOOKS
    result = aufacs(
        "study",
        "--plan",
        "--size",
        "smoke",
        "--notebooks",
        notebooks,
        "--reports",
        tmp_path / "reports",
        cwd=work,
    )
    reports = [line.split(":")[0] for line in result.stdout.splitlines()[1:]]
    assert reports[0] == "01_data_cleaning" and reports[-1] == "06_own_photos"
    assert not (tmp_path / "reports").exists()


def test_study_refuses_cuda_on_a_machine_without_it_before_running(work):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = aufacs(
        "study", "--plan", "--device", "cuda", "--notebooks", NOTEBOOKS, cwd=work, check=False
    )
    refused(result, "no CUDA")
