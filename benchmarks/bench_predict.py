"""Frames per second of ``aufacs predict`` on a 640 x 480 video through JAA-Net, the code before
and after issue 16 side by side in one process, with the seconds of each stage.

    python -m benchmarks.bench_predict                     # 2 threads, 40 frames, 3 rounds
    python -m benchmarks.bench_predict --threads 1 --frames 4 --warmup 0 --repeats 1
        --backends haar                                    # (one line) the smallest run

Run from the repository root. The video is scikit-image's astronaut (her head, 220 px) moving
across a grey 640 x 480 frame, 3 px a frame, written as MJPG; JAA-Net has random weights at its
official 176 px crop (speed does not depend on the weights). Per detector (``--backends``):

- ``previous``: the code before issue 16, frame by frame (detection and landmarks on every
  frame, JAA-Net twice per Haar face, one forward pass per frame), rebuilt from the same
  building blocks (:func:`aufacs.inference.frame.analyse_frame` per working copy);
- ``batched``: :func:`aufacs.inference.predict.predict_video` with its defaults (detection on
  every frame, 8 faces per forward pass);
- ``detect every 5``: the same with ``detect_every=5`` (faces followed between detections).

Rounds alternate the pipelines (:func:`benchmarks.timing.interleaved`), so load from other
processes hits them alike; compare the ratios on a shared machine, not the absolute rates.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from aufacs.core.aus import BP4D
from aufacs.inference.faces import working_copy
from aufacs.inference.frame import analyse_frame
from aufacs.inference.media import iter_video_frames
from aufacs.inference.predict import predict_video
from aufacs.inference.predictor import Predictor
from aufacs.inference.video import STAGES
from aufacs.models import build_model
from benchmarks.timing import interleaved, load_line, machine_description, markdown_table

#: Frame size of the benchmark video (width, height) and the head's motion per frame, px.
FRAME_SIZE = (640, 480)
MOTION = 3
#: Table header.
HEADER = ["backend", "pipeline", "median s", "min s", "frames/s (best)", "speed-up", *STAGES]


def make_video(path: Path, frames: int) -> Path:
    """The benchmark video (module docstring) at 10 frames per second."""
    from skimage import data

    head = np.ascontiguousarray(data.astronaut()[20:240, 120:340])
    width, height = FRAME_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, FRAME_SIZE)
    for k in range(frames):
        frame = np.full((height, width, 3), 128, np.uint8)
        x = 60 + (k * MOTION) % (width - 280)
        frame[130:350, x : x + 220] = head
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def previous(predictor: Predictor, video: Path, backend: str) -> int:
    """The pipeline before issue 16 (module docstring); the number of faces found."""
    found = 0
    for _, _, rgb in iter_video_frames(video):
        image, _ = working_copy(rgb)
        result = analyse_frame(predictor, image, backend, min_score=-np.inf)
        found += 0 if result is None else len(result.faces)
    return found


def pipelines(predictor: Predictor, video: Path, backend: str) -> dict:
    """Name -> call of each pipeline on ``video``; the new ones keep their stage seconds in
    ``stages`` (name -> list of dicts, one per call)."""
    stages: dict[str, list[dict]] = {"batched": [], "detect every 5": []}

    def new(name: str, detect_every: int) -> None:
        table = predict_video(
            predictor, video, backend=backend, detect_every=detect_every, progress=False
        )
        stages[name].append(table.attrs["stages"])

    calls = {
        "previous": lambda: previous(predictor, video, backend),
        "batched": lambda: new("batched", 1),
        "detect every 5": lambda: new("detect every 5", 5),
    }
    return {"calls": calls, "stages": stages}


def rows_of(backend: str, times: dict, stages: dict, frames: int) -> list[list[str]]:
    """Table rows of one detector: times, best frames per second, speed-up over ``previous``
    (ratio of the minima) and the median seconds of each stage per frame (ms)."""
    rows = []
    reference = min(times["previous"]["wall"])
    for name, run in times.items():
        best = min(run["wall"])
        recent = stages.get(name, [])[-len(run["wall"]) :]
        per_stage = [
            f"{1000 * statistics.median(s[stage] for s in recent) / frames:.1f}" if recent else ""
            for stage in STAGES
        ]
        cells = [f"{statistics.median(run['wall']):.2f}", f"{best:.2f}", f"{frames / best:.1f}"]
        rows.append([backend, name, *cells, f"{reference / best:.2f}x", *per_stage])
    return rows


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--frames", type=int, default=40, help="video frames (default 40)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--backends", nargs="+", choices=["dlib", "haar"], default=["dlib", "haar"])
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = build_model("jaa_net", len(BP4D)).eval()
    predictor = Predictor(model, "jaa_net", BP4D.aus, 200, 2.9)
    print(f"## predict on a 640 x 480 video, JAA-Net, {args.frames} frames\n")
    print(machine_description(args.threads))
    print()
    print(markdown_table(HEADER, []), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "bench.avi", args.frames)
        for backend in args.backends:
            setup = pipelines(predictor, video, backend)
            times = interleaved(setup["calls"], args.warmup, args.repeats)
            for row in rows_of(backend, times, setup["stages"], args.frames):
                print("| " + " | ".join(row) + " |", flush=True)
    print("\n- stage columns: median ms per frame (decode includes the working copy)")
    print(load_line())


if __name__ == "__main__":
    main()
