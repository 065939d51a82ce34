"""Face detection and landmarks (aufacs.inference.faces), image and video reading
(aufacs.inference.media)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aufacs.core.errors import AufacsError
from aufacs.data.align import alignment_matrix, eye_centres, inter_ocular, transform_points
from aufacs.inference import faces, media

needs_dlib = pytest.mark.skipif(
    not faces.landmarks_available(), reason="the aufacs[landmarks] extra is not installed"
)
BACKENDS = ["haar", pytest.param("dlib", marks=needs_dlib)]


@pytest.fixture(scope="module")
def bp4d_frames(shared_fixtures: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two raw BP4D frames (RGB) and their 0-indexed 49-point ground truth."""
    sample = shared_fixtures / "bp4d_sample"
    truth = np.loadtxt(sample / "raw_landmarks.txt").reshape(-1, 49, 2) - 1
    images = [media.load_image(sample / "raw/F001/T1" / f"{n}.jpg") for n in ("2440", "2441")]
    return list(zip(images, truth, strict=True))


@pytest.fixture(scope="module")
def face_crop(bp4d_frames: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """A 500 x 500 crop around the first BP4D face, at half size."""
    image, _ = bp4d_frames[0]
    return cv2.resize(image[392:1392, 0:1000], (500, 500), interpolation=cv2.INTER_AREA)


def _write_video(path: Path, levels: list[int]) -> None:
    """A tiny MJPG video whose frame i is flat grey at ``levels[i]``, 10 frames per second."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for level in levels:
        writer.write(np.full((48, 64, 3), level, dtype=np.uint8))
    writer.release()


def _mean_error(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point-to-point distance in units of the ground truth's inter-ocular distance."""
    return float(np.linalg.norm(points - truth, axis=-1).mean() / inter_ocular(truth))


def _box_holds(box: tuple[float, float, float, float], points: np.ndarray) -> bool:
    x0, y0, x1, y1 = box
    return bool(np.all((points >= (x0, y0)) & (points < (x1, y1))))


def test_load_image_returns_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((4, 6, 3), dtype=np.uint8)
    bgr[..., 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = media.load_image(tmp_path / "red.png")
    assert image.shape == (4, 6, 3) and np.all(image[..., 0] == 255) and np.all(image[..., 2] == 0)


def test_a_text_file_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(AufacsError, match="notes.jpg is not an image"):
        media.load_image(tmp_path / "notes.jpg")


def test_a_missing_image_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AufacsError, match="absent.png does not exist"):
        media.load_image(tmp_path / "absent.png")


def test_is_video_goes_by_the_extension() -> None:
    assert media.is_video("clip.MP4") and media.is_video("a/b.avi")
    assert not media.is_video("face.jpg") and not media.is_video("folder")


def test_video_frames_come_with_index_and_time_every_step(tmp_path: Path) -> None:
    _write_video(tmp_path / "clip.avi", [0, 40, 80, 120, 160])
    frames = list(media.iter_video_frames(tmp_path / "clip.avi", step=2))
    assert [index for index, _, _ in frames] == [0, 2, 4]
    assert [time_s for _, time_s, _ in frames] == pytest.approx([0.0, 0.2, 0.4])
    assert [int(rgb.mean().round(-1)) for _, _, rgb in frames] == [0, 80, 160]


def test_an_unreadable_video_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01 this is no video" * 50)
    with pytest.raises(AufacsError, match="broken.mp4 is not a video"):
        media.iter_video_frames(tmp_path / "broken.mp4")


def test_a_video_step_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AufacsError, match="step"):
        media.iter_video_frames(tmp_path / "clip.avi", step=0)


def test_a_video_frame_is_found_by_its_index(tmp_path: Path) -> None:
    _write_video(tmp_path / "clip.avi", [0, 40, 80, 120, 160])
    assert int(media.video_frame(tmp_path / "clip.avi", 3).mean().round(-1)) == 120
    with pytest.raises(AufacsError, match="has no frame 7"):
        media.video_frame(tmp_path / "clip.avi", 7)


def test_the_working_copy_shrinks_only_large_images_and_gives_its_factors() -> None:
    small = np.zeros((100, 60, 3), np.uint8)
    same, ones = faces.working_copy(small)
    assert same.shape == small.shape and np.array_equal(ones, [1.0, 1.0])
    shrunk, factor = faces.working_copy(np.zeros((3200, 1000, 3), np.uint8))
    assert shrunk.shape == (faces.MAX_SIDE, 500, 3) and np.allclose(factor, 0.5)


