"""The per-frame results table: action units of the faces in your own photos and videos, offline.

``predict_paths(PredictConfig(run=Path("runs/jaa"), paths=("me.jpg", "clip.mp4")))`` returns a
pandas DataFrame with one row per face per frame and writes it to ``config.out`` as CSV, in
aufacs's columns or OpenFace's (``format``, :mod:`aufacs.inference.sinks`), or one CSV per
input file into ``out_dir``, resumably (:mod:`aufacs.inference.batch`). The model comes from
a run folder (``run``) or a file of ``aufacs export`` (``model``).

**Per frame.** A frame whose longer side exceeds :data:`aufacs.inference.faces.MAX_SIDE`
pixels is first shrunk to it (:func:`aufacs.inference.faces.working_copy`);
:func:`aufacs.inference.frame.analyse_frame` then finds the faces, aligns each as the run's
training faces were (:mod:`aufacs.inference.predictor`) with the best landmarks the detector
allows, and predicts it. Coordinates in the table are pixels of the source frame; the
columns are those of :func:`aufacs.inference.rows.output_columns` (``docs/own_photos.md``).
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
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.engine.device import THREADS_HELP, use_threads
from aufacs.inference import overlay as drawing
from aufacs.inference.batch import predict_into_folder
from aufacs.inference.faces import resolve_backend, working_copy
from aufacs.inference.frame import analyse_frame
from aufacs.inference.media import (
    frame_count,
    input_files,
    is_image,
    is_video,
    iter_video_frames,
    load_image,
    video_fps,
)
from aufacs.inference.predictor import Predictor, load_predictor
from aufacs.inference.results import prob_columns as prob_columns
from aufacs.inference.results import smooth_probabilities
from aufacs.inference.results import summary_metrics as summary_metrics
from aufacs.inference.rows import empty_row, frame_rows, rows_table
from aufacs.inference.rows import output_columns as output_columns
from aufacs.inference.sinks import FORMATS, write_table
from aufacs.inference.video import VideoAnalyser, speed_attrs, speed_line


@dataclass(frozen=True)
class PredictConfig:
    """What to predict, with which run, and how."""

    run: Path = field(default=Path("runs/jaa_net_fold1"), metadata={"help": "training run folder"})
    model: Path | None = field(
        default=None, metadata={"help": "model file written by aufacs export (instead of --run)"}
    )
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
    out_dir: Path | None = field(
        default=None,
        metadata={"help": "folder for one CSV per input file, resumable (instead of --out)"},
    )
    format: str = field(
        default="aufacs",
        metadata={"help": "CSV columns: aufacs (the whole table) or openface (OpenFace 2's)"},
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


def predict_paths(config: PredictConfig) -> pd.DataFrame:
    """Predict every face in ``config.paths`` with ``config.model`` (a model file) or else
    ``config.run``, and write ``config.out``, or one CSV per input file into
    ``config.out_dir`` (:mod:`aufacs.inference.batch`), in ``config.format``. With
    ``out_dir``, the table holds the files predicted now and ``attrs["skipped"]`` counts
    the files already done.

    An image file named in ``config.paths`` that cannot be decoded is refused before any
    work; one found inside a named folder gets a row that says why instead.
    """
    options = {
        "min_score": config.min_score,
        "step": config.step,
        "smooth": config.smooth,
        "detect_every": config.detect_every,
        "batch_size": config.batch_size,
    }
    backend = _check_options(config.backend, **options)
    files = input_files(config.paths)
    _check_destination(config.format, None if config.out_dir else config.out, files)
    for path in map(Path, config.paths):
        if path.is_file() and is_image(path):
            load_image(path)
    use_threads(config.threads, announce=config.progress)
    source = config.model if config.model is not None else config.run
    predictor = load_predictor(
        source, config.epoch, device=config.device, threshold=config.threshold
    )
    if config.out_dir is None:
        return predict_files(
            predictor,
            files,
            backend=backend,
            **options,
            out=config.out,
            format=config.format,
            overlay=config.overlay,
            progress=config.progress,
        )
    return _predict_into_folder(config, predictor, files, backend, options)


def _predict_into_folder(
    config: PredictConfig,
    predictor: Predictor,
    files: list[Path],
    backend: str,
    options: dict[str, object],
) -> pd.DataFrame:
    """:func:`predict_paths` with ``config.out_dir``: one CSV per file, resumable."""
    source = config.model if config.model is not None else config.run
    settings = {"model": str(Path(source).resolve()), "epoch": config.epoch, "backend": backend}
    settings.update(options, threshold=config.threshold, format=config.format)
    del settings["batch_size"]  # the same results in any batch size
    one = partial(
        predict_file,
        predictor,
        backend=backend,
        overlay=config.overlay,
        progress=config.progress,
        **options,
    )
    tables, skipped = predict_into_folder(
        files, config.out_dir, one, settings, predictor.aus, config.progress
    )
    table = _joined(predictor, tables)
    table.attrs["skipped"] = skipped
    return table


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    *,
    backend: str = "auto",
    out: str | Path | None = None,
    format: str = "aufacs",
    overlay: str | Path | None = None,
    progress: bool = True,
    **options: object,
) -> pd.DataFrame:
    """The prediction table of the images and videos in ``paths`` (see
    :func:`aufacs.inference.media.input_files`), also written to ``out`` as CSV in
    ``format`` (:mod:`aufacs.inference.sinks`) unless None, and drawn into folder
    ``overlay`` unless None. ``options``: ``min_score``, and for videos ``step``, ``smooth``,
    ``detect_every``, ``batch_size`` (:func:`predict_video`). ``attrs`` carry the videos'
    frames per second and stage times (module docstring)."""
    backend = _check_options(backend, **options)
    files = input_files(paths)
    _check_destination(format, out, files)
    bar = tqdm(files, desc="predict", unit="file", disable=not progress or len(files) < 2)
    tables = [
        predict_file(
            predictor, path, backend=backend, overlay=overlay, progress=progress, **options
        )
        for path in bar
    ]
    table = _joined(predictor, tables)
    if out is not None:
        write_table(table, out, format, predictor.aus)
    return table


def predict_file(
    predictor: Predictor,
    path: Path,
    *,
    backend: str,
    overlay: str | Path | None = None,
    progress: bool = True,
    **options: object,
) -> pd.DataFrame:
    """The prediction table of one image or video file ``path``, drawn into folder
    ``overlay`` unless None (``options`` as in :func:`predict_files`)."""
    drawn = None if overlay is None else drawing.overlay_path(overlay, path)
    if is_video(path):
        return predict_video(
            predictor, path, backend=backend, overlay=drawn, progress=progress, **options
        )
    return _predict_image_file(predictor, path, backend, options.get("min_score"), drawn)


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
    return rows_table(predictor, frame_rows(predictor, result, ids, factor, size, source, backend))


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
        return rows_table(predictor, [empty_row(str(path), backend, str(error))])
    analyser = VideoAnalyser(predictor, backend, min_score, detect_every, batch_size)
    total = frame_count(path, step)
    bar = tqdm(total=total, desc=path.name, leave=False, unit="frame", disable=not progress)
    writer = None if overlay is None else drawing.VideoOverlay(overlay, video_fps(path) / step)
    rows, count, start = [], 0, time.perf_counter()
    try:
        for frame in analyser.run(frames):
            size = frame.image.shape[1::-1]
            place = (frame.index, frame.time_s)
            found = frame_rows(
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
    table = rows_table(predictor, rows)
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


def _check_destination(format: str, out: str | Path | None, files: Sequence[Path]) -> None:
    """Refuse an unknown ``format``, and several input files for one OpenFace CSV (OpenFace
    writes one file per video, and its columns do not name the file)."""
    if format not in FORMATS:
        raise AufacsError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "openface" and out is not None and len(files) > 1:
        raise AufacsError(
            f"an OpenFace CSV holds one input file, as OpenFace's own do, and {len(files)} "
            "were given; write one CSV per file into a folder with --out-dir"
        )


def _joined(predictor: Predictor, tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The tables of several files as one, with the videos' speeds in ``attrs``."""
    if not tables:
        return rows_table(predictor, [])
    speeds = {t["source"].iloc[0]: t.attrs for t in tables if t.attrs.get("frames")}
    table = pd.concat(tables, ignore_index=True)
    table.attrs = speed_attrs(speeds)
    return table


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
        return rows_table(predictor, [empty_row(str(path), backend, str(error))])
    table = predict_image(predictor, image, source=str(path), backend=backend, min_score=min_score)
    if overlay is not None:
        drawing.write_image(overlay, image, table.to_dict("records"), predictor.aus)
    return table
