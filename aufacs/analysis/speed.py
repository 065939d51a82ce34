"""Inference speed of the detectors: parameters, FLOPs, latency and throughput.

- FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass: 2
  FLOPs per multiply-accumulate of the matrix products and convolutions it knows; element-wise
  operations, pooling and normalisation are not counted.
- Latency is wall time per forward pass of a whole batch, in milliseconds, after warm-up runs,
  under ``torch.inference_mode``; on CUDA every pass is bracketed by
  ``torch.cuda.synchronize``. Throughput is batch size / median latency, in frames per second.
- AMP runs the forward pass under ``torch.autocast`` (float16 on CUDA, bfloat16 on CPU).
- ONNX: the model's probability output is exported with the TorchScript-based exporter
  (``torch.onnx.export(..., dynamo=False)``; the newer exporter needs the ``onnxscript``
  package) and timed with onnxruntime's CPU provider. onnxruntime is optional: when it is
  missing, or a model does not export, its table row says why.

Timings are medians because the machine may be shared; the table names the device and the
number of CPU threads so figures are comparable only where both match.
"""

from __future__ import annotations

import importlib.util
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from aufacs.core.errors import AufacsError
from aufacs.data.align import alignment_matrix, transform_points
from aufacs.data.synthetic.face import neutral_landmarks, sample_face
from aufacs.engine.device import thread_limit
from aufacs.models.base import AUModel

#: Largest |difference| of probabilities between onnxruntime and PyTorch that counts as a
#: clean export.
ONNX_TOLERANCE = 1e-3
COLUMNS: tuple[str, ...] = (
    "model",
    "runtime",
    "device",
    "threads",
    "batch_size",
    "parameters",
    "gflops_per_frame",
    "median_ms",
    "p95_ms",
    "frames_per_s",
    "note",
)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors once); only those that train if ``trainable_only``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: AUModel, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass over ``batch`` (all B samples), counted by FlopCounterMode.

    The model is put in eval mode and runs without gradients.
    """
    from torch.utils.flop_counter import FlopCounterMode  # imports triton: half a second

    counter = FlopCounterMode(display=False)
    model.eval()
    with torch.no_grad(), counter:
        model(batch)
    return int(counter.get_total_flops())


def example_batch(model: AUModel, batch_size: int, *, device: str | torch.device = "cpu") -> dict:
    """A batch of the model's input size with random images and a face's landmarks.

    ``image`` (B, 3, S, S) standard normal (S = ``model.input_spec.crop_size``); ``landmarks``
    (B, 49, 2): the neutral landmarks of one synthetic face, aligned into the S x S crop as
    the data pipeline aligns faces, in crop pixels.
    """
    if batch_size < 1:
        raise AufacsError(f"batch_size must be a positive number of frames, got {batch_size}")
    size = model.input_spec.crop_size
    face = neutral_landmarks(sample_face(np.random.default_rng(0), "speed"))
    points = transform_points(face, alignment_matrix(face, size=size))  # (49, 2) crop pixels
    generator = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(batch_size, 3, size, size, generator=generator).to(device),
        "landmarks": torch.tensor(points, dtype=torch.float32).repeat(batch_size, 1, 1).to(device),
    }


def _time_ms(
    call: Callable[[], object], warmup: int, repeats: int, device: torch.device
) -> np.ndarray:
    """Wall times of ``repeats`` calls after ``warmup`` calls: (repeats,) milliseconds; each
    call is bracketed by synchronisations of ``device`` when it is a CUDA device."""
    if repeats < 1 or warmup < 0:
        raise AufacsError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        call()
    cuda = device.type == "cuda"
    times = np.empty(repeats)
    for k in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if cuda:
            torch.cuda.synchronize(device)
        times[k] = (time.perf_counter() - start) * 1000.0
    return times


def _summary(times_ms: np.ndarray) -> dict[str, float]:
    return {"median_ms": float(np.median(times_ms)), "p95_ms": float(np.percentile(times_ms, 95))}


def measure_latency(
    model: AUModel,
    batch: dict[str, torch.Tensor],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str | torch.device = "cpu",
    amp: bool = False,
) -> dict[str, float]:
    """Latency of one forward pass over ``batch``: ``{"median_ms", "p95_ms"}``.

    The model is moved to ``device`` and put in eval mode (it stays so); ``amp`` runs under
    autocast. CPU thread count: whatever torch is set to (see :func:`speed_table`).
    """
    device = torch.device(device)
    model.to(device).eval()
    batch = {key: value.to(device) for key, value in batch.items()}

    def forward() -> object:
        with torch.autocast(device.type, enabled=amp):
            return model(batch)

    with torch.inference_mode():
        times = _time_ms(forward, warmup, repeats, device)
    return _summary(times)


def measure_throughput(
    model: AUModel,
    batch_size: int,
    *,
    warmup: int = 2,
    repeats: int = 10,
    device: str | torch.device = "cpu",
    amp: bool = False,
) -> float:
    """Frames per second at ``batch_size``: batch size / median latency of an
    :func:`example_batch`."""
    batch = example_batch(model, batch_size, device=device)
    latency = measure_latency(model, batch, warmup=warmup, repeats=repeats, device=device, amp=amp)
    return batch_size * 1000.0 / latency["median_ms"]


def device_name(device: str | torch.device) -> str:
    """A readable name of ``device``: the CUDA device name, or the CPU model name from
    /proc/cpuinfo (else ``platform.processor()`` or the machine type)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class _ProbabilityOnly(nn.Module):
    """``(image, landmarks) -> au_prob``: the tensor-only forward that ONNX export needs."""

    def __init__(self, model: AUModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.model({"image": image, "landmarks": landmarks}).au_prob


def onnx_latency(
    model: AUModel,
    batch: dict[str, torch.Tensor],
    *,
    warmup: int = 3,
    repeats: int = 20,
    threads: int | None = None,
) -> tuple[dict[str, float] | None, str]:
    """Export ``model`` to ONNX at ``batch``'s shapes and time it with onnxruntime on CPU.

    Returns (``{"median_ms", "p95_ms"}`` or None, a note): None with the reason when
    onnxruntime is missing or the export fails; otherwise the note gives the largest
    probability difference from PyTorch. The model is moved to the CPU in eval mode.
    """
    if importlib.util.find_spec("onnxruntime") is None:
        return None, "onnxruntime not installed"
    import onnxruntime

    model.cpu().eval()
    inputs = (batch["image"].cpu(), batch["landmarks"].cpu())
    with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
        reference = model({"image": inputs[0], "landmarks": inputs[1]}).au_prob.numpy()
        path = Path(folder) / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _ProbabilityOnly(model),
                    inputs,
                    str(path),
                    dynamo=False,
                    input_names=["image", "landmarks"],
                    output_names=["au_prob"],
                )
        except Exception as error:  # noqa: BLE001 - any export failure is reported, not raised
            first_line = (str(error).splitlines() or [""])[0]
            return None, f"ONNX export failed: {type(error).__name__}: {first_line}"
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    named = {"image": inputs[0], "landmarks": inputs[1]}
    feeds = {node.name: named[node.name].numpy() for node in session.get_inputs()}
    difference = float(np.abs(session.run(None, feeds)[0] - reference).max())
    times = _time_ms(lambda: session.run(None, feeds), warmup, repeats, torch.device("cpu"))
    state = "exported" if difference <= ONNX_TOLERANCE else "exported, outputs DIFFER"
    return _summary(times), f"{state} (largest probability difference {difference:.1e})"


