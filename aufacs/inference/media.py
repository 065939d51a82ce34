"""Which files are photos or videos, and reading them as (H, W, 3) uint8 RGB frames.

A file is an image or a video by its extension alone (:data:`IMAGE_EXTENSIONS`,
:data:`VIDEO_EXTENSIONS`, any case); decoding is OpenCV's. Reading errors are AufacsError
sentences that name the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from aufacs.core.errors import AufacsError

#: Extensions of the image files OpenCV reads (``cv2.imread``), lower case.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .bmp .dib .tif .tiff .webp .jp2 .pbm .pgm .ppm .pnm .sr .ras .exr "
    ".hdr .pic".split()
)
#: Extensions of the video files OpenCV reads (``cv2.VideoCapture``), lower case.
VIDEO_EXTENSIONS = frozenset(".mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv .flv".split())


def is_image(path: str | Path) -> bool:
    """Whether ``path`` names an image, by its extension (see :data:`IMAGE_EXTENSIONS`)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video, by its extension (see :data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def input_files(paths: Sequence[str | Path]) -> list[Path]:
    """The image and video files that ``paths`` name, in order: files as given, folders
    expanded to their image and video files (recursively, sorted). Raises AufacsError for a
    missing path, a file that is neither an image nor a video by its extension, or no file."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and (is_image(p) or is_video(p))
            )
        elif not path.exists():
            raise AufacsError(f"input {path} does not exist")
        elif not (is_image(path) or is_video(path)):
            raise AufacsError(
                f"{path} is neither an image nor a video (expected an extension such as .jpg, "
                ".png, .mp4 or .avi)"
            )
        else:
            files.append(path)
    if not files:
        raise AufacsError(f"no image or video file found in {', '.join(map(str, paths)) or '()'}")
    return files


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file (any format OpenCV reads) as (H, W, 3) uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise AufacsError(f"image file {path} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AufacsError(f"{path} is not an image file OpenCV can read (JPEG, PNG, BMP, TIFF...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_video_frames(
    path: str | Path, *, step: int = 1
) -> Iterator[tuple[int, float, np.ndarray]]:
    """The frames of a video: ``(index, time_s, rgb)`` for every ``step``-th frame.

    ``index`` counts from 0 over all frames of the file; ``time_s`` is ``index / fps`` seconds
    (the container's timestamp when it gives no frame rate); ``rgb`` is (H, W, 3) uint8. The
    file is opened and its first frame read at once, so an unreadable video raises AufacsError
    here, not on the first ``next()``.
    """
    if not isinstance(step, int) or step < 1:
        raise AufacsError(f"step must be a positive whole number of frames, got {step!r}")
    path = Path(path)
    if not path.is_file():
        raise AufacsError(f"video file {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened() or not capture.grab():
        capture.release()
        raise AufacsError(f"{path} is not a video OpenCV can read (MP4, AVI, MOV, MKV...)")
    return _grabbed_frames(capture, step)


def _grabbed_frames(
    capture: cv2.VideoCapture, step: int
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode every ``step``-th frame of ``capture``, whose frame 0 is already grabbed."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    index = 0
    try:
        while True:
            if index % step == 0:
                ok, bgr = capture.retrieve()
                if not ok:
                    return
                time_s = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                yield index, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if not capture.grab():
                return
            index += 1
    finally:
        capture.release()


def video_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of a video as (H, W, 3) uint8 RGB, or AufacsError."""
    for found, _, image in iter_video_frames(path, step=max(index, 1)):
        if found == index:
            return image
    raise AufacsError(f"video {path} has no frame {index}")


def frame_count(path: str | Path, step: int = 1) -> int | None:
    """The number of frames :func:`iter_video_frames` will yield at ``step``, if the
    container says how many frames it holds; else None."""
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return -(-count // step) if count > 0 else None


def video_fps(path: str | Path, default: float = 25.0) -> float:
    """The frame rate the container of video ``path`` states, or ``default`` when it states
    none."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return float(fps) if fps > 0 else default
