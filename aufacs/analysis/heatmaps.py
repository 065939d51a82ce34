"""Where a detector looks: per-AU attention and Grad-CAM maps, and how much of them falls
inside each AU's region.

Maps come from :func:`attention_maps`, as (B, N, H, W) tensors in [0, 1] at the input image
size (H, W pixels), one map per sample and AU:

- ``method="attention"``: the model's own ``AUOutput.attention`` (JAA-Net's refined maps,
  EAC-Net's per-AU landmark attention), upsampled bilinearly and kept on its own scale;
- ``method="gradcam"``: Grad-CAM (Selvaraju et al., ICCV 2017) for every AU on one convolution
  layer: the model's ``gradcam_layer()`` module when it has one, otherwise the last
  ``nn.Conv2d`` to run in the forward pass whose output map is at least 7 x 7. For AU n and
  layer activation A (B, C, h, w), ``cam_n = ReLU(sum_c mean_hw(d s_n / d A_c) * A_c)`` with
  ``s_n`` the AU's log-odds (``au_logits``; ``au_prob`` for models without log-odds, such as
  ME-GraphAU's cosine scores), upsampled bilinearly and divided by its maximum;
- ``method="auto"``: the model's attention where it has one, Grad-CAM otherwise.

:func:`heatmap_set` gathers the maps of a batch with its images (turned back into
(H, W, 3) uint8 RGB by :func:`denormalise`), probabilities, labels and landmarks, so that
they can be drawn again and again without running the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.errors import AufacsError
from aufacs.models.base import AUModel, AUOutput

METHODS: tuple[str, ...] = ("auto", "attention", "gradcam")
#: Smallest side of a feature map that Grad-CAM picks by itself, pixels of that map.
MIN_GRADCAM_SIDE = 7


@dataclass(frozen=True)
class HeatmapSet:
    """Heatmaps of S samples and N AUs, computed once and drawn without running a model.

    ``images`` (S, H, W, 3) uint8 RGB; ``maps`` (S, N, h, w) float in [0, 1] (any h, w: the
    drawings stretch a map over its image); ``aus`` the N AU numbers in output order;
    ``probs`` (S, N) predicted probabilities; ``labels`` (S, N) 1 present, 0 absent, NaN
    unknown; ``landmarks`` (S, 49, 2) input pixels; ``method`` says how the maps were made.
    """

    images: np.ndarray
    maps: np.ndarray
    aus: tuple[int, ...]
    probs: np.ndarray | None = None
    labels: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    method: str = "attention"

    @property
    def num_samples(self) -> int:
        return len(self.images)


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode and give it back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise AufacsError(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def _upsampled(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, N, h, w) -> (B, N, H, W), bilinear."""
    return F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)


def _layer_activation(records: list[torch.Tensor], chosen_by_model: bool) -> torch.Tensor:
    """The activation Grad-CAM works on, from the hooked outputs in the order they ran."""
    usable = [
        out
        for out in records
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.requires_grad
    ]
    if not chosen_by_model:
        usable = [out for out in usable if min(out.shape[-2:]) >= MIN_GRADCAM_SIDE]
    if not usable:
        source = (
            "the model's gradcam_layer() output"
            if chosen_by_model
            else f"an nn.Conv2d output of at least {MIN_GRADCAM_SIDE} x {MIN_GRADCAM_SIDE}"
        )
        raise AufacsError(f"Grad-CAM needs {source} with a gradient, and this model has none")
    return usable[-1]


def _gradcam(model: AUModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, AUOutput]:
    """Grad-CAM maps (B, N, h, w) in [0, 1] on the layer's grid, and the model output."""
    layer = model.gradcam_layer() if hasattr(model, "gradcam_layer") else None
    if layer is not None:
        modules = [layer]
    else:
        modules = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    records: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: records.append(out)) for m in modules]
    try:
        with torch.enable_grad():
            image = batch["image"].detach().requires_grad_(True)
            output = model({**batch, "image": image})
    finally:
        for hook in hooks:
            hook.remove()
    activation = _layer_activation(records, chosen_by_model=layer is not None)  # (B, C, h, w)
    scores = output.au_logits if output.au_logits is not None else output.au_prob  # (B, N)
    cams = []
    for n in range(scores.shape[1]):
        # Samples are independent in eval mode, so the gradient of the batch sum is per sample.
        (grad,) = torch.autograd.grad(scores[:, n].sum(), activation, retain_graph=True)
        weights = grad.mean(dim=(-2, -1))  # (B, C)
        cams.append(torch.einsum("bc,bchw->bhw", weights, activation.detach()))
    cam = torch.relu(torch.stack(cams, dim=1))  # (B, N, h, w)
    peak = cam.amax(dim=(-2, -1), keepdim=True)
    return cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), output


def _maps_and_output(
    model: AUModel, batch: dict[str, torch.Tensor], method: str
) -> tuple[torch.Tensor, AUOutput, str]:
    """(B, N, H, W) maps in [0, 1], the model output and the method used."""
    _check_method(method)
    size = tuple(batch["image"].shape[-2:])
    with _evaluating(model):
        if method != "gradcam":
            with torch.no_grad():
                output = model(batch)
            if output.attention is not None:
                return _upsampled(output.attention, size).clamp(0.0, 1.0), output, "attention"
            if method == "attention":
                raise AufacsError(
                    f"method='attention' needs a model with attention maps, and "
                    f"{type(model).__name__} has none; use method='gradcam'"
                )
        cam, output = _gradcam(model, batch)
    return _upsampled(cam, size).clamp(0.0, 1.0).detach(), output, "gradcam"


