"""Landmark-driven attention maps of JAA-Net and EAC-Net.

Both methods place two centres per AU region (one per face side) from a pair of 49-point
landmarks, shifted vertically by a fraction of the *ruler*, the horizontal distance
``|x22 - x25|`` between the inner eye corners, and draw a Manhattan-distance ramp around each
centre. Every map here is built for the whole batch in one broadcast operation on the
landmarks' device: there is no Python loop over samples, AUs or pixels, and no host-device
synchronisation (the small index tables are copied to each device once and cached).

* JAA-Net (Shao et al., ECCV 2018; official PyTorch code ``network.py`` ``generate_map``):
  :func:`jaa_initial_attention`, one map per AU on a ``map_size`` grid (52 for a 176 crop).
* EAC-Net (Li et al., FG 2017 / TPAMI 2018; official Theano code
  ``get_attention_map_dlib.py``): :func:`eac_region_maps` and :func:`eac_attention_map`,
  ten maps or one for all regions on a 100 x 100 grid, and :func:`eac_crop_centres`, the
  C-Net's crop positions.

Landmark indices are 0-based in the 49-point scheme of :mod:`aufacs.core.aus`; image y grows
downward, so a negative offset moves a centre up. A landmark that is NaN yields a NaN centre,
and a NaN centre draws nothing (its maps stay zero) instead of failing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch

from aufacs.core.aus import NUM_LANDMARKS
from aufacs.core.errors import AufacsError

#: The two inner eye corners whose horizontal distance is the ruler of both methods.
RULER_POINTS = (22, 25)


@dataclass(frozen=True)
class LandmarkRegion:
    """Two centres of an AU region: points ``first`` and ``second`` (0-based, 49-point),
    each moved down by ``offset`` rulers (negative: up)."""

    first: int
    second: int
    offset: Fraction = Fraction(0)


#: JAA-Net's region per AU number (official ``AlignNet.forward``; BP4D, DISFA and GFT rules
#: agree where they share an AU). AU12/14/15 and AU23/24 share their regions.
JAA_AU_CENTRES: dict[int, LandmarkRegion] = {
    1: LandmarkRegion(4, 5, Fraction(-1, 2)),
    2: LandmarkRegion(1, 8, Fraction(-1, 3)),
    4: LandmarkRegion(2, 7, Fraction(1, 3)),
    6: LandmarkRegion(24, 29, Fraction(1)),
    7: LandmarkRegion(21, 26),
    9: LandmarkRegion(15, 17, Fraction(-1, 2)),
    10: LandmarkRegion(43, 45),
    12: LandmarkRegion(31, 37),
    14: LandmarkRegion(31, 37),
    15: LandmarkRegion(31, 37),
    17: LandmarkRegion(39, 41, Fraction(1, 2)),
    23: LandmarkRegion(34, 40),
    24: LandmarkRegion(34, 40),
    25: LandmarkRegion(34, 40),
    26: LandmarkRegion(39, 41, Fraction(1, 2)),
}

#: EAC-Net's ten regions in the release's order (``get_au_tg_dlib``; its dlib-68 pairs mapped
#: to the 49-point scheme). Region j's centres are rows 2j and 2j + 1 of
#: :func:`eac_region_centres`.
EAC_REGIONS: dict[str, LandmarkRegion] = {
    "AU1": LandmarkRegion(4, 5, Fraction(-1, 2)),
    "AU2": LandmarkRegion(1, 8, Fraction(-1, 3)),
    "AU4": LandmarkRegion(2, 7, Fraction(1, 3)),
    "AU6": LandmarkRegion(24, 29, Fraction(1)),
    "AU7": LandmarkRegion(21, 26),
    "AU10": LandmarkRegion(32, 36),
    "lip_corners": LandmarkRegion(31, 37),
    "lip_centres": LandmarkRegion(34, 40),
    "inner_upper_lip": LandmarkRegion(43, 45),
    "lower_lip": LandmarkRegion(39, 41, Fraction(1, 2)),
}

#: Side of EAC-Net's attention map (0-100 units, one pixel per unit).
EAC_MAP_SIZE = 100


@dataclass(frozen=True)
class EacMapVariant:
    """An EAC-Net map style: value ``1 - decay * d`` (d: Manhattan distance in pixels) over
    the window ``[c - before, c + after]`` around each integer centre c, on both axes."""

    decay: float
    before: int
    after: int


#: ``"release"``: what the authors' training scripts draw (``get_map``), the default.
#: ``"single"``: the paper's 1 - 0.095 d (the release's ``get_map_single_au``), here drawn
#: for all regions.
EAC_MAP_VARIANTS: dict[str, EacMapVariant] = {
    "release": EacMapVariant(decay=0.07, before=7, after=6),
    "single": EacMapVariant(decay=0.095, before=5, after=4),
}


def _check_landmarks(landmarks: torch.Tensor) -> None:
    if landmarks.dim() != 3 or tuple(landmarks.shape[1:]) != (NUM_LANDMARKS, 2):
        raise AufacsError(
            f"landmarks must have shape (B, {NUM_LANDMARKS}, 2), got {tuple(landmarks.shape)}"
        )


def _working(landmarks: torch.Tensor) -> torch.Tensor:
    """Detached landmarks in at least float32 (half precision cannot hold pixel positions)."""
    dtype = torch.promote_types(landmarks.dtype, torch.float32)
    return landmarks.detach().to(dtype)


@functools.lru_cache(maxsize=64)
def _region_tables(
    regions: tuple[LandmarkRegion, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Point pairs (R, 2) and offset numerators and denominators (R,) on ``device``, built
    once per device so that a forward pass copies nothing from the host."""
    pairs = torch.tensor([(r.first, r.second) for r in regions], device=device)
    numerators = torch.tensor([r.offset.numerator for r in regions], device=device)
    denominators = torch.tensor([r.offset.denominator for r in regions], device=device)
    return pairs, numerators, denominators


