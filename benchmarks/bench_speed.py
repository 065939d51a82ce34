"""Inference speed of the three detectors at their official input sizes, as a markdown table.

    python -m benchmarks.bench_speed                      # CPU, 2 threads, batch 1 and 8
    python -m benchmarks.bench_speed --device cuda        # PyTorch on the GPU, AMP off and on
    python -m benchmarks.bench_speed --models jaa_net --batch-sizes 1 --warmup 0 --repeats 1
        --no-onnx                                         # (one line) the smallest run

Run from the repository root. Models are built with random weights (speed does not depend on
them): JAA-Net at 176 px, EAC-Net (stage ``joint``: E-Net trunk + C-Net head) at 224 px,
ME-GraphAU (ResNet-50) stages 1 and 2 at 224 px. The table goes to stdout with the machine, the
versions and the load average before and after, since a shared machine slows every figure down.
"""

from __future__ import annotations

import argparse
import os
import platform

import pandas as pd
import torch

from aufacs.analysis.speed import device_name, speed_table
from aufacs.models import build_model
from benchmarks.timing import markdown_table

#: Table name -> (registry name, builder options).
MODELS: dict[str, tuple[str, dict]] = {
    "jaa_net": ("jaa_net", {}),
    "eac_net": ("eac_net", {"pretrained": None}),
    "me_graph_au stage 1": ("me_graph_au", {"pretrained": None, "stage": 1}),
    "me_graph_au stage 2": ("me_graph_au", {"pretrained": None, "stage": 2}),
}


def markdown(table: pd.DataFrame) -> str:
    """A pipe table of ``table``, numbers rounded for reading."""
    shown = table.assign(
        parameters=(table.parameters / 1e6).map("{:.2f} M".format),
        gflops_per_frame=table.gflops_per_frame.map("{:.2f}".format),
        median_ms=table.median_ms.map("{:.1f}".format),
        p95_ms=table.p95_ms.map("{:.1f}".format),
        frames_per_s=table.frames_per_s.map("{:.1f}".format),
        threads=table.threads.map(lambda t: "" if pd.isna(t) else str(int(t))),
    )
    cells = shown.astype(str).apply(lambda column: column.str.replace("|", "/"))
    return markdown_table(list(shown.columns), [list(row) for row in cells.itertuples(False)])


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per setting")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime rows")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    torch.manual_seed(0)
    models = {name: build_model(MODELS[name][0], 12, **MODELS[name][1]) for name in args.models}
    load_before = os.getloadavg()
    table = speed_table(
        models,
        device=args.device,
        threads=args.threads,
        batch_sizes=tuple(args.batch_sizes),
        onnx=not args.no_onnx,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    load_after = os.getloadavg()
    print(
        f"PyTorch device: {device_name(args.device)}; CPU: {device_name('cpu')}, "
        f"{os.cpu_count()} logical CPUs, {args.threads} threads"
    )
    print(
        f"Python {platform.python_version()}, torch {torch.__version__}; "
        f"warm-up {args.warmup}, timed runs {args.repeats}; latency is per batch"
    )
    print(f"1-minute load average: {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
