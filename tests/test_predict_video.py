"""Videos and photos the way toolkit users expect them (issue 16): face ids across frames,
the minimum detection score, detection every N frames, batches, stage times, overlays and the
long form of the results table, with a tiny trained JAA-Net."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from train_worker import make_data, tiny_config

from aufacs.core.aus import BP4D
from aufacs.core.config import add_config_arguments, config_from_args
from aufacs.core.errors import AufacsError
from aufacs.data.table import landmarks_of
from aufacs.engine.train import train
from aufacs.inference import faces, media, overlay, predict, results, rows, tracking, video
from aufacs.inference.predictor import Predictor, load_predictor
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec

needs_dlib = pytest.mark.skipif(
    not faces.landmarks_available(), reason="the aufacs[landmarks] extra is not installed"
)
BACKENDS = ["haar", pytest.param("dlib", marks=needs_dlib)]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """A tiny JAA-Net trained for two epochs of four steps (about two seconds)."""
    root = tmp_path_factory.mktemp("predict_video_run")
    train(tiny_config(make_data(root / "data"), root / "run"))
    return load_predictor(root / "run", device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return pytest.importorskip("skimage.data").astronaut()


@pytest.fixture(scope="module")
def head(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut around her face: (220, 220, 3), a face box of about 95 px."""
    return np.ascontiguousarray(astronaut[20:240, 120:340])


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _moving(head: np.ndarray, count: int, step: int = 4) -> list[np.ndarray]:
    """``count`` 360 x 480 grey frames with ``head`` moving right by ``step`` px a frame."""
    frames = []
    for k in range(count):
        frame = np.full((360, 480, 3), 128, np.uint8)
        frame[70:290, 40 + step * k : 260 + step * k] = head
        frames.append(frame)
    return frames


def _probs(table: pd.DataFrame) -> np.ndarray:
    return table[results.prob_columns(BP4D.aus)].to_numpy(dtype=np.float64)


# --- the minimum detection score --------------------------------------------------------------


@needs_dlib
def test_the_mission_patch_is_no_face_by_default_but_scores_above_nothing(
    astronaut: np.ndarray,
) -> None:
    pair = np.hstack([astronaut, astronaut])
    everything = faces.detect_faces(pair, backend="dlib", min_score=-np.inf)
    kept = faces.detect_faces(pair, backend="dlib")
    assert len(everything) == 4 and min(f.score for f in everything) < 0.1
    assert len(kept) == 2 and min(f.score for f in kept) >= faces.MIN_SCORE["dlib"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_astronauts_give_two_faces_with_two_ids_and_no_third(
    predictor: Predictor, astronaut: np.ndarray, backend: str
) -> None:
    table = predict.predict_image(predictor, np.hstack([astronaut, astronaut]), backend=backend)
    assert table["face"].tolist() == [0, 1] and sorted(table["face_id"]) == [0, 1]
    assert (table["score"] >= faces.MIN_SCORE[backend]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_astronaut_is_one_face(
    predictor: Predictor, astronaut: np.ndarray, backend: str
) -> None:
    table = predict.predict_image(predictor, astronaut, backend=backend)
    assert len(table) == 1 and table["face"].tolist() == [0]
    assert (
        170 < table["box_x0"][0] < 190
        and np.isfinite(table[["yaw", "pitch", "roll"]].to_numpy()).all()
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_bp4d_fixture_frames_are_one_face_each(
    predictor: Predictor, shared_fixtures: Path, backend: str
) -> None:
    raw = shared_fixtures / "bp4d_sample" / "raw"
    table = predict.predict_files(predictor, [raw], backend=backend, progress=False)
    assert table["face"].tolist() == [0, 0] and table["source"].nunique() == 2


def test_a_minimum_score_above_every_face_leaves_no_face(
    predictor: Predictor, astronaut: np.ndarray
) -> None:
    table = predict.predict_image(predictor, astronaut, backend="haar", min_score=1e9)
    assert table["note"].tolist() == [results.NO_FACE]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("detect_every", 0, "detect_every must be a whole number of frames >= 1"),
        ("batch_size", 0, "batch_size must be a whole number of faces >= 1"),
        ("min_score", float("nan"), "min_score must be a finite number"),
    ],
)
def test_bad_video_options_are_refused(
    predictor: Predictor, tmp_path: Path, option: str, value: object, message: str
) -> None:
    with pytest.raises(AufacsError, match=message):
        predict.predict_video(predictor, tmp_path / "clip.avi", **{option: value})


def test_the_new_options_are_command_line_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, predict.PredictConfig)
    flags = "--min-score 0.5 --detect-every 3 --batch-size 4 --overlay".split()
    args = parser.parse_args([*flags, str(tmp_path)])
    config = config_from_args(predict.PredictConfig, args)
    assert (config.min_score, config.detect_every, config.batch_size) == (0.5, 3, 4)
    assert config.overlay == tmp_path


