"""Training-sample throughput: the aufacs aligned-crop cache against the official JPEG loader.

    python -m benchmarks.bench_data_loading                 # DataLoader workers 0 and 2
    python -m benchmarks.bench_data_loading --data /tmp/bench_data --workers 0
    python -m benchmarks.bench_data_loading --subjects 3 --tasks 1 --frames 8 --workers 0
        --batch 2 --batches 2 --warmup 0 --repeats 1        # (one line) the smallest run

Run from the repository root. Both pipelines make JAA-Net training batches from the same
aligned 200 x 200 faces: a random 176 x 176 crop, a horizontal flip with probability 0.5 that
mirrors the 49 landmarks, normalisation to [-1, 1], and batches of 8.

- **aufacs**: the engine's loader, :func:`aufacs.data.dataset.batch_loader` over an
  :class:`~aufacs.data.dataset.AlignedFaceDataset` on the cache that
  :func:`aufacs.data.prepare.prepare` builds (a memory-mapped uint8 array); the data set makes
  each batch in one call.
- **official**: the aligned crops written as JPEG files (``cv2.imwrite`` at its default
  quality, as the official ``face_transform.py`` does) and read back as the official
  ``data_list.ImageList`` and ``pre_process.image_train`` do: PIL open and RGB convert,
  ``random.randint`` offsets and flip, a torchvision ``Compose`` of crop, flip, ``ToTensor``
  and ``Normalize`` built per sample, the landmark shift and mirroring in numpy, and the
  default collate.

The data are a small synthetic set (SynthBP4D, generated into ``--data`` unless a cache is
already there). Each timed turn draws ``--batches`` batches from an endless pass over the
shuffled set; the two loaders alternate turns (:func:`benchmarks.timing.interleaved`). With
workers, up to ``2 x workers`` batches prepared during the other loader's turn are ready when
a turn starts; that flatters both rates alike (by 8 % at 2 workers and 50 batches) and leaves
the ratio unchanged. The main process runs one torch thread by default, as DataLoader workers
do: on a loaded 2-core machine two threads made the small per-sample tensor operations of
both loaders several times slower and erratic.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision import transforms

from aufacs.core.aus import MIRROR_49
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import AlignedFaceDataset, batch_loader
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from benchmarks.timing import (
    interleaved,
    load_line,
    machine_description,
    markdown_table,
    median_ratio,
    timing_arguments,
)

CROP = 176


class OfficialImageList(Dataset):
    """The official training ``ImageList``: JPEG paths with (N, 98) interleaved landmarks,
    (N,) squared inter-ocular distances and (N, n_au) labels (9: unknown)."""

    def __init__(self, paths: list[str], land: np.ndarray, biocular: np.ndarray, au: np.ndarray):
        self.items = list(zip(paths, land, biocular, au, strict=True))
        self.reflect = np.array(MIRROR_49)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, land, biocular, au = self.items[index]
        with open(path, "rb") as file, Image.open(file) as image:
            image = image.convert("RGB")
        width, height = image.size
        top, left = random.randint(0, height - CROP), random.randint(0, width - CROP)
        flip = random.randint(0, 1)
        box = (left, top, left + CROP, top + CROP)
        transform = transforms.Compose(
            [
                transforms.Lambda(lambda im: im.crop(box)),
                transforms.Lambda(lambda im: im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im),
                transforms.ToTensor(),
                transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
            ]
        )
        land = land.copy()  # the official code shifts the stored row in place
        land[0::2] -= left
        land[1::2] -= top
        if flip:
            land[0::2] = CROP - 1 - land[0::2]
            land[0::2] = land[0::2][self.reflect]
            land[1::2] = land[1::2][self.reflect]
        return transform(image), land, biocular, au


def synthetic_cache(data: Path, subjects: int, tasks: int, frames: int) -> AlignedCache:
    """The 200 px aligned cache of a small SynthBP4D in ``data``, generated if absent."""
    cache = data / "cache"
    if not (cache / "cache.json").is_file():
        config = SynthConfig(subjects=subjects, tasks=tasks, frames_per_task=frames)
        generate_synthetic(data / "raw", config, progress=False)
        prepare(PrepareConfig(data=data / "raw", kind="synthetic", cache=cache), progress=False)
    return AlignedCache.open(cache)


def official_dataset(cache: AlignedCache, folder: Path) -> OfficialImageList:
    """Write the cache's crops as JPEGs into ``folder`` and list them as the official code."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(cache.images):
        path = folder / f"{i:05d}.jpg"
        if not path.is_file():
            cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
        paths.append(str(path))
    land = cache.landmarks.reshape(len(cache), -1)
    labels = np.nan_to_num(cache.labels, nan=9).astype(np.int64)
    return OfficialImageList(paths, land, cache.biocular, labels)


