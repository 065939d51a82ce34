"""Head pose from 49 landmarks (aufacs.inference.pose): a rotated mean face, the synthetic
generator's faces of known pose, and the real BP4D fixture frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aufacs.data.synthetic.face import sample_face
from aufacs.data.synthetic.render import SubjectRenderer
from aufacs.data.synthetic.sequences import sequence_params
from aufacs.inference import faces, media, pose


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)``, angles in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (-20, 10, 5), (10, -15, -12)])
def test_a_rotated_mean_face_gives_back_its_angles(angles: tuple[float, float, float]) -> None:
    camera = pose.camera_matrix(640, 480)
    rvec = cv2.Rodrigues(_rotation(*angles))[0]
    points = cv2.projectPoints(pose.MEAN_FACE_3D, rvec, np.array([0, 0, 600.0]), camera, None)
    estimate = pose.head_pose(points[0].reshape(1, 49, 2), (640, 480))[0]
    assert np.allclose(estimate, angles, atol=1.0)


def test_the_angles_of_a_rotation_matrix() -> None:
    assert np.allclose(pose.euler_degrees(_rotation(12, -7, 30)), [12, -7, 30])


def test_points_that_are_not_finite_give_nan() -> None:
    points = np.full((1, 49, 2), np.nan)
    assert np.isnan(pose.head_pose(points, (100, 100))).all()


def test_synthetic_faces_of_known_pose_are_within_10_degrees() -> None:
    """Roll (the generator turns the head in the image plane) and pitch (0 there) over the
    generator's own head motion, 8 subjects x 15 frames. The generator's yaw is a horizontal
    squash of a flat face (no 3-D turn: the nose does not move), which 2-D landmarks cannot
    tell from a narrower face, so it is checked on the rotated mean face above instead."""
    rng = np.random.default_rng(16)
    errors, rolls = [], []
    for subject in range(8):
        face = sample_face(rng, f"S{subject:03d}")
        renderer = SubjectRenderer(face, (520, 696))
        for params in sequence_params(rng, face, np.zeros((15, 12)), smoothness=5.0):
            yaw, pitch, roll = pose.head_pose(renderer.landmarks(params)[None], (520, 696))[0]
            errors.append((abs(roll - np.degrees(params.roll)), abs(pitch)))
            rolls.append(abs(np.degrees(params.roll)))
    errors = np.array(errors)
    assert max(rolls) > 5 and errors[:, 0].max() < 10 and errors[:, 1].max() < 10


@pytest.mark.skipif(not faces.landmarks_available(), reason="needs the aufacs[landmarks] extra")
def test_dlib_and_ground_truth_landmarks_of_bp4d_give_the_same_pose(shared_fixtures: Path) -> None:
    sample = shared_fixtures / "bp4d_sample"
    truth = np.loadtxt(sample / "raw_landmarks.txt").reshape(-1, 49, 2) - 1
    for image_path, points in zip(sorted((sample / "raw").rglob("*.jpg")), truth, strict=True):
        image = media.load_image(image_path)
        (found,) = faces.detect_faces(image, backend="dlib")
        size = image.shape[1::-1]
        estimate = pose.head_pose(found.landmarks[None], size)
        assert np.allclose(estimate, pose.head_pose(points[None], size), atol=3.0)
