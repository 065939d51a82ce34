"""Inference speed: exact parameter and FLOP counts, latency summaries and the speed table."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from aufacs.analysis.speed import (
    COLUMNS,
    count_flops,
    count_parameters,
    example_batch,
    measure_latency,
    measure_throughput,
    speed_table,
)
from aufacs.core.errors import AufacsError
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec

SIDE = 8


class ConvModel(AUModel):
    """A 3 x 3 convolution (3 -> 4 channels, no padding) and a linear layer to 2 AUs."""

    input_spec = InputSpec(SIDE, *HALF_NORMALISATION)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        features = self.conv(batch["image"]).mean(dim=(-2, -1))  # (B, 4)
        return AUOutput(au_prob=torch.sigmoid(self.fc(features)))


class LinearModel(AUModel):
    """One linear layer on the flattened landmarks: 98 -> 5."""

    input_spec = InputSpec(SIDE, *HALF_NORMALISATION)

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(98, 5)

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        return AUOutput(au_prob=torch.sigmoid(self.fc(batch["landmarks"].flatten(1))))


def test_parameters_are_counted_exactly():
    model = ConvModel()
    assert count_parameters(model) == (3 * 4 * 3 * 3 + 4) + (4 * 2 + 2)


def test_frozen_parameters_are_left_out_when_only_trainable_ones_are_asked_for():
    model = ConvModel()
    model.conv.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 4 * 2 + 2


def test_flops_of_a_linear_layer_are_two_per_multiply_accumulate():
    batch = example_batch(LinearModel(), 3)
    assert count_flops(LinearModel(), batch) == 2 * 3 * 98 * 5


def test_flops_of_a_convolution_follow_the_formula():
    batch = example_batch(ConvModel(), 2)
    output_side = SIDE - 2
    conv = 2 * 2 * 4 * output_side * output_side * 3 * 3 * 3
    linear = 2 * 2 * 4 * 2
    assert count_flops(ConvModel(), batch) == conv + linear


def test_example_batch_has_the_model_input_size_and_landmarks_inside_the_crop():
    batch = example_batch(ConvModel(), 2)
    assert batch["image"].shape == (2, 3, SIDE, SIDE)
    assert batch["landmarks"].shape == (2, 49, 2)
    assert (batch["landmarks"] > 0).all() and (batch["landmarks"] < SIDE - 1).all()


def test_latency_gives_a_positive_median_no_larger_than_the_95th_percentile():
    latency = measure_latency(ConvModel(), example_batch(ConvModel(), 2), warmup=1, repeats=5)
    assert 0 < latency["median_ms"] <= latency["p95_ms"]


def test_latency_refuses_zero_repeats():
    with pytest.raises(AufacsError, match="repeats must be"):
        measure_latency(ConvModel(), example_batch(ConvModel(), 1), repeats=0)


def test_throughput_is_a_positive_frame_rate():
    assert measure_throughput(ConvModel(), 4, warmup=1, repeats=3) > 0


def test_speed_table_has_a_row_per_model_runtime_and_batch_size():
    models = {"conv": ConvModel(), "linear": LinearModel()}
    table = speed_table(models, threads=1, batch_sizes=(1, 2), warmup=0, repeats=2)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 * 2 * 2
    torch_rows = table[table.runtime == "torch"]
    assert (torch_rows.threads == 1).all() and (torch_rows.frames_per_s > 0).all()
    assert torch_rows.device.str.len().gt(0).all()
    assert set(table.parameters) == {count_parameters(m) for m in models.values()}


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="no onnxruntime")
def test_onnx_rows_time_an_export_that_matches_pytorch():
    table = speed_table({"conv": ConvModel()}, threads=1, batch_sizes=(2,), warmup=0, repeats=2)
    onnx = table[table.runtime == "onnxruntime"].iloc[0]
    assert onnx.note.startswith("exported (") and onnx.median_ms > 0


def test_onnx_rows_say_why_when_onnxruntime_is_missing(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    table = speed_table({"conv": ConvModel()}, batch_sizes=(1,), warmup=0, repeats=1)
    onnx = table[table.runtime == "onnxruntime"].iloc[0]
    assert onnx.note == "onnxruntime not installed"


def test_speed_table_gives_back_the_thread_setting():
    threads = torch.get_num_threads()
    table = speed_table({"conv": ConvModel()}, threads=threads + 1, batch_sizes=(1,), onnx=False)
    assert table.threads.tolist() == [threads + 1]
    assert torch.get_num_threads() == threads


def test_cuda_table_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AufacsError, match="CUDA is not available"):
        speed_table({"conv": ConvModel()}, device="cuda")
