"""Timing and report helpers shared by the benchmarks: the machine, interleaved rounds, tables.

Every benchmark prints :func:`machine_description` before and :func:`load_line` after its
figures, since the load of a shared machine slows every figure down. :func:`interleaved`
alternates the timed calls in one process (the order flips every round), so that load from
other processes hits them alike; :func:`step_table` then gives medians of wall and process CPU
time and the speed-up two ways: the median of the per-round ratios and, less disturbed by
bursts of load, the ratio of the minima. :func:`limit_table` says how far a training step is
from what the machine's convolutions allow: the step's FLOPs and achieved GFLOP/s, the share
of the step spent in convolutions, and the convolutions' own GFLOP/s.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from aufacs.analysis.speed import device_name

#: Per call name, ``wall`` and ``cpu``: durations in seconds, one per timed round.
Times = dict[str, dict[str, list[float]]]

#: Header of :func:`step_table`.
STEP_HEADER = ["", "median wall s", "median CPU s", "min wall s"]

#: Header of :func:`limit_table`.
LIMIT_HEADER = [
    "",
    "GFLOP per step",
    "step GFLOP/s",
    "share of step in convolutions",
    "convolution GFLOP/s",
]

#: Names of convolution ops, forward and backward, in the profiler and the FLOP counter
#: (``aten::convolution``, ``aten::mkldnn_convolution``, ``aten.convolution_backward``, ...).
CONVOLUTION = re.compile(r"conv(olution|[123]d|_depthwise)")

#: /proc/cpuinfo flags of CPUs that compute in bf16 natively (AVX-512 BF16, AMX).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    flags = next((line for line in lines if line.startswith("flags")), "flags:")
    return set(flags.split(":", 1)[1].split())


def cpu_line(threads: int) -> str:
    """A markdown line: the CPU model, logical CPUs, those this process may run on, whether
    the CPU has native bf16, and the torch threads."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    flags = cpu_flags()
    bf16 = [flag for flag in BF16_FLAGS if flag in flags]
    native = f"yes ({', '.join(bf16)})" if bf16 else "no (no avx512_bf16 / amx_bf16)"
    return (
        f"- CPU: {device_name('cpu')}, {os.cpu_count()} logical CPUs, {affinity} in this "
        f"process's affinity; native bf16: {native}; torch threads: {threads}"
    )


def machine_description(threads: int) -> str:
    """Markdown lines naming the machine, the software, the date and the current load."""
    load = os.getloadavg()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{cpu_line(threads)}\n"
        f"- Python {platform.python_version()}, torch {torch.__version__}; {now}\n"
        f"- load average (1, 5, 15 min) before: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    )


def load_line() -> str:
    """The load average after a run, as a markdown line."""
    load = os.getloadavg()
    return f"- load average (1, 5, 15 min) after: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def timing_arguments(parser: argparse.ArgumentParser, threads: int, repeats: int) -> None:
    """Add ``--threads``, ``--batch`` (8), ``--warmup`` (1) and ``--repeats`` to ``parser``."""
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds (default 1)")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed rounds")


