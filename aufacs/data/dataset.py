"""The torch Dataset over an aligned-crop cache, with JAA-Net's augmentations.

Training items: the cached crop (optionally resized first, as ME-GraphAU resizes to 256
before cropping 224), a random ``crop_size`` crop whose offsets are uniform integers in
``[0, size - crop_size]`` (inclusive, as JAA-Net), a horizontal flip with probability 0.5
that also mirrors the landmarks (``x' = crop_size - 1 - x`` and the 49-point permutation),
then normalisation. Test items: the centre crop (torchvision's ``CenterCrop`` offset,
``round((size - crop_size) / 2)``: 12 for 176 of 200), no flip.

Random draws come from torch's generator (``torch.randint`` / ``torch.rand``), which the
DataLoader seeds per worker from the main process: a fixed ``torch.manual_seed`` gives the
same augmentations, and restoring torch's RNG state resumes them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from aufacs.aus import mirror_landmarks
from aufacs.data.cache import AlignedCache
from aufacs.errors import AufacsError


class AlignedFaceDataset(Dataset):
    """Aligned faces from an :class:`~aufacs.data.cache.AlignedCache`, as model inputs.

    ``subjects`` / ``split``: keep only these subjects / the rows whose ``split`` column
    equals ``split`` (``None``: all). ``train``: random crop and flip, else centre crop.
    ``crop_size``, ``resize_to``, ``mean``, ``std``: a model's input spec (pixels; RGB
    mean / std after scaling to [0, 1]). ``flip``: allow the training flip.

    Each item is a dict: ``image`` (3, crop, crop) float32 normalised RGB; ``landmarks``
    (49, 2) float32, 0-indexed crop pixels; ``au`` (n_au,) float32, NaN unknown;
    ``biocular`` () float32, squared inter-ocular distance in crop pixels²; ``index`` ()
    int64, the row of the cache table. The default collate stacks them into a batch.
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
        self.images = cache.images
        self.train = train
        self.flip = flip
        self.crop_size = crop_size
        self.resize_to = resize_to
        self.labels = cache.labels[self.rows]
        self.zoom = self.source_size / cache.size  # resize factor from the cached face
        self.landmarks = (cache.landmarks[self.rows] + 0.5) * self.zoom - 0.5
        self.biocular = cache.biocular[self.rows] * self.zoom**2
        self.scale = torch.from_numpy(1.0 / (255.0 * std)).view(3, 1, 1)
        self.shift = torch.from_numpy(-mean / std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        row = self.rows[item]
        image = self.images[row]  # (S, S, 3) uint8
        if self.resize_to is not None:
            size = (self.resize_to, self.resize_to)
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        top, left = self._offsets()
        crop = self.crop_size
        image = image[top : top + crop, left : left + crop]
        points = self.landmarks[item] - np.array([left, top], np.float32)
        if self.train and self.flip and torch.rand(()) < 0.5:
            image = image[:, ::-1]
            points = mirror_landmarks(points, crop)
        pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # uint8
        return {
            "image": pixels.float().mul_(self.scale).add_(self.shift),  # (3, crop, crop)
            "landmarks": torch.from_numpy(points.astype(np.float32)),
            "au": torch.from_numpy(self.labels[item].copy()),
            "biocular": torch.tensor(self.biocular[item], dtype=torch.float32),
            "index": torch.tensor(row, dtype=torch.int64),
        }

    def _offsets(self) -> tuple[int, int]:
        """(top, left) of the crop: random when training, centred otherwise."""
        slack = self.source_size - self.crop_size
        if self.train:
            top, left = torch.randint(0, slack + 1, (2,)).tolist()
            return top, left
        return self._centre_offset(), self._centre_offset()

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
