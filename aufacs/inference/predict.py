"""Action units of the faces in your own photos and videos, offline.

``predict_paths(PredictConfig(run="runs/jaa", paths=("me.jpg", "clip.mp4")))`` returns a
pandas DataFrame with one row per face per frame and writes it to ``config.out`` as CSV.

**Per frame.** A frame whose longer side exceeds :data:`MAX_SIDE` pixels is first shrunk to it
(so a huge photo costs no more than a large one); :func:`aufacs.inference.faces.detect_faces`
finds the
faces; each is aligned with JAA-Net's similarity transform to the size and box enlargement of
the run's aligned-crop cache, and becomes a model input exactly as a test frame does in
training (:class:`aufacs.data.dataset.AlignedFaceDataset`: resize, centre crop, the model's
normalisation). The landmarks that drive the alignment depend on the detector:

================  ==========================================================================
``dlib``          the 49 detected landmarks (the ``aufacs[landmarks]`` extra): every model
``haar``, JAA-Net a mean-shape template placed in the Haar box gives a first crop, JAA-Net
                  predicts its 49 landmarks there, they are mapped back to the photo through
                  the inverse alignment, and the face is aligned again with them and predicted
                  once more
``haar``, other   the template itself: ME-GraphAU only needs the crop; EAC-Net's attention
                  then comes from template points, not from the face, and the row's ``note``
                  says so
================  ==========================================================================

**Columns.** ``source`` (the file), ``frame`` and ``time_s`` (videos: the 0-based frame index
and its time in seconds; empty for photos), ``face`` (0-based, largest box first), ``backend``
and ``score`` (the detector and its confidence), ``box_x0 box_y0 box_x1 box_y1`` (pixel
edges), ``landmarks`` (where the points came from: ``dlib``, ``jaa_net`` or ``template``),
``x0 y0 ... x48 y48`` (the 49 points the face was aligned with, 0-indexed pixels of the source
frame), ``AU<n>_prob`` and ``AU<n>`` (probability and decision ``prob >= threshold``, 1 or 0)
for each AU of the run, and ``note``.

**Bad input.** A path that does not exist, or a file named on its own whose extension is
neither an image's (:data:`IMAGE_EXTENSIONS`) nor a video's, raises AufacsError before any
work; folders contribute their image and video files (recursively, sorted) and nothing else.
A file that cannot be decoded (a corrupt image, an unreadable video) and a frame without a
face each give one row whose ``note`` says so, and the other files go on: one broken file in
a folder of thousands does not lose the rest. ``backend="dlib"`` without the extra raises
AufacsError with the one-line install command.

**Videos.** Every ``step``-th frame is predicted. The returned frame's ``attrs["fps"]`` holds
frames per second over all videos (decoding, detection and the model together) and
``attrs["fps_by_source"]`` per video. ``smooth=W`` replaces each face's probabilities by a
centred moving average over W predicted frames (fewer at the ends) and re-takes the
decisions. A face track is the face's rank by box size in its frame, which is right for one
person in view; with several people, boxes of similar size may swap ranks between frames.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from aufacs.analysis.heatmaps import heatmap_set, sample_figure
from aufacs.core.aus import AUSet, au_column
from aufacs.core.errors import AufacsError
from aufacs.data.align import (
    align_face,
    alignment_matrix,
    biocular,
    eye_centres,
    inter_ocular,
    transform_points,
)
from aufacs.data.cache import META_FILE, AlignedCache
from aufacs.data.prepare import cache_folder
from aufacs.data.table import LANDMARK_COLUMNS, empty_defects, landmark_frame, landmarks_of
from aufacs.engine.train import (
    build_run_model,
    checkpoint_paths,
    load_checkpoint,
    load_run_config,
    make_dataset,
    resolve_device,
    to_device,
)
from aufacs.inference.faces import (
    BACKENDS,
    INSTALL_HINT,
    Face,
    box_to_initial_landmarks,
    detect_faces,
    is_video,
    iter_video_frames,
    landmarks_available,
    load_image,
)
from aufacs.models import AUModel
from aufacs.models.base import AUOutput

#: Extensions of the image files OpenCV reads (``cv2.imread``), lower case.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic"}
)  # fmt: skip
#: Frames are shrunk (area interpolation) to at most this longer side before anything else.
MAX_SIDE = 1600
NO_FACE = "no face found"
#: Box columns, pixel edges in the source frame.
BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]
DEMO_FILE = "astronaut.png"
_HAAR_NOTE = "face box from the Haar cascade"
_NOTES = {
    "jaa_net": f"{_HAAR_NOTE}; aligned with JAA-Net's own landmarks after one re-alignment",
    "eac_net": (
        f"{_HAAR_NOTE}; EAC-Net's attention follows mean-shape template landmarks, not the "
        "face's (install the landmarks extra for detected ones)"
    ),
    "me_graph_au": (
        f"{_HAAR_NOTE}; aligned with a mean-shape template in the box (install the landmarks "
        "extra for a tighter crop)"
    ),
}
_IMPLAUSIBLE_NOTE = (
    f"{_HAAR_NOTE}; JAA-Net's landmarks did not fit the box, so the face was aligned with a "
    "mean-shape template in it"
)
#: The batch keys a model may read; the data set's unknown labels are left out, so that
#: pictures show no ground truth.
_INPUT_KEYS = ("image", "landmarks", "biocular")
#: JAA-Net's own landmarks replace the box template only when their inter-ocular distance is
#: within this factor of the template's and the middle of their eyes lies inside the face box.
PLAUSIBLE_SCALE = 2.0


@dataclass(frozen=True)
class PredictConfig:
    """What to predict, with which run, and how."""

    run: str = field(default="runs/jaa_net_fold1", metadata={"help": "training run folder"})
    epoch: int | None = field(
        default=None, metadata={"help": "checkpoint epoch (default: the last saved)"}
    )
    paths: tuple[str, ...] = field(
        default=(), metadata={"help": "images, videos, or folders of them"}
    )
    out: str | None = field(
        default="predictions.csv", metadata={"help": "CSV file to write (none: write nothing)"}
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
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


@dataclass(frozen=True)
class Predictor:
    """A model ready for faces: the network in eval mode and the aligned-crop geometry it was
    trained on. ``aus``: the N AU numbers in output order; ``size``: aligned-face side, pixels;
    ``box_enlarge``: the alignment's box enlargement (see :mod:`aufacs.data.align`);
    ``name``: the registered model name (``jaa_net``, ``eac_net``, ``me_graph_au``)."""

    model: AUModel
    name: str
    aus: tuple[int, ...]
    size: int
    box_enlarge: float
    threshold: float = 0.5

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


@dataclass(frozen=True)
class _Frame:
    """What the model made of the faces of one frame (F faces, N AUs), in working pixels."""

    faces: list[Face]
    points: np.ndarray  # (F, 49, 2) the landmarks the faces were aligned with
    landmark_sources: list[str]  # per face: "dlib", "jaa_net" or "template"
    probs: np.ndarray  # (F, N)
    notes: list[str]  # per face


def load_predictor(
    run: Path | str, epoch: int | None = None, *, device: str = "auto", threshold: float = 0.5
) -> Predictor:
    """The model of ``run`` at ``epoch`` (default: the last saved), on ``device``.

    The AU list, aligned size and box enlargement come from the run's aligned-crop cache
    (``cache.json``), which must therefore still be where the run was trained from.
    """
    run = Path(run)
    config = load_run_config(run)
    saved = checkpoint_paths(run)
    if not saved:
        raise AufacsError(f"run {run} has no checkpoint yet; train it first")
    chosen = max(saved) if epoch is None else epoch
    if chosen not in saved:
        raise AufacsError(f"run {run} has no checkpoint of epoch {chosen}; saved: {list(saved)}")
    if not 0 <= threshold <= 1:
        raise AufacsError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    folder = cache_folder(config.data, config.cache)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"run {run} needs its aligned-face cache {folder} (for its AU list and crop size), "
            "which is not there"
        )
    cache = AlignedCache.open(folder)
    model = build_run_model(config, cache, pretrained=False)
    model.load_state_dict(load_checkpoint(saved[chosen])["model"])
    model = model.to(resolve_device(device)).eval()
    return Predictor(model, config.model, cache.aus.aus, cache.size, cache.box_enlarge, threshold)


def output_columns(aus: Sequence[int]) -> list[str]:
    """The columns of a prediction table for AUs ``aus``, in order (module docstring)."""
    return [
        "source", "frame", "time_s", "face", "backend", "score", *BOX_COLUMNS, "landmarks",
        *LANDMARK_COLUMNS, *prob_columns(aus), *[au_column(a) for a in aus], "note",
    ]  # fmt: skip


def prob_columns(aus: Sequence[int]) -> list[str]:
    """``AU<n>_prob`` for each AU."""
    return [f"{au_column(a)}_prob" for a in aus]


def input_files(paths: Sequence[str | Path]) -> list[Path]:
    """The image and video files that ``paths`` name, in order: files as given, folders
    expanded to their image and video files (recursively, sorted). Raises AufacsError for a
    missing path, a file that is neither an image nor a video by its extension, or no file."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and _media_kind(p))
        elif not path.exists():
            raise AufacsError(f"input {path} does not exist")
        elif _media_kind(path) is None:
            raise AufacsError(
                f"{path} is neither an image nor a video (expected an extension such as .jpg, "
                ".png, .mp4 or .avi)"
            )
        else:
            files.append(path)
    if not files:
        raise AufacsError(f"no image or video file found in {', '.join(map(str, paths)) or '()'}")
    return files


