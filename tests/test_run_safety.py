"""A run folder is safe: one process at a time, damaged checkpoints cost one epoch, runs move,
and random damage to its files gives a sentence or a fallback, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_worker import STEP_SECONDS_VARIABLE, WORKER, make_data, tiny_config, write_config

from aufacs.analysis.compare import epoch_table, evaluation_table, training_metrics
from aufacs.analysis.evaluate import evaluate_run, load_predictions
from aufacs.core.errors import AufacsError
from aufacs.core.locks import exclusive_lock
from aufacs.engine.checkpoints import checkpoint_path, load_checkpoint
from aufacs.engine.device import default_threads
from aufacs.engine.logs import drop_rows_after
from aufacs.engine.published import ImportConfig, import_weights
from aufacs.engine.runs import CONFIG_FILE, LOCK_FILE, load_run_config
from aufacs.engine.train import train
from aufacs.inference.predictor import load_predictor
from aufacs.report.workbook import run_settings


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def solo(data, tmp_path_factory) -> Path:
    """A two-epoch run trained alone, start to finish."""
    return train(tiny_config(data, tmp_path_factory.mktemp("solo") / "run"))


def same_weights(a: Path, b: Path, epoch: int = 2) -> bool:
    first, second = (load_checkpoint(checkpoint_path(run, epoch))["model"] for run in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_training_into_a_folder_another_process_holds_is_refused_naming_it(data, tmp_path):
    out = tmp_path / "run"
    with exclusive_lock(out / LOCK_FILE, "test"):
        with pytest.raises(
            AufacsError, match=rf"run folder .*run is in use by process {os.getpid()}"
        ):
            train(tiny_config(data, out))
    assert not (out / CONFIG_FILE).exists()


def test_of_two_concurrent_trainings_one_refuses_and_the_other_equals_a_solo_run(
    data, solo, tmp_path
):
    out = tmp_path / "run"
    config = write_config(tiny_config(data, out), tmp_path / "config.json")
    slow = {**os.environ, STEP_SECONDS_VARIABLE: "1.0"}
    first = subprocess.Popen([sys.executable, str(WORKER), str(config)], env=slow)
    try:
        deadline = time.monotonic() + 60
        while not (out / "iterations.csv").is_file():
            assert first.poll() is None and time.monotonic() < deadline, "first run ended early"
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, str(WORKER), str(config)], capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        assert f"is in use by process {first.pid}" in second.stderr
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    assert same_weights(solo, out)
    logs = [pd.read_csv(run / "iterations.csv") for run in (solo, out)]
    pd.testing.assert_frame_equal(*logs)


def test_an_unreadable_last_checkpoint_is_set_aside_and_training_resumes_before_it(
    data, solo, tmp_path, capsys
):
    out = tmp_path / "run"
    train(tiny_config(data, out))
    truncate(checkpoint_path(out, 2))
    train(tiny_config(data, out))
    assert (out / "checkpoints" / "epoch_002.pt.unreadable").is_file()
    assert "cannot be read" in capsys.readouterr().out
    assert same_weights(solo, out)
    assert list(pd.read_csv(out / "epochs.csv")["epoch"]) == [1, 2]


def test_evaluation_skips_an_unreadable_checkpoint_and_says_so(data, solo, tmp_path, capsys):
    run = Path(shutil.copytree(solo, tmp_path / "run"))
    truncate(checkpoint_path(run, 1))
    summary = evaluate_run(run, device="cpu", progress=False)
    assert list(summary["epoch"]) == [2]
    assert "skipping epoch 1" in capsys.readouterr().out


def test_a_run_stores_absolute_paths_and_evaluates_from_any_folder(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = Path(os.path.relpath(data, tmp_path))
    train(tiny_config(relative, Path("run"), epochs=1, max_steps_per_epoch=1))
    config = load_run_config(tmp_path / "run")
    assert config.data == data.resolve() and config.out == (tmp_path / "run").resolve()
    monkeypatch.chdir(data)
    assert list(evaluate_run(tmp_path / "run", device="cpu", progress=False)["epoch"]) == [1]


def test_a_run_whose_cache_moved_is_told_where_it_is_now(data, tmp_path):
    moved = Path(shutil.copytree(data, tmp_path / "data"))
    run = train(tiny_config(moved, tmp_path / "run", epochs=1, max_steps_per_epoch=1))
    moved.rename(tmp_path / "elsewhere")
    with pytest.raises(AufacsError, match="needs its aligned-face cache"):
        evaluate_run(run, device="cpu", progress=False)
    cache = tmp_path / "elsewhere" / "aufacs_cache"
    assert len(evaluate_run(run, device="cpu", cache=cache, progress=False)) == 1


def test_training_uses_the_threads_it_is_given_and_records_them(data, tmp_path):
    run = train(tiny_config(data, tmp_path / "run", epochs=1, max_steps_per_epoch=1, threads=2))
    assert torch.get_num_threads() == 2
    assert load_run_config(run).threads == 2


def test_the_default_threads_honour_omp_num_threads_else_the_usable_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def evaluated(solo, tmp_path_factory) -> Path:
    """A copy of the solo run, evaluated: every file a run folder holds."""
    run = Path(shutil.copytree(solo, tmp_path_factory.mktemp("evaluated") / "run"))
    evaluate_run(run, device="cpu", progress=False)
    return run


def damage(path: Path, how: str, rng: np.random.Generator) -> None:
    """Cut ``path`` short, fill it with random bytes, change some of its bytes, empty it or
    make it valid JSON of another shape."""
    data = bytearray(path.read_bytes())
    if how == "changed bytes":
        for at in rng.integers(0, len(data), rng.integers(1, 9)):
            data[at] = rng.integers(256)
    damaged = {
        "cut short": data[: rng.integers(len(data))],
        "random bytes": rng.bytes(int(rng.integers(1, 3000))),
        "changed bytes": data,
        "emptied": b"",
        "other JSON": b"[1, 2]\n",
    }
    path.write_bytes(bytes(damaged[how]))


#: Per file of a run folder, what reads it: evaluate, predict, import, the notebooks' loaders.
READERS = {
    "config.json": ("evaluate", "predict", "settings"),
    "checkpoints/epoch_002.pt": ("evaluate", "predict", "import"),
    "epochs.csv": ("epoch table", "training metrics", "resume"),
    "iterations.csv": ("resume",),
    "evaluation_summary.csv": ("epoch table", "evaluate"),
    "evaluation.csv": ("evaluation table",),
    "predictions/epoch_002.npz": ("predictions",),
}


#: Readers that carry on past a file of random bytes or an empty one: prediction does not
#: need the configuration, a resumed training starts a damaged log again, evaluation writes
#: a damaged summary again.
CARRY_ON = {
    ("config.json", "predict"),
    ("epochs.csv", "resume"),
    ("iterations.csv", "resume"),
    ("evaluation_summary.csv", "evaluate"),
}


def read(reader: str, run: Path, data: Path, out: Path):
    """What ``reader`` makes of run folder ``run``."""
    calls = {
        "evaluate": lambda: evaluate_run(run, [2], device="cpu", progress=False),
        "predict": lambda: load_predictor(run, device="cpu"),
        "import": lambda: import_weights(
            ImportConfig(
                (run / "checkpoints" / "epoch_002.pt",), data=data, kind="synthetic", out=out
            )
        ),
        "settings": lambda: run_settings(run),
        "epoch table": lambda: epoch_table(run),
        "training metrics": lambda: training_metrics(run),
        "evaluation table": lambda: evaluation_table(run),
        "predictions": lambda: load_predictions(run, 2),
        "resume": lambda: [drop_rows_after(run / f, 1) for f in ("epochs.csv", "iterations.csv")],
    }
    return calls[reader]()


@pytest.mark.parametrize("file", list(READERS))
def test_random_damage_to_a_run_file_gives_a_sentence_or_a_fallback_never_a_traceback(
    evaluated, data, tmp_path, file
):
    rng = np.random.default_rng(list(READERS).index(file))
    kinds = ["cut short", "random bytes", "changed bytes", "emptied"]
    kinds += ["other JSON"] if file.endswith(".json") else []
    for how in kinds:
        run = Path(shutil.copytree(evaluated, tmp_path / how / "run"))
        damage(run / file, how, rng)
        for reader in READERS[file]:
            try:
                read(reader, run, data, tmp_path / how / f"imported_{reader}")
                refused = False
            except AufacsError as error:
                assert "\n" not in str(error) and str(error).strip()
                refused = True
            if how in ("random bytes", "emptied"):
                assert refused == ((file, reader) not in CARRY_ON), (how, reader)
