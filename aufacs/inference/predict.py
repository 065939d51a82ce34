"""The per-frame results table: action units of the faces in your own photos and videos, offline.

``predict_paths(PredictConfig(run=Path("runs/jaa"), paths=("me.jpg", "clip.mp4")))`` returns a
pandas DataFrame with one row per face per frame and writes it to ``config.out`` as CSV.

**Per frame.** A frame whose longer side exceeds :data:`aufacs.inference.faces.MAX_SIDE`
pixels is first shrunk to it (:func:`aufacs.inference.faces.working_copy`);
:func:`aufacs.inference.frame.analyse_frame` then finds the faces, aligns each as the run's
training faces were (:mod:`aufacs.inference.predictor`) with the best landmarks the detector
allows, and predicts it. Coordinates in the table are pixels of the source frame.

**Columns.** ``source`` (the file), ``frame`` and ``time_s`` (videos: the 0-based frame index
and its time in seconds; empty for photos), ``face`` (0-based, largest box first),
``face_id`` (videos: the face's track, :mod:`aufacs.inference.tracking`; photos: ``face``),
``backend`` and ``score`` (the detector and its confidence; faces scoring below
``min_score`` are dropped, :data:`aufacs.inference.faces.MIN_SCORE`), ``box_x0 box_y0 box_x1
box_y1`` (pixel edges), ``landmarks`` (where the points came from: ``dlib``, ``jaa_net`` or
``template``), ``x0 y0 ... x48 y48`` (the 49 points the face was aligned with, 0-indexed
pixels of the source frame), ``yaw pitch roll`` (head pose in degrees,
:mod:`aufacs.inference.pose`), ``AU<n>_prob`` and ``AU<n>`` (probability and decision
``prob >= threshold``, 1 or 0) for each AU of the run, and ``note``.
:mod:`aufacs.inference.results` gives the long form and AU time courses.

**Bad input.** A path that does not exist, or a file named on its own whose extension is
neither an image's nor a video's, raises AufacsError before any work
(:func:`aufacs.inference.media.input_files`); folders contribute their image and video files
(recursively, sorted) and nothing else. A file that cannot be decoded (a corrupt image, an
unreadable video) and a frame without a face each give one row whose ``note`` says so, and
the other files go on: one broken file in a folder of thousands does not lose the rest.
``backend="dlib"`` without the extra raises AufacsError with the one-line install command.

**Videos.** Every ``step``-th frame is predicted (:class:`aufacs.inference.video.VideoAnalyser`:
detection every ``detect_every`` predicted frames, faces followed in between, ``batch_size``
faces per forward pass). The returned frame's ``attrs["fps"]`` holds frames per second over
all videos (decoding, detection and the model together), ``attrs["fps_by_source"]`` per video
and ``attrs["stages"]`` the seconds of each stage over all videos. ``smooth=W`` replaces each
face's probabilities by a centred moving average over W predicted frames of its track
(``face_id``; fewer at the ends) and re-takes the decisions. ``overlay`` names a folder that
gets each image, and each video as MP4, with the results drawn (:mod:`aufacs.inference.overlay`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import au_column
from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.core.io import atomic_write
from aufacs.data.table import LANDMARK_COLUMNS
from aufacs.engine.device import THREADS_HELP, use_threads
from aufacs.inference import overlay as drawing
from aufacs.inference.faces import edges_to_source, rescale_points, resolve_backend, working_copy
from aufacs.inference.frame import FrameFaces, analyse_frame
from aufacs.inference.media import (
    frame_count,
    input_files,
    is_image,
    is_video,
    iter_video_frames,
    load_image,
    video_fps,
)
from aufacs.inference.pose import POSE_COLUMNS, head_pose
from aufacs.inference.predictor import Predictor, load_predictor
from aufacs.inference.results import NO_FACE, prob_columns, smooth_probabilities
from aufacs.inference.results import summary_metrics as summary_metrics
from aufacs.inference.video import VideoAnalyser, speed_attrs, speed_line

#: Where a row comes from: file, video frame and time, face rank and track, detector, score.
ID_COLUMNS = ["source", "frame", "time_s", "face", "face_id", "backend", "score"]
#: Box columns, pixel edges in the source frame.
BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]


@dataclass(frozen=True)
class PredictConfig:
    """What to predict, with which run, and how."""

    run: Path = field(default=Path("runs/jaa_net_fold1"), metadata={"help": "training run folder"})
    epoch: int | None = field(
        default=None, metadata={"help": "checkpoint epoch (default: the last saved)"}
    )
    paths: tuple[Path | str, ...] = field(
        default=(), metadata={"help": "images, videos, or folders of them"}
    )
    out: Path | None = field(
        default=Path("predictions.csv"),
        metadata={"help": "CSV file to write (none: write nothing)"},
    )
    backend: str = field(
        default="auto",
        metadata={"help": "face detector: auto (dlib if the landmarks extra is there), dlib, haar"},
    )
    min_score: float | None = field(
        default=None,
        metadata={"help": "least detection score of a face (default: dlib 0.3, haar 1.0)"},
    )
    smooth: int = field(
        default=0, metadata={"help": "videos: moving-average window of probabilities (0: off)"}
    )
    step: int = field(default=1, metadata={"help": "videos: predict every step-th frame"})
    detect_every: int = field(
        default=1,
        metadata={"help": "videos: detect faces every N-th predicted frame, follow them between"},
    )
    batch_size: int = field(
        default=8, metadata={"help": "faces (of one or several frames) per model forward pass"}
    )
    overlay: Path | None = field(
        default=None,
        metadata={"help": "folder for each image and video (MP4) with the results drawn"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threshold: float = field(default=0.5, metadata={"help": "probability threshold of 'present'"})
    threads: int | None = field(default=None, metadata={"help": THREADS_HELP})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


def output_columns(aus: Sequence[int]) -> list[str]:
    """The columns of a prediction table for AUs ``aus``, in order (module docstring)."""
    return [
        *ID_COLUMNS,
        *BOX_COLUMNS,
        "landmarks",
        *LANDMARK_COLUMNS,
        *POSE_COLUMNS,
        *prob_columns(aus),
        *[au_column(a) for a in aus],
        "note",
    ]


def predict_paths(config: PredictConfig) -> pd.DataFrame:
    """Predict every face in ``config.paths`` with ``config.run`` and write ``config.out``.

    An image file named in ``config.paths`` that cannot be decoded is refused before any
    work; one found inside a named folder gets a row that says why instead.
    """
    options = {
        "backend": config.backend,
        "min_score": config.min_score,
        "step": config.step,
        "smooth": config.smooth,
        "detect_every": config.detect_every,
        "batch_size": config.batch_size,
    }
    _check_options(**options)
    files = input_files(config.paths)
    for path in map(Path, config.paths):
        if path.is_file() and is_image(path):
            load_image(path)
    use_threads(config.threads, announce=config.progress)
    predictor = load_predictor(
        config.run, config.epoch, device=config.device, threshold=config.threshold
    )
    return predict_files(
        predictor,
        files,
        **options,
        out=config.out,
        overlay=config.overlay,
        progress=config.progress,
    )


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    *,
    backend: str = "auto",
    out: str | Path | None = None,
    overlay: str | Path | None = None,
    progress: bool = True,
    **options: object,
) -> pd.DataFrame:
    """The prediction table of the images and videos in ``paths`` (see
    :func:`aufacs.inference.media.input_files`), also written to ``out`` as CSV unless None,
    and drawn into folder ``overlay`` unless None. ``options``: ``min_score``, and for videos
    ``step``, ``smooth``, ``detect_every``, ``batch_size`` (:func:`predict_video`). ``attrs``
    carry the videos' frames per second and stage times (module docstring)."""
    backend = _check_options(backend, **options)
    files = input_files(paths)
    tables, speeds = [], {}
    bar = tqdm(files, desc="predict", unit="file", disable=not progress or len(files) < 2)
    for path in bar:
        drawn = None if overlay is None else drawing.overlay_path(overlay, path)
        if is_video(path):
            table = predict_video(
                predictor, path, backend=backend, overlay=drawn, progress=progress, **options
            )
            if table.attrs.get("frames"):
                speeds[str(path)] = table.attrs
        else:
            min_score = options.get("min_score")
            table = _predict_image_file(predictor, path, backend, min_score, drawn)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table.attrs = speed_attrs(speeds)
    if out is not None:
        with atomic_write(out) as handle:
            table.to_csv(handle, index=False)
    return table


