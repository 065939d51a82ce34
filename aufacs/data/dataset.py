"""The torch Dataset over an aligned-crop cache, with JAA-Net's augmentations, batch by batch.

Training items: the cached crop (optionally resized first, as ME-GraphAU resizes to 256
before cropping 224), a random ``crop_size`` crop whose offsets are uniform integers in
``[0, size - crop_size]`` (inclusive, as JAA-Net), a horizontal flip with probability 0.5
that also mirrors the landmarks (``x' = crop_size - 1 - x`` and the 49-point permutation),
then normalisation. Test items: the centre crop (torchvision's ``CenterCrop`` offset,
``round((size - crop_size) / 2)``: 12 for 176 of 200), no flip.

Indexing with a list of items gives a whole batch in one call (``dataset[[3, 7, 9]]``), the
way :func:`batch_loader` asks for them: the crops are copied from the memory-mapped cache into
one uint8 array and normalised as one tensor, so no per-sample tensors are made or collated.

The random draws are a pure function of (``seed``, epoch, item): a SplitMix64 hash, not a
stateful generator. An item's augmentation therefore never depends on which worker or
process loads it, in what order, or what ran before; a resumed run draws the same crops.
Call :meth:`AlignedFaceDataset.set_epoch` before each epoch for fresh draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from aufacs.core.aus import mirror_landmarks
from aufacs.core.errors import AufacsError
from aufacs.data.cache import AlignedCache

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_draws(seed: int, epoch: int, items: np.ndarray, count: int) -> np.ndarray:
    """``count`` uniform draws in [0, 1) per item, a pure function of (seed, epoch, item).

    ``items``: (B,) non-negative integers. Returns (B, count) float64.
    """
    key = _mix64(_mix64(np.array([seed], np.uint64)) ^ np.uint64(epoch))
    state = _mix64(key ^ np.asarray(items, np.uint64))
    columns = [_mix64(state ^ np.uint64(k + 1)) >> np.uint64(11) for k in range(count)]
    return np.stack(columns, axis=1) * 2.0**-53


class AlignedFaceDataset(Dataset):
    """Aligned faces from an :class:`~aufacs.data.cache.AlignedCache`, as model inputs.

    ``subjects`` / ``split``: keep only these subjects / the rows whose ``split`` column
    equals ``split`` (``None``: all). ``train``: random crop and flip, else centre crop.
    ``crop_size``, ``resize_to``, ``mean``, ``std``: a model's input spec (pixels; RGB
    mean / std after scaling to [0, 1]). ``flip``: allow the training flip. ``seed``: the
    augmentation seed (see the module docstring).

    ``dataset[i]`` is a dict: ``image`` (3, crop, crop) float32 normalised RGB; ``landmarks``
    (49, 2) float32, 0-indexed crop pixels; ``au`` (n_au,) float32, NaN unknown;
    ``biocular`` () float32, squared inter-ocular distance in crop pixels²; ``index`` ()
    int64, the row of the cache table. ``dataset[[i, j, ...]]`` is the batch of those items,
    every value with a leading batch dimension B, as the default collate would stack them.
    """

    def __init__(
        self,
        cache: AlignedCache,
        *,
        subjects: Sequence[str] | None = None,
        split: str | None = None,
        train: bool,
        crop_size: int = 176,
        resize_to: int | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        table = cache.table
        keep = np.ones(len(table), dtype=bool)
        if subjects is not None:
            keep &= table["subject"].isin(list(subjects)).to_numpy()
        if split is not None:
            keep &= (table["split"] == split).to_numpy()
        self.rows = np.flatnonzero(keep)
        if not len(self.rows):
            raise AufacsError(
                f"no cached frame matches subjects={subjects} and split={split!r} in {cache.path}"
            )
        self.source_size = resize_to or cache.size
        if not 0 < crop_size <= self.source_size:
            raise AufacsError(
                f"crop_size must be in [1, {self.source_size}] (the size before cropping), "
                f"got {crop_size}"
            )
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if mean.shape != (3,) or std.shape != (3,) or (std <= 0).any():
            raise AufacsError(f"mean and std must be 3 values with std > 0, got {mean}, {std}")
        if seed < 0:
            raise AufacsError(f"seed must be a non-negative integer, got {seed}")
        self.images = cache.images
        self.train = train
        self.flip = flip
        self.crop_size = crop_size
        self.resize_to = resize_to
        self.seed = seed
        self.epoch = 0
        self.labels = cache.labels[self.rows]
        self.zoom = self.source_size / cache.size  # resize factor from the cached face
        self.landmarks = (cache.landmarks[self.rows] + 0.5) * self.zoom - 0.5
        self.biocular = cache.biocular[self.rows] * self.zoom**2
        self.scale = torch.from_numpy(1.0 / (255.0 * std)).view(3, 1, 1)
        self.shift = torch.from_numpy(-mean / std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentations of training epoch ``epoch`` (0-based) from now on."""
        self.epoch = epoch

    def __getitem__(self, items: int | Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        if np.ndim(items) == 0:
            return {key: value[0] for key, value in self._batch(np.array([items])).items()}
        return self._batch(np.asarray(items, dtype=np.int64))

    def _batch(self, items: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of dataset items ``items`` (B,)."""
        rows = self.rows[items]
        tops, lefts, flips = self._placements(items)
        crop = self.crop_size
        pixels = np.empty((len(items), crop, crop, 3), np.uint8)
        points = self.landmarks[items] - np.stack([lefts, tops], axis=1)[:, None, :]
        for b, (row, top, left, flip) in enumerate(zip(rows, tops, lefts, flips, strict=True)):
            patch = self._face(row)[top : top + crop, left : left + crop]
            if flip:
                cv2.flip(patch, 1, dst=pixels[b])  # numpy's [:, ::-1] copy is 20x slower
            else:
                pixels[b] = patch
        points[flips] = mirror_landmarks(points[flips], crop)
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2)  # (B, 3, crop, crop) uint8 view
        return {
            "image": torch.empty(images.shape).copy_(images).mul_(self.scale).add_(self.shift),
            "landmarks": torch.from_numpy(points.astype(np.float32)),
            "au": torch.from_numpy(self.labels[items]),
            "biocular": torch.from_numpy(self.biocular[items].astype(np.float32)),
            "index": torch.from_numpy(rows.astype(np.int64)),
        }

    def _face(self, row: int) -> np.ndarray:
        """The cached face of table row ``row``, resized to ``source_size``: (S, S, 3) uint8."""
        if self.resize_to is None:
            return self.images[row]
        size = (self.resize_to, self.resize_to)
        return cv2.resize(self.images[row], size, interpolation=cv2.INTER_LINEAR)

    def _placements(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crop offsets (top, left), in pixels, and whether to flip, for each of ``items``."""
        slack = self.source_size - self.crop_size
        if not self.train:
            centre = np.full(len(items), self._centre_offset())
            return centre, centre, np.zeros(len(items), dtype=bool)
        draws = hashed_draws(self.seed, self.epoch, items, 3)
        tops, lefts = (draws[:, :2] * (slack + 1)).astype(np.int64).T
        return tops, lefts, (draws[:, 2] < 0.5) & self.flip

    def _centre_offset(self) -> int:
        """Offset in pixels of the test-time centre crop."""
        return int(round((self.source_size - self.crop_size) / 2.0))

    def test_input_to_cached(self, points: np.ndarray) -> np.ndarray:
        """Pixels of a test-mode model input (..., 2) -> pixels of the cached aligned face
        (undoes the centre crop and the resize)."""
        shifted = np.asarray(points, dtype=np.float64) + self._centre_offset()
        return (shifted + 0.5) / self.zoom - 0.5

    def __getstate__(self) -> dict:
        """Pickle a memory-mapped cache by file name, not by content (spawned workers)."""
        state = self.__dict__.copy()
        if isinstance(self.images, np.memmap) and self.images.filename:
            state["images"] = Path(self.images.filename)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["images"], Path):
            state["images"] = np.load(state["images"], mmap_mode="r")
        self.__dict__.update(state)


def batch_loader(
    dataset: AlignedFaceDataset,
    batch_size: int,
    *,
    sampler: Sampler[int] | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader that asks ``dataset`` for one whole batch per call.

    ``sampler`` orders the items (default: in order); its items are grouped into batches of
    ``batch_size`` (the last one smaller unless ``drop_last``). ``len(loader)`` is the number
    of batches; every batch is a dict as :class:`AlignedFaceDataset` documents.
    ``persistent_workers`` keeps worker processes between passes; they then keep the epoch
    the dataset had when they started (:meth:`AlignedFaceDataset.set_epoch` does not reach
    them).
    """
    batches = BatchSampler(sampler or SequentialSampler(dataset), batch_size, drop_last)
    return DataLoader(
        dataset,
        sampler=batches,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers,
    )