# --- tracking ---------------------------------------------------------------------------------


def test_box_iou_of_equal_disjoint_and_half_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=float)
    overlap = tracking.box_iou(boxes[:1], boxes)
    assert np.allclose(overlap, [[1.0, 0.0, 50 / 150]])


def test_a_tracker_keeps_ids_by_overlap_not_by_size_or_order() -> None:
    tracker = tracking.FaceTracker()
    big, small = np.array([0, 0, 100, 100.0]), np.array([200, 0, 260, 60.0])
    assert tracker.assign(np.stack([big, small])) == [0, 1]
    grown = small + [-20, 0, 20, 40]  # now the larger box, listed first
    assert tracker.assign(np.stack([grown, big + 5])) == [1, 0]
    assert tracker.assign(np.array([[400, 400, 450, 450.0]])) == [2]


def test_a_tracker_forgets_a_face_missing_for_longer_than_its_patience() -> None:
    tracker = tracking.FaceTracker(patience=1)
    box = np.array([[0, 0, 50, 50.0]])
    assert tracker.assign(box) == [0]
    tracker.assign(np.zeros((0, 4)))
    assert tracker.assign(box) == [0]
    tracker.assign(np.zeros((0, 4)))
    tracker.assign(np.zeros((0, 4)))
    assert tracker.assign(box) == [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_faces_keep_their_ids_while_their_sizes_swap(
    predictor: Predictor, head: np.ndarray, tmp_path: Path, backend: str
) -> None:
    frames = []
    for k in range(4):
        left = cv2.resize(head, (200 + 30 * k,) * 2, interpolation=cv2.INTER_AREA)
        right = cv2.resize(head, (290 - 30 * k,) * 2, interpolation=cv2.INTER_AREA)
        frame = np.full((320, 640, 3), 128, np.uint8)
        frame[: left.shape[0], : left.shape[1]] = left
        frame[: right.shape[0], 640 - right.shape[1] :] = right
        frames.append(frame)
    clip = _write_video(tmp_path / "two.avi", frames)
    table = predict.predict_video(predictor, clip, backend=backend, progress=False)
    left = table[table["box_x0"] < 320]
    assert len(table) == 8 and left["face_id"].nunique() == 1 and table["face_id"].nunique() == 2
    assert left["face"].tolist()[0] == 1 and left["face"].tolist()[-1] == 0  # ranks swap


# --- detection every N frames, batches, stage times -------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_batch_size_does_not_change_the_results(
    predictor: Predictor, head: np.ndarray, tmp_path: Path, backend: str
) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 5))
    one = predict.predict_video(predictor, clip, backend=backend, batch_size=1, progress=False)
    many = predict.predict_video(predictor, clip, backend=backend, batch_size=8, progress=False)
    assert np.allclose(_probs(one), _probs(many), atol=1e-5)
    assert np.allclose(landmarks_of(one), landmarks_of(many))


@pytest.mark.parametrize("backend", BACKENDS)
def test_detection_every_third_frame_follows_the_face_in_between(
    predictor: Predictor, head: np.ndarray, tmp_path: Path, backend: str
) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 6))
    every = predict.predict_video(predictor, clip, backend=backend, progress=False)
    third = predict.predict_video(predictor, clip, backend=backend, detect_every=3, progress=False)
    followed = third["note"].str.startswith(video.FOLLOWED_NOTE)
    assert followed.tolist() == [False, True, True, False, True, True]
    assert third["face_id"].tolist() == [0] * 6 and np.isfinite(_probs(third)).all()
    drift = np.abs(third[rows.BOX_COLUMNS].to_numpy() - every[rows.BOX_COLUMNS].to_numpy())
    assert drift.max() < 0.25 * (every["box_x1"] - every["box_x0"]).min()


