"""The per-frame results table: action units of the faces in your own photos and videos, offline.

``predict_paths(PredictConfig(run=Path("runs/jaa"), paths=("me.jpg", "clip.mp4")))`` returns a
pandas DataFrame with one row per face per frame and writes it to ``config.out`` as CSV.

**Per frame.** A frame whose longer side exceeds :data:`aufacs.inference.faces.MAX_SIDE`
pixels is first shrunk to it (:func:`aufacs.inference.faces.working_copy`);
:func:`aufacs.inference.frame.analyse_frame` then finds the faces, aligns each as the run's
training faces were (:mod:`aufacs.inference.predictor`) with the best landmarks the detector
allows, and predicts it. Coordinates in the table are pixels of the source frame.

**Columns.** ``source`` (the file), ``frame`` and ``time_s`` (videos: the 0-based frame index
and its time in seconds; empty for photos), ``face`` (0-based, largest box first), ``backend``
and ``score`` (the detector and its confidence), ``box_x0 box_y0 box_x1 box_y1`` (pixel
edges), ``landmarks`` (where the points came from: ``dlib``, ``jaa_net`` or ``template``),
``x0 y0 ... x48 y48`` (the 49 points the face was aligned with, 0-indexed pixels of the source
frame), ``AU<n>_prob`` and ``AU<n>`` (probability and decision ``prob >= threshold``, 1 or 0)
for each AU of the run, and ``note``.

**Bad input.** A path that does not exist, or a file named on its own whose extension is
neither an image's nor a video's, raises AufacsError before any work
(:func:`aufacs.inference.media.input_files`); folders contribute their image and video files
(recursively, sorted) and nothing else. A file that cannot be decoded (a corrupt image, an
unreadable video) and a frame without a face each give one row whose ``note`` says so, and
the other files go on: one broken file in a folder of thousands does not lose the rest.
``backend="dlib"`` without the extra raises AufacsError with the one-line install command.

**Videos.** Every ``step``-th frame is predicted. The returned frame's ``attrs["fps"]`` holds
frames per second over all videos (decoding, detection and the model together) and
``attrs["fps_by_source"]`` per video. ``smooth=W`` replaces each face's probabilities by a
centred moving average over W predicted frames (fewer at the ends) and re-takes the
decisions. A face track is the face's rank by box size in its frame, which is right for one
person in view; with several people, boxes of similar size may swap ranks between frames.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.data.table import LANDMARK_COLUMNS
from aufacs.engine.device import THREADS_HELP, use_threads
from aufacs.inference.faces import edges_to_source, rescale_points, resolve_backend, working_copy
from aufacs.inference.frame import analyse_frame
from aufacs.inference.media import (
    frame_count,
    input_files,
    is_image,
    is_video,
    iter_video_frames,
    load_image,
)
from aufacs.inference.predictor import Predictor, load_predictor

NO_FACE = "no face found"
#: Where a row comes from: file, video frame and time, face rank, detector and its score.
ID_COLUMNS = ["source", "frame", "time_s", "face", "backend", "score"]
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
    smooth: int = field(
        default=0, metadata={"help": "videos: moving-average window of probabilities (0: off)"}
    )
    step: int = field(default=1, metadata={"help": "videos: predict every step-th frame"})
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
        *prob_columns(aus),
        *[au_column(a) for a in aus],
        "note",
    ]


def prob_columns(aus: Sequence[int]) -> list[str]:
    """``AU<n>_prob`` for each AU."""
    return [f"{au_column(a)}_prob" for a in aus]


def predict_paths(config: PredictConfig) -> pd.DataFrame:
    """Predict every face in ``config.paths`` with ``config.run`` and write ``config.out``.

    An image file named in ``config.paths`` that cannot be decoded is refused before any
    work; one found inside a named folder gets a row that says why instead.
    """
    _check_options(config.backend, config.step, config.smooth)
    files = input_files(config.paths)
    for path in map(Path, config.paths):
        if path.is_file() and is_image(path):
            load_image(path)
    use_threads(config.threads, announce=config.progress)
    predictor = load_predictor(
        config.run, config.epoch, device=config.device, threshold=config.threshold
    )
    options = {"backend": config.backend, "step": config.step, "smooth": config.smooth}
    return predict_files(predictor, files, **options, out=config.out, progress=config.progress)


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    *,
    backend: str = "auto",
    step: int = 1,
    smooth: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The prediction table of the images and videos in ``paths`` (see
    :func:`aufacs.inference.media.input_files`), also written to ``out`` as CSV unless None;
    ``attrs`` carry the videos' frames per second (module docstring)."""
    backend = _check_options(backend, step, smooth)
    files = input_files(paths)
    tables, speeds = [], {}
    bar = tqdm(files, desc="predict", unit="file", disable=not progress or len(files) < 2)
    for path in bar:
        if is_video(path):
            options = {"backend": backend, "step": step, "smooth": smooth, "progress": progress}
            table = predict_video(predictor, path, **options)
            if table.attrs.get("frames"):
                speeds[str(path)] = (table.attrs["frames"], table.attrs["seconds"])
        else:
            table = _predict_image_file(predictor, path, backend)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table.attrs = _speed_attrs(speeds)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    return table


def predict_image(
    predictor: Predictor, image_rgb: np.ndarray, *, source: str = "image", backend: str = "auto"
) -> pd.DataFrame:
    """The prediction table of one photo: (H, W, 3) uint8 RGB; ``source`` names it."""
    backend = _check_options(backend)
    return _table(predictor, _rows(predictor, image_rgb, source, backend))