def _row(
    about: dict,
    runtime: str,
    device: str,
    threads: int | None,
    batch_size: int,
    timing: dict[str, float] | None,
    note: str = "",
) -> dict:
    """One table row; ``about`` holds the model's name, parameters and GFLOPs per frame."""
    median = np.nan if timing is None else timing["median_ms"]
    return {
        **about,
        "runtime": runtime,
        "device": device,
        "threads": threads,
        "batch_size": batch_size,
        "median_ms": median,
        "p95_ms": np.nan if timing is None else timing["p95_ms"],
        "frames_per_s": batch_size * 1000.0 / median,
        "note": note,
    }


def speed_table(
    models: Mapping[str, AUModel],
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    amp: Sequence[bool] | None = None,
    onnx: bool = True,
    warmup: int = 2,
    repeats: int = 10,
) -> pd.DataFrame:
    """Speed of every model at every batch size, one row per (model, runtime, batch size).

    ``models``: name -> model, each timed on :func:`example_batch` inputs of its own size.
    ``device``: where PyTorch runs; ``threads``: CPU threads for PyTorch and onnxruntime
    (None: torch's current setting); ``amp``: the autocast settings to time (default: off,
    plus on for CUDA); ``onnx``: add onnxruntime CPU rows (or rows saying why not).

    Columns: ``model``, ``runtime`` (``torch``, ``torch+amp``, ``onnxruntime``), ``device``
    (its name), ``threads`` (CPU rows), ``batch_size``, ``parameters``, ``gflops_per_frame``
    (FlopCounterMode at batch 1, 1e9 FLOPs), ``median_ms`` and ``p95_ms`` (per batch),
    ``frames_per_s`` (batch size / median), ``note``. Each model is left on ``device``, in
    eval mode.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise AufacsError(f"device {device} was asked for, but CUDA is not available here")
    amp = (False, True) if amp is None and cuda else (False,) if amp is None else tuple(amp)
    rows = []
    with thread_limit(threads) if threads is not None else nullcontext():
        cpu_threads = torch.get_num_threads()
        name, cpu_name = device_name(device), device_name("cpu")
        for model_name, model in models.items():
            model.to(device)
            about = {
                "model": model_name,
                "parameters": count_parameters(model),
                "gflops_per_frame": count_flops(model, example_batch(model, 1, device=device))
                / 1e9,
            }
            for batch_size in batch_sizes:
                batch = example_batch(model, batch_size, device=device)
                for autocast in amp:
                    timing = measure_latency(
                        model, batch, warmup=warmup, repeats=repeats, device=device, amp=autocast
                    )
                    runtime = "torch+amp" if autocast else "torch"
                    threads_used = None if cuda else cpu_threads
                    rows.append(_row(about, runtime, name, threads_used, batch_size, timing))
                if onnx:
                    timing, note = onnx_latency(
                        model, batch, warmup=warmup, repeats=repeats, threads=cpu_threads
                    )
                    rows.append(
                        _row(about, "onnxruntime", cpu_name, cpu_threads, batch_size, timing, note)
                    )
                    model.to(device)
    return pd.DataFrame(rows, columns=list(COLUMNS))
