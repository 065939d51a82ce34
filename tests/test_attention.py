"""Landmark attention maps against per-pixel loop versions of the official rules."""

from __future__ import annotations

import math

import pytest
import torch

from aufacs.core.aus import BP4D_AUS, DISFA_AUS, FROM_68, MIRROR_49
from aufacs.core.errors import AufacsError
from aufacs.models.attention import (
    EAC_REGIONS,
    au_centres,
    eac_attention_map,
    eac_crop_centres,
    eac_region_centres,
    eac_region_maps,
    jaa_initial_attention,
)

CROP, GRID = 176, 52


def official_jaa_centres(x: list[float], y: list[float], au: int) -> list[tuple[float, float]]:
    """The two centres of one AU as official ``AlignNet.forward`` writes them (0-based)."""
    r = abs(x[22] - x[25])
    rules = {
        1: (x[4], y[4] - r / 2, x[5], y[5] - r / 2),
        2: (x[1], y[1] - r / 3, x[8], y[8] - r / 3),
        4: (x[2], y[2] + r / 3, x[7], y[7] + r / 3),
        6: (x[24], y[24] + r, x[29], y[29] + r),
        7: (x[21], y[21], x[26], y[26]),
        9: (x[15], y[15] - r / 2, x[17], y[17] - r / 2),
        10: (x[43], y[43], x[45], y[45]),
        12: (x[31], y[31], x[37], y[37]),
        14: (x[31], y[31], x[37], y[37]),
        15: (x[31], y[31], x[37], y[37]),
        17: (x[39], y[39] + r / 2, x[41], y[41] + r / 2),
        23: (x[34], y[34], x[40], y[40]),
        24: (x[34], y[34], x[40], y[40]),
        25: (x[34], y[34], x[40], y[40]),
        26: (x[39], y[39] + r / 2, x[41], y[41] + r / 2),
    }
    x1, y1, x2, y2 = rules[au]
    return [(x1, y1), (x2, y2)]


def official_generate_map(
    grid: list[list[float]], centres, crop_size=CROP, map_size=GRID, ratio=0.14, coeff=0.56
) -> None:
    """Official ``generate_map``, pixel by pixel, into ``grid`` (a list of rows)."""
    scale = float(map_size) / crop_size
    half = round((map_size - 1) / 2.0 * ratio)
    for cx_raw, cy_raw in centres:
        cx, cy = round(cx_raw * scale), round(cy_raw * scale)
        start_w = min(max(cx - half, 0), map_size - 1)
        end_w = min(max(cx + half, 0), map_size - 1)
        start_h = min(max(cy - half, 0), map_size - 1)
        end_h = min(max(cy + half, 0), map_size - 1)
        for h in range(start_h, end_h + 1):
            for w in range(start_w, end_w + 1):
                value = 1 - (abs(h - cy) + abs(w - cx)) * coeff / (map_size * ratio)
                grid[h][w] = max(value, grid[h][w])


def loop_jaa_maps(landmarks: torch.Tensor, aus) -> torch.Tensor:
    maps = torch.zeros(landmarks.shape[0], len(aus), GRID, GRID, dtype=torch.float64)
    for b, points in enumerate(landmarks.tolist()):
        x, y = [p[0] for p in points], [p[1] for p in points]
        for i, au in enumerate(aus):
            grid = [[0.0] * GRID for _ in range(GRID)]
            official_generate_map(grid, official_jaa_centres(x, y, au))
            maps[b, i] = torch.tensor(grid, dtype=torch.float64)
    return maps


#: EAC-Net's regions as the release writes them: dlib-68 pair and vertical shift per ruler r.
EAC_DLIB_REGIONS = [
    (21, 22, lambda r: -r / 2),
    (18, 25, lambda r: -r / 3),
    (19, 24, lambda r: r / 3),
    (41, 46, lambda r: r),
    (38, 43, lambda r: 0.0),
    (49, 53, lambda r: 0.0),
    (48, 54, lambda r: 0.0),
    (51, 57, lambda r: 0.0),
    (61, 63, lambda r: 0.0),
    (56, 58, lambda r: r / 2),
]


