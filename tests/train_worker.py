"""Tiny training data for the engine's tests, and a subprocess entry that trains.

``python tests/train_worker.py CONFIG.json`` (alone or under ``torchrun``) trains with the
:class:`~aufacs.engine.config.TrainConfig` in the JSON file; with the environment
variable ``AUFACS_TEST_STEP_SECONDS`` set, each training step first sleeps that long, which
gives a test time to kill the process in mid-epoch.

The data: six subjects of ten 64 x 64 frames each, with face-like landmarks and, per AU, a
bright square at its own place in the face while the AU is present, so the labels can be
learnt. Cached at 40 px, so a JAA-Net with ``crop_size`` 32 trains on random 32 px crops.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from layout import face_points

from aufacs.core.aus import BP4D
from aufacs.core.config import load_config, save_config
from aufacs.data.cache_build import build_cache
from aufacs.data.prepare import CACHE_FOLDER
from aufacs.data.table import landmark_frame
from aufacs.engine.config import TrainConfig
from aufacs.engine.train import Trainer, train

SUBJECTS = ("F001", "F002", "F003", "M001", "M002", "M003")
FRAMES_PER_SUBJECT = 10
IMAGE_SIZE = 64
CACHE_SIZE = 40
STEP_SECONDS_VARIABLE = "AUFACS_TEST_STEP_SECONDS"
WORKER = Path(__file__)
#: A tiny JAA-Net without dropout: 32 px crops, channel unit 1.
TINY_JAA_NET = {"crop_size": 32, "unit_dim": 1}


def make_data(root: Path) -> Path:
    """Write the tiny data set under ``root`` and cache it in ``<root>/aufacs_cache``;
    returns ``root`` (the ``data`` of a TrainConfig, with ``kind="synthetic"``)."""
    rng = np.random.default_rng(7)
    rows, points = [], []
    for subject in SUBJECTS:
        for frame in range(FRAMES_PER_SUBJECT):
            labels = (rng.random(len(BP4D)) < 0.4).astype(float)
            image = rng.integers(60, 100, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
            for k in np.flatnonzero(labels):
                top, left = 18 + 8 * (k // 4), 16 + 8 * (k % 4)
                image[top : top + 6, left : left + 6] = 230
            path = root / "frames" / subject / f"{frame}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
            ids = {"subject": subject, "task": "T1", "frame": frame, "image_path": str(path)}
            rows.append({**ids, **dict(zip(BP4D.columns, labels, strict=True))})
            points.append(face_points(rng))
    frames = pd.DataFrame(rows)
    frames.loc[3, "AU4"] = np.nan
    frames = pd.concat([frames, landmark_frame(np.stack(points), frames.index)], axis=1)
    build_cache(frames, root / CACHE_FOLDER, size=CACHE_SIZE, progress=False)
    return root


def tiny_config(data: Path, out: Path, **changes) -> TrainConfig:
    """A few steps of a tiny JAA-Net on one CPU thread with a fixed seed."""
    values = dict(
        model="jaa_net",
        data=str(data),
        kind="synthetic",
        fold=1,
        out=str(out),
        epochs=2,
        batch_size=4,
        lr=0.01,
        model_options=dict(TINY_JAA_NET),
        device="cpu",
        max_steps_per_epoch=4,
        progress=False,
        seed=3,
        threads=1,
    )
    return TrainConfig(**{**values, **changes})


def write_config(config: TrainConfig, path: Path) -> Path:
    save_config(config, path)
    return path


def _slowed(step, seconds: float):
    def slow_step(self, *args):
        time.sleep(seconds)
        return step(self, *args)

    return slow_step


if __name__ == "__main__":
    if STEP_SECONDS_VARIABLE in os.environ:
        Trainer.train_step = _slowed(Trainer.train_step, float(os.environ[STEP_SECONDS_VARIABLE]))
    train(load_config(TrainConfig, Path(sys.argv[1])))