@needs_dlib
def test_followed_dlib_landmarks_stay_on_the_moving_face(
    predictor: Predictor, head: np.ndarray, tmp_path: Path
) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 4, step=6))
    every = predict.predict_video(predictor, clip, backend="dlib", progress=False)
    third = predict.predict_video(predictor, clip, backend="dlib", detect_every=4, progress=False)
    gap = np.linalg.norm(landmarks_of(every) - landmarks_of(third), axis=-1).mean(-1)
    assert third["landmarks"].tolist() == ["dlib"] * 4 and gap.max() < 3.0


def test_a_video_reports_the_seconds_of_every_stage(
    predictor: Predictor, head: np.ndarray, tmp_path: Path
) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 3))
    table = predict.predict_files(predictor, [clip], backend="haar", progress=False)
    stages = table.attrs["stages"]
    assert list(stages) == list(video.STAGES) and all(s > 0 for s in stages.values())
    assert table.attrs["fps"] > 0


def test_the_speed_line_names_the_rate_and_every_stage() -> None:
    attrs = {"frames": 4, "fps": 2.0, "stages": dict.fromkeys(video.STAGES, 0.5)}
    line = video.speed_line("clip.avi", attrs)
    assert line.startswith("clip.avi: 4 frames at 2.0 frames/s (decode 0.50 s, detect")


# --- overlays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_overlay_video_opens_in_opencv_with_as_many_frames_as_its_input(
    predictor: Predictor, head: np.ndarray, tmp_path: Path, backend: str
) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 5))
    out = tmp_path / "overlay"
    predict.predict_files(predictor, [clip], backend=backend, overlay=out, progress=False)
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (360, 480, 3)
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]


def test_an_overlay_image_draws_the_box_and_the_bars(
    predictor: Predictor, head: np.ndarray, tmp_path: Path
) -> None:
    frame = _moving(head, 1)[0]
    source = tmp_path / "face.png"
    cv2.imwrite(str(source), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    table = predict.predict_files(
        predictor, [source], backend="haar", overlay=tmp_path / "out", progress=False
    )
    drawn = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "face.png")), cv2.COLOR_BGR2RGB)
    x0, y0 = int(round(table["box_x0"][0])), int(round(table["box_y0"][0]))
    edge = drawn[y0 - 1 : y0 + 2, x0 + 5].astype(int)  # anti-aliased: the nearest of 3 px
    assert drawn.shape == frame.shape
    assert np.abs(edge - overlay.BOX_COLOUR).sum(axis=-1).min() < 40
    assert (drawn != frame).any(axis=-1).sum() > 1000


def test_overlay_paths_keep_image_names_and_make_videos_mp4(tmp_path: Path) -> None:
    assert overlay.overlay_path(tmp_path, "a/me.JPG") == tmp_path / "me.JPG"
    assert overlay.overlay_path(tmp_path, "a/scan.pgm") == tmp_path / "scan.png"
    assert overlay.overlay_path(tmp_path, "b/talk.avi") == tmp_path / "talk.mp4"


# --- the long form and time courses -----------------------------------------------------------


@pytest.fixture(scope="module")
def video_table(
    predictor: Predictor, head: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("long")
    clip = _write_video(folder / "clip.avi", _moving(head, 4))
    blank = folder / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 128, np.uint8))
    return predict.predict_files(predictor, [clip, blank], backend="haar", progress=False)


def test_the_long_form_has_one_row_per_face_and_au(video_table: pd.DataFrame) -> None:
    long = results.long_table(video_table)
    assert list(long.columns) == results.LONG_COLUMNS and len(long) == 4 * len(BP4D.aus)
    first = long[long["frame"] == 2]
    assert first["au"].tolist() == list(BP4D.aus)
    assert np.allclose(first["prob"], _probs(video_table)[2])
    assert set(long["present"]) <= {0, 1}


def test_the_long_form_of_some_aus(video_table: pd.DataFrame) -> None:
    long = results.long_table(video_table, aus=[12, 1])
    assert long["au"].tolist()[:4] == [12, 1, 12, 1] and len(long) == 8


