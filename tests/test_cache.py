"""The aligned-crop cache: round trip, rebuilt only on change, bad frames reported."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from layout import face_points

import aufacs.data.cache_build as cache_module
from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.align import align_face, biocular
from aufacs.data.audit import image_problem
from aufacs.data.cache import IMAGES_FILE, AlignedCache
from aufacs.data.cache_build import build_cache
from aufacs.data.table import landmark_frame, landmarks_of

SIZE = 32
N_FRAMES = 6


def make_frames(root: Path, n: int = N_FRAMES) -> pd.DataFrame:
    """A clean frame table of ``n`` random 64 x 64 JPEG frames with face-like landmarks."""
    rng = np.random.default_rng(1)
    rows = []
    for frame in range(n):
        path = root / "images" / f"{frame}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        rows.append({"subject": "F001" if frame % 2 else "M001", "task": "T1", "frame": frame})
    frames = pd.DataFrame(rows)
    frames["image_path"] = [str(root / "images" / f"{f}.jpg") for f in frames["frame"]]
    frames["sex"] = frames["subject"].str[0]
    frames["split"] = np.where(frames["frame"] < n // 2, "train", "test")
    frames[BP4D.columns] = rng.integers(0, 2, (n, len(BP4D))).astype(float)
    frames.loc[0, "AU4"] = np.nan
    points = np.stack([face_points(rng) for _ in range(n)])
    return pd.concat([frames, landmark_frame(points, frames.index)], axis=1)


def build(frames: pd.DataFrame, cache_dir: Path, **options) -> AlignedCache:
    return build_cache(frames, cache_dir, size=SIZE, progress=False, **options)


def corrupt_middle(path: Path) -> None:
    """Zero everything between the JPEG start (4 bytes kept) and the end marker."""
    data = bytearray(path.read_bytes())
    data[4:-2] = bytes(len(data) - 6)
    path.write_bytes(bytes(data))


def test_the_cache_holds_one_aligned_rgb_crop_per_frame(tmp_path):
    frames = make_frames(tmp_path)
    cache = build(frames, tmp_path / "cache")
    expected, _ = align_face(
        cv2.imread(frames.at[3, "image_path"]), landmarks_of(frames)[3], size=SIZE
    )
    assert cache.images.shape == (N_FRAMES, SIZE, SIZE, 3)
    assert np.array_equal(cache.images[3], expected[..., ::-1])


def test_the_cache_table_keeps_ids_labels_and_aligned_landmarks(tmp_path):
    frames = make_frames(tmp_path)
    cache = build(frames, tmp_path / "cache")
    _, aligned = align_face(
        cv2.imread(frames.at[2, "image_path"]), landmarks_of(frames)[2], size=SIZE
    )
    assert cache.table["split"].tolist() == frames["split"].tolist()
    assert np.array_equal(cache.labels, frames[BP4D.columns].to_numpy(np.float32), equal_nan=True)
    np.testing.assert_allclose(cache.landmarks[2], aligned, atol=1e-4)
    np.testing.assert_allclose(cache.biocular[2], biocular(aligned), rtol=1e-6)


def test_a_reopened_cache_equals_the_built_one(tmp_path):
    cache = build(make_frames(tmp_path), tmp_path / "cache")
    reopened = AlignedCache.open(tmp_path / "cache")
    assert len(reopened) == N_FRAMES
    assert reopened.aus == BP4D
    assert np.array_equal(reopened.images, cache.images)
    pd.testing.assert_frame_equal(reopened.table, cache.table)


def test_building_again_with_the_same_inputs_reuses_the_cache(tmp_path):
    frames = make_frames(tmp_path)
    build(frames, tmp_path / "cache")
    inode = (tmp_path / "cache" / IMAGES_FILE).stat().st_ino
    build(frames, tmp_path / "cache")
    assert (tmp_path / "cache" / IMAGES_FILE).stat().st_ino == inode


def test_changed_labels_rebuild_the_cache(tmp_path):
    frames = make_frames(tmp_path)
    build(frames, tmp_path / "cache")
    frames.loc[1, "AU12"] = 1.0 - frames.at[1, "AU12"]
    cache = build(frames, tmp_path / "cache")
    assert cache.table.at[1, "AU12"] == frames.at[1, "AU12"]


def test_a_touched_image_file_rebuilds_the_cache(tmp_path):
    frames = make_frames(tmp_path)
    first = build(frames, tmp_path / "cache").fingerprint
    stat = os.stat(frames.at[0, "image_path"])
    os.utime(frames.at[0, "image_path"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert build(frames, tmp_path / "cache").fingerprint != first


def test_a_new_crop_size_rebuilds_the_cache(tmp_path):
    frames = make_frames(tmp_path)
    build(frames, tmp_path / "cache")
    cache = build_cache(frames, tmp_path / "cache", size=SIZE + 8, progress=False)
    assert cache.images.shape[1:] == (SIZE + 8, SIZE + 8, 3)


def test_a_jpeg_corrupt_in_the_middle_is_reported_and_left_out(tmp_path):
    frames = make_frames(tmp_path)
    corrupt_middle(Path(frames.at[4, "image_path"]))
    assert image_problem(frames.at[4, "image_path"]) == ""
    cache = build(frames, tmp_path / "cache")
    assert cache.defects["kind"].tolist() == ["unreadable_image"]
    assert cache.defects["frame"].tolist() == [4]
    assert 4 not in cache.table["frame"].tolist()
    assert cache.images.shape[0] == N_FRAMES - 1


def test_an_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    def interrupted(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "_align_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(make_frames(tmp_path), tmp_path / "cache")
    with pytest.raises(AufacsError, match="holds no aligned-face cache"):
        AlignedCache.open(tmp_path / "cache.partial")
    assert not (tmp_path / "cache").exists()


def test_an_interrupted_rebuild_keeps_the_old_cache(tmp_path, monkeypatch):
    frames = make_frames(tmp_path)
    old = build(frames, tmp_path / "cache")
    monkeypatch.setattr(cache_module, "_align_file", lambda job: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build(frames, tmp_path / "cache", box_enlarge=3.0)
    assert AlignedCache.open(tmp_path / "cache").fingerprint == old.fingerprint


def test_a_folder_without_a_cache_cannot_be_opened(tmp_path):
    with pytest.raises(AufacsError, match="no aligned-face cache"):
        AlignedCache.open(tmp_path)


def test_a_non_empty_folder_that_is_no_cache_is_not_overwritten(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "notes.txt").write_text("mine")
    with pytest.raises(AufacsError, match="not empty"):
        build(make_frames(tmp_path), tmp_path / "cache")


def test_frames_without_landmarks_are_refused(tmp_path):
    frames = make_frames(tmp_path)
    frames.loc[2, "x0"] = np.nan
    with pytest.raises(AufacsError, match="clean table"):
        build(frames, tmp_path / "cache")


def test_two_workers_build_the_same_cache_as_one(tmp_path):
    frames = make_frames(tmp_path)
    one = build(frames, tmp_path / "one")
    two = build(frames, tmp_path / "two", workers=2)
    assert np.array_equal(one.images, two.images)
    pd.testing.assert_frame_equal(one.table, two.table)
