"""The ``aufacs`` command line refuses bad input as users type it, in subprocesses.

Every documented command line runs in tests/test_documented_commands.py. Bad input must end
with a non-zero status and one sentence on standard error, never a Python traceback, and must
leave the files it was pointed at as they were.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_worker import make_data, tiny_config

from aufacs.engine.train import train

AUFACS = [sys.executable, "-m", "aufacs.cli"]


def aufacs(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``aufacs ARGS`` in ``cwd`` on one thread; ``check``: it must succeed."""
    result = subprocess.run(
        [*AUFACS, *map(str, args)],
        cwd=cwd,
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
    """A folder with a prepared data set (``data``) and a one-step run (``runs/jaa``); the
    commands that make such folders run in tests/test_documented_commands.py."""
    folder = tmp_path_factory.mktemp("cli")
    data = make_data(folder / "data")
    train(tiny_config(data, folder / "runs" / "jaa", epochs=1, max_steps_per_epoch=1))
    return folder


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


def test_import_refuses_a_file_that_holds_no_weights(work, tmp_path):
    fake = tmp_path / "au_net_5.pth"
    fake.write_text("these are not weights")
    out = tmp_path / "run"
    arguments = ("--data", "data", "--kind", "synthetic", "--out", out)
    result = aufacs("import", fake, *arguments, cwd=work, check=False)
    refused(result, "au_net_5.pth is not a weight file that torch can read")
    result = aufacs("import", tmp_path / "nothing.pth", *arguments, cwd=work, check=False)
    refused(result, "nothing.pth does not exist")
    assert not out.exists()


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


#: Which heavy packages each command may not import (the import takes seconds).
NOT_IMPORTED = {
    ("synth", "--help"): ("torch",),
    ("audit", "--data", "nowhere", "--kind", "bp4d", "--out", "audit"): ("torch",),
    ("prepare", "--data", "nowhere", "--kind", "bp4d"): ("torch",),
    ("train", "--model", "jaa_net", "--data", "nowhere"): ("torchvision",),
}


@pytest.mark.parametrize("args", list(NOT_IMPORTED), ids=lambda args: args[0])
def test_a_command_imports_only_what_it_runs(args, tmp_path):
    program = (
        "import sys\nfrom aufacs.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(set(sys.modules) & {'torch', 'torchvision'})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = result.stdout.strip().splitlines()[-1].split() if result.stdout.strip() else []
    assert not set(imported) & set(NOT_IMPORTED[args]), result.stdout
