"""A video's frames through detection, landmarks, alignment and the model, with face tracks,
detection every N frames and the faces of several frames in one forward pass
(:class:`VideoAnalyser`), timing each stage (:data:`STAGES`).

**Detection every N frames.** With ``detect_every = N > 1`` the detector runs on every N-th
predicted frame (and whenever no face is being followed); in between, each face is followed
from its previous predicted frame: with dlib, the shape predictor places fresh landmarks in
the face's last box (the box then moves with them); with Haar boxes and JAA-Net, the face is
aligned with the landmarks JAA-Net predicted on the face's latest predicted frame, which
saves the model's first pass on the template; JAA-Net's landmarks that no longer fit the box
(:func:`aufacs.inference.frame.plausible`) end the following, and the next frame is searched
again. Other models with Haar boxes keep the template in the last box. A followed face keeps
its detection score.

**Batches.** The aligned faces of consecutive frames are gathered until there are at least
``batch_size`` of them, then go through the model in one forward pass. With ``detect_every``
1 the result does not depend on the batch size (up to float rounding); with larger
``detect_every``, a followed JAA-Net face is aligned with the landmarks of the latest frame
whose batch has already gone through the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from aufacs.inference.faces import (
    Face,
    add_landmarks,
    box_to_initial_landmarks,
    detect_boxes,
    dlib_landmarks,
    resolve_backend,
    working_copy,
)
from aufacs.inference.frame import NOTES, FrameFaces, alignment_points, plausible
from aufacs.inference.predictor import ModelInputs, Predictor, model_inputs
from aufacs.inference.tracking import FaceTracker

#: The stages of a video frame whose time is measured, in order.
STAGES = ("decode", "detect", "landmarks", "align", "model")
#: The note of a face followed from its previous frame instead of detected.
FOLLOWED_NOTE = "followed from the previous predicted frame (no detection on this frame)"


class StageClock:
    """Seconds spent in each of :data:`STAGES`."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time the block takes to stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def timed(self, items: Iterable, name: str) -> Iterator:
        """The items of ``items``, the time of fetching each added to stage ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                item = next(iterator, StopIteration)
            if item is StopIteration:
                return
            yield item


@dataclass
class AnalysedFrame:
    """One predicted frame: its ``index`` and ``time_s``, ``image`` (the decoded (H, W, 3)
    RGB frame), ``factor`` (working-copy pixels per source pixel, x and y), ``result`` (None
    without a face; coordinates in working-copy pixels) and each face's track id ``ids``."""

    index: int
    time_s: float
    image: np.ndarray
    factor: np.ndarray
    result: FrameFaces | None
    ids: list[int]


@dataclass
class _Track:
    """A face being followed: its last box, landmarks, their source and detection score."""

    box: tuple[float, float, float, float]
    points: np.ndarray
    source: str
    score: float


