"""The aligned-face Dataset: shapes, crops, the landmark-mirroring flip, reproducibility."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from aufacs.core.aus import BP4D, MIRROR_49, RIGHT_EYE, mirror_landmarks
from aufacs.core.errors import AufacsError
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import AlignedFaceDataset, batch_loader, hashed_draws
from aufacs.data.table import empty_defects, landmark_frame

SIZE = 40
CROP = 32


def make_cache(n: int = 6, size: int = SIZE, images: np.ndarray | None = None) -> AlignedCache:
    """An in-memory cache of ``n`` random crops with random landmarks and labels."""
    rng = np.random.default_rng(2)
    if images is None:
        images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    table = pd.DataFrame(
        {
            "subject": [f"F00{i % 3}" for i in range(n)],
            "split": ["train" if i < n - 2 else "test" for i in range(n)],
        }
    )
    table[BP4D.columns] = rng.integers(0, 2, (n, len(BP4D))).astype(float)
    table.loc[0, "AU2"] = np.nan
    points = rng.uniform(0, size - 1, (n, 49, 2))
    table = pd.concat([table, landmark_frame(points)], axis=1)
    table["biocular"] = rng.uniform(100, 200, n)
    return AlignedCache(
        path=Path("in-memory"),
        images=images,
        table=table,
        aus=BP4D,
        size=size,
        box_enlarge=2.9,
        fingerprint="",
        defects=empty_defects(),
    )


def normalised(image: np.ndarray) -> torch.Tensor:
    """What the dataset makes of a uint8 (H, W, 3) crop with mean = std = 0.5."""
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)


def test_a_training_item_has_the_documented_shapes_and_types():
    item = AlignedFaceDataset(make_cache(), train=True, crop_size=CROP)[0]
    assert item["image"].shape == (3, CROP, CROP) and item["image"].dtype == torch.float32
    assert item["landmarks"].shape == (49, 2) and item["landmarks"].dtype == torch.float32
    assert item["au"].shape == (len(BP4D),) and torch.isnan(item["au"][1])
    assert item["biocular"].shape == () and item["biocular"].dtype == torch.float32
    assert item["index"].dtype == torch.int64


def test_the_default_collate_stacks_items_into_a_batch():
    loader = DataLoader(AlignedFaceDataset(make_cache(), train=True, crop_size=CROP), batch_size=4)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, CROP, CROP)
    assert batch["landmarks"].shape == (4, 49, 2)
    assert batch["biocular"].shape == (4,)


def test_a_list_of_items_gives_the_batch_the_default_collate_would_make():
    dataset = AlignedFaceDataset(make_cache(), train=True, crop_size=CROP)
    items = [4, 0, 3, 0]
    batch = dataset[items]
    stacked = default_collate([dataset[i] for i in items])
    assert batch.keys() == stacked.keys()
    for key, value in stacked.items():
        assert value.dtype == batch[key].dtype
        torch.testing.assert_close(batch[key], value, equal_nan=True)


def test_the_batch_loader_yields_whole_batches_in_the_sampler_order():
    dataset = AlignedFaceDataset(make_cache(), train=False, crop_size=CROP)
    batches = list(batch_loader(dataset, 4))
    assert len(batches) == 2
    assert [b["index"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5]]
    assert batches[0]["image"].shape == (4, 3, CROP, CROP)
    kept = batch_loader(dataset, 4, sampler=[5, 4, 3, 2, 1, 0], drop_last=True)
    assert [b["index"].tolist() for b in kept] == [[5, 4, 3, 2]]


def test_a_test_item_is_the_normalised_centre_crop():
    cache = make_cache()
    item = AlignedFaceDataset(cache, train=False, crop_size=CROP)[2]
    offset = (SIZE - CROP) // 2
    crop = cache.images[2, offset : offset + CROP, offset : offset + CROP]
    torch.testing.assert_close(item["image"], normalised(crop))
    torch.testing.assert_close(item["landmarks"].numpy(), cache.landmarks[2] - offset)


def test_the_centre_crop_of_176_from_200_starts_at_pixel_12():
    cache = make_cache(n=1, size=200)
    item = AlignedFaceDataset(cache, train=False, crop_size=176)[0]
    torch.testing.assert_close(item["landmarks"].numpy(), cache.landmarks[0] - 12)


def test_random_crop_offsets_cover_every_integer_from_zero_to_the_slack():
    cache = make_cache(n=1)
    dataset = AlignedFaceDataset(cache, train=True, crop_size=SIZE - 2, flip=False)
    shifts = set()
    for epoch in range(80):
        dataset.set_epoch(epoch)
        shifts.add(tuple((cache.landmarks[0, 0] - dataset[0]["landmarks"][0].numpy()).round()))
    assert {x for x, _ in shifts} == {0.0, 1.0, 2.0}
    assert {y for _, y in shifts} == {0.0, 1.0, 2.0}


def test_a_flip_mirrors_the_image_and_the_landmarks_together():
    cache = make_cache(n=1)
    dataset = AlignedFaceDataset(cache, train=True, crop_size=SIZE)
    plain, mirrored = cache.landmarks[0], mirror_landmarks(cache.landmarks[0], SIZE)
    seen = set()
    for epoch in range(20):
        dataset.set_epoch(epoch)
        item = dataset[0]
        flipped = bool(np.allclose(item["landmarks"].numpy(), mirrored))
        expected = cache.images[0][:, ::-1] if flipped else cache.images[0]
        torch.testing.assert_close(item["image"], normalised(expected))
        assert flipped or np.allclose(item["landmarks"].numpy(), plain)
        seen.add(flipped)
    assert seen == {True, False}


def test_after_a_flip_a_point_on_the_image_left_eye_is_on_the_right_eye():
    images = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    images[0, 10, 5] = 255
    cache = make_cache(n=1, images=images)
    cache.table.loc[0, ["x19", "y19"]] = (5.0, 10.0)
    dataset = AlignedFaceDataset(cache, train=True, crop_size=SIZE)
    flipped = next(e for e in range(50) if hashed_draws(0, e, np.array([0]), 3)[0, 2] < 0.5)
    dataset.set_epoch(flipped)
    item = dataset[0]
    moved = MIRROR_49.index(19)
    assert moved in RIGHT_EYE
    assert item["landmarks"][moved].tolist() == [SIZE - 1 - 5, 10]
    assert item["image"][0, 10, SIZE - 1 - 5] == 1.0


def test_mirroring_the_landmarks_twice_gives_them_back():
    points = make_cache(n=1).landmarks[0]
    twice = mirror_landmarks(mirror_landmarks(points, CROP), CROP)
    np.testing.assert_allclose(twice, points, atol=1e-5)


def test_augmentation_does_not_change_the_cached_landmarks():
    dataset = AlignedFaceDataset(make_cache(), train=True, crop_size=CROP)
    before = dataset.landmarks.copy()
    for epoch in range(10):
        dataset.set_epoch(epoch)
        dataset[[1, 1, 2]]
    np.testing.assert_array_equal(dataset.landmarks, before)


def test_test_items_are_the_same_every_time():
    dataset = AlignedFaceDataset(make_cache(), train=False, crop_size=CROP)
    first, second = dataset[3], dataset[3]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_an_items_augmentation_depends_only_on_seed_epoch_and_item():
    def crops(seed: int, epoch: int, items: list[int]) -> torch.Tensor:
        dataset = AlignedFaceDataset(make_cache(), train=True, crop_size=CROP, seed=seed)
        dataset.set_epoch(epoch)
        return dataset[items]["landmarks"]

    alone = crops(3, 1, [2])[0]
    torch.rand(100)  # process history must not matter
    assert torch.equal(crops(3, 1, [5, 2, 0])[1], alone)
    assert not torch.equal(crops(3, 2, [2])[0], alone)
    assert not torch.equal(crops(4, 1, [2])[0], alone)


def test_hashed_draws_are_uniform_and_independent_across_items_and_columns():
    draws = hashed_draws(7, 0, np.arange(20_000), 3)
    assert draws.shape == (20_000, 3) and draws.min() >= 0 and draws.max() < 1
    np.testing.assert_allclose(draws.mean(axis=0), 0.5, atol=0.01)
    assert np.abs(np.corrcoef(draws.T) - np.eye(3)).max() < 0.03
    assert np.abs(np.corrcoef(draws[:-1, 0], draws[1:, 0])[0, 1]) < 0.03


def test_a_negative_seed_is_refused():
    with pytest.raises(AufacsError, match="seed"):
        AlignedFaceDataset(make_cache(), train=True, crop_size=CROP, seed=-1)


def test_resizing_before_the_crop_scales_landmarks_and_biocular():
    cache = make_cache()
    item = AlignedFaceDataset(cache, train=False, crop_size=2 * SIZE, resize_to=2 * SIZE)[0]
    np.testing.assert_allclose(item["landmarks"].numpy(), cache.landmarks[0] * 2 + 0.5, rtol=1e-6)
    np.testing.assert_allclose(item["biocular"].item(), cache.biocular[0] * 4, rtol=1e-6)


def test_subjects_and_split_select_the_rows():
    dataset = AlignedFaceDataset(
        make_cache(), subjects=["F001", "F002"], split="train", train=False, crop_size=CROP
    )
    assert dataset.rows.tolist() == [1, 2]


def test_a_selection_without_frames_is_refused():
    with pytest.raises(AufacsError, match="no cached frame"):
        AlignedFaceDataset(make_cache(), subjects=["M999"], train=True, crop_size=CROP)


def test_a_crop_larger_than_the_image_is_refused():
    with pytest.raises(AufacsError, match="crop_size"):
        AlignedFaceDataset(make_cache(), train=True, crop_size=SIZE + 1)


def test_a_memory_mapped_dataset_pickles_without_its_pixels(tmp_path):
    np.save(tmp_path / "images.npy", make_cache().images)
    cache = make_cache(images=np.load(tmp_path / "images.npy", mmap_mode="r"))
    dataset = AlignedFaceDataset(cache, train=False, crop_size=CROP)
    data = pickle.dumps(dataset)
    assert len(data) < cache.images.nbytes
    assert torch.equal(pickle.loads(data)[4]["image"], dataset[4]["image"])
