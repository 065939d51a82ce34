"""Prediction results drawn onto the frames they came from: boxes, landmarks, face ids and AU
bars (:func:`draw_results`), written as images (:func:`write_image`) or MP4 videos
(:class:`VideoOverlay`) with OpenCV; a few frames of such a video side by side
(:func:`video_strip`), and a demo clip for when one has no video (:func:`demo_video`).

Rows are prediction-table rows as mappings (:mod:`aufacs.inference.predict`; coordinates in
pixels of the frame drawn on). Each face gets its box and its 49 landmarks, ``id <face_id>``
above the box, and beside it one bar per AU, as long as the AU's probability, red when the AU
is present (its decision is 1) and blue when not. Files are written atomically: the picture
or video appears under its name only once it is complete.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError
from aufacs.core.io import atomic_write
from aufacs.data.table import LANDMARK_COLUMNS
from aufacs.inference.explain import demo_image
from aufacs.inference.media import frame_count, is_image, is_video, iter_video_frames, load_image

#: Colours, RGB.
BOX_COLOUR = (40, 220, 40)
POINT_COLOUR = (255, 210, 0)
PRESENT_COLOUR = (235, 60, 50)
ABSENT_COLOUR = (80, 140, 235)
PANEL_COLOUR = (30, 30, 30)
#: Image extensions an overlay keeps; other images are written as PNG.
KEPT_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
#: Four-character code of the MP4 videos written.
FOURCC = "mp4v"
#: File name and frame rate of the demo clip (:func:`demo_video`); BP4D is filmed at 25 fps.
DEMO_VIDEO = "demo_video.mp4"
DEMO_FPS = 25.0
#: Frames of the demo clip panned across the demo face.
PAN_FRAMES = 12


def overlay_path(folder: str | Path, source: str | Path) -> Path:
    """Where the overlay of input file ``source`` goes in ``folder``: a video as
    ``<stem>.mp4``, an image under its own name (as ``<stem>.png`` when its format is not
    one of :data:`KEPT_EXTENSIONS`)."""
    source = Path(source)
    if is_video(source):
        return Path(folder) / f"{source.stem}.mp4"
    suffix = source.suffix.lower()
    return Path(folder) / (source.name if suffix in KEPT_EXTENSIONS else f"{source.stem}.png")


def draw_results(image_rgb: np.ndarray, rows: Sequence[Mapping], aus: Sequence[int]) -> np.ndarray:
    """A copy of ``image_rgb`` (H, W, 3) uint8 with the faces of ``rows`` drawn on it (module
    docstring); rows without a face are skipped."""
    canvas = np.ascontiguousarray(image_rgb).copy()
    for row in rows:
        if pd.notna(row.get("box_x0", np.nan)):
            _draw_face(canvas, row, aus)
    return canvas


def write_image(
    path: str | Path, image_rgb: np.ndarray, rows: Sequence[Mapping], aus: Sequence[int]
) -> Path:
    """Write ``image_rgb`` with ``rows`` drawn on it to ``path`` (format by its extension)."""
    path = Path(path)
    bgr = cv2.cvtColor(draw_results(image_rgb, rows, aus), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", bgr)
    if not ok:
        raise AufacsError(f"OpenCV cannot write an image as {path.suffix!r} ({path})")
    with atomic_write(path, "wb") as handle:
        handle.write(encoded.tobytes())
    return path


class VideoOverlay:
    """An MP4 video at ``fps`` frames per second written frame by frame (:meth:`write`) to
    ``path``, which appears when :meth:`close` is called after at least one frame."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.frames = 0
        token = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._temporary = self.path.with_name(f".{self.path.stem}.{token}.partial.mp4")
        self._writer: cv2.VideoWriter | None = None

    def write(self, image_rgb: np.ndarray, rows: Sequence[Mapping], aus: Sequence[int]) -> None:
        """Append ``image_rgb`` (H, W, 3) uint8, every frame the same size, with ``rows``
        drawn on it."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = image_rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*FOURCC)
            self._writer = cv2.VideoWriter(str(self._temporary), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise AufacsError(f"OpenCV cannot write an MP4 video to {self.path}")
        self._writer.write(cv2.cvtColor(draw_results(image_rgb, rows, aus), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def discard(self) -> None:
        """Stop writing and leave nothing behind."""
        if self._writer is not None:
            self._writer.release()
        self._temporary.unlink(missing_ok=True)

    def close(self) -> Path | None:
        """Finish the video and put it in place; its path, or None when no frame came."""
        try:
            if self._writer is None:
                return None
            self._writer.release()
            os.replace(self._temporary, self.path)
            return self.path
        finally:
            self._temporary.unlink(missing_ok=True)


def video_from_images(images: Sequence[str | Path], path: str | Path, fps: float = 10.0) -> Path:
    """An MP4 video at ``fps`` of the image files ``images``, in order, each resized to the
    first one's size (a demo clip from a folder of frames); AufacsError without images."""
    if not images:
        raise AufacsError(f"no images to make the video {path} from")
    writer = VideoOverlay(path, fps)
    size = None
    try:
        for image_path in images:
            image = load_image(image_path)
            size = size or image.shape[1::-1]
            if image.shape[1::-1] != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            writer.write(image, [], ())
    except BaseException:
        writer.discard()
        raise
    writer.close()
    return Path(path)