def test_points_and_edges_map_between_working_copy_and_source() -> None:
    factor = np.array([0.5, 0.25])
    assert np.allclose(faces.rescale_points([[1.5, 3.5]], factor), [[0.5, 0.5]])
    assert np.allclose(faces.edges_to_source([10.0, 10.0, 20.0, 20.0], factor), [20, 40, 40, 80])


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(AufacsError, match="backend must be one of"):
        faces.detect_faces(np.zeros((8, 8, 3), np.uint8), backend="mtcnn")


def test_a_grey_level_image_array_is_refused() -> None:
    with pytest.raises(AufacsError, match=r"\(H, W, 3\) uint8"):
        faces.detect_faces(np.zeros((8, 8), np.uint8))


def test_a_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faces, "landmarks_available", lambda: False)
    with pytest.raises(AufacsError, match=r'pip install "aufacs\[landmarks\]"'):
        faces.detect_faces(np.zeros((8, 8, 3), np.uint8), backend="dlib")


def test_auto_falls_back_to_haar_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, face_crop: np.ndarray
) -> None:
    monkeypatch.setattr(faces, "landmarks_available", lambda: False)
    found = faces.detect_faces(face_crop)
    assert [(face.backend, face.landmarks) for face in found] == [("haar", None)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_an_image_without_a_face_gives_an_empty_list(backend: str, kind: str) -> None:
    grey = np.full((240, 320, 3), 128, dtype=np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert faces.detect_faces(grey if kind == "grey" else noise, backend=backend) == []


def test_initial_landmarks_align_back_to_the_mean_shape() -> None:
    guess = faces.box_to_initial_landmarks((100.0, 50.0, 400.0, 350.0))
    aligned = transform_points(guess, alignment_matrix(guess))
    assert np.abs(aligned - faces.MEAN_SHAPE_49).max() < 0.1


def test_an_empty_box_is_refused() -> None:
    with pytest.raises(AufacsError, match="box must be"):
        faces.box_to_initial_landmarks((10.0, 10.0, 10.0, 30.0))


@needs_dlib
def test_dlib_landmarks_are_within_0_08_inter_ocular_of_bp4d_ground_truth(
    bp4d_frames: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    errors = []
    for image, truth in bp4d_frames:
        (face,) = faces.detect_faces(image, backend="dlib")
        errors.append(_mean_error(face.landmarks, truth))
    assert np.mean(errors) < 0.08


def test_the_haar_box_holds_the_eyes_nose_and_mouth_of_a_bp4d_face(
    bp4d_frames: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    image, truth = bp4d_frames[0]
    (face,) = faces.detect_faces(image, backend="haar")
    assert face.landmarks is None and _box_holds(face.box, truth[10:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_faces_side_by_side_give_two_faces_largest_first(
    backend: str, face_crop: np.ndarray
) -> None:
    small = np.full_like(face_crop, 128)
    small[125:375, 125:375] = cv2.resize(face_crop, (250, 250), interpolation=cv2.INTER_AREA)
    found = faces.detect_faces(np.hstack([small, face_crop]), backend=backend)
    assert len(found) == 2
    assert found[0].area > found[1].area and found[0].box[0] > found[1].box[2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_face_twice_gives_two_faces(backend: str, face_crop: np.ndarray) -> None:
    assert len(faces.detect_faces(np.hstack([face_crop, face_crop]), backend=backend)) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_huge_image_is_searched_downscaled_with_boxes_in_original_pixels(
    backend: str, bp4d_frames: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    image, truth = bp4d_frames[0]
    offset = np.array([5000, 3000])
    huge = np.full((6000, 8000, 3), 128, dtype=np.uint8)
    huge[3000 : 3000 + image.shape[0], 5000 : 5000 + image.shape[1]] = image
    (face,) = faces.detect_faces(huge, backend=backend)
    shifted = truth + offset
    width = face.box[2] - face.box[0]
    assert _box_holds(face.box, np.stack(eye_centres(shifted) + (shifted[13],)))
    assert 1.5 < width / inter_ocular(truth) < 3.0
    if face.landmarks is not None:
        assert _mean_error(face.landmarks, shifted) < 0.08
