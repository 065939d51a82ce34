"""JAA-Net training epochs on a set the size of a BP4D training fold, and the 12-epoch projection.

    python -m benchmarks.bench_epoch --out /tmp/bench_epoch --frames 20000 --steps 20   # CPU
    python -m benchmarks.bench_epoch --out /data/bench_epoch --device cuda --steps 0    # GPU
    python -m benchmarks.bench_epoch --out /tmp/bench_smoke --smoke --frames 8 --steps 1

Run from the repository root. The set is the default SynthBP4D, aligned and cached at 200 px,
with the frames of fold 1's training subjects repeated (under new frame numbers) until they are
``--frames`` frames (default 100,000, about the size of a BP4D training fold). A repeated frame
costs the loader what a new one would: every row is read from the memory-mapped cache, cropped,
flipped and normalised. The cache on disk takes ``frames`` x 120 kB (12 GB for 100,000 frames).

Training runs through the engine that ``aufacs train`` uses (data loading included), with
JAA-Net's recipe (batch 8, crop 176; AMP and channels-last on CUDA). ``--steps N`` runs two
epochs of N steps and times the second, so that start-up costs (worker processes, kernel
selection) are left out; ``--steps 0`` runs one whole epoch. The projection multiplies the
seconds per step by the steps of a whole epoch and by 12 epochs, the published recipe, which
the JAA-Net replication this project builds on needed 50 hours for on one GPU.

``--smoke`` only checks that the script runs, in a few seconds: a 3-subject synthetic set of
24 frames and a JAA-Net at crop 32 with one channel unit, batch 2; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aufacs.analysis.speed import device_name
from aufacs.data.cache import (
    DEFECTS_FILE,
    IMAGES_FILE,
    LANDMARKS_FILE,
    META_FILE,
    TABLE_FILE,
    AlignedCache,
)
from aufacs.data.prepare import PrepareConfig, dataset_split, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.data.table import FrameTable
from aufacs.engine.config import TrainConfig
from aufacs.engine.device import resolve_device
from aufacs.engine.runs import EPOCHS_FILE
from aufacs.engine.train import train
from benchmarks.timing import load_line, machine_description

EPOCHS_PUBLISHED = 12
HOURS_PUBLISHED = 50.0
#: Rows copied from the small cache into the large one per write.
CHUNK = 512
#: ``--smoke``: the synthetic set, and the training options that make the model and batch small
#: (AU weights that stay finite where an AU never occurs in so few frames).
SMOKE_SET = SynthConfig(subjects=3, tasks=1, frames_per_task=8)
SMOKE_TRAIN: dict[str, Any] = {
    "model_options": {"crop_size": 32, "unit_dim": 1},
    "batch_size": 2,
    "au_weights": "inverse_plus_one",
}


def small_cache(folder: Path, synth: SynthConfig) -> AlignedCache:
    """The SynthBP4D of ``synth`` in ``folder``, aligned at 200 px (generated if absent)."""
    cache = folder / "cache"
    if not (cache / META_FILE).is_file():
        generate_synthetic(folder / "raw", synth, progress=False)
        prepare(PrepareConfig(data=folder / "raw", kind="synthetic", cache=cache), progress=False)
    return AlignedCache.open(cache)


def enlarged_cache(small: AlignedCache, folder: Path, frames: int) -> AlignedCache:
    """A cache in ``folder`` whose fold-1 training subjects hold ``frames`` frames: their rows
    of ``small`` repeated with frame numbers shifted by multiples of 10^6; the test subjects'
    rows once. Reused when it already has that many frames."""
    meta_path = folder / META_FILE
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("train_frames") == frames:
        return AlignedCache.open(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    table = pd.read_csv(small.path / TABLE_FILE)
    split = dataset_split(FrameTable(small.table, small.aus, small.path), "synthetic", 1)
    train_rows = np.flatnonzero(table["subject"].isin(split.train).to_numpy())
    test_rows = np.flatnonzero(~table["subject"].isin(split.train).to_numpy())
    repeats = np.arange(frames) // len(train_rows)
    rows = np.concatenate([train_rows[np.arange(frames) % len(train_rows)], test_rows])
    shifts = np.concatenate([repeats, np.zeros(len(test_rows), np.int64)]) * 10**6
    big = table.iloc[rows].reset_index(drop=True)
    big["frame"] = big["frame"].to_numpy() + shifts
    big.to_csv(folder / TABLE_FILE, index=False)
    np.save(folder / LANDMARKS_FILE, np.load(small.path / LANDMARKS_FILE)[rows])
    shutil.copy(small.path / DEFECTS_FILE, folder / DEFECTS_FILE)
    images = np.lib.format.open_memmap(
        folder / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(len(rows), *small.images.shape[1:])
    )
    for start in range(0, len(rows), CHUNK):
        images[start : start + CHUNK] = small.images[rows[start : start + CHUNK]]
    images.flush()
    del images
    meta = json.loads((small.path / META_FILE).read_text())
    meta_path.write_text(json.dumps({**meta, "frames": len(rows), "train_frames": frames}))
    return AlignedCache.open(folder)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the data and runs")
    parser.add_argument(
        "--frames",
        type=int,
        default=100_000,
        help="training frames of the enlarged set (default 100000)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="steps per timed epoch; 0: one whole epoch (default 20)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--amp", default="auto", help="auto, bf16, fp16 or off")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny set and model, to check that the script runs"
    )
    args = parser.parse_args()
    if args.frames < 8 or args.steps < 0:
        parser.error("--frames must be at least 8 and --steps at least 0")
    return args


def report(args: argparse.Namespace, run: Path) -> float:
    """Print the timed epoch's seconds per step and the projection; returns its loss."""
    resolved = json.loads((run / "config.json").read_text())
    timed = pd.read_csv(run / EPOCHS_FILE).iloc[-1]
    steps_per_epoch = args.frames // resolved["batch_size"]
    steps = args.steps or steps_per_epoch
    per_step = timed["seconds"] / steps
    epoch_hours = per_step * steps_per_epoch / 3600
    print(
        f"- set: {args.frames:,} training frames (fold 1), batch {resolved['batch_size']}: "
        f"{steps_per_epoch:,} steps per epoch; timed {steps:,} steps "
        f"({'the second of two epochs' if args.steps else 'one whole epoch'})\n"
        f"- {per_step:.3f} s per step, {timed['samples_per_s']:.1f} frames/s\n"
        f"- one epoch: {epoch_hours:.2f} h; {EPOCHS_PUBLISHED} epochs: "
        f"{EPOCHS_PUBLISHED * epoch_hours:.1f} h (published replication: {HOURS_PUBLISHED:.0f} h "
        f"on one GPU, {HOURS_PUBLISHED / (EPOCHS_PUBLISHED * epoch_hours):.2f}x that speed)"
    )
    return timed["loss"]


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tag = "_smoke" if args.smoke else ""
    synth = SMOKE_SET if args.smoke else SynthConfig()
    small = small_cache(args.out / f"small{tag}", synth)
    cache = enlarged_cache(small, args.out / f"cache{tag}", args.frames)
    run = args.out / f"run{tag}"
    shutil.rmtree(run, ignore_errors=True)
    config = TrainConfig(
        model="jaa_net",
        data=str(args.out),
        cache=str(cache.path),
        kind="synthetic",
        fold=1,
        out=str(run),
        epochs=2 if args.steps else 1,
        max_steps_per_epoch=args.steps or None,
        device=args.device,
        amp=args.amp,
        num_workers=args.workers,
        threads=args.threads,
        progress=False,
        **(SMOKE_TRAIN if args.smoke else {}),
    )
    print(machine_description(args.threads))
    print(f"- device: {device_name(device)}; amp {args.amp}; {args.workers} loader workers")
    train(config)
    loss = report(args, run)
    print(load_line())
    if not math.isfinite(loss):
        sys.exit(f"the loss of the timed epoch is {loss}")


if __name__ == "__main__":
    main()
