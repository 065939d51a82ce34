"""Write SynthBP4D: the synthetic data set in the raw BP4D layout, with a manifest.

``generate_synthetic(out, SynthConfig(...))`` writes, under ``out``::

    2D+3D/<subject>/<task>/<frame>.jpg      frames (zero-padded names, e.g. 0643.jpg)
    AUCoding/AU_OCC/<subject>_<task>.csv    AU occurrence codes 0 / 1 / 9
    2DFeatures/<subject>_<task>.mat         49 landmarks per frame (MATLAB v7.3, 1-indexed)
    synthetic_manifest.json                 config, subjects (sex, face), planted defects
    synthetic_frames.csv                    every frame's parameters (AU intensities, pose,
                                            light, ...), to redraw it or map its AU regions

with the writers of :mod:`aufacs.data.bp4d`, so :func:`~aufacs.data.bp4d.read_bp4d`, the
audit, the alignment and the cache read it as they read BP4D. Everything follows from
``config.seed``: a subject's faces and sequences depend only on the seed, its index and the
task, not on how many subjects or tasks are generated.

Planted defects (each counted in the manifest with its frame, under the audit's kind names
of :data:`aufacs.data.table.DEFECT_KINDS`) hit distinct frames, one defect each, so the audit
must report exactly them:

========================  ==========================================================
kind                      how it is planted
========================  ==========================================================
``missing_image``         the label row and landmarks are written, the JPEG is not
``unlabelled_image``      the JPEG and landmarks are written, the label row is not
``all_unknown_labels``    the label row is all 9 (not coded)
``unreadable_image``      the JPEG is cut to half its bytes (no end-of-image marker)
``missing_landmarks``     the frame's ``fit.pred`` entry is empty
``nonfinite_landmarks``   the frame's ``fit.pred`` entry holds NaN coordinates
``duplicate_frame``       the JPEG is written again under the unpadded name (643.jpg
                          beside 0643.jpg); only frames below 1000 can have one
========================  ==========================================================
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.bp4d import (
    IMAGES_DIR,
    LABELS_DIR,
    LANDMARKS_DIR,
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    write_au_occ_csv,
    write_landmark_mat,
)
from aufacs.data.synthetic.face import FaceParams, sample_face
from aufacs.data.synthetic.render import FrameParams, SubjectRenderer
from aufacs.data.synthetic.sequences import au_intensities, sequence_params, subject_offsets

MANIFEST_FILE = "synthetic_manifest.json"
FRAMES_FILE = "synthetic_frames.csv"
#: What a generated folder holds; ``overwrite`` removes these and nothing else.
GENERATED = (IMAGES_DIR, LABELS_DIR.split("/")[0], LANDMARKS_DIR, MANIFEST_FILE, FRAMES_FILE)
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
#: Seed stream of the defect choice (apart from the subjects' streams).
_DEFECT_STREAM = 10**6


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


@dataclass(frozen=True)
class SynthSequence:
    """One subject's task: frame numbers (T,) and each frame's parameters."""

    subject: str
    task: str
    frames: np.ndarray
    params: list[FrameParams]


@dataclass(frozen=True)
class SynthManifest:
    """What :func:`generate_synthetic` wrote: the config, the subjects' faces, the AU rates of
    the labels written, and the planted defects (one row per defect: ``kind``, ``subject``,
    ``task``, ``frame``, ``path``)."""

    config: SynthConfig
    faces: list[FaceParams]
    au_rates: dict[str, float]
    defects: pd.DataFrame

    @property
    def defect_counts(self) -> dict[str, int]:
        """Planted defects per kind."""
        return {kind: int((self.defects["kind"] == kind).sum()) for kind in DEFECT_FIELDS}

    def summary(self) -> str:
        """One line: frames, subjects by sex, tasks, planted defects."""
        c = self.config
        females = sum(face.sex == "F" for face in self.faces)
        return (
            f"{c.subjects * c.tasks * c.frames_per_task} frames of {c.subjects} subjects "
            f"({females} F, {c.subjects - females} M) x {c.tasks} tasks, "
            f"{len(self.defects)} planted defects"
        )

    def write(self, root: Path) -> None:
        """Write ``<root>/synthetic_manifest.json``."""
        content = {
            "config": asdict(self.config),
            "subjects": [face.to_dict() for face in self.faces],
            "au_rates": self.au_rates,
            "defect_counts": self.defect_counts,
            "defects": self.defects.to_dict(orient="records"),
        }
        (Path(root) / MANIFEST_FILE).write_text(json.dumps(content, indent=1) + "\n")

    @classmethod
    def read(cls, root: Path | str) -> SynthManifest:
        """The manifest of a generated folder; AufacsError if it has none."""
        path = Path(root) / MANIFEST_FILE
        if not path.is_file():
            raise AufacsError(f"{path} does not exist; expected a folder made by aufacs synth")
        content = json.loads(path.read_text())
        return cls(
            config=SynthConfig(**content["config"]),
            faces=[FaceParams.from_dict(face) for face in content["subjects"]],
            au_rates=content["au_rates"],
            defects=pd.DataFrame(content["defects"], columns=_DEFECT_COLUMNS),
        )


_DEFECT_COLUMNS = ["kind", "subject", "task", "frame", "path"]


#: The default configuration (the study's data set).
DEFAULT_CONFIG = SynthConfig()


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
                task_rng, config.frames_per_task, offsets,
                smoothness=config.smoothness, min_intensity=config.min_intensity,
            )  # fmt: skip
            params = sequence_params(task_rng, face, intensities, smoothness=config.smoothness)
            first = int(task_rng.integers(1, _FIRST_FRAME_BELOW))
            frames = np.arange(first, first + config.frames_per_task)
            sequences.append(SynthSequence(subject, task, frames, params))
    return faces, sequences


def labels_of(params: list[FrameParams]) -> np.ndarray:
    """AU occurrence (T, 12) float64 (1.0 present, 0.0 absent) from the intensities."""
    return (np.array([p.intensities for p in params]) > 0).astype(np.float64)


def generate_synthetic(
    out: Path | str,
    config: SynthConfig = DEFAULT_CONFIG,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> SynthManifest:
    """Generate SynthBP4D under ``out`` (see the module docstring) and return its manifest.

    Refuses a non-empty ``out`` unless ``overwrite``, which removes what an earlier run
    wrote there (the BP4D folders, the manifest and the frames table) and nothing else.
    """
    out = Path(out)
    faces, sequences = plan(config)
    _prepare_folder(out, overwrite)
    defects = _choose_defects(config, sequences)
    planted = {(d.subject, d.task, d.frame): d.kind for d in defects.itertuples()}
    renderers = {face.subject: SubjectRenderer(face, config.frame_size) for face in faces}
    total = sum(len(s.frames) for s in sequences)
    bar = tqdm(total=total, desc="synthetic frames", unit="frame", disable=not progress)
    rates = np.zeros(len(BP4D))
    for sequence in sequences:
        labels = labels_of(sequence.params)
        rates += labels.sum(axis=0)
        kinds = [
            planted.get((sequence.subject, sequence.task, int(f)), "") for f in sequence.frames
        ]
        landmarks = _write_frames(out, config, renderers[sequence.subject], sequence, kinds, bar)
        _write_sequence_files(out, sequence, labels, landmarks, kinds)
    bar.close()
    defects["path"] = [
        str(bp4d_image_path(out, d.subject, d.task, d.frame, padded=d.kind != "duplicate_frame"))
        for d in defects.itertuples()
    ]
    manifest = SynthManifest(
        config=config,
        faces=faces,
        au_rates={c: float(r) / total for c, r in zip(BP4D.columns, rates, strict=True)},
        defects=defects,
    )
    manifest.write(out)
    frames_table(sequences).to_csv(out / FRAMES_FILE, index=False)
    return manifest


def _prepare_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise AufacsError(f"output {out} is a file; expected a folder for the synthetic data set")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise AufacsError(
                f"output folder {out} is not empty; choose an empty folder or pass overwrite "
                "(--overwrite) to replace an earlier synthetic data set there"
            )
        for name in GENERATED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _choose_defects(config: SynthConfig, sequences: list[SynthSequence]) -> pd.DataFrame:
    """Distinct frames for the planted defects: kind, subject, task, frame."""
    keys = [(s.subject, s.task, int(f)) for s in sequences for f in s.frames]
    rng = np.random.default_rng((config.seed, _DEFECT_STREAM))
    order = [keys[i] for i in rng.permutation(len(keys))]
    counts = config.defect_counts()
    if sum(counts.values()) > len(keys):
        raise AufacsError(
            f"synthetic config: {sum(counts.values())} planted defects need as many frames, "
            f"but only {len(keys)} are generated"
        )
    short = [k for k in order if k[2] < 1000]
    if counts["duplicate_frame"] > len(short):
        raise AufacsError(
            f"synthetic config: duplicate_frames={counts['duplicate_frame']} needs frames "
            f"numbered below 1000, but only {len(short)} are"
        )
    chosen = {k: "duplicate_frame" for k in short[: counts["duplicate_frame"]]}
    rest = iter(k for k in order if k not in chosen)
    for kind, count in counts.items():
        if kind != "duplicate_frame":
            chosen.update((next(rest), kind) for _ in range(count))
    rows = [(kind, *key) for key, kind in chosen.items()]
    table = pd.DataFrame(rows, columns=_DEFECT_COLUMNS[:4])
    return table.sort_values(["kind", "subject", "task", "frame"], ignore_index=True)


def _write_frames(
    out: Path,
    config: SynthConfig,
    renderer: SubjectRenderer,
    sequence: SynthSequence,
    kinds: list[str],
    bar: tqdm,
) -> np.ndarray:
    """Draw and write the sequence's JPEGs (with their defects); returns landmarks (T, 49, 2)."""
    landmarks = []
    quality = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
    for frame, params, kind in zip(sequence.frames, sequence.params, kinds, strict=True):
        drawn = renderer.render(params)
        landmarks.append(drawn.landmarks)
        bar.update()
        if kind == "missing_image":
            continue
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(drawn.image, cv2.COLOR_RGB2BGR), quality)
        payload = data.tobytes()
        if kind == "unreadable_image":
            payload = payload[: len(payload) // 2]
        path = bp4d_image_path(out, sequence.subject, sequence.task, int(frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        if kind == "duplicate_frame":
            path.with_name(f"{int(frame)}.jpg").write_bytes(payload)
    return np.stack(landmarks)


def _write_sequence_files(
    out: Path, sequence: SynthSequence, labels: np.ndarray, landmarks: np.ndarray, kinds: list[str]
) -> None:
    """The sequence's AU CSV and landmark file, with their defects."""
    kinds_array = np.array(kinds)
    labelled = kinds_array != "unlabelled_image"
    codes = labels.copy()
    codes[kinds_array == "all_unknown_labels"] = np.nan
    subject, task = sequence.subject, sequence.task
    write_au_occ_csv(
        bp4d_label_path(out, subject, task), sequence.frames[labelled], codes[labelled]
    )
    points = landmarks.copy()
    points[kinds_array == "missing_landmarks"] = np.nan
    path = bp4d_landmark_path(out, subject, task)
    write_landmark_mat(path, sequence.frames, points)
    spoilt = sequence.frames[kinds_array == "nonfinite_landmarks"]
    if len(spoilt):
        _spoil_landmarks(path, spoilt)


def _spoil_landmarks(path: Path, frames: np.ndarray) -> None:
    """Put NaN into some coordinates of the given frames' ``fit.pred`` entries (MAT v7.3)."""
    with h5py.File(path, "r+") as f:
        cells = f["fit"]["pred"]
        for frame in frames:
            entry = f[cells[int(frame) - 1, 0]]
            values = entry[()]
            values[:, :5] = np.nan
            entry[...] = values


def frames_table(sequences: list[SynthSequence]) -> pd.DataFrame:
    """Every frame's parameters, one row per frame: subject, task, frame, the AU
    intensities (columns ``AU1`` ... in [0, 1], 0 = absent) and the other
    :class:`~aufacs.data.synthetic.render.FrameParams` fields (tuples as ``name_0``, ...)."""
    rows = []
    for sequence in sequences:
        for frame, params in zip(sequence.frames, sequence.params, strict=True):
            row = {"subject": sequence.subject, "task": sequence.task, "frame": int(frame)}
            row |= dict(zip(BP4D.columns, params.intensities, strict=True))
            for name, value in asdict(params).items():
                if name == "intensities":
                    continue
                if isinstance(value, tuple):
                    row |= {f"{name}_{i}": v for i, v in enumerate(value)}
                else:
                    row[name] = value
            rows.append(row)
    return pd.DataFrame(rows)


def params_from_row(row: pd.Series) -> FrameParams:
    """The :class:`FrameParams` of one row of :func:`frames_table`."""
    values = {}
    for f in fields(FrameParams):
        if f.name == "intensities":
            values[f.name] = tuple(float(row[c]) for c in BP4D.columns)
        elif f.name in row.index:
            values[f.name] = row[f.name].item() if hasattr(row[f.name], "item") else row[f.name]
        else:
            parts = sorted(k for k in row.index if k.startswith(f"{f.name}_"))
            values[f.name] = tuple(float(row[k]) for k in parts)
    values["noise_seed"] = int(values["noise_seed"])
    return FrameParams(**values)