def predict_image(
    predictor: Predictor,
    image_rgb: np.ndarray,
    *,
    source: str = "image",
    backend: str = "auto",
    min_score: float | None = None,
) -> pd.DataFrame:
    """The prediction table of one photo: (H, W, 3) uint8 RGB; ``source`` names it; faces
    scoring below ``min_score`` (None: the detector's default) are left out."""
    backend = _check_options(backend, min_score)
    image, factor = working_copy(image_rgb)
    result = analyse_frame(predictor, image, backend, min_score)
    ids = list(range(len(result.faces))) if result is not None else []
    size = image_rgb.shape[1::-1]
    return _table(predictor, _rows(predictor, result, ids, factor, size, source, backend))


def predict_video(
    predictor: Predictor,
    path: str | Path,
    *,
    backend: str = "auto",
    min_score: float | None = None,
    step: int = 1,
    smooth: int = 0,
    detect_every: int = 1,
    batch_size: int = 8,
    overlay: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The prediction table of every ``step``-th frame of a video, smoothed over ``smooth``
    frames if > 0, faces detected every ``detect_every`` predicted frames and ``batch_size``
    faces per forward pass (:mod:`aufacs.inference.video`); the predicted frames drawn into
    MP4 file ``overlay`` unless None. ``attrs``: ``frames`` predicted, ``seconds`` they took,
    ``fps`` and ``stages`` (seconds per stage). An unreadable video gives one row whose note
    says so."""
    backend = _check_options(backend, min_score, step, smooth, detect_every, batch_size)
    path = Path(path)
    try:
        frames = iter_video_frames(path, step=step)
    except AufacsError as error:
        return _table(predictor, [_empty_row(str(path), backend, str(error))])
    analyser = VideoAnalyser(predictor, backend, min_score, detect_every, batch_size)
    total = frame_count(path, step)
    bar = tqdm(total=total, desc=path.name, leave=False, unit="frame", disable=not progress)
    writer = None if overlay is None else drawing.VideoOverlay(overlay, video_fps(path) / step)
    rows, count, start = [], 0, time.perf_counter()
    try:
        for frame in analyser.run(frames):
            size = frame.image.shape[1::-1]
            place = (frame.index, frame.time_s)
            found = _rows(
                predictor, frame.result, frame.ids, frame.factor, size, str(path), backend, place
            )
            rows += found
            if writer is not None:
                writer.write(frame.image, found, predictor.aus)
            count += 1
            bar.update()
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - start
    table = _table(predictor, rows)
    if smooth > 1:
        table = smooth_probabilities(table, predictor.aus, smooth, predictor.threshold)
    stages = analyser.clock.seconds
    table.attrs = {"frames": count, "seconds": seconds, "fps": count / seconds, "stages": stages}
    if progress:
        say(speed_line(path.name, table.attrs))
    return table


def _check_options(
    backend: str,
    min_score: float | None = None,
    step: int = 1,
    smooth: int = 0,
    detect_every: int = 1,
    batch_size: int = 1,
) -> str:
    """Refuse bad prediction options with one sentence, before any work; returns the detector
    that ``backend`` stands for (:func:`aufacs.inference.faces.resolve_backend`)."""
    chosen = resolve_backend(backend)
    counts = (("step", step, 1), ("smooth", smooth, 0), ("detect_every", detect_every, 1))
    for name, value, low in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise AufacsError(f"{name} must be a whole number of frames >= {low}, got {value!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise AufacsError(f"batch_size must be a whole number of faces >= 1, got {batch_size!r}")
    if min_score is not None and not (
        isinstance(min_score, int | float) and math.isfinite(min_score)
    ):
        raise AufacsError(f"min_score must be a finite number, got {min_score!r}")
    return chosen


def _predict_image_file(
    predictor: Predictor,
    path: Path,
    backend: str,
    min_score: float | None,
    overlay: Path | None,
) -> pd.DataFrame:
    """The table of one image file, drawn into ``overlay`` unless None; one row with the
    reason when it cannot be decoded."""
    try:
        image = load_image(path)
    except AufacsError as error:
        return _table(predictor, [_empty_row(str(path), backend, str(error))])
    table = predict_image(predictor, image, source=str(path), backend=backend, min_score=min_score)
    if overlay is not None:
        drawing.write_image(overlay, image, table.to_dict("records"), predictor.aus)
    return table


def _rows(
    predictor: Predictor,
    result: FrameFaces | None,
    ids: list[int],
    factor: np.ndarray,
    size: tuple[int, int],
    source: str,
    backend: str,
    frame: tuple[int, float] | None = None,
) -> list[dict]:
    """Table rows of one analysed frame of ``size`` (width, height) source pixels, whose
    working copy was made with ``factor``: one per face (track ids ``ids``), or one saying
    no face was found. ``frame``: a video frame's index and time in seconds."""
    index, time_s = frame if frame is not None else (pd.NA, np.nan)
    if result is None:
        return [_empty_row(source, backend, NO_FACE, index, time_s)]
    faces = result.faces
    boxes = edges_to_source(np.array([face.box for face in faces]), factor)  # (F, 4)
    points = rescale_points(result.points, 1.0 / factor)  # (F, 49, 2)
    pose = head_pose(points, size)  # (F, 3)
    numbers = np.concatenate([boxes, points.reshape(len(faces), -1), pose, result.probs], axis=1)
    decisions = (result.probs >= predictor.threshold).astype(int)  # (F, N)
    names = [*BOX_COLUMNS, *LANDMARK_COLUMNS, *POSE_COLUMNS, *prob_columns(predictor.aus)]
    decision_columns = [au_column(a) for a in predictor.aus]
    return [
        {
            "source": source,
            "frame": index,
            "time_s": time_s,
            "face": k,
            "face_id": ids[k],
            "backend": face.backend,
            "score": face.score,
            "landmarks": result.landmark_sources[k],
            "note": result.notes[k],
            **dict(zip(names, numbers[k], strict=True)),
            **dict(zip(decision_columns, decisions[k], strict=True)),
        }
        for k, face in enumerate(faces)
    ]


def _empty_row(
    source: str, backend: str, note: str, frame: object = pd.NA, time_s: float = np.nan
) -> dict:
    """A row for a frame or file without a face: only source, frame, backend and note."""
    return {"source": source, "frame": frame, "time_s": time_s, "backend": backend, "note": note}


def _table(predictor: Predictor, rows: list[dict]) -> pd.DataFrame:
    """Rows -> a table with every column, integer columns nullable."""
    table = pd.DataFrame(rows).reindex(columns=output_columns(predictor.aus))
    integers = ["frame", "face", "face_id", *[au_column(a) for a in predictor.aus]]
    table[integers] = table[integers].astype("Int64")
    text = ["source", "backend", "landmarks", "note"]
    table[text] = table[text].astype(object).fillna("").astype(str)
    return table