def test_a_time_course_has_the_times_and_one_column_per_au(video_table: pd.DataFrame) -> None:
    course = results.time_course(video_table, aus=[6, 12])
    assert np.allclose(course.index, np.arange(4) / 10) and list(course.columns) == ["AU6", "AU12"]
    assert np.allclose(course["AU12"], video_table["AU12_prob"][:4])


def test_a_time_course_of_a_missing_face_names_the_faces(video_table: pd.DataFrame) -> None:
    with pytest.raises(AufacsError, match=r"has no face 7; its faces: \[0\]"):
        results.time_course(video_table, face_id=7)


def test_the_time_course_plot_draws_one_line_per_au(video_table: pd.DataFrame) -> None:
    figure = results.plot_time_course(video_table, aus=[1, 2, 4])
    assert isinstance(figure, Figure) and len(figure.axes[0].lines) == 3 + 1  # + threshold


def test_smoothing_follows_face_ids_not_size_ranks() -> None:
    table = pd.DataFrame(
        {
            "source": ["v.avi"] * 4,
            "frame": [0, 0, 1, 1],
            "face": [0, 1, 0, 1],
            "face_id": [0, 1, 1, 0],
            "AU1_prob": [0.2, 0.8, 1.0, 0.4],
            "AU1": [0, 1, 1, 0],
        }
    )
    smoothed = results.smooth_probabilities(table, [1], window=5, threshold=0.5)
    assert np.allclose(smoothed["AU1_prob"], [0.3, 0.9, 0.9, 0.3])


def test_a_video_is_made_from_image_files_of_any_size(head: np.ndarray, tmp_path: Path) -> None:
    paths = []
    for k, side in enumerate((220, 200, 220)):
        paths.append(tmp_path / f"{k}.png")
        cv2.imwrite(str(paths[-1]), cv2.resize(head, (side, side)))
    clip = overlay.video_from_images(paths, tmp_path / "clip.mp4")
    capture = cv2.VideoCapture(str(clip))
    count, size = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FRAME_WIDTH)
    capture.release()
    assert (count, size) == (3, 220)
    with pytest.raises(AufacsError, match="no images to make the video"):
        overlay.video_from_images([], tmp_path / "none.mp4")


def test_without_frames_the_demo_video_pans_across_the_astronaut(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    clip = overlay.demo_video(tmp_path, tmp_path / "no_frames")
    assert overlay.DEMO_FPS == media.video_fps(clip)
    times = [ax.get_title() for ax in overlay.video_strip(clip, count=3).axes]
    assert times == ["frame 0 · 0.00 s", "frame 6 · 0.24 s", "frame 11 · 0.44 s"]


def test_the_first_video_is_the_first_with_a_face(video_table: pd.DataFrame) -> None:
    assert results.first_video(video_table).endswith("clip.avi")
    assert results.first_video(video_table[video_table["frame"].isna()]) is None


class _EchoLandmarks(AUModel):
    """A stand-in JAA-Net whose landmarks are its input landmarks; counts its faces."""

    def __init__(self) -> None:
        super().__init__()
        self.input_spec = InputSpec(32, *HALF_NORMALISATION)
        self.bias = nn.Parameter(torch.zeros(len(BP4D)))
        self.faces = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        self.faces += len(batch["image"])
        prob = torch.sigmoid(self.bias + batch["image"].mean()).expand(len(batch["image"]), -1)
        return AUOutput(au_prob=prob, landmarks=batch["landmarks"])


def test_followed_haar_faces_skip_jaa_nets_first_pass(head: np.ndarray, tmp_path: Path) -> None:
    clip = _write_video(tmp_path / "clip.avi", _moving(head, 6))
    model = _EchoLandmarks()
    echo = Predictor(model, "jaa_net", BP4D.aus, 40, 2.9)
    table = predict.predict_video(
        echo, clip, backend="haar", detect_every=3, batch_size=1, progress=False
    )
    assert table["landmarks"].tolist() == ["jaa_net"] * 6
    assert model.faces == 2 * 2 + 4  # two passes on detection frames, one on followed ones
    assert table["note"].str.startswith(video.FOLLOWED_NOTE).tolist() == [False, True, True] * 2