def loop_eac_centres(points: list[list[float]], height: int, width: int) -> list[tuple]:
    x = {FROM_68[k]: p[0] / width * 100 for k, p in enumerate(points)}
    y = {FROM_68[k]: p[1] / height * 100 for k, p in enumerate(points)}
    ruler = abs(x[39] - x[42])
    centres = []
    for first, second, shift in EAC_DLIB_REGIONS:
        centres += [(x[first], y[first] + shift(ruler)), (x[second], y[second] + shift(ruler))]
    return centres


def loop_eac_region_maps(landmarks, height, width, decay, before, after) -> torch.Tensor:
    """The release's ``get_map`` per region, with its border bugs fixed (``continue``, no
    uint8 cast): (B, 10, 100, 100)."""
    maps = torch.zeros(landmarks.shape[0], 10, 100, 100, dtype=torch.float64)
    for b, points in enumerate(landmarks.tolist()):
        for c, (cx_raw, cy_raw) in enumerate(loop_eac_centres(points, height, width)):
            cx, cy = math.floor(cx_raw), math.floor(cy_raw)
            for px in range(cx - before, cx + after + 1):
                for py in range(cy - before, cy + after + 1):
                    if 0 <= px <= 99 and 0 <= py <= 99:
                        value = 1 - (abs(px - cx) + abs(py - cy)) * decay
                        maps[b, c // 2, py, px] = max(maps[b, c // 2, py, px].item(), value)
    return maps


def random_landmarks(batch: int, low: float, high: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(batch, 49, 2, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("aus", [BP4D_AUS, DISFA_AUS], ids=["bp4d", "disfa"])
def test_jaa_maps_equal_the_official_per_pixel_rule(aus):
    landmarks = random_landmarks(3, 20.0, 156.0, seed=0)
    assert torch.equal(jaa_initial_attention(landmarks, aus), loop_jaa_maps(landmarks, aus))


def test_jaa_maps_equal_the_official_rule_for_centres_near_and_beyond_the_border():
    landmarks = random_landmarks(4, -60.0, 236.0, seed=1)
    maps = jaa_initial_attention(landmarks, BP4D_AUS)
    assert torch.equal(maps, loop_jaa_maps(landmarks, BP4D_AUS))


def test_jaa_map_of_a_central_centre_has_the_documented_ramp():
    landmarks = torch.full((1, 49, 2), 88.0, dtype=torch.float64)  # ruler 0, all on one cell
    grid = jaa_initial_attention(landmarks, (7,))[0, 0]
    assert grid.max() == 1.0
    assert (grid > 0).sum() == 81  # the 9 x 9 ROI
    assert grid[grid > 0].min() == pytest.approx(1 - 8 * 0.56 / (52 * 0.14))


def test_jaa_maps_mirror_with_the_landmarks():
    landmarks = random_landmarks(2, 10.0, 166.0, seed=2)
    mirrored = landmarks[:, list(MIRROR_49)].clone()
    mirrored[..., 0] = (GRID - 1) * CROP / GRID - mirrored[..., 0]
    maps = jaa_initial_attention(landmarks, BP4D_AUS)
    assert torch.equal(jaa_initial_attention(mirrored, BP4D_AUS), maps.flip(-1))


def test_jaa_maps_of_a_sample_with_nan_landmarks_are_zero_and_others_unchanged():
    landmarks = random_landmarks(2, 20.0, 156.0, seed=3)
    clean = jaa_initial_attention(landmarks, BP4D_AUS)
    landmarks[1, 22, 0] = float("nan")  # the ruler point: every centre becomes NaN
    maps = jaa_initial_attention(landmarks, BP4D_AUS)
    assert torch.equal(maps[0], clean[0])
    assert maps[1].abs().sum() == 0


def test_jaa_maps_from_half_precision_landmarks_are_float32_and_match():
    landmarks = random_landmarks(2, 20.0, 156.0, seed=4).half()
    maps = jaa_initial_attention(landmarks, BP4D_AUS)
    assert maps.dtype == torch.float32
    assert torch.equal(maps, jaa_initial_attention(landmarks.float(), BP4D_AUS))


def test_au_centres_give_two_offset_centres_per_au():
    landmarks = random_landmarks(2, 0.0, 176.0, seed=5)
    centres = au_centres(landmarks, (1, 6))
    ruler = (landmarks[:, 22, 0] - landmarks[:, 25, 0]).abs()
    assert centres.shape == (2, 2, 2, 2)
    assert torch.equal(centres[:, 0, 1, 0], landmarks[:, 5, 0])
    assert torch.allclose(centres[:, 0, 0, 1], landmarks[:, 4, 1] - ruler / 2)
    assert torch.allclose(centres[:, 1, 1, 1], landmarks[:, 29, 1] + ruler)


def test_au_centres_reject_an_au_without_a_region():
    with pytest.raises(AufacsError, match="aus"):
        au_centres(torch.zeros(1, 49, 2), (1, 5))


def test_attention_rejects_landmarks_of_the_wrong_shape():
    with pytest.raises(AufacsError, match="landmarks"):
        jaa_initial_attention(torch.zeros(1, 68, 2), BP4D_AUS)


EAC_STYLES = pytest.mark.parametrize(
    ("variant", "decay", "before", "after"),
    [("release", 0.07, 7, 6), ("single", 0.095, 5, 4)],
)


def border_crossing_landmarks() -> torch.Tensor:
    """Landmarks of a 150 x 200 (H, W) image, many near or beyond its border."""
    landmarks = random_landmarks(3, -30.0, 230.0, seed=6)
    landmarks[..., 1] *= 0.75
    return landmarks


@EAC_STYLES
def test_eac_region_maps_equal_the_release_rule_without_its_border_bugs(
    variant, decay, before, after
):
    landmarks = border_crossing_landmarks()
    maps = eac_region_maps(landmarks, (150, 200), variant=variant)
    assert torch.equal(maps, loop_eac_region_maps(landmarks, 150, 200, decay, before, after))


@EAC_STYLES
def test_eac_map_is_the_maximum_of_the_release_rule_over_regions(variant, decay, before, after):
    landmarks = border_crossing_landmarks()
    expected = loop_eac_region_maps(landmarks, 150, 200, decay, before, after).amax(1, True)
    assert torch.equal(eac_attention_map(landmarks, (150, 200), variant=variant), expected)


def test_eac_map_draws_the_clipped_window_of_a_centre_at_the_border():
    landmarks = torch.full((1, 49, 2), 50.0)
    landmarks[0, :, 0] = 1.0  # every centre at x = 1: the release would draw nothing
    grid = eac_attention_map(landmarks, (100, 100))[0, 0]
    assert grid[50, 1] == 1.0
    assert (grid[50] > 0).nonzero().flatten().tolist() == list(range(0, 8))


def test_eac_map_of_nan_landmarks_is_zero():
    landmarks = torch.full((1, 49, 2), float("nan"))
    assert eac_attention_map(landmarks, (100, 100)).abs().sum() == 0


def test_eac_map_rejects_an_unknown_variant():
    with pytest.raises(AufacsError, match="variant"):
        eac_attention_map(torch.zeros(1, 49, 2), (100, 100), variant="paper")


def test_eac_region_centres_follow_the_release_table():
    landmarks = random_landmarks(2, 0.0, 120.0, seed=7)
    centres = eac_region_centres(landmarks, (120, 240))
    expected = torch.tensor([loop_eac_centres(p, 120, 240) for p in landmarks.tolist()])
    assert centres.shape == (2, 20, 2)
    assert torch.allclose(centres, expected.to(centres.dtype))


def test_eac_region_centres_swap_sides_when_the_face_is_mirrored():
    landmarks = random_landmarks(2, 0.0, 100.0, seed=8)
    mirrored = landmarks[:, list(MIRROR_49)].clone()
    mirrored[..., 0] = 100.0 - mirrored[..., 0]
    centres = eac_region_centres(landmarks, (100, 100))
    # a pair of two mirror-image points swaps; a pair on the midline (lip centres) does not
    order = []
    for j, region in enumerate(EAC_REGIONS.values()):
        swaps = MIRROR_49[region.first] == region.second
        order += [2 * j + 1, 2 * j] if swaps else [2 * j, 2 * j + 1]
    swapped = eac_region_centres(mirrored, (100, 100))[:, order]
    assert torch.allclose(swapped[..., 0], 100.0 - centres[..., 0])
    assert torch.allclose(swapped[..., 1], centres[..., 1])


def test_eac_crop_centres_truncate_and_stay_inside_the_feature_map():
    centres = torch.tensor([[[50.0, 99.9], [-5.0, 3.0], [10.0, float("nan")]]])
    crops = eac_crop_centres(centres)
    assert crops.dtype == torch.long
    assert crops.tolist() == [[[14, 26], [1, 1], [2, 1]]]
