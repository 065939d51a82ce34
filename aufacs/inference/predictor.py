"""A trained model made ready for faces: :class:`Predictor`, :func:`load_predictor` (from a run
folder or a model file of ``aufacs export``), and faces of a photo aligned and turned into
that model's inputs (:func:`model_inputs`).

A face becomes a model input exactly as a test frame does in training: JAA-Net's similarity
transform aligns it to the size and box enlargement of the aligned-crop cache the model was
trained on, as the run recorded them (:mod:`aufacs.engine.model_spec`;
:func:`aufacs.data.align.align_face`), then the training data set's test transform
(:class:`aufacs.data.dataset.AlignedFaceDataset`: resize, centre crop, the model's
normalisation) makes the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aufacs.core.aus import AUSet
from aufacs.core.errors import AufacsError
from aufacs.data.align import align_face, alignment_matrix, transform_points
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import AlignedFaceDataset
from aufacs.engine.device import to_device
from aufacs.engine.model_spec import load_run_model
from aufacs.engine.runs import make_dataset
from aufacs.inference.export import load_model_file
from aufacs.models import AUModel
from aufacs.models.base import AUOutput

#: The batch keys a model may read; the data set's unknown labels are left out, so that
#: pictures show no ground truth.
_INPUT_KEYS = ("image", "landmarks", "biocular")


@dataclass(frozen=True)
class Predictor:
    """A model ready for faces: the network in eval mode and the aligned-crop geometry it was
    trained on. ``aus``: the N AU numbers in output order; ``size``: aligned-face side, pixels;
    ``box_enlarge``: the alignment's box enlargement (see :mod:`aufacs.data.align`);
    ``name``: the registered model name (``jaa_net``, ``eac_net``, ``me_graph_au``);
    ``threshold``: the probability from which an AU counts as present."""

    model: AUModel
    name: str
    aus: tuple[int, ...]
    size: int
    box_enlarge: float
    threshold: float = 0.5

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        """The model's output on ``batch``, without gradients."""
        with torch.no_grad():
            return self.model(batch)


def load_predictor(
    source: Path | str,
    epoch: int | None = None,
    *,
    device: str = "auto",
    threshold: float = 0.5,
) -> Predictor:
    """The model of ``source`` on ``device`` (``auto``, ``cpu`` or ``cuda``), calling an AU
    present from probability ``threshold``. ``source``: a run folder, whose checkpoint of
    ``epoch`` (default: the last saved) is loaded, or a model file written by ``aufacs
    export`` (a path with a suffix, such as ``model.aufacs``), which holds one epoch.

    The AU list, aligned size and box enlargement come from the run's ``model.json`` or the
    model file, so the training data is not needed (:mod:`aufacs.engine.model_spec`).
    """
    if not 0 <= threshold <= 1:
        raise AufacsError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    path = Path(source)
    if path.is_dir() or not path.suffix:
        model, spec, _ = load_run_model(path, epoch, device)
    elif epoch is not None:
        raise AufacsError(f"{path} is a model file, which holds one epoch; epoch is for runs")
    else:
        model, spec, _ = load_model_file(path, device)
    return Predictor(model, spec.model, spec.aus, spec.size, spec.box_enlarge, threshold)


@dataclass(frozen=True)
class ModelInputs:
    """F faces of one image, aligned and made into one model batch.

    ``batch``: ``image`` (F, 3, C, C) normalised, ``landmarks`` (F, 49, 2) and ``biocular``
    (F,) in model-input pixels (C: the model's crop side), on the predictor's device;
    ``matrices``: (F, 2, 3) affine maps from image pixels to aligned-face pixels; ``dataset``:
    the data set whose test transform made the batch.
    """

    batch: dict[str, torch.Tensor]
    matrices: np.ndarray
    dataset: AlignedFaceDataset

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Model-input pixels (F, 49, 2) -> pixels of the image (undoes the centre crop, the
        resize and the alignment). Returns float64."""
        aligned = self.dataset.test_input_to_cached(points)
        return transform_points(aligned, _inverse_affine(self.matrices))


def model_inputs(predictor: Predictor, image: np.ndarray, points: np.ndarray) -> ModelInputs:
    """The faces of ``image`` (H, W, 3) uint8 RGB, aligned with their landmarks ``points``
    (F, 49, 2) image pixels, as inputs of ``predictor``'s model."""
    aligned = [align_face(image, p, predictor.box_enlarge, predictor.size) for p in points]
    crops = np.stack([crop for crop, _ in aligned])  # (F, S, S, 3)
    faces = AlignedCache.in_memory(
        crops, np.stack([p for _, p in aligned]), AUSet("run", predictor.aus), predictor.box_enlarge
    )
    dataset = make_dataset(faces, None, predictor.model, train=False)
    batch = {k: v for k, v in dataset[np.arange(len(crops))].items() if k in _INPUT_KEYS}
    matrices = alignment_matrix(points, predictor.box_enlarge, predictor.size)
    return ModelInputs(to_device(batch, predictor.device), matrices, dataset)


def _inverse_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverses of affine matrices (..., 2, 3) in the same form."""
    linear = np.linalg.inv(matrices[..., :2])
    offset = -(linear @ matrices[..., 2:])
    return np.concatenate([linear, offset], axis=-1)