def _media_kind(path: Path) -> str | None:
    if is_video(path):
        return "video"
    return "image" if path.suffix.lower() in IMAGE_EXTENSIONS else None


def _check_options(backend: str, step: int = 1, smooth: int = 0) -> str:
    """Refuse bad prediction options with one sentence, before any work; returns the detector
    that ``backend`` stands for (``"dlib"`` or ``"haar"``)."""
    if backend not in BACKENDS:
        raise AufacsError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "dlib" and not landmarks_available():
        raise AufacsError(INSTALL_HINT)
    for name, value, low in (("step", step, 1), ("smooth", smooth, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise AufacsError(f"{name} must be a whole number of frames >= {low}, got {value!r}")
    if backend == "auto":
        return "dlib" if landmarks_available() else "haar"
    return backend


def predict_paths(config: PredictConfig) -> pd.DataFrame:
    """Predict every face in ``config.paths`` with ``config.run`` and write ``config.out``."""
    _check_options(config.backend, config.step, config.smooth)
    files = input_files(config.paths)
    predictor = load_predictor(
        config.run, config.epoch, device=config.device, threshold=config.threshold
    )
    return predict_files(
        predictor, files, backend=config.backend, step=config.step, smooth=config.smooth,
        out=config.out, progress=config.progress,
    )  # fmt: skip


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
    """The prediction table of the images and videos in ``paths`` (see :func:`input_files`),
    also written to ``out`` as CSV unless None; ``attrs`` carry the videos' frames per second
    (module docstring)."""
    backend = _check_options(backend, step, smooth)
    files = input_files(paths)
    tables, speeds = [], {}
    bar = tqdm(files, desc="predict", unit="file", disable=not progress or len(files) < 2)
    for path in bar:
        if _media_kind(path) == "video":
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


def _speed_attrs(speeds: dict[str, tuple[int, float]]) -> dict:
    """``fps`` over all videos (None without videos) and ``fps_by_source``."""
    frames = sum(n for n, _ in speeds.values())
    seconds = sum(s for _, s in speeds.values())
    return {
        "fps": frames / seconds if seconds > 0 else None,
        "fps_by_source": {k: n / s for k, (n, s) in speeds.items() if s > 0},
    }


def _predict_image_file(predictor: Predictor, path: Path, backend: str) -> pd.DataFrame:
    try:
        image = load_image(path)
    except AufacsError as error:
        return _table(predictor, [_empty_row(str(path), backend, str(error))])
    return predict_image(predictor, image, source=str(path), backend=backend)


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
    total = _frame_count(path, step)
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


def _frame_count(path: Path, step: int) -> int | None:
    """The number of frames a video will yield at ``step``, if its container says."""
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return -(-count // step) if count > 0 else None


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


# --- one frame --------------------------------------------------------------------------------


def _working_copy(image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image_rgb`` shrunk to a longer side of at most :data:`MAX_SIDE`, and the (x, y)
    factors: working pixels per source pixel."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise AufacsError(
            f"image must be an (H, W, 3) uint8 RGB array, got shape {image.shape} {image.dtype}"
        )
    longest = max(image.shape[:2])
    if longest <= MAX_SIDE:
        return image, np.ones(2)
    height, width = image.shape[:2]
    size = (max(1, round(width * MAX_SIDE / longest)), max(1, round(height * MAX_SIDE / longest)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, np.array([size[0] / width, size[1] / height])


def _rescale(points: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) in an image resized by ``factor`` (x, y): pixel centres
    ``p`` map to ``(p + 0.5) * factor - 0.5``."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * factor - 0.5


def _aligned_inputs(
    predictor: Predictor, image: np.ndarray, points: np.ndarray
) -> tuple[dict[str, torch.Tensor], np.ndarray, _FaceInputs]:
    """The model batch of F faces of ``image`` aligned with ``points`` (F, 49, 2), the
    alignment matrices (F, 2, 3) and the data set that made the batch."""
    aligned = [align_face(image, p, predictor.box_enlarge, predictor.size) for p in points]
    crops = np.stack([crop for crop, _ in aligned])  # (F, S, S, 3)
    aligned_points = np.stack([p for _, p in aligned])  # (F, 49, 2)
    inputs = _FaceInputs(predictor, crops, aligned_points)
    batch = {k: v for k, v in inputs.dataset[np.arange(len(crops))].items() if k in _INPUT_KEYS}
    matrices = alignment_matrix(points, predictor.box_enlarge, predictor.size)
    return to_device(batch, predictor.device), matrices, inputs


class _FaceInputs:
    """Aligned faces turned into model inputs by the training data set's test transform.

    ``crops`` (F, S, S, 3) uint8 RGB aligned faces and ``points`` (F, 49, 2) their landmarks
    in crop pixels are held as an in-memory :class:`AlignedCache` (labels unknown), so that
    :func:`aufacs.engine.train.make_dataset` resizes, centre-crops and normalises them exactly as it
    does test frames.
    """

    def __init__(self, predictor: Predictor, crops: np.ndarray, points: np.ndarray) -> None:
        columns = [au_column(a) for a in predictor.aus]
        table = pd.concat(
            [
                pd.DataFrame(np.nan, index=range(len(crops)), columns=columns),
                pd.DataFrame({"biocular": biocular(points)}),
                landmark_frame(points),
            ],
            axis=1,
        )
        cache = AlignedCache(
            path=Path("<faces in memory>"), images=crops, table=table,
            aus=AUSet("run", predictor.aus), size=predictor.size, box_enlarge=predictor.box_enlarge,
            fingerprint="", defects=empty_defects(),
        )  # fmt: skip
        self.dataset = make_dataset(cache, None, predictor.model, train=False)

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Model-input pixels (..., 49, 2) -> aligned-face pixels (undoes crop and resize)."""
        return self.dataset.test_input_to_cached(points)


def _inverse_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverses of affine matrices (..., 2, 3) in the same form."""
    linear = np.linalg.inv(matrices[..., :2])
    offset = -(linear @ matrices[..., 2:])
    return np.concatenate([linear, offset], axis=-1)


def _forward(predictor: Predictor, batch: dict[str, torch.Tensor]) -> AUOutput:
    with torch.no_grad():
        return predictor.model(batch)


def _analyse_frame(predictor: Predictor, image: np.ndarray, backend: str) -> _Frame | None:
    """Detect, align and predict every face of one working-size frame (module docstring);
    None when it has no face."""
    faces = detect_faces(image, backend=backend, max_side=MAX_SIDE)
    count = len(faces)
    if not count:
        return None
    if faces[0].landmarks is not None:
        points = np.stack([face.landmarks for face in faces])
        output = _forward(predictor, _aligned_inputs(predictor, image, points)[0])
        return _Frame(faces, points, ["dlib"] * count, _probs(output), [""] * count)
    template = np.stack([box_to_initial_landmarks(face.box) for face in faces])
    batch, matrices, inputs = _aligned_inputs(predictor, image, template)
    output = _forward(predictor, batch)
    if output.landmarks is None:
        note = _NOTES.get(predictor.name, _HAAR_NOTE)
        return _Frame(faces, template, ["template"] * count, _probs(output), [note] * count)
    predicted = inputs.to_aligned(output.landmarks.float().cpu().numpy())
    predicted = transform_points(predicted, _inverse_affine(matrices))  # (F, 49, 2) frame pixels
    own = _plausible(predicted, template, np.array([face.box for face in faces]))
    points = np.where(own[:, None, None], predicted, template)
    output = _forward(predictor, _aligned_inputs(predictor, image, points)[0])
    sources = ["jaa_net" if ok else "template" for ok in own]
    notes = [_NOTES["jaa_net"] if ok else _IMPLAUSIBLE_NOTE for ok in own]
    return _Frame(faces, points, sources, _probs(output), notes)


def _probs(output: AUOutput) -> np.ndarray:
    """A model output's probabilities as (B, N) float numpy."""
    return output.au_prob.float().cpu().numpy()


def _plausible(points: np.ndarray, template: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which faces' predicted landmarks (F, 49, 2) fit their boxes (F, 4): finite, with an
    inter-ocular distance within :data:`PLAUSIBLE_SCALE` of the template's and the middle of
    the eyes inside the box. Returns (F,) bool."""
    ratio = inter_ocular(points) / inter_ocular(template)
    left, right = eye_centres(points)
    middle = 0.5 * (left + right)  # (F, 2)
    inside = np.all((middle >= boxes[:, :2]) & (middle < boxes[:, 2:]), axis=1)
    finite = np.isfinite(points).all(axis=(1, 2))
    return finite & inside & (ratio >= 1 / PLAUSIBLE_SCALE) & (ratio <= PLAUSIBLE_SCALE)


def _rows(
    predictor: Predictor,
    image_rgb: np.ndarray,
    source: str,
    backend: str,
    frame: tuple[int, float] | None = None,
) -> list[dict]:
    """Table rows of one frame: one per face, or one saying no face was found."""
    image, factor = _working_copy(image_rgb)
    result = _analyse_frame(predictor, image, backend)
    index, time_s = frame if frame is not None else (pd.NA, np.nan)
    if result is None:
        return [_empty_row(source, backend, NO_FACE, index, time_s)]
    faces = result.faces
    boxes = np.array([face.box for face in faces]) / np.tile(factor, 2)  # (F, 4)
    points = _rescale(result.points, 1.0 / factor).reshape(len(faces), -1)  # (F, 98)
    numbers = np.concatenate([boxes, points, result.probs], axis=1)
    decisions = (result.probs >= predictor.threshold).astype(int)  # (F, N)
    number_columns = [*BOX_COLUMNS, *LANDMARK_COLUMNS, *prob_columns(predictor.aus)]
    decision_columns = [au_column(a) for a in predictor.aus]
    rows = []
    for k, face in enumerate(faces):
        rows.append({
            "source": source, "frame": index, "time_s": time_s, "face": k,
            "backend": face.backend, "score": face.score, "landmarks": result.landmark_sources[k],
            "note": result.notes[k], **dict(zip(number_columns, numbers[k], strict=True)),
            **dict(zip(decision_columns, decisions[k], strict=True)),
        })  # fmt: skip
    return rows


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


# --- pictures ---------------------------------------------------------------------------------


def explain_face(
    row: pd.Series,
    predictor: Predictor,
    au: int,
    *,
    image: np.ndarray | None = None,
    method: str = "auto",
) -> Figure:
    """One predicted face: its aligned crop with the model's landmarks (JAA-Net's predicted
    ones, else those it was aligned with) and the heatmap of AU ``au`` (the model's attention,
    or Grad-CAM; ``method`` as in :func:`aufacs.analysis.heatmaps.attention_maps`), beside the
    bars of
    every AU's probability. ``row``: a row of a prediction table; ``image``: the frame as
    (H, W, 3) uint8 RGB, by default read again from the row's source (and frame)."""
    if au not in predictor.aus:
        raise AufacsError(f"au must be one of the run's AUs {list(predictor.aus)}, got {au!r}")
    if pd.isna(row.get("face")):
        raise AufacsError(f"row of {row.get('source')} has no face to explain: {row.get('note')}")
    frame = _source_frame(row) if image is None else image
    working, factor = _working_copy(frame)
    points = _rescale(landmarks_of(row.to_frame().T), factor)  # (1, 49, 2)
    batch = _aligned_inputs(predictor, working, points)[0]
    heatmaps = heatmap_set(predictor.model, batch, predictor.aus, method=method)
    figure = sample_figure(heatmaps, 0, predictor.aus.index(au))
    figure.suptitle(f"{Path(str(row['source'])).name}{_frame_label(row)}, face {row['face']}")
    return figure


def _frame_label(row: pd.Series) -> str:
    return "" if pd.isna(row.get("frame")) else f", frame {int(row['frame'])}"


def _source_frame(row: pd.Series) -> np.ndarray:
    """The frame a table row was predicted on, read again from its source file."""
    path = Path(str(row["source"]))
    if pd.isna(row.get("frame")):
        return load_image(path)
    wanted = int(row["frame"])
    for index, _, image in iter_video_frames(path, step=max(wanted, 1)):
        if index == wanted:
            return image
    raise AufacsError(f"video {path} has no frame {wanted}")


def demo_image() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain): (512, 512, 3) uint8 RGB."""
    try:
        from skimage import data
    except ImportError:
        raise AufacsError(
            "the demo face comes from scikit-image; install it with pip install scikit-image, "
            "or give a photo or video of your own"
        ) from None
    return data.astronaut()


def demo_image_file(folder: str | Path) -> Path:
    """Write :func:`demo_image` to ``<folder>/astronaut.png`` (once) and return the path."""
    path = Path(folder) / DEMO_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(demo_image(), cv2.COLOR_RGB2BGR))
    return path


def inputs_or_demo(input_path: str, folder: str | Path) -> list[Path]:
    """``[input_path]``, or the demo face written to ``folder`` when ``input_path`` is empty."""
    return [Path(input_path)] if input_path else [demo_image_file(folder)]


def faces_of(table: pd.DataFrame, limit: int | None = None) -> Iterator[pd.Series]:
    """The rows of ``table`` that hold a face (at most ``limit``), for :func:`explain_face`."""
    found = table[table["face"].notna()]
    for _, row in found.head(limit if limit is not None else len(found)).iterrows():
        yield row


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
