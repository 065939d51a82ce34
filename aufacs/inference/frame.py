"""What a model makes of the faces in one frame: detection, alignment with the best landmarks
the detector allows, and the AU probabilities (:func:`analyse_frame`).

The landmarks that drive the alignment depend on the detector:

================  ==========================================================================
``dlib``          the 49 detected landmarks (the ``aufacs[landmarks]`` extra): every model
``haar``, JAA-Net a mean-shape template placed in the Haar box gives a first crop, JAA-Net
                  predicts its 49 landmarks there, they are mapped back to the photo through
                  the inverse alignment, and the face is aligned again with them and predicted
                  once more
``haar``, other   the template itself: ME-GraphAU only needs the crop; EAC-Net's attention
                  then comes from template points, not from the face, and the note says so
================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aufacs.data.align import eye_centres, inter_ocular
from aufacs.inference.faces import MAX_SIDE, Face, box_to_initial_landmarks, detect_faces
from aufacs.inference.predictor import Predictor, model_inputs
from aufacs.models.base import AUOutput

HAAR_NOTE = "face box from the Haar cascade"
#: Per model name: the note of a face found by the Haar cascade.
NOTES = {
    "jaa_net": f"{HAAR_NOTE}; aligned with JAA-Net's own landmarks after one re-alignment",
    "eac_net": (
        f"{HAAR_NOTE}; EAC-Net's attention follows mean-shape template landmarks, not the "
        "face's (install the landmarks extra for detected ones)"
    ),
    "me_graph_au": (
        f"{HAAR_NOTE}; aligned with a mean-shape template in the box (install the landmarks "
        "extra for a tighter crop)"
    ),
}
IMPLAUSIBLE_NOTE = (
    f"{HAAR_NOTE}; JAA-Net's landmarks did not fit the box, so the face was aligned with a "
    "mean-shape template in it"
)
#: JAA-Net's own landmarks replace the box template only when their inter-ocular distance is
#: within this factor of the template's and the middle of their eyes lies inside the face box.
PLAUSIBLE_SCALE = 2.0


@dataclass(frozen=True)
class FrameFaces:
    """What the model made of the F faces of one frame (N AUs), in pixels of that frame.

    ``faces``: the detections, largest box first; ``points`` (F, 49, 2): the landmarks each
    face was aligned with; ``landmark_sources``: per face ``"dlib"``, ``"jaa_net"`` or
    ``"template"``; ``probs`` (F, N): AU probabilities; ``notes``: per face, a sentence or "".
    """

    faces: list[Face]
    points: np.ndarray
    landmark_sources: list[str]
    probs: np.ndarray
    notes: list[str]


def analyse_frame(
    predictor: Predictor, image: np.ndarray, backend: str, min_score: float | None = None
) -> FrameFaces | None:
    """Detect, align and predict every face of ``image`` (H, W, 3) uint8 RGB, longer side at
    most :data:`MAX_SIDE` pixels, with detector ``backend`` scoring at least ``min_score``
    (None: the detector's default), as the module docstring says; None when it has no face."""
    faces = detect_faces(image, backend=backend, max_side=MAX_SIDE, min_score=min_score)
    if not faces:
        return None
    points, sources, notes = alignment_points(predictor, image, faces)
    output = predictor.forward(model_inputs(predictor, image, points).batch)
    return FrameFaces(faces, points, sources, _probs(output), notes)


def alignment_points(
    predictor: Predictor, image: np.ndarray, faces: list[Face]
) -> tuple[np.ndarray, list[str], list[str]]:
    """The landmarks (F, 49, 2) that the F ``faces`` of ``image`` are aligned with, where each
    face's came from and its note (module docstring). For Haar boxes and JAA-Net this runs
    the model once on the template crops."""
    count = len(faces)
    if faces[0].landmarks is not None:
        return np.stack([face.landmarks for face in faces]), ["dlib"] * count, [""] * count
    template = np.stack([box_to_initial_landmarks(face.box) for face in faces])
    if predictor.name != "jaa_net":
        note = NOTES.get(predictor.name, HAAR_NOTE)
        return template, ["template"] * count, [note] * count
    inputs = model_inputs(predictor, image, template)
    output = predictor.forward(inputs.batch)
    if output.landmarks is None:
        return template, ["template"] * count, [HAAR_NOTE] * count
    predicted = inputs.to_image(output.landmarks.float().cpu().numpy())  # (F, 49, 2)
    own = plausible(predicted, template, np.array([face.box for face in faces]))
    points = np.where(own[:, None, None], predicted, template)
    sources = ["jaa_net" if ok else "template" for ok in own]
    notes = [NOTES["jaa_net"] if ok else IMPLAUSIBLE_NOTE for ok in own]
    return points, sources, notes


def _probs(output: AUOutput) -> np.ndarray:
    """A model output's probabilities as (B, N) float numpy."""
    return output.au_prob.float().cpu().numpy()


def plausible(points: np.ndarray, template: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which faces' predicted landmarks (F, 49, 2) fit their boxes (F, 4): finite, with an
    inter-ocular distance within :data:`PLAUSIBLE_SCALE` of the template's and the middle of
    the eyes inside the box. Returns (F,) bool."""
    ratio = inter_ocular(points) / inter_ocular(template)
    left, right = eye_centres(points)
    middle = 0.5 * (left + right)  # (F, 2)
    inside = np.all((middle >= boxes[:, :2]) & (middle < boxes[:, 2:]), axis=1)
    finite = np.isfinite(points).all(axis=(1, 2))
    return finite & inside & (ratio >= 1 / PLAUSIBLE_SCALE) & (ratio <= PLAUSIBLE_SCALE)