def _region_centres(landmarks: torch.Tensor, regions: Sequence[LandmarkRegion]) -> torch.Tensor:
    """(B, 49, 2) landmarks -> (B, R, 2, 2) centres: [sample, region, centre, (x, y)]."""
    pairs, numerators, denominators = _region_tables(tuple(regions), landmarks.device)
    ruler = (landmarks[:, RULER_POINTS[0], 0] - landmarks[:, RULER_POINTS[1], 0]).abs()
    shift = ruler[:, None] * numerators / denominators  # (B, R), same arithmetic as ruler/3
    centres = landmarks[:, pairs]  # (B, R, 2, 2)
    return torch.stack((centres[..., 0], centres[..., 1] + shift[:, :, None]), dim=-1)


def _window_distance(
    centre: torch.Tensor, size: int, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Distance ``|p - centre|`` from each grid position p in [0, size) along one axis, +inf
    outside ``[low, high]`` (and everywhere for a NaN centre): (..., size) for (...) inputs.
    Adding the two axes' distances gives the Manhattan distance inside a rectangular window
    and +inf outside it, so a decaying value clamped at 0 vanishes there."""
    grid = torch.arange(size, device=centre.device, dtype=centre.dtype)
    inside = (grid >= low[..., None]) & (grid <= high[..., None])
    distance = (grid - centre[..., None]).abs()
    return torch.where(inside, distance, torch.full_like(distance, float("inf")))


def au_centres(landmarks: torch.Tensor, aus: Sequence[int]) -> torch.Tensor:
    """JAA-Net's two attention centres per AU.

    ``landmarks``: (B, 49, 2) in pixels (x, y), 0-indexed. ``aus``: AU numbers, e.g.
    :data:`aufacs.core.aus.BP4D_AUS`. Returns (B, N, 2, 2) in the landmarks' pixel units:
    ``[b, i, k]`` is the (x, y) of centre k (0: ``first`` point, 1: ``second``) of AU ``aus[i]``
    (see :data:`JAA_AU_CENTRES`). Not differentiable (the landmarks are detached).
    """
    _check_landmarks(landmarks)
    unknown = [au for au in aus if au not in JAA_AU_CENTRES]
    if unknown:
        raise AufacsError(
            f"aus contains AU(s) {unknown} without a JAA-Net attention region; expected AUs "
            f"from {sorted(JAA_AU_CENTRES)}"
        )
    return _region_centres(_working(landmarks), [JAA_AU_CENTRES[au] for au in aus])


def jaa_initial_attention(
    landmarks: torch.Tensor,
    aus: Sequence[int],
    *,
    crop_size: int = 176,
    map_size: int = 52,
    spatial_ratio: float = 0.14,
    fill_coeff: float = 0.56,
) -> torch.Tensor:
    """JAA-Net's initial (predefined) attention maps, exactly as the official code draws them.

    ``landmarks``: (B, 49, 2) in pixels of the ``crop_size`` input crop, 0-indexed (JAA-Net
    passes its *predicted* landmarks; no gradient flows). Returns (B, N, map_size, map_size)
    in [0, 1], float32 (float64 for float64 input), on the landmarks' device.

    Official rule (``generate_map``, M = ``map_size``, the crop's map size + 8 = 52 for 176):
    each centre of :func:`au_centres` goes to grid cell ``round(coord * M / crop_size)``
    (round half to even, as Python's ``round``); its ROI is the square of half size
    ``round((M - 1) / 2 * spatial_ratio)`` (4 by default) whose first and last row and column
    are each clipped to [0, M - 1]; inside it the value is
    ``max(1 - (|h - cy| + |w - cx|) * fill_coeff / (M * spatial_ratio), 0)`` (0.0769 per
    Manhattan step by default), outside it 0; an AU's two centres merge by maximum. As in the
    official code, a centre five or more cells beyond an edge still paints the nearest
    border row or column (the clipped ROI degenerates to it), faintly.
    """
    centres = au_centres(landmarks, aus)  # (B, N, 2, 2)
    cells = torch.round(centres * (map_size / crop_size))  # (B, N, 2, 2)
    half = round((map_size - 1) / 2.0 * spatial_ratio)
    last = map_size - 1
    cx, cy = cells.unbind(-1)  # (B, N, 2) each
    dx = _window_distance(cx, map_size, (cx - half).clamp(0, last), (cx + half).clamp(0, last))
    dy = _window_distance(cy, map_size, (cy - half).clamp(0, last), (cy + half).clamp(0, last))
    # Manhattan distance, inf outside the ROI; the nearer centre gives the larger value
    distance = (dy[..., :, None] + dx[..., None, :]).amin(dim=2)  # (B, N, M, M)
    return (1 - distance * fill_coeff / (map_size * spatial_ratio)).clamp_min(0)


def eac_region_centres(landmarks: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """EAC-Net's 20 region centres in 0-100 units.

    ``landmarks``: (B, 49, 2) in pixels (x, y) of an image of ``image_size`` = (H, W).
    Coordinates are normalised as the release does (``x / W * 100``, ``y / H * 100``), the
    ruler is ``|x22 - x25|`` in those units, and the regions are :data:`EAC_REGIONS`.
    Returns (B, 20, 2) (x, y): row 2j is region j's ``first`` centre, row 2j + 1 its
    ``second``, the C-Net's crop order. Not differentiable (the landmarks are detached).
    """
    _check_landmarks(landmarks)
    height, width = image_size
    if height <= 0 or width <= 0:
        raise AufacsError(f"image_size must be a positive (H, W), got {image_size}")
    points = _working(landmarks)
    normalised = torch.stack(
        (points[..., 0] / width * EAC_MAP_SIZE, points[..., 1] / height * EAC_MAP_SIZE), dim=-1
    )
    return _region_centres(normalised, list(EAC_REGIONS.values())).flatten(1, 2)


def eac_region_maps(
    landmarks: torch.Tensor, image_size: tuple[int, int], *, variant: str = "release"
) -> torch.Tensor:
    """EAC-Net's attention map of each region on its own: (B, 10, 100, 100) in [0, 1].

    ``landmarks``: (B, 49, 2) in pixels of an image of ``image_size`` = (H, W). Map j holds
    the two centres of region j of :data:`EAC_REGIONS` (float32, or float64 for float64
    input). Each centre of :func:`eac_region_centres` is truncated to an integer pixel
    (``floor``, which equals the release's truncation for the non-negative coordinates it
    handles) and paints ``1 - decay * d`` (d: Manhattan distance in pixels) over its window;
    centres merge by maximum. ``variant`` picks the style of :data:`EAC_MAP_VARIANTS`:

    * ``"release"`` (default): ``1 - 0.07 d`` over ``[c - 7, c + 6]`` on each axis, what the
      authors' training scripts feed the network.
    * ``"single"``: ``1 - 0.095 d`` over ``[c - 5, c + 4]``, the paper's formula.

    Unlike the release, a window that crosses the border is clipped to the map (the release
    ``break``s out of its loop and draws nothing for a centre within 7 units of the left or
    top edge), and negative coordinates are not wrapped around (its ``uint8`` cast).
    """
    if variant not in EAC_MAP_VARIANTS:
        raise AufacsError(f"variant must be one of {sorted(EAC_MAP_VARIANTS)}, got {variant!r}")
    style = EAC_MAP_VARIANTS[variant]
    centres = torch.floor(eac_region_centres(landmarks, image_size))  # (B, 20, 2)
    cx, cy = centres.unbind(-1)  # (B, 20) each
    dx = _window_distance(cx, EAC_MAP_SIZE, cx - style.before, cx + style.after)
    dy = _window_distance(cy, EAC_MAP_SIZE, cy - style.before, cy + style.after)
    # Manhattan distance, inf outside the windows; the nearer centre gives the larger value
    distance = dy[..., :, None] + dx[..., None, :]  # (B, 20, 100, 100)
    nearest = distance.unflatten(1, (len(EAC_REGIONS), 2)).amin(dim=2)  # (B, 10, 100, 100)
    return (1 - nearest * style.decay).clamp_min(0)


def eac_attention_map(
    landmarks: torch.Tensor, image_size: tuple[int, int], *, variant: str = "release"
) -> torch.Tensor:
    """EAC-Net's attention map, one 100 x 100 map for all ten regions: (B, 1, 100, 100).

    The maximum over the regions of :func:`eac_region_maps` (same arguments; see there for
    the two variants and the border handling). This is the map the E-Net multiplies into
    its conv3 and conv4 features.
    """
    return eac_region_maps(landmarks, image_size, variant=variant).amax(dim=1, keepdim=True)


def eac_crop_centres(centres: torch.Tensor, feature_size: int = 28) -> torch.Tensor:
    """Where EAC-Net's C-Net crops its 3 x 3 patches from the ``feature_size`` conv4 map.

    ``centres``: (B, 20, 2) (x, y) in 0-100 units from :func:`eac_region_centres`. Returns a
    LongTensor (B, 20, 2) (column, row) of ``floor(c / 100 * feature_size)`` clamped to
    [1, feature_size - 2], so that rows and columns ``c - 1 .. c + 1`` lie inside the map
    (the release truncates and clamps to [1, 26] at 28). A NaN centre crops at (1, 1).
    """
    cells = torch.floor(torch.nan_to_num(centres, nan=0.0) / EAC_MAP_SIZE * feature_size)
    return cells.clamp(1, feature_size - 2).long()