def interleaved(calls: Mapping[str, Callable[[], object]], warmup: int, repeats: int) -> Times:
    """Run every call once per round, ``warmup`` untimed rounds then ``repeats`` timed ones;
    the order of the calls reverses every round. Returns, per call name, ``wall`` and ``cpu``
    (process CPU time, all threads): ``repeats`` durations in seconds."""
    names = list(calls)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for round_ in range(warmup + repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            calls[name]()
            if round_ >= warmup:
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["cpu"].append(time.process_time() - cpu)
    return times


def time_call(call: Callable[[], object], warmup: int, repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time of ``call`` on its own, milliseconds."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def median_ratio(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of ``slow / fast`` (durations of the same rounds)."""
    return statistics.median(s / f for s, f in zip(slow, fast, strict=True))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def step_table(times: Times, reference: str, candidate: str, *others: str) -> list[list[str]]:
    """Rows under :data:`STEP_HEADER` for every call, then the speed-up of ``candidate`` over
    ``reference`` (and over each of ``others``, the row then naming it): the median of
    per-round ratios (wall, CPU) and the ratio of the minima (the least disturbed estimate
    where other processes only ever add time)."""
    rows = [
        [
            name,
            f"{statistics.median(t['wall']):.3f}",
            f"{statistics.median(t['cpu']):.3f}",
            f"{min(t['wall']):.3f}",
        ]
        for name, t in times.items()
    ]
    cand = times[candidate]
    for name in (reference, *others):
        ref = times[name]
        over = f" over {name}" if others else ""
        rows.append(
            [
                f"speed-up{over}: median of per-round ratios; ratio of minima",
                f"{median_ratio(ref['wall'], cand['wall']):.2f}x",
                f"{median_ratio(ref['cpu'], cand['cpu']):.2f}x",
                f"{min(ref['wall']) / min(cand['wall']):.2f}x",
            ]
        )
    return rows


def rounds_line(times: Times) -> str:
    """A markdown line with every round's wall time per call, seconds."""
    parts = [name + " " + ", ".join(f"{w:.2f}" for w in run["wall"]) for name, run in times.items()]
    return "- wall s per round: " + "; ".join(parts)


def _convolution_backward_flops(
    grad_out_shape: Sequence[int],
    _x_shape: Sequence[int],
    w_shape: Sequence[int],
    *settings: object,
    **_out_shape: object,
) -> int:
    """FLOPs of a convolution's backward pass: each gradient asked for (input, weight) costs
    what the forward pass costs, 2 · output elements · C_in/groups · k_h · k_w. torch's own
    formula leaves ``groups`` out there and counts a grouped convolution's backward pass at up
    to ``groups`` times its cost (JAA-Net's 64-cell region layers at 18 times the official
    code's, which runs one small convolution per cell)."""
    output_mask = settings[-1]  # after bias, stride, padding, dilation, transposed, ..., groups
    forward = 2 * math.prod(grad_out_shape) * math.prod(w_shape[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def step_flops(step: Callable[[], object]) -> tuple[float, float]:
    """FLOPs of one call of ``step``, all and those of convolutions, as
    :class:`~torch.utils.flop_counter.FlopCounterMode` counts them (with grouped convolutions'
    backward passes counted right: :func:`_convolution_backward_flops`): forward and backward
    matrix products and convolutions (elementwise ops and the optimiser count 0)."""
    corrected = {torch.ops.aten.convolution_backward: _convolution_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=corrected) as counter:
        step()
    counts = counter.get_flop_counts().get("Global", {})
    convolutions = sum(n for op, n in counts.items() if CONVOLUTION.search(str(op)))
    return float(counter.get_total_flops()), float(convolutions)


def convolution_seconds(step: Callable[[], object]) -> tuple[float, float]:
    """Profile one call of ``step``: the self CPU seconds of its convolution ops (forward and
    backward, :data:`CONVOLUTION`) and the call's wall seconds."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        step()
        wall = time.perf_counter() - start
    events = profiler.key_averages()
    own = sum(e.self_cpu_time_total for e in events if CONVOLUTION.search(e.key))
    return own / 1e6, wall


def limit_table(calls: Mapping[str, Callable[[], object]], times: Times) -> str:
    """A table under :data:`LIMIT_HEADER` with one row per call, from one more call counted by
    :func:`step_flops` and one profiled by :func:`convolution_seconds`: the step's GFLOP, its
    GFLOP/s at the median wall time of ``times``, the share of the profiled call's wall time
    spent in convolutions, and the convolutions' GFLOP/s over their own time."""
    rows = []
    for name, call in calls.items():
        flops, conv_flops = step_flops(call)
        conv_s, wall_s = convolution_seconds(call)
        median = statistics.median(times[name]["wall"])
        rows.append(
            [
                name,
                f"{flops / 1e9:.1f}",
                f"{flops / 1e9 / median:.1f}",
                f"{100 * conv_s / wall_s:.0f} % ({conv_s:.3f} of {wall_s:.3f} s)",
                f"{conv_flops / 1e9 / conv_s:.1f}" if conv_s > 0 else "-",
            ]
        )
    return markdown_table(LIMIT_HEADER, rows)
