"""Head pose (yaw, pitch, roll in degrees) from a face's 49 landmarks (:func:`head_pose`).

The rigid points among the 49 (:data:`RIGID_POINTS`: the nose and the eye corners, which action
units hardly move) are fitted with ``cv2.solvePnP`` to a mean 3-D face, :data:`MEAN_FACE_3D`: the
2-D mean shape :data:`aufacs.inference.faces.MEAN_SHAPE_49` (BP4D, frontal, about 1 px per
mm) given a depth per point from typical facial anthropometry (nose tip 0, eye corners
25-30 mm and mouth corners 26 mm behind it). With all 49 points the fit was ill-posed: raised
brows or a different landmark scheme read as pitch (dlib's points on the astronaut gave two
solutions, 0 and 40 degrees of pitch, with JPEG noise deciding); the rigid points give one
solution, and on the BP4D fixture frames dlib's points and the ground truth then agree within
1 degree. The camera is a pinhole with a focal length of
the image's longer side, centred; lens distortion is ignored.

Angles, in the camera's axes (x right, y down, z into the scene), with the rotation taken as
``Rz(roll) @ Ry(yaw) @ Rx(pitch)``: ``yaw > 0`` turns the face towards the image's left (the
person's right), ``pitch > 0`` tips it down, ``roll > 0`` turns it clockwise in the image.
All three are 0 for a face whose landmarks are the mean shape. They are as good as the
landmarks: with Haar boxes and a model without landmark output, the points are a template
and the pose says nothing (only roll 0 and yaw 0 are possible).
"""

from __future__ import annotations

import cv2
import numpy as np

from aufacs.inference.faces import MEAN_SHAPE_49

#: The columns of the head pose in the prediction table, degrees.
POSE_COLUMNS = ["yaw", "pitch", "roll"]

#: The rigid points the pose is fitted to: nose bridge and base (10-18) and eye corners.
RIGID_POINTS = np.array([*range(10, 19), 19, 22, 25, 28])
#: Depth of each of the 49 points towards the camera, mm (about px of MEAN_SHAPE_49), nose
#: tip 0 and the rest behind it (negative).
_DEPTH = np.array(
    [
        # brows 0-9
        *[-30, -22, -17, -15, -15, -15, -15, -17, -22, -30],
        # nose bridge 10-13 (13: the tip), nose base 14-18
        *[-18, -12, -6, 0, -24, -18, -16, -18, -24],
        # eyes 19-24 (outer corner first) and 25-30 (inner corner first)
        *[-30, -24, -24, -25, -24, -24, -25, -24, -24, -30, -24, -24],
        # outer lip 31-42 (corner first), inner lip 43-48
        *[-26, -19, -14, -12, -14, -19, -26, -19, -15, -13, -15, -19],
        *[-17, -15, -17, -17, -15, -17],
    ],
    dtype=np.float64,
)
#: The mean 3-D face: (49, 3) in the camera's axes (z into the scene), centred on the mean.
MEAN_FACE_3D = np.column_stack([MEAN_SHAPE_49, -_DEPTH]) - np.r_[MEAN_SHAPE_49.mean(0), 0.0]
MEAN_FACE_3D.setflags(write=False)


def camera_matrix(width: int, height: int) -> np.ndarray:
    """The (3, 3) pinhole camera of an image of ``width`` x ``height`` pixels."""
    focal = float(max(width, height))
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Yaw, pitch and roll in degrees (module docstring) of each face of landmarks ``points``
    (F, 49, 2) in pixels of an image of ``image_size`` = (width, height). Returns (F, 3)
    float64; NaN for a face whose points are not all finite or whose fit fails."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 49, 2)
    camera = camera_matrix(*image_size)
    return np.array([_pose_of(face, camera) for face in points]).reshape(-1, 3)


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of the rotation matrix ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    yaw = np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    return np.degrees([yaw, pitch, roll])


def _pose_of(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees of one face (49, 2), or NaNs: the fit of its rigid points,
    starting from a frontal face of their size and place."""
    if not np.isfinite(points).all():
        return np.full(3, np.nan)
    model, points = MEAN_FACE_3D[RIGID_POINTS], points[RIGID_POINTS]
    scale = _spread(points) / _spread(model[:, :2])
    centre = points.mean(axis=0)
    distance = camera[0, 0] / scale
    offset = (centre - camera[:2, 2]) / camera[0, 0] * distance
    rvec = np.zeros((3, 1))
    tvec = np.array([[offset[0]], [offset[1]], [distance]])
    ok, rvec, tvec = cv2.solvePnP(
        model, points, camera, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return np.full(3, np.nan)
    return euler_degrees(cv2.Rodrigues(rvec)[0])


def _spread(points: np.ndarray) -> float:
    """Root-mean-square distance of 2-D points (N, 2) from their mean."""
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))
