"""Predictions on users' own photos and videos (aufacs.inference.predict, .frame and .model)
and their pictures (aufacs.inference.explain), with a tiny trained JAA-Net."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from train_worker import make_data, tiny_config

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.align import inter_ocular
from aufacs.data.table import LANDMARK_COLUMNS, landmarks_of
from aufacs.engine.train import train
from aufacs.inference import explain, faces, media, predict, results, rows
from aufacs.inference.predictor import Predictor, load_predictor
from aufacs.models import build_model
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.report.steps import published_metrics

needs_dlib = pytest.mark.skipif(
    not faces.landmarks_available(), reason="the aufacs[landmarks] extra is not installed"
)
BACKENDS = ["haar", pytest.param("dlib", marks=needs_dlib)]
VIDEO_FPS = 10.0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny JAA-Net trained for two epochs of four steps (about two seconds)."""
    root = tmp_path_factory.mktemp("predict_run")
    train(tiny_config(make_data(root / "data"), root / "run"))
    return root / "run"


@pytest.fixture(scope="module")
def predictor(run: Path) -> Predictor:
    return load_predictor(run, device="cpu")


@pytest.fixture(scope="module")
def face_crop() -> np.ndarray:
    """scikit-image's astronaut around her face: (220, 220, 3) RGB, a face box of about 95 px."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[20:240, 120:340])


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """An MJPG video of RGB ``frames`` at 10 frames per second."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _write_image(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def _prob_matrix(table: pd.DataFrame) -> np.ndarray:
    return table[predict.prob_columns(BP4D.aus)].to_numpy(dtype=np.float64)


