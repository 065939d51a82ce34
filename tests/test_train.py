"""The training engine: run folder, recipe defaults, bad input, checkpoints, resume, NaN stop."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from train_worker import (
    STEP_SECONDS_VARIABLE,
    TINY_JAA_NET,
    WORKER,
    make_data,
    tiny_config,
    write_config,
)

from aufacs.core.config import load_config
from aufacs.core.errors import AufacsError
from aufacs.data.cache import AlignedCache
from aufacs.data.prepare import CACHE_FOLDER
from aufacs.engine.checkpoints import checkpoint_path, load_checkpoint
from aufacs.engine.config import TrainConfig
from aufacs.engine.device import resolve_amp
from aufacs.engine.distributed import buffers_kept
from aufacs.engine.optimizer import make_optimizer
from aufacs.engine.recipes import lr_factor, recipe_for
from aufacs.engine.runs import EPOCHS_FILE, make_dataset
from aufacs.engine.train import train
from aufacs.models import build_model
from aufacs.models.jaa_net import JAANet


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    """A finished two-epoch run of :func:`tiny_config`."""
    return train(tiny_config(data, tmp_path_factory.mktemp("finished") / "run"))


def weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint_path(run, epoch))["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_a_run_folder_holds_the_config_a_checkpoint_per_epoch_and_both_logs(finished):
    out = finished
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch_001.pt",
        "epoch_002.pt",
    ]
    iterations = pd.read_csv(out / "iterations.csv")
    epochs = pd.read_csv(out / "epochs.csv")
    assert list(iterations["step"]) == list(range(1, 9))
    assert {"lr", "loss", "au_softmax", "au_dice", "landmark", "attention_refine"} <= set(
        iterations.columns
    )
    assert list(epochs["epoch"]) == [1, 2] and (epochs["samples_per_s"] > 0).all()
    assert json.loads((out / "config.json").read_text())["model"] == "jaa_net"


def test_unset_settings_take_the_model_recipe_defaults(data, tmp_path):
    config = tiny_config(data, tmp_path / "run", epochs=1, lr=None, max_steps_per_epoch=1)
    saved = load_config(TrainConfig, train(config) / "config.json")
    assert (saved.optimizer, saved.lr, saved.momentum, saved.nesterov) == ("sgd", 0.01, 0.9, True)
    assert (saved.weight_decay, saved.schedule, saved.lr_gamma) == (5e-4, "step", 0.3)
    assert saved.au_weights == "inverse"


def test_recipes_follow_the_published_optimisers():
    assert recipe_for("me_graph_au", 2).lr == 1e-5
    assert recipe_for("me_graph_au", 1).optimizer == "adamw"
    assert recipe_for("eac_net", "enet").weight_decay == 0.0
    with pytest.raises(AufacsError, match="no training recipe"):
        recipe_for("jaa_net", 2)


def test_the_cosine_schedule_falls_from_one_to_zero_over_the_run():
    factor = lr_factor("cosine", iters_per_epoch=10, total_iters=100, step_epochs=2, gamma=0.3)
    assert (factor(0), factor(50), factor(100)) == pytest.approx((1.0, 0.5, 0.0))


def test_the_step_schedule_multiplies_the_lr_by_gamma_after_each_step(data, tmp_path):
    config = tiny_config(data, tmp_path / "run", lr_step_epochs=1, max_steps_per_epoch=1)
    out = train(config)
    lr = pd.read_csv(out / "iterations.csv").groupby("epoch")["lr"].unique()
    assert lr[1] == pytest.approx([0.01]) and lr[2] == pytest.approx([0.003])


def test_an_unknown_model_is_refused_before_any_work(data, tmp_path):
    with pytest.raises(AufacsError, match="unknown model 'jaanet'; available models: eac_net"):
        train(tiny_config(data, tmp_path / "run", model="jaanet"))
    assert not (tmp_path / "run").exists()


def test_an_unknown_fold_is_refused(data, tmp_path):
    with pytest.raises(AufacsError, match="fold must be one of 1, 2, 3, got 4"):
        train(tiny_config(data, tmp_path / "run", fold=4))


def test_a_data_folder_without_a_cache_is_refused_with_the_prepare_command(tmp_path):
    with pytest.raises(AufacsError, match=r"run `aufacs prepare --data .*empty` first"):
        train(tiny_config(tmp_path / "empty", tmp_path / "run"))


def test_an_output_folder_holding_another_models_run_is_refused(data, tmp_path):
    write_config(tiny_config(data, tmp_path, model="eac_net"), tmp_path / "config.json")
    with pytest.raises(AufacsError, match="holds a eac_net run, not jaa_net"):
        train(tiny_config(data, tmp_path))


def test_a_config_file_with_an_unknown_key_is_refused(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"model": "jaa_net", "learning_rate": 0.1}))
    with pytest.raises(AufacsError, match="unknown key.* learning_rate"):
        load_config(TrainConfig, path)


@pytest.mark.parametrize("lr", [-0.01, 0.0])
def test_a_learning_rate_that_is_not_positive_is_refused(data, tmp_path, lr):
    with pytest.raises(AufacsError, match=f"lr must be a positive number, got {lr}"):
        train(tiny_config(data, tmp_path / "run", lr=lr))


def test_a_batch_that_micro_batches_cannot_split_evenly_is_refused(data, tmp_path):
    with pytest.raises(AufacsError, match="batch_size 4 must be divisible by"):
        train(tiny_config(data, tmp_path / "run", micro_batches=3))


def test_on_cpu_auto_precision_is_full_bf16_is_allowed_and_fp16_is_refused():
    assert resolve_amp("auto", torch.device("cpu")) is None
    assert resolve_amp("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(AufacsError, match="amp='fp16' needs a CUDA device"):
        resolve_amp("fp16", torch.device("cpu"))


def test_a_bf16_run_on_cpu_trains_with_finite_losses(data, tmp_path):
    run = train(tiny_config(data, tmp_path / "run", amp="bf16", epochs=1))
    losses = pd.read_csv(run / EPOCHS_FILE)["loss"]
    assert len(losses) == 1 and losses.map(math.isfinite).all()


def test_checkpoints_load_with_weights_only_and_hold_the_whole_state(finished):
    state = load_checkpoint(checkpoint_path(finished, 2))
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "config"} <= set(state)
    assert state["epoch"] == 2 and state["config"]["model"] == "jaa_net"


def test_a_checkpoint_holding_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "epoch_001.pt"
    torch.save({"format": 1, "model": nn.Linear(2, 2)}, path)
    with pytest.raises(AufacsError, match="holds arbitrary pickled objects"):
        load_checkpoint(path)


def test_training_again_with_more_epochs_continues_from_the_last_checkpoint(
    data, finished, tmp_path
):
    train(tiny_config(data, tmp_path / "resumed", epochs=1))
    resumed = train(tiny_config(data, tmp_path / "resumed"))
    assert_same_weights(weights(finished, 2), weights(resumed, 2))
    assert len(pd.read_csv(resumed / "epochs.csv")) == 2


def test_resuming_with_different_settings_is_refused(data, tmp_path):
    train(tiny_config(data, tmp_path / "run", epochs=1, max_steps_per_epoch=1))
    with pytest.raises(AufacsError, match=r"different settings \(lr 0.01 -> 0.1\)"):
        train(tiny_config(data, tmp_path / "run", max_steps_per_epoch=1, lr=0.1))


def test_a_nan_loss_stops_the_run_naming_epoch_iteration_and_part(data, tmp_path, monkeypatch):
    calls = itertools.count(1)
    original = JAANet.loss

    def poisoned(self, output, batch, au_weights):
        total, parts = original(self, output, batch, au_weights)
        if next(calls) == 6:  # epoch 2, iteration 2 at 4 steps per epoch
            parts = {**parts, "landmark": torch.tensor(math.nan)}
        return total, parts

    monkeypatch.setattr(JAANet, "loss", poisoned)
    with pytest.raises(AufacsError) as error:
        train(tiny_config(data, tmp_path / "run"))
    assert "landmark became nan at epoch 2, iteration 2" in str(error.value)
    assert "epoch_001.pt" in str(error.value)
    assert not checkpoint_path(tmp_path / "run", 2).exists()


def test_jaa_net_attention_refinement_gets_twice_the_learning_rate(data, tmp_path):
    model = build_model("jaa_net", 12, **TINY_JAA_NET)
    config = tiny_config(
        data, tmp_path, optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=0.0
    )
    optimizer = make_optimizer(model, config)
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates["attention_refine"] == pytest.approx(0.02)
    assert rates["au_net"] == pytest.approx(0.01)


def test_the_training_data_set_is_seeded_by_the_run_seed(data):
    cache = AlignedCache.open(data / CACHE_FOLDER)
    model = build_model("jaa_net", 12, **TINY_JAA_NET)
    dataset = make_dataset(cache, ("F001",), model, train=True, seed=5)
    assert dataset.seed == 5 and dataset.train


def test_buffers_kept_undoes_the_running_statistics_a_forward_pass_updates():
    norm = nn.BatchNorm2d(3).train()
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    with buffers_kept(norm, True):
        norm(torch.randn(4, 3, 2, 2)).sum().backward()
        assert not torch.equal(norm.running_mean, before["running_mean"])
    assert all(torch.equal(before[k], v) for k, v in norm.state_dict().items())


def test_a_run_killed_in_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(
    data, finished, tmp_path
):
    killed = tmp_path / "killed"
    config = tiny_config(data, killed)
    environment = {**os.environ, STEP_SECONDS_VARIABLE: "0.3"}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(write_config(config, tmp_path / "killed.json"))],
        env=environment,
    )
    try:
        deadline = time.monotonic() + 60
        while not _logged_steps_of_epoch(killed, 2) >= 2:
            assert worker.poll() is None and time.monotonic() < deadline, "worker ended early"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert checkpoint_path(killed, 1).exists() and not checkpoint_path(killed, 2).exists()
    train(config)
    assert_same_weights(weights(finished, 2), weights(killed, 2))
    logs = [pd.read_csv(run / "iterations.csv") for run in (finished, killed)]
    pd.testing.assert_frame_equal(*logs)


def _logged_steps_of_epoch(run: Path, epoch: int) -> int:
    """How many iterations of ``epoch`` the run has logged (0 if it has not started)."""
    path = run / "iterations.csv"
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()[1:]
    return sum(line.startswith(f"{epoch},") for line in lines)