@dataclass
class _Planned:
    """A frame whose faces are aligned and wait for the model."""

    frame: AnalysedFrame
    faces: list[Face]
    points: np.ndarray
    sources: list[str]
    notes: list[str]
    tracks: list[_Track]
    inputs: ModelInputs | None
    followed: bool = False
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass
class VideoAnalyser:
    """Analyses the frames of one video in order (module docstring)."""

    predictor: Predictor
    backend: str
    min_score: float | None = None
    detect_every: int = 1
    batch_size: int = 8
    clock: StageClock = field(default_factory=StageClock)
    tracker: FaceTracker = field(default_factory=FaceTracker)
    tracks: list[_Track] = field(default_factory=list)
    planned: int = 0

    def __post_init__(self) -> None:
        self.backend = resolve_backend(self.backend)

    def run(self, frames: Iterable[tuple[int, float, np.ndarray]]) -> Iterator[AnalysedFrame]:
        """Each ``(index, time_s, rgb)`` of ``frames`` analysed, in order."""
        pending: list[_Planned] = []
        for index, time_s, rgb in self.clock.timed(frames, "decode"):
            with self.clock.stage("decode"):
                image, factor = working_copy(rgb)
            frame = AnalysedFrame(index, time_s, rgb, factor, None, [])
            pending.append(self._plan(frame, image))
            if sum(len(p.faces) for p in pending) >= self.batch_size:
                yield from self._flush(pending)
                pending = []
        yield from self._flush(pending)

    def _plan(self, frame: AnalysedFrame, image: np.ndarray) -> _Planned:
        """Find (or follow) the faces of one working-copy frame and align them."""
        detect = not self.tracks or self.planned % self.detect_every == 0
        self.planned += 1
        if detect:
            with self.clock.stage("detect"):
                faces = detect_boxes(image, backend=self.backend, min_score=self.min_score)
            with self.clock.stage("landmarks"):
                faces = add_landmarks(image, faces)
                found = alignment_points(self.predictor, image, faces) if faces else None
            points, sources, notes = found or (np.zeros((0, 49, 2)), [], [])
            self.tracks = [
                _Track(f.box, p, s, f.score) for f, p, s in zip(faces, points, sources, strict=True)
            ]
        else:
            with self.clock.stage("landmarks"):
                faces, points, sources, notes = self._follow(image)
        frame.ids = self.tracker.assign(np.array([face.box for face in faces]).reshape(-1, 4))
        inputs = None
        if faces:
            with self.clock.stage("align"):
                inputs = model_inputs(self.predictor, image, points)
        tracks = list(self.tracks)
        return _Planned(frame, faces, points, sources, notes, tracks, inputs, not detect)

    def _follow(self, image: np.ndarray) -> tuple[list[Face], np.ndarray, list[str], list[str]]:
        """The faces of the tracks on a frame without detection (module docstring)."""
        name = self.predictor.name
        points, sources = [], []
        for track in self.tracks:
            if self.backend == "dlib":
                fresh = dlib_landmarks(image, track.box)
                track.box = _moved(track.box, fresh.mean(0) - track.points.mean(0))
                track.points = fresh
            elif name != "jaa_net":
                track.points = box_to_initial_landmarks(track.box)
            points.append(track.points.copy())
            sources.append(track.source)
        faces = [Face(t.box, None, t.score, self.backend) for t in self.tracks]
        note = (
            FOLLOWED_NOTE
            if self.backend == "dlib" or name == "jaa_net"
            else NOTES.get(name, FOLLOWED_NOTE)
        )
        return faces, np.stack(points), sources, [note] * len(faces)

    def _flush(self, pending: list[_Planned]) -> Iterator[AnalysedFrame]:
        """Run the model once on the faces of ``pending`` and hand their frames on."""
        ready = [p for p in pending if p.inputs is not None]
        if ready:
            batch = {
                key: torch.cat([p.inputs.batch[key] for p in ready])
                for key in ready[0].inputs.batch
            }
            with self.clock.stage("model"):
                output = self.predictor.forward(batch)
            probs = output.au_prob.float().cpu().numpy()
            own = None if output.landmarks is None else output.landmarks.float().cpu().numpy()
            start = 0
            for planned in ready:
                stop = start + len(planned.faces)
                planned.probs = probs[start:stop]
                if own is not None and self.backend == "haar" and self.detect_every > 1:
                    self._update_tracks(planned, own[start:stop])
                start = stop
        for planned in pending:
            frame = planned.frame
            if planned.faces:
                frame.result = FrameFaces(
                    planned.faces, planned.points, planned.sources, planned.probs, planned.notes
                )
            yield frame

    def _update_tracks(self, planned: _Planned, landmarks: np.ndarray) -> None:
        """Move a frame's tracks to JAA-Net's landmarks (F, 49, 2, model-input pixels) on it;
        stop following when they do not fit the box."""
        predicted = planned.inputs.to_image(landmarks)
        boxes = np.array([track.box for track in planned.tracks])
        template = np.stack([box_to_initial_landmarks(box) for box in boxes])
        if not plausible(predicted, template, boxes).all():
            self.tracks = []
            return
        for track, points in zip(planned.tracks, predicted, strict=True):
            track.box = _moved(track.box, points.mean(0) - track.points.mean(0))
            track.points, track.source = points, "jaa_net"


def speed_attrs(speeds: dict[str, dict]) -> dict:
    """``fps`` over all videos (None without videos), ``fps_by_source`` and ``stages``
    (seconds per stage over all videos), from each video's table ``attrs``."""
    frames = sum(a["frames"] for a in speeds.values())
    seconds = sum(a["seconds"] for a in speeds.values())
    return {
        "fps": frames / seconds if seconds > 0 else None,
        "fps_by_source": {k: a["frames"] / a["seconds"] for k, a in speeds.items() if a["seconds"]},
        "stages": {s: sum(a["stages"][s] for a in speeds.values()) for s in STAGES},
    }


def speed_line(name: str, attrs: dict) -> str:
    """One status line: a video's frames per second and the seconds of each stage."""
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in attrs["stages"].items())
    return f"{name}: {attrs['frames']} frames at {attrs['fps']:.1f} frames/s ({stages})"


def _moved(box: tuple[float, float, float, float], shift: np.ndarray) -> tuple:
    """``box`` moved by ``shift`` (x, y) pixels."""
    dx, dy = (float(v) for v in shift)
    x0, y0, x1, y1 = box
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