class _EchoLandmarks(AUModel):
    """A stand-in JAA-Net that "predicts" landmarks: its input landmarks, times ``scale``."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.input_spec = InputSpec(32, *HALF_NORMALISATION)
        self.bias = nn.Parameter(torch.zeros(len(BP4D)))
        self.scale = scale

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        prob = torch.sigmoid(self.bias + batch["image"].mean()).expand(len(batch["image"]), -1)
        return AUOutput(au_prob=prob, landmarks=batch["landmarks"] * self.scale)


def _echo_predictor(scale: float = 1.0) -> Predictor:
    return Predictor(_EchoLandmarks(scale), "jaa_net", BP4D.aus, 40, 2.9)


# --- real BP4D frames -------------------------------------------------------------------------


@needs_dlib
def test_bp4d_frames_are_predicted_with_dlib_landmarks_near_the_ground_truth(
    predictor: Predictor, shared_fixtures: Path
) -> None:
    sample = shared_fixtures / "bp4d_sample"
    table = predict.predict_files(predictor, [sample / "raw"], backend="dlib", progress=False)
    truth = np.loadtxt(sample / "raw_landmarks.txt").reshape(-1, 49, 2) - 1
    errors = np.linalg.norm(landmarks_of(table) - truth, axis=-1).mean(-1) / inter_ocular(truth)
    assert list(table["landmarks"]) == ["dlib", "dlib"] and errors.mean() < 0.08
    assert np.all((_prob_matrix(table) >= 0) & (_prob_matrix(table) <= 1))


def test_bp4d_frames_are_predicted_from_the_haar_box_without_the_extra(
    predictor: Predictor, shared_fixtures: Path
) -> None:
    raw = shared_fixtures / "bp4d_sample" / "raw"
    table = predict.predict_files(predictor, [raw], backend="haar", progress=False)
    assert list(table["backend"]) == ["haar", "haar"] and table["face"].tolist() == [0, 0]
    assert table["note"].str.startswith("face box from the Haar cascade").all()
    assert np.isfinite(_prob_matrix(table)).all() and np.isfinite(landmarks_of(table)).all()


def test_auto_uses_haar_when_the_extra_is_missing(
    predictor: Predictor, face_crop: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faces, "landmarks_available", lambda: False)
    table = predict.predict_image(predictor, face_crop, backend="auto")
    assert table["backend"].tolist() == ["haar"]


def test_dlib_without_the_extra_says_how_to_install_it(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faces, "landmarks_available", lambda: False)
    image = _write_image(tmp_path / "grey.png", np.full((32, 32, 3), 128, np.uint8))
    config = predict.PredictConfig(run=run, paths=(image,), backend="dlib", out=None)
    with pytest.raises(AufacsError, match=r'pip install "aufacs\[landmarks\]"'):
        predict.predict_paths(config)


# --- the table, the CSV and videos ------------------------------------------------------------


def test_predict_paths_writes_one_csv_row_per_face_with_every_column(
    run: Path, face_crop: np.ndarray, tmp_path: Path
) -> None:
    image = _write_image(tmp_path / "face.png", face_crop)
    out = tmp_path / "out" / "predictions.csv"
    config = predict.PredictConfig(run=run, paths=(image,), out=out, backend="haar", progress=False)
    table = predict.predict_paths(config)
    written = pd.read_csv(out)
    assert list(written.columns) == predict.output_columns(BP4D.aus) == list(table.columns)
    assert len(written) == 1 and written["source"][0] == str(image)
    assert set(written[[f"AU{a}" for a in BP4D.aus]].iloc[0]) <= {0, 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_video_gives_one_row_per_frame_with_index_time_and_fps(
    predictor: Predictor, face_crop: np.ndarray, tmp_path: Path, backend: str
) -> None:
    video = _write_video(tmp_path / "clip.avi", [face_crop] * 4)
    table = predict.predict_files(predictor, [video], backend=backend, progress=False)
    assert table["frame"].tolist() == [0, 1, 2, 3] and table["face"].tolist() == [0] * 4
    assert np.allclose(table["time_s"], np.arange(4) / VIDEO_FPS)
    assert table.attrs["fps"] > 0 and list(table.attrs["fps_by_source"]) == [str(video)]


def test_a_video_step_predicts_every_nth_frame(
    predictor: Predictor, face_crop: np.ndarray, tmp_path: Path
) -> None:
    video = _write_video(tmp_path / "clip.avi", [face_crop] * 5)
    table = predict.predict_video(predictor, video, backend="haar", step=2, progress=False)
    assert table["frame"].tolist() == [0, 2, 4] and table.attrs["frames"] == 3


def test_smoothing_averages_each_face_track_over_a_centred_window() -> None:
    probs = np.array([0.0, 0.3, 0.9, 0.3, 0.6])
    table = pd.DataFrame(
        {
            "source": ["v.avi"] * 4 + ["photo.jpg"],
            "frame": pd.array([0, 1, 2, 3, pd.NA], "Int64"),
            "face": pd.array([0, 0, 0, 0, 0], "Int64"),
            "AU1_prob": probs,
            "AU1": (probs >= 0.5) * 1,
        }
    )
    smoothed = predict.smooth_probabilities(table, [1], window=3, threshold=0.5)
    assert np.allclose(smoothed["AU1_prob"], [0.15, 0.4, 0.5, 0.6, 0.6])
    assert smoothed["AU1"].tolist() == [0, 0, 1, 1, 1]


def test_smoothing_leaves_tracks_of_different_faces_apart() -> None:
    table = pd.DataFrame(
        {
            "source": ["v.avi"] * 4,
            "frame": [0, 0, 1, 1],
            "face": [0, 1, 0, 1],
            "AU1_prob": [0.2, 0.8, 0.4, 1.0],
            "AU1": [0, 1, 0, 1],
        }
    )
    smoothed = predict.smooth_probabilities(table, [1], window=5, threshold=0.5)
    assert np.allclose(smoothed["AU1_prob"], [0.3, 0.9, 0.3, 0.9])


def test_a_smoothed_video_keeps_one_row_per_frame(
    predictor: Predictor, face_crop: np.ndarray, tmp_path: Path
) -> None:
    video = _write_video(tmp_path / "clip.avi", [face_crop] * 3)
    raw = predict.predict_video(predictor, video, backend="haar", progress=False)
    smoothed = predict.predict_video(predictor, video, backend="haar", smooth=3, progress=False)
    expected = _prob_matrix(raw).mean(axis=0)
    assert np.allclose(_prob_matrix(smoothed)[1], expected, atol=1e-6) and len(smoothed) == 3


# --- every model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "landmarks", "note"),
    [
        (
            "eac_net",
            {"input_size": 64, "width_divisor": 16, "pretrained": None},
            "template",
            "EAC-Net's attention follows mean-shape template landmarks",
        ),
        (
            "me_graph_au",
            {"backbone": "resnet18", "pretrained": None},
            "template",
            "aligned with a mean-shape template",
        ),
    ],
)
def test_models_without_landmark_output_use_the_template_and_say_so(
    face_crop: np.ndarray, name: str, options: dict, landmarks: str, note: str
) -> None:
    model = build_model(name, len(BP4D), **options).eval()
    table = predict.predict_image(
        Predictor(model, name, BP4D.aus, 200, 2.9), face_crop, backend="haar"
    )
    assert table["landmarks"].tolist() == [landmarks] and note in table["note"][0]
    assert np.isfinite(_prob_matrix(table)).all()


@needs_dlib
def test_eac_net_gets_the_detected_landmarks_with_the_extra(face_crop: np.ndarray) -> None:
    model = build_model("eac_net", len(BP4D), input_size=64, width_divisor=16, pretrained=None)
    table = predict.predict_image(
        Predictor(model.eval(), "eac_net", BP4D.aus, 200, 2.9), face_crop, backend="dlib"
    )
    assert table["landmarks"].tolist() == ["dlib"] and table["note"].tolist() == [""]


def test_jaa_net_realigns_once_with_its_own_landmarks_mapped_back_to_the_photo(
    face_crop: np.ndarray,
) -> None:
    table = predict.predict_image(_echo_predictor(), face_crop, backend="haar")
    (face,) = faces.detect_faces(face_crop, backend="haar")
    template = faces.box_to_initial_landmarks(face.box)
    assert table["landmarks"].tolist() == ["jaa_net"]
    assert np.abs(landmarks_of(table)[0] - template).max() < 1e-4  # float32 model input


def test_implausible_jaa_net_landmarks_keep_the_template(face_crop: np.ndarray) -> None:
    table = predict.predict_image(_echo_predictor(scale=0.0), face_crop, backend="haar")
    assert table["landmarks"].tolist() == ["template"]
    assert "did not fit the box" in table["note"][0]


# --- bad input --------------------------------------------------------------------------------


def test_a_file_that_is_neither_image_nor_video_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AufacsError, match="notes.txt is neither an image nor a video"):
        media.input_files([tmp_path / "notes.txt"])


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(AufacsError, match="absent.jpg does not exist"):
        media.input_files([tmp_path / "absent.jpg"])


def test_a_folder_gives_its_images_and_videos_sorted_and_nothing_else(tmp_path: Path) -> None:
    for name in ("b.png", "a/c.MP4", "notes.txt", "a.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in media.input_files([tmp_path])]
    assert found == ["a/c.MP4", "a.jpg", "b.png"]


def test_a_folder_without_images_or_videos_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AufacsError, match="no image or video file found"):
        media.input_files([tmp_path])


def test_a_corrupt_image_gives_one_row_with_a_note(predictor: Predictor, tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_text("not a picture")
    table = predict.predict_files(predictor, [tmp_path / "broken.jpg"], progress=False)
    assert len(table) == 1 and "broken.jpg is not an image" in table["note"][0]
    assert table["face"].isna().all() and np.isnan(_prob_matrix(table)).all()


def test_an_unreadable_video_gives_one_row_with_a_note(
    predictor: Predictor, tmp_path: Path
) -> None:
    (tmp_path / "broken.mp4").write_text("not a video")
    table = predict.predict_files(predictor, [tmp_path / "broken.mp4"], progress=False)
    assert len(table) == 1 and "broken.mp4 is not a video" in table["note"][0]
    assert table.attrs["fps"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_without_a_face_gives_one_row_saying_so(
    predictor: Predictor, backend: str
) -> None:
    table = predict.predict_image(predictor, np.full((120, 160, 3), 128, np.uint8), backend=backend)
    assert table["note"].tolist() == [results.NO_FACE] and table["face"].isna().all()
    assert table[LANDMARK_COLUMNS].isna().all(axis=None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_faces_give_one_row_each(
    predictor: Predictor, face_crop: np.ndarray, backend: str
) -> None:
    table = predict.predict_image(predictor, np.hstack([face_crop, face_crop]), backend=backend)
    assert table["face"].tolist() == [0, 1] and table["box_x0"].nunique() == 2


def test_a_huge_image_is_shrunk_with_boxes_in_its_own_pixels(
    predictor: Predictor, face_crop: np.ndarray
) -> None:
    huge = cv2.resize(face_crop, None, fx=16, fy=16, interpolation=cv2.INTER_LINEAR)  # 3520 px
    small = predict.predict_image(predictor, face_crop, backend="haar")
    large = predict.predict_image(predictor, huge, backend="haar")
    scaled = (small[rows.BOX_COLUMNS].to_numpy() * 16).ravel()
    assert np.allclose(large[rows.BOX_COLUMNS].to_numpy().ravel(), scaled, atol=0.05 * 16 * 95)


def test_a_bad_step_is_refused(predictor: Predictor, tmp_path: Path) -> None:
    with pytest.raises(AufacsError, match="step must be a whole number of frames >= 1"):
        predict.predict_video(predictor, tmp_path / "clip.avi", step=0)


def test_a_missing_epoch_lists_the_saved_ones(run: Path) -> None:
    with pytest.raises(
        AufacsError, match=r"no checkpoint for epoch\(s\) \[9\]; saved epochs: \[1, 2\]"
    ):
        load_predictor(run, 9)


# --- pictures ---------------------------------------------------------------------------------


def test_explain_face_shows_the_face_and_the_rows_probabilities(
    predictor: Predictor, face_crop: np.ndarray, tmp_path: Path
) -> None:
    video = _write_video(tmp_path / "clip.avi", [face_crop] * 3)
    table = predict.predict_video(predictor, video, backend="haar", progress=False)
    figure = explain.explain_face(table.iloc[2], predictor, 12)
    face_axes, bar_axes = figure.axes[:2]
    widths = [bar.get_width() for bar in bar_axes.patches]
    assert len(face_axes.images) == 2 and "frame 2, face 0" in figure._suptitle.get_text()
    assert np.allclose(widths, _prob_matrix(table)[2], atol=1e-5)


def test_explain_face_refuses_a_row_without_a_face(predictor: Predictor) -> None:
    table = predict.predict_image(predictor, np.full((64, 64, 3), 128, np.uint8), backend="haar")
    with pytest.raises(AufacsError, match="has no face to explain: no face found"):
        explain.explain_face(table.iloc[0], predictor, 12)


def test_explain_face_refuses_an_au_the_run_does_not_predict(
    predictor: Predictor, face_crop: np.ndarray
) -> None:
    table = predict.predict_image(predictor, face_crop, backend="haar")
    with pytest.raises(AufacsError, match="au must be one of the run's AUs"):
        explain.explain_face(table.iloc[0], predictor, 9, image=face_crop)


# --- the notebook and the configuration -------------------------------------------------------


def test_every_predict_option_has_a_help_text() -> None:
    assert all(f.metadata.get("help") for f in dataclasses.fields(predict.PredictConfig))


def test_notebook_06_draws_its_demo_photo_and_video_and_publishes_their_counts(
    run: Path, face_crop: np.ndarray, tmp_path: Path
) -> None:
    papermill = pytest.importorskip("papermill")
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "06_own_photos.ipynb"
    parameters = {"RUN": str(run), "OUT_DIR": str(tmp_path), "BACKEND": "haar", "DEVICE": "cpu"}
    executed = papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "06.ipynb"),
        parameters=parameters,
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    images = [(c.id, o.get("data", {})) for c in executed.cells for o in c.get("outputs", [])]
    videos = sorted(tmp_path.glob("**/demo_video.mp4"))  # the demo video and its overlay
    frames = {len(list(media.iter_video_frames(video))) for video in videos}
    metrics = published_metrics(tmp_path / "06.ipynb")
    pictures = {cell for cell, data in images if "image/png" in data}
    assert {"06-overlay-strip", "06-time-course"} <= pictures
    assert len(videos) == 2 and frames == {metrics["frames"] - 1} == {metrics["faces"] - 1}
    assert (tmp_path / "predictions.csv").is_file()