def demo_video(folder: str | Path, frames: str | Path) -> Path:
    """Write the demo clip ``<folder>/demo_video.mp4`` at :data:`DEMO_FPS` and return its path:
    the image files of folder ``frames`` in name order (such as the two BP4D frames of the
    shared fixtures), or, when it holds none, :data:`PAN_FRAMES` frames of a window panning
    across the demo face (:func:`aufacs.inference.explain.demo_image`)."""
    path = Path(folder) / DEMO_VIDEO
    images = sorted(p for p in Path(frames).glob("*") if p.is_file() and is_image(p))
    if images:
        return video_from_images(images, path, DEMO_FPS)
    face = demo_image()  # (512, 512, 3), her face in rows 20-240 and columns 120-340
    side = 3 * face.shape[1] // 4  # a 384 px window along the top, from left to right
    writer = VideoOverlay(path, DEMO_FPS)
    for left in np.linspace(0, face.shape[1] - side, PAN_FRAMES).round().astype(int):
        writer.write(face[:side, left : left + side], [], ())
    writer.close()
    return path


def video_strip(path: str | Path, count: int = 3) -> Figure:
    """``count`` frames of video ``path`` spread evenly from its first to its last (all of
    them when it has fewer) side by side, each titled with its index and time in seconds."""
    total = frame_count(path) or count
    wanted = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())
    shown = []
    for index, time_s, rgb in iter_video_frames(path):
        if index in wanted:
            shown.append((index, time_s, rgb))
        if len(shown) == len(wanted):
            break
    figure = Figure(figsize=(3.2 * len(shown), 3.6), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for ax, (index, time_s, rgb) in zip(axes, shown, strict=True):
        ax.imshow(rgb)
        ax.set_title(f"frame {index} · {time_s:.2f} s", fontsize="small")
        ax.set_axis_off()
    return figure


def _draw_face(canvas: np.ndarray, row: Mapping, aus: Sequence[int]) -> None:
    """Draw one face's box, landmarks, id and AU bars on ``canvas`` in place."""
    x0, y0, x1, y1 = (float(row[c]) for c in ("box_x0", "box_y0", "box_x1", "box_y1"))
    width = max(x1 - x0, 1.0)
    thick = max(1, round(width / 120))
    font = float(np.clip(width / 260, 0.35, 1.2))
    cv2.rectangle(canvas, _px(x0, y0), _px(x1 - 1, y1 - 1), BOX_COLOUR, thick, cv2.LINE_AA)
    points = np.array([row.get(c, np.nan) for c in LANDMARK_COLUMNS], dtype=np.float64)
    for x, y in points.reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(canvas, _px(x, y), max(1, thick), POINT_COLOUR, -1, cv2.LINE_AA)
    face_id = row.get("face_id", row.get("face"))
    label = f"id {int(face_id)}" if pd.notna(face_id) else "face"
    cv2.putText(canvas, label, _px(x0, y0 - 4 * thick), 0, font, BOX_COLOUR, thick, cv2.LINE_AA)
    _draw_bars(canvas, row, aus, (x0, y0, x1), font)


def _draw_bars(
    canvas: np.ndarray, row: Mapping, aus: Sequence[int], edges: tuple, font: float
) -> None:
    """One bar per AU beside the box (right of it, or left where the image ends)."""
    x0, y0, x1 = edges
    line = max(10, round(24 * font))
    length = max(30.0, 0.6 * (x1 - x0))
    label = cv2.getTextSize("AU24", 0, font * 0.8, 1)[0][0] + 4
    panel = label + length + 6
    left = x1 + 6 if x1 + 6 + panel <= canvas.shape[1] else max(0.0, x0 - 6 - panel)
    top = max(0.0, y0)
    bottom = top + line * len(aus) + 4
    cv2.rectangle(canvas, _px(left, top), _px(left + panel, bottom), PANEL_COLOUR, -1)
    for k, au in enumerate(aus):
        prob = float(row.get(f"{au_column(au)}_prob", np.nan))
        present = row.get(au_column(au), 0)
        y = top + 2 + k * line
        colour = PRESENT_COLOUR if pd.notna(present) and int(present) == 1 else ABSENT_COLOUR
        text_at = _px(left + 2, y + 0.8 * line)
        cv2.putText(canvas, f"AU{au}", text_at, 0, font * 0.8, (255, 255, 255), 1, cv2.LINE_AA)
        if np.isfinite(prob):
            end = left + label + length * min(max(prob, 0.0), 1.0)
            cv2.rectangle(canvas, _px(left + label, y + 2), _px(end, y + line - 2), colour, -1)


def _px(x: float, y: float) -> tuple[int, int]:
    """A point as whole pixels for OpenCV's drawing functions."""
    return int(round(x)), int(round(y))
