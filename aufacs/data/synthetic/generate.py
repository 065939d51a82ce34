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

import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.bp4d_labels import write_au_occ_csv
from aufacs.data.bp4d_landmarks import write_landmark_mat
from aufacs.data.bp4d_layout import (
    IMAGES_DIR,
    LABELS_DIR,
    LANDMARKS_DIR,
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
)
from aufacs.data.synthetic.manifest import (
    FRAMES_FILE,
    MANIFEST_FILE,
    PLANTED_COLUMNS,
    SynthManifest,
    frames_table,
)
from aufacs.data.synthetic.planning import (
    DEFAULT_CONFIG,
    SynthConfig,
    SynthSequence,
    labels_of,
    plan,
)
from aufacs.data.synthetic.render import SubjectRenderer

#: What a generated folder holds; ``overwrite`` removes these and nothing else.
GENERATED = (IMAGES_DIR, LABELS_DIR.split("/")[0], LANDMARKS_DIR, MANIFEST_FILE, FRAMES_FILE)
#: Seed stream of the defect choice (apart from the subjects' streams).
_DEFECT_STREAM = 10**6


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
    table = pd.DataFrame(rows, columns=PLANTED_COLUMNS[:4])
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
