"""Tests of aufacs.data.align: JAA-Net's similarity alignment and the inter-ocular distance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aufacs.core.aus import LEFT_EYE, MOUTH_CORNERS, NOSE_TIP, RIGHT_EYE
from aufacs.core.errors import AufacsError
from aufacs.data.align import (
    align_face,
    alignment_matrix,
    biocular,
    eye_centres,
    inter_ocular,
    transform_points,
)

#: (sample folder, raw landmark file, frame paths) of the real reference samples.
REAL_SAMPLES = [
    ("bp4d_sample", "raw_landmarks.txt", ("F001/T1/2440.jpg", "F001/T1/2441.jpg")),
    ("disfa_sample", "raw_landmarks_49.txt", ("SN002/0.jpg", "SN002/1.jpg")),
]

# An upright synthetic face, relative to its box centre: eye centres (-30, -25) and (30, -25),
# nose tip (0, 0), mouth corners (-20, 25) and (20, 25). The box is 60 x 50, so halfSize =
# 0.5 * 2.9 * 60 = 87 and the 200 px crop scales by 99.5 / 87 about (99.5, 99.5).
EYE_HALF_SPAN, BOX_HALF_HEIGHT = 30.0, 25.0
EXPECTED_SCALE = 99.5 / 87.0
EXPECTED_LEFT_EYE = np.array([99.5, 99.5]) + EXPECTED_SCALE * np.array([-30.0, -25.0])
EXPECTED_RIGHT_EYE = np.array([99.5, 99.5]) + EXPECTED_SCALE * np.array([30.0, -25.0])


def upright_face() -> np.ndarray:
    """49 landmarks (49, 2) of the synthetic face above, centred on the origin."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-20, 20, size=(49, 2))
    ring = 4.0 * np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], 1)
    points[list(LEFT_EYE)] = np.array([-EYE_HALF_SPAN, -BOX_HALF_HEIGHT]) + ring
    points[list(RIGHT_EYE)] = np.array([EYE_HALF_SPAN, -BOX_HALF_HEIGHT]) + ring
    points[NOSE_TIP] = (0.0, 0.0)
    points[list(MOUTH_CORNERS)] = [(-20.0, BOX_HALF_HEIGHT), (20.0, BOX_HALF_HEIGHT)]
    return points


def similar(points: np.ndarray, degrees: float, scale: float, shift: tuple) -> np.ndarray:
    """``points`` (P, 2) rotated by ``degrees``, scaled and shifted: a similarity transform."""
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + np.asarray(shift)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def real_frames(shared: Path):
    """(raw image, raw 0-indexed landmarks, aligned image, aligned landmarks, biocular) rows."""
    for sample, landmark_file, paths in REAL_SAMPLES:
        folder = shared / sample
        raw_landmarks = np.loadtxt(folder / landmark_file).reshape(-1, 49, 2) - 1.0
        aligned_landmarks = np.loadtxt(folder / "aligned_landmarks.txt").reshape(-1, 49, 2)
        squared = np.loadtxt(folder / "biocular.txt")
        for i, path in enumerate(paths):
            yield (
                f"{sample}/{path}",
                cv2.imread(str(folder / "raw" / path)),
                raw_landmarks[i],
                cv2.imread(str(folder / "aligned" / path)),
                aligned_landmarks[i],
                squared[i],
            )


def test_real_frames_are_aligned_like_the_official_images(shared_fixtures):
    for name, image, landmarks, expected, _, _ in real_frames(shared_fixtures):
        aligned, _ = align_face(image, landmarks)
        assert psnr(aligned, expected) >= 38.0, name


def test_real_landmarks_are_aligned_like_the_official_list(shared_fixtures):
    for name, image, landmarks, _, expected, _ in real_frames(shared_fixtures):
        _, aligned = align_face(image, landmarks)
        assert np.abs(aligned - expected).max() < 1e-3, name


def test_biocular_matches_the_official_files_to_their_printed_precision(shared_fixtures):
    for name, _, _, _, aligned, squared in real_frames(shared_fixtures):
        assert biocular(aligned) == pytest.approx(squared, abs=6e-7), name