def predict_video(
    predictor: Predictor,
    path: str | Path,
    *,
    backend: str = "auto",
    step: int = 1,
    smooth: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """The prediction table of every ``step``-th frame of a video, smoothed over ``smooth``
    frames if > 0. ``attrs``: ``frames`` predicted, ``seconds`` they took and ``fps``. An
    unreadable video gives one row whose note says so."""
    backend = _check_options(backend, step, smooth)
    path = Path(path)
    try:
        frames = iter_video_frames(path, step=step)
    except AufacsError as error:
        return _table(predictor, [_empty_row(str(path), backend, str(error))])
    total = frame_count(path, step)
    bar = tqdm(frames, path.name, total, leave=False, unit="frame", disable=not progress)
    rows, count = [], 0
    start = time.perf_counter()
    for index, time_s, image in bar:
        rows += _rows(predictor, image, str(path), backend, frame=(index, time_s))
        count += 1
    seconds = time.perf_counter() - start
    table = _table(predictor, rows)
    if smooth > 1:
        table = smooth_probabilities(table, predictor.aus, smooth, predictor.threshold)
    table.attrs = {"frames": count, "seconds": seconds, "fps": count / seconds}
    return table


def smooth_probabilities(
    table: pd.DataFrame, aus: Sequence[int], window: int, threshold: float
) -> pd.DataFrame:
    """A copy of prediction table ``table`` whose video rows have the probabilities of AUs
    ``aus`` averaged per face track over a centred window of ``window`` predicted frames (fewer
    at the ends of a track), and their decisions re-taken at ``threshold``. A track is
    (``source``, ``face``)."""
    probs = prob_columns(aus)
    smoothed = table.copy()
    tracked = table["frame"].notna() & table["face"].notna()
    if window < 2 or not tracked.any():
        return smoothed
    rows = table[tracked].sort_values(["source", "face", "frame"])
    averaged = rows.groupby(["source", "face"])[probs].transform(
        lambda column: column.rolling(window, center=True, min_periods=1).mean()
    )
    smoothed.loc[averaged.index, probs] = averaged
    decisions = (smoothed.loc[averaged.index, probs] >= threshold).astype(int).to_numpy()
    smoothed.loc[averaged.index, [au_column(a) for a in aus]] = decisions
    return smoothed


def summary_metrics(table: pd.DataFrame) -> dict[str, float | int | None]:
    """Headline numbers of a prediction table: files, frames, faces, frames without a face,
    and the videos' frames per second (None without videos)."""
    frames = table.drop_duplicates(["source", "frame"])
    return {
        "files": int(table["source"].nunique()),
        "frames": len(frames),
        "faces": int(table["face"].notna().sum()),
        "frames_without_face": int((table["note"] == NO_FACE).sum()),
        "video_fps": table.attrs.get("fps"),
    }


def _check_options(backend: str, step: int = 1, smooth: int = 0) -> str:
    """Refuse bad prediction options with one sentence, before any work; returns the detector
    that ``backend`` stands for (:func:`aufacs.inference.faces.resolve_backend`)."""
    chosen = resolve_backend(backend)
    for name, value, low in (("step", step, 1), ("smooth", smooth, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise AufacsError(f"{name} must be a whole number of frames >= {low}, got {value!r}")
    return chosen


def _speed_attrs(speeds: dict[str, tuple[int, float]]) -> dict:
    """``fps`` over all videos (None without videos) and ``fps_by_source``, from (frames,
    seconds) per video."""
    frames = sum(n for n, _ in speeds.values())
    seconds = sum(s for _, s in speeds.values())
    return {
        "fps": frames / seconds if seconds > 0 else None,
        "fps_by_source": {k: n / s for k, (n, s) in speeds.items() if s > 0},
    }


def _predict_image_file(predictor: Predictor, path: Path, backend: str) -> pd.DataFrame:
    """The table of one image file; one row with the reason when it cannot be decoded."""
    try:
        image = load_image(path)
    except AufacsError as error:
        return _table(predictor, [_empty_row(str(path), backend, str(error))])
    return predict_image(predictor, image, source=str(path), backend=backend)


def _rows(
    predictor: Predictor,
    image_rgb: np.ndarray,
    source: str,
    backend: str,
    frame: tuple[int, float] | None = None,
) -> list[dict]:
    """Table rows of one frame (H, W, 3) uint8 RGB: one per face, or one saying no face was
    found. ``frame``: a video frame's index and time in seconds."""
    image, factor = working_copy(image_rgb)
    result = analyse_frame(predictor, image, backend)
    index, time_s = frame if frame is not None else (pd.NA, np.nan)
    if result is None:
        return [_empty_row(source, backend, NO_FACE, index, time_s)]
    faces = result.faces
    boxes = edges_to_source(np.array([face.box for face in faces]), factor)  # (F, 4)
    points = rescale_points(result.points, 1.0 / factor).reshape(len(faces), -1)  # (F, 98)
    numbers = np.concatenate([boxes, points, result.probs], axis=1)
    decisions = (result.probs >= predictor.threshold).astype(int)  # (F, N)
    number_columns = [*BOX_COLUMNS, *LANDMARK_COLUMNS, *prob_columns(predictor.aus)]
    decision_columns = [au_column(a) for a in predictor.aus]
    return [
        {
            "source": source,
            "frame": index,
            "time_s": time_s,
            "face": k,
            "backend": face.backend,
            "score": face.score,
            "landmarks": result.landmark_sources[k],
            "note": result.notes[k],
            **dict(zip(number_columns, numbers[k], strict=True)),
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
    integers = ["frame", "face", *[au_column(a) for a in predictor.aus]]
    table[integers] = table[integers].astype("Int64")
    text = ["source", "backend", "landmarks", "note"]
    table[text] = table[text].astype(object).fillna("").astype(str)
    return table
