"""SynthBP4D: the embedded synthetic data set, written in the raw BP4D layout.

Procedural faces drawn from 49 landmarks, each of BP4D's 12 AUs changing the face locally
(landmark moves, creases, bumps), in temporally smooth sequences with BP4D's occurrence rates
and co-occurrences; per-frame head pose, light, blur and noise; optional planted defects for
the audit; and per-frame ground truth of where each AU acts. See ``docs/synthetic.md``.

=================  ==============================================================
module             concept
=================  ==============================================================
``draw``           the face-unit canvas and anti-aliased drawing primitives
``face``           a subject's parametric face: parameters, neutral landmarks, contours
``face_drawing``   :class:`FaceModel`: the face's static layers, features and shading
``aus_motion``     what each AU does (displacements, creases, bumps) and its region
``sequences``      temporal AU activity and per-frame nuisances
``render``         the camera: pose, background, light, blur, noise; frame regions
``planning``       :class:`SynthConfig` and :func:`plan`: faces, frames, parameters
``manifest``       :class:`SynthManifest` and the per-frame parameters table
``generate``       :func:`generate_synthetic`: frames, labels, landmarks, defects on disk
``truth``          :class:`SynthTruth`: regions and redrawing of a generated folder
``preview``        :func:`preview_grid`, the picture of aligned faces
``proof``          learnability and locality measurements (HOG + logistic regression)
=================  ==============================================================
"""

from aufacs.data.synthetic.face import FaceParams, sample_face
from aufacs.data.synthetic.generate import generate_synthetic
from aufacs.data.synthetic.manifest import FRAMES_FILE, MANIFEST_FILE, SynthManifest
from aufacs.data.synthetic.planning import SynthConfig, plan
from aufacs.data.synthetic.preview import preview_grid
from aufacs.data.synthetic.render import FrameParams, RenderedFrame, SubjectRenderer, warp_masks
from aufacs.data.synthetic.truth import SynthTruth

__all__ = [
    "FRAMES_FILE",
    "MANIFEST_FILE",
    "FaceParams",
    "FrameParams",
    "RenderedFrame",
    "SubjectRenderer",
    "SynthConfig",
    "SynthManifest",
    "SynthTruth",
    "generate_synthetic",
    "plan",
    "preview_grid",
    "sample_face",
    "warp_masks",
]