def attention_maps(
    model: AUModel, batch: dict[str, torch.Tensor], *, method: str = "auto"
) -> torch.Tensor:
    """Per-AU maps of where ``model`` looks: (B, N, H, W) float in [0, 1], input pixels.

    ``batch``: a model batch (``"image"`` (B, 3, H, W), plus ``"landmarks"`` for models that
    need them). ``method``: ``"auto"``, ``"attention"`` or ``"gradcam"`` (module docstring).
    The model runs in eval mode and is given back in the mode it was in; the maps are on the
    batch's device. Raises AufacsError for an unknown method, or ``"attention"`` on a model
    without attention maps.
    """
    return _maps_and_output(model, batch, method)[0]


def heatmap_set(
    model: AUModel,
    batch: dict[str, torch.Tensor],
    aus: Sequence[int],
    *,
    method: str = "auto",
) -> HeatmapSet:
    """Maps, probabilities, labels and landmarks of one batch, ready to draw (CPU, numpy).

    ``aus``: the model's N AU numbers in output order. Maps are stored as float16 to keep many
    (model, epoch) sets in memory; ``labels`` come from ``batch["au"]`` and ``landmarks`` from
    the model's prediction or else ``batch["landmarks"]``, where present.
    """
    maps, output, used = _maps_and_output(model, batch, method)
    if maps.shape[1] != len(aus):
        raise AufacsError(f"aus lists {len(aus)} AUs but the model outputs {maps.shape[1]}")
    spec = model.input_spec
    landmarks = output.landmarks if output.landmarks is not None else batch.get("landmarks")
    labels = batch.get("au")
    return HeatmapSet(
        images=denormalise(batch["image"], spec.mean, spec.std),
        maps=maps.cpu().numpy().astype(np.float16),
        aus=tuple(int(a) for a in aus),
        probs=output.au_prob.detach().float().cpu().numpy(),
        labels=None if labels is None else labels.float().cpu().numpy(),
        landmarks=None if landmarks is None else landmarks.detach().float().cpu().numpy(),
        method=used,
    )


def attention_mass_inside(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's mass that falls inside its AU's ground-truth region.

    ``maps`` (B, N, H, W) non-negative; ``masks`` (B, N, H, W) bool, the same grid (for the
    synthetic data: each AU's region mask, in aligned-crop pixels). Returns (B, N) float in
    [0, 1]: sum(map · mask) / sum(map), NaN where a map has no mass. Average over samples for
    the score of a model and AU.
    """
    maps = torch.as_tensor(maps).float()
    masks = torch.as_tensor(masks, device=maps.device)
    if maps.ndim != 4 or maps.shape != masks.shape:
        raise AufacsError(
            f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} must both be (B, N, H, W) "
            "of the same shape"
        )
    inside = (maps * masks.bool()).sum(dim=(-2, -1))
    total = maps.sum(dim=(-2, -1))
    return torch.where(
        total > 0, inside / total.clamp_min(torch.finfo(total.dtype).tiny), torch.nan
    )


#: The columns of :func:`uniform_map_ratio`'s result, in order.
RATIO_COLUMNS = ("map", "inside", "uniform", "ratio", "low", "high", "faces")


def uniform_map_ratio(
    inside: np.ndarray, uniform: np.ndarray, kept: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mass inside the AU regions relative to a uniform map's, with a bootstrap over faces.

    ``inside`` (S, N): share of each map's mass inside its AU's region
    (:func:`attention_mass_inside`); ``uniform`` (S, N): the region's share of the image;
    ``kept`` (S, N) bool: the (face, AU) pairs to count (the AUs a face shows; NaN maps are
    dropped). Returns ``inside`` and ``uniform`` (means over kept pairs), ``ratio`` (their
    quotient: 1 for a map without preference), ``low`` and ``high`` (2.5th and 97.5th
    percentiles of the ratio over ``n_boot`` resamplings of the S faces) and ``faces`` (the
    faces with a kept pair); NaN where nothing is kept.
    """
    kept = np.asarray(kept, bool) & ~np.isnan(inside)
    per_face_inside = np.where(kept, inside, 0.0).sum(axis=1)
    per_face_uniform = np.where(kept, uniform, 0.0).sum(axis=1)
    count = kept.sum(axis=1)
    faces = int((count > 0).sum())
    if faces == 0:
        return dict.fromkeys(("inside", "uniform", "ratio", "low", "high"), np.nan) | {"faces": 0}
    # how often each face is drawn in each resampling: (n_boot, S)
    weights = np.random.default_rng(seed).multinomial(
        len(count), np.full(len(count), 1 / len(count)), n_boot
    )
    boot = (weights @ per_face_inside) / np.maximum(weights @ per_face_uniform, 1e-12)
    ratio = per_face_inside.sum() / per_face_uniform.sum()
    return {
        "inside": per_face_inside.sum() / count.sum(),
        "uniform": per_face_uniform.sum() / count.sum(),
        "ratio": ratio,
        "low": float(np.percentile(boot, 2.5)),
        "high": float(np.percentile(boot, 97.5)),
        "faces": faces,
    }


def denormalise(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Undo a model's input normalisation: (..., 3, H, W) float -> (..., H, W, 3) uint8 RGB.

    ``mean``, ``std``: the RGB values of the model's ``input_spec`` (pixels scaled to [0, 1]).
    """
    image = torch.as_tensor(image).detach().float().cpu()
    if image.ndim < 3 or image.shape[-3] != 3:
        raise AufacsError(f"image must be (..., 3, H, W), got shape {tuple(image.shape)}")
    scale = torch.tensor(std).view(3, 1, 1)
    shift = torch.tensor(mean).view(3, 1, 1)
    rgb = (image * scale + shift).clamp(0.0, 1.0).movedim(-3, -1)
    return (rgb * 255.0).round().to(torch.uint8).numpy()
