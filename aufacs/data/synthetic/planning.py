"""The generator's plan: :class:`SynthConfig`, the subjects' faces and every sequence's frames.

:func:`plan` decides everything about a SynthBP4D copy except the pixels: who the subjects
are (:func:`subject_ids`, :func:`~aufacs.data.synthetic.face.sample_face`), and for each
subject's task the frame numbers and each frame's parameters
(:class:`~aufacs.data.synthetic.render.FrameParams`: AU intensities, pose, light, ...).
Everything follows from ``config.seed``: a subject's faces and sequences depend only on the
seed, its index and the task, not on how many subjects or tasks are generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aufacs.core.errors import AufacsError
from aufacs.data.synthetic.face import FaceParams, sample_face
from aufacs.data.synthetic.render import FrameParams
from aufacs.data.synthetic.sequences import au_intensities, sequence_params, subject_offsets

#: Tasks a subject can have, as in BP4D.
TASKS = tuple(f"T{k}" for k in range(1, 9))
#: Planted defect kinds (the audit's names) and the config fields that count them.
DEFECT_FIELDS: dict[str, str] = {
    "missing_image": "missing_images",
    "unlabelled_image": "unlabelled_images",
    "all_unknown_labels": "unknown_label_rows",
    "unreadable_image": "truncated_images",
    "missing_landmarks": "missing_landmarks",
    "nonfinite_landmarks": "nan_landmarks",
    "duplicate_frame": "duplicate_frames",
}
#: First frame number of a sequence is drawn below this, so most frames have 3-digit
#: numbers whose padded and unpadded names differ (as 0643.jpg / 643.jpg in BP4D copies).
_FIRST_FRAME_BELOW = 900


@dataclass(frozen=True)
class SynthConfig:
    """Size, look and planted defects of a SynthBP4D copy."""

    subjects: int = field(
        default=8, metadata={"help": "number of subjects (F001.., M001..; half female, rounded up)"}
    )
    tasks: int = field(default=3, metadata={"help": "tasks per subject, T1.. (1 to 8)"})
    frames_per_task: int = field(default=30, metadata={"help": "frames per task sequence"})
    frame_width: int = field(
        default=260, metadata={"help": "frame width in pixels (BP4D: 1040; keep 1040:1392)"}
    )
    frame_height: int = field(default=348, metadata={"help": "frame height in pixels (BP4D: 1392)"})
    seed: int = field(default=0, metadata={"help": "random seed; the data set follows from it"})
    smoothness: float = field(
        default=3.0, metadata={"help": "time scale of AU activity and head motion, in frames"}
    )
    min_intensity: float = field(
        default=0.15, metadata={"help": "AU intensity (0-1) at onset; lower = harder weak AUs"}
    )
    jpeg_quality: int = field(default=92, metadata={"help": "JPEG quality of the frames (1-100)"})
    missing_images: int = field(
        default=2, metadata={"help": "planted defects: label rows whose frame image is missing"}
    )
    unlabelled_images: int = field(
        default=2, metadata={"help": "planted defects: frame images without a label row"}
    )
    unknown_label_rows: int = field(
        default=2, metadata={"help": "planted defects: label rows coded 9 (unknown) for every AU"}
    )
    truncated_images: int = field(default=2, metadata={"help": "planted defects: truncated JPEGs"})
    missing_landmarks: int = field(
        default=2, metadata={"help": "planted defects: frames without landmarks"}
    )
    nan_landmarks: int = field(
        default=2, metadata={"help": "planted defects: frames with NaN landmark coordinates"}
    )
    duplicate_frames: int = field(
        default=2, metadata={"help": "planted defects: frames written twice (0643.jpg and 643.jpg)"}
    )

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.frame_width, self.frame_height

    def defect_counts(self) -> dict[str, int]:
        """Planted defects per kind (the audit's kind names)."""
        return {kind: getattr(self, name) for kind, name in DEFECT_FIELDS.items()}


#: The default configuration (the study's data set).
DEFAULT_CONFIG = SynthConfig()


@dataclass(frozen=True)
class SynthSequence:
    """One subject's task: frame numbers (T,) and each frame's parameters."""

    subject: str
    task: str
    frames: np.ndarray
    params: list[FrameParams]


def subject_ids(count: int) -> list[str]:
    """BP4D-style IDs: ``ceil(count / 2)`` females F001.. then males M001.."""
    females = math.ceil(count / 2)
    return [f"F{i:03d}" for i in range(1, females + 1)] + [
        f"M{i:03d}" for i in range(1, count - females + 1)
    ]


def check_config(config: SynthConfig) -> None:
    """Raise AufacsError (one sentence) for a config that cannot be generated."""
    per_sex = math.ceil(config.subjects / 2)
    rules = [
        (1 <= config.subjects and per_sex <= 999, "subjects must be between 1 and 1998"),
        (1 <= config.tasks <= len(TASKS), f"tasks must be between 1 and {len(TASKS)}"),
        (config.frames_per_task >= 1, "frames_per_task must be at least 1"),
        (
            config.frame_width >= 64 and config.frame_height >= 64,
            "frame_width and frame_height must be at least 64 pixels",
        ),
        (0.0 <= config.min_intensity <= 1.0, "min_intensity must be between 0 and 1"),
        (config.smoothness >= 0.0, "smoothness must be at least 0 frames"),
        (1 <= config.jpeg_quality <= 100, "jpeg_quality must be between 1 and 100"),
        (
            all(n >= 0 for n in config.defect_counts().values()),
            "planted defect counts must be at least 0",
        ),
    ]
    for ok, sentence in rules:
        if not ok:
            raise AufacsError(f"synthetic config: {sentence}")


def plan(config: SynthConfig) -> tuple[list[FaceParams], list[SynthSequence]]:
    """The faces of every subject and the frames of every sequence (nothing is drawn)."""
    check_config(config)
    faces, sequences = [], []
    for index, subject in enumerate(subject_ids(config.subjects)):
        rng = np.random.default_rng((config.seed, index))
        face = sample_face(rng, subject)
        offsets = subject_offsets(rng)
        faces.append(face)
        for t, task in enumerate(TASKS[: config.tasks]):
            task_rng = np.random.default_rng((config.seed, index, t + 1))
            intensities = au_intensities(
                task_rng,
                config.frames_per_task,
                offsets,
                smoothness=config.smoothness,
                min_intensity=config.min_intensity,
            )
            params = sequence_params(task_rng, face, intensities, smoothness=config.smoothness)
            first = int(task_rng.integers(1, _FIRST_FRAME_BELOW))
            frames = np.arange(first, first + config.frames_per_task)
            sequences.append(SynthSequence(subject, task, frames, params))
    return faces, sequences


def labels_of(params: list[FrameParams]) -> np.ndarray:
    """AU occurrence (T, 12) float64 (1.0 present, 0.0 absent) from the intensities."""
    return (np.array([p.intensities for p in params]) > 0).astype(np.float64)
