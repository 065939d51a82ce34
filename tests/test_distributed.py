"""Distributed training: two gloo processes under torchrun equal one process with two
micro-batches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from train_worker import WORKER, make_data, tiny_config, write_config

from aufacs.analysis.evaluate import evaluate_run
from aufacs.engine.checkpoints import checkpoint_path, load_checkpoint
from aufacs.engine.train import train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def two_processes(data, tmp_path_factory) -> Path:
    """A run trained by two CPU processes (gloo) under torchrun, global batch 4."""
    folder = tmp_path_factory.mktemp("ddp")
    config = write_config(tiny_config(data, folder / "run"), folder / "config.json")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(config),
    ]
    finished = subprocess.run(command, timeout=180, capture_output=True, text=True)
    if finished.returncode:
        pytest.fail(f"torchrun exited with {finished.returncode}:\n{finished.stderr[-3000:]}")
    return folder / "run"


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    """The same run in this process, each batch of 4 split into two micro-batches."""
    return train(tiny_config(data, tmp_path_factory.mktemp("micro") / "run", micro_batches=2))


def test_two_processes_train_the_weights_of_one_process_with_two_micro_batches(
    two_processes, one_process
):
    a = load_checkpoint(checkpoint_path(two_processes, 2))["model"]
    b = load_checkpoint(checkpoint_path(one_process, 2))["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_two_processes_give_the_evaluated_metrics_of_one_process(two_processes, one_process):
    scores = [evaluate_run(run, progress=False) for run in (two_processes, one_process)]
    pd.testing.assert_frame_equal(*scores, rtol=1e-6)


def test_only_the_first_process_writes_the_logs(two_processes):
    iterations = pd.read_csv(two_processes / "iterations.csv")
    assert list(iterations["step"]) == list(range(1, 9))
    assert len(pd.read_csv(two_processes / "epochs.csv")) == 2


def test_micro_batches_normalise_each_part_with_its_own_batch_statistics(data, tmp_path):
    whole = train(tiny_config(data, tmp_path / "whole", epochs=1, max_steps_per_epoch=1))
    parts = train(
        tiny_config(data, tmp_path / "parts", epochs=1, max_steps_per_epoch=1, micro_batches=2)
    )
    losses = [pd.read_csv(run / "iterations.csv")["loss"][0] for run in (whole, parts)]
    assert losses[0] != pytest.approx(losses[1], rel=1e-6)