def endless(loader: DataLoader) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def throughput_rows(
    loaders: dict[str, Callable[[int], DataLoader]],
    workers: int,
    batch: int,
    batches: int,
    warmup: int,
    repeats: int,
) -> list[list[str]]:
    """Time the loaders that ``loaders`` make for ``workers`` in alternating turns of
    ``batches`` batches; rows ``[loader, workers, median s per turn, samples/s, speed-up]``,
    the speed-up of the last loader over the first (median of per-round ratios; ratio of
    minima) on the last row."""
    torch.manual_seed(0)
    random.seed(0)
    calls = {}
    for name, make_loader in loaders.items():
        stream = endless(make_loader(workers))
        calls[name] = lambda stream=stream: [next(stream) for _ in range(batches)]
    times = interleaved(calls, warmup, repeats)
    rows = []
    for name, t in times.items():
        wall = statistics.median(t["wall"])
        rows.append([name, str(workers), f"{wall:.3f}", f"{batches * batch / wall:.0f}", ""])
    walls = [t["wall"] for t in times.values()]
    ratio, minima = median_ratio(walls[0], walls[-1]), min(walls[0]) / min(walls[-1])
    rows[-1][-1] = f"{ratio:.2f}x; {minima:.2f}x"
    return rows


def make_loaders(cache: AlignedCache, jpeg: Path, batch: int) -> dict[str, Callable]:
    """Per loader name, a function of the number of workers that makes it: the official
    loader over the cache's crops written as JPEGs into ``jpeg``, then aufacs's."""
    official = official_dataset(cache, jpeg)
    ours = AlignedFaceDataset(cache, train=True, crop_size=CROP)

    def official_loader(workers: int) -> DataLoader:
        return DataLoader(
            official,
            batch_size=batch,
            shuffle=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def aufacs_loader(workers: int) -> DataLoader:
        return batch_loader(
            ours,
            batch,
            sampler=RandomSampler(ours),
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    return {"official (PIL JPEG)": official_loader, "aufacs (cache)": aufacs_loader}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="folder for the synthetic set (default: temporary)"
    )
    parser.add_argument("--subjects", type=int, default=4, help="synthetic subjects (default 4)")
    parser.add_argument("--tasks", type=int, default=2, help="tasks per subject (default 2)")
    parser.add_argument("--frames", type=int, default=40, help="frames per task (default 40)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batches", type=int, default=50, help="batches per turn (default 50)")
    timing_arguments(parser, threads=1, repeats=9)
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    data = args.data or Path(tempfile.mkdtemp(prefix="aufacs_bench_data_"))
    try:
        cache = synthetic_cache(data, args.subjects, args.tasks, args.frames)
        loaders = make_loaders(cache, data / "jpeg", args.batch)
        print(machine_description(args.threads))
        print(
            f"- data: {len(cache)} aligned {cache.size} px synthetic frames; crop {CROP}, "
            f"batch {args.batch}; {args.batches} batches per turn; warm-up {args.warmup}, "
            f"{args.repeats} timed rounds\n"
        )
        rows = []
        for workers in args.workers:
            rows += throughput_rows(
                loaders, workers, args.batch, args.batches, args.warmup, args.repeats
            )
        samples = args.batches * args.batch
        header = [
            "loader",
            "workers",
            f"median s per {samples} samples",
            "samples/s",
            "speed-up: median of per-round ratios; ratio of minima",
        ]
        print(markdown_table(header, rows))
        print(load_line())
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