def test_aligned_crop_has_the_requested_size_and_type():
    image = np.zeros((120, 160, 3), np.uint8)
    aligned, landmarks = align_face(image, similar(upright_face(), 0, 1, (80, 60)), size=64)
    assert aligned.shape == (64, 64, 3) and aligned.dtype == np.uint8
    assert landmarks.shape == (49, 2) and landmarks.dtype == np.float64


def test_a_rotated_face_comes_out_with_level_eyes_at_the_expected_positions():
    landmarks = similar(upright_face(), degrees=-35.0, scale=1.7, shift=(210.0, 160.0))
    _, aligned = align_face(np.zeros((300, 400, 3), np.uint8), landmarks)
    left, right = eye_centres(aligned)
    np.testing.assert_allclose(left, EXPECTED_LEFT_EYE, atol=1e-9)
    np.testing.assert_allclose(right, EXPECTED_RIGHT_EYE, atol=1e-9)


def test_the_warped_image_puts_the_eyes_where_the_landmarks_say():
    landmarks = similar(upright_face(), degrees=25.0, scale=2.0, shift=(200.0, 150.0))
    image = np.zeros((300, 400, 3), np.uint8)
    for centre in eye_centres(landmarks):
        cv2.circle(image, tuple(int(round(v)) for v in centre), 6, (255, 255, 255), -1)
    aligned, _ = align_face(image, landmarks)
    bright = aligned[..., 0] > 128
    ys, xs = np.nonzero(bright)
    left_side = xs < 99.5
    found_left = (xs[left_side].mean(), ys[left_side].mean())
    found_right = (xs[~left_side].mean(), ys[~left_side].mean())
    np.testing.assert_allclose(found_left, EXPECTED_LEFT_EYE, atol=1.0)
    np.testing.assert_allclose(found_right, EXPECTED_RIGHT_EYE, atol=1.0)


def test_outside_the_image_is_filled_with_grey_128():
    landmarks = similar(upright_face(), degrees=0.0, scale=1.0, shift=(5.0, 5.0))
    aligned, _ = align_face(np.zeros((100, 100, 3), np.uint8), landmarks)
    assert (aligned[0, 0] == 128).all()


def test_alignment_matrix_of_a_batch_equals_the_matrix_of_each_frame():
    batch = np.stack(
        [similar(upright_face(), d, s, (100, 90)) for d, s in [(0, 1), (20, 2), (-40, 0.5)]]
    )
    matrices = alignment_matrix(batch)
    assert matrices.shape == (3, 2, 3)
    for frame, matrix in zip(batch, matrices, strict=True):
        np.testing.assert_allclose(alignment_matrix(frame), matrix)


def test_transform_points_applies_the_affine_matrix():
    matrix = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    points = np.array([[1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_allclose(transform_points(points, matrix), [[3.0, 2.0], [1.0, 5.0]])


def test_inter_ocular_is_the_distance_between_eye_centres_and_biocular_its_square():
    landmarks = np.zeros((2, 49, 2))
    landmarks[:, list(RIGHT_EYE), 0] = [[3.0], [6.0]]
    landmarks[:, list(RIGHT_EYE), 1] = [[4.0], [8.0]]
    np.testing.assert_allclose(inter_ocular(landmarks), [5.0, 10.0])
    np.testing.assert_allclose(biocular(landmarks), [25.0, 100.0])


def test_landmarks_with_nan_are_refused():
    landmarks = upright_face() + 50.0
    landmarks[3, 0] = np.nan
    with pytest.raises(AufacsError, match="NaN"):
        align_face(np.zeros((100, 100, 3), np.uint8), landmarks)


def test_landmarks_with_the_wrong_number_of_points_are_refused():
    with pytest.raises(AufacsError, match="49, 2"):
        align_face(np.zeros((100, 100, 3), np.uint8), np.ones((68, 2)))


def test_a_greyscale_image_is_refused():
    with pytest.raises(AufacsError, match="uint8"):
        align_face(np.zeros((100, 100), np.uint8), upright_face() + 50.0)


def test_coincident_eye_centres_are_refused():
    with pytest.raises(AufacsError, match="eye centres"):
        alignment_matrix(np.full((49, 2), 10.0))
