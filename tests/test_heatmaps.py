"""Heatmaps: model attention and Grad-CAM maps and attention mass inside AU regions
(aufacs.analysis.heatmaps), and their drawings (aufacs.inference.explain)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aufacs.analysis.heatmaps import (
    HeatmapSet,
    attention_maps,
    attention_mass_inside,
    denormalise,
    heatmap_set,
    uniform_map_ratio,
)
from aufacs.core.errors import AufacsError
from aufacs.inference.explain import au_probability_bars, draw_landmarks, heatmap_gallery, overlay
from aufacs.models import build_model
from aufacs.models.base import HALF_NORMALISATION, AUModel, AUOutput, InputSpec

SIDE = 16


class QuadrantModel(AUModel):
    """Two AUs: AU 0 sees only the top-left quadrant of the image, AU 1 only the bottom-right.

    conv1 (3 -> 4) -> keep channels 0-1 in the top-left and 2-3 in the bottom-right quadrant
    -> conv2 (grouped, 16 x 16, the layer Grad-CAM picks) -> conv3 (stride 4, 4 x 4, too
    small to be picked) -> mean -> one logit per group.
    """

    input_spec = InputSpec(SIDE, *HALF_NORMALISATION)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.conv3 = nn.Conv2d(4, 4, 4, stride=4, groups=2, bias=False)
        generator = torch.Generator().manual_seed(0)
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.uniform_(conv.weight, 0.1, 1.0, generator=generator)
        half = SIDE // 2
        mask = torch.zeros(1, 4, SIDE, SIDE)
        mask[:, :2, :half, :half] = 1
        mask[:, 2:, half:, half:] = 1
        self.register_buffer("mask", mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        x = torch.relu(self.conv1(batch["image"])) * self.mask
        x = torch.relu(self.conv3(torch.relu(self.conv2(x))))  # (B, 4, 4, 4)
        logits = x.mean(dim=(-2, -1)).unflatten(1, (2, 2)).sum(-1) - 1.0  # (B, 2)
        return AUOutput(au_prob=torch.sigmoid(logits), au_logits=logits)


class FirstLayerQuadrantModel(QuadrantModel):
    """The same model, naming its first convolution (before the quadrant masks) for Grad-CAM."""

    def gradcam_layer(self) -> nn.Module:
        return self.conv1


class AttentionModel(AUModel):
    """Three AUs with fixed 4 x 4 attention maps (AU n lights up cell (n, n))."""

    input_spec = InputSpec(SIDE, *HALF_NORMALISATION)

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        size = batch["image"].shape[0]
        attention = torch.zeros(size, 3, 4, 4)
        attention[:, [0, 1, 2], [0, 1, 2], [0, 1, 2]] = 1.0
        prob = torch.sigmoid(self.scale * batch["image"].mean(dim=(1, 2, 3)))[:, None].expand(-1, 3)
        return AUOutput(au_prob=prob, attention=attention)


def positive_batch(size: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"image": torch.rand(size, 3, SIDE, SIDE, generator=generator) + 0.5}


def quadrant_masks(size: int) -> torch.Tensor:
    """(size, 2, SIDE, SIDE): AU 0's top-left and AU 1's bottom-right quadrant."""
    half = SIDE // 2
    masks = torch.zeros(size, 2, SIDE, SIDE, dtype=torch.bool)
    masks[:, 0, :half, :half] = True
    masks[:, 1, half:, half:] = True
    return masks


def test_model_attention_is_upsampled_to_the_image_size_within_the_unit_interval():
    maps = attention_maps(AttentionModel(), positive_batch(2), method="attention")
    assert maps.shape == (2, 3, SIDE, SIDE)
    assert maps.min() >= 0 and maps.max() <= 1
    assert maps[0, 1, 4:8, 4:8].mean() > 0.5 > maps[0, 1, 12:, 12:].mean()


def test_gradcam_highlights_the_quadrant_each_au_depends_on():
    maps = attention_maps(QuadrantModel(), positive_batch(3), method="gradcam")
    assert maps.shape == (3, 2, SIDE, SIDE)
    assert maps.min() >= 0 and maps.amax(dim=(-2, -1)).allclose(torch.ones(3, 2), atol=0.05)
    assert (attention_mass_inside(maps, quadrant_masks(3)) > 0.85).all()


def test_gradcam_uses_the_layer_a_model_names():
    masks = quadrant_masks(1)
    named = attention_maps(FirstLayerQuadrantModel(), positive_batch(1), method="gradcam")
    assert (attention_mass_inside(named, masks) < 0.5).all()


def test_auto_falls_back_to_gradcam_for_a_model_without_attention():
    model, batch = QuadrantModel(), positive_batch(2)
    auto = attention_maps(model, batch)
    assert torch.allclose(auto, attention_maps(model, batch, method="gradcam"))


def test_attention_method_on_a_model_without_attention_is_refused():
    with pytest.raises(AufacsError, match="has no"):
        attention_maps(QuadrantModel(), positive_batch(1), method="attention")


def test_unknown_method_is_refused_in_one_sentence():
    with pytest.raises(AufacsError, match="method must be one of"):
        attention_maps(AttentionModel(), positive_batch(1), method="saliency")


def test_maps_leave_the_model_in_training_mode_and_its_weights_without_gradients():
    model = QuadrantModel().train()
    attention_maps(model, positive_batch(1), method="gradcam")
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_jaa_net_maps_are_its_refined_attention():
    torch.manual_seed(0)
    model = build_model("jaa_net", 12, crop_size=32, unit_dim=1)
    batch = {"image": torch.randn(2, 3, 32, 32)}
    maps = attention_maps(model, batch)
    with torch.no_grad():
        refined = model.eval()(batch).attention  # (2, 12, 8, 8)
    upsampled = F.interpolate(refined, size=(32, 32), mode="bilinear", align_corners=False)
    assert maps.shape == (2, 12, 32, 32)
    assert torch.allclose(maps, upsampled, atol=1e-6)


def test_heatmap_set_gathers_images_maps_probabilities_and_labels():
    batch = {**positive_batch(2), "au": torch.tensor([[1.0, 0.0], [float("nan"), 1.0]])}
    result = heatmap_set(QuadrantModel(), batch, aus=(6, 12))
    assert result.images.shape == (2, SIDE, SIDE, 3) and result.images.dtype == np.uint8
    assert result.maps.shape == (2, 2, SIDE, SIDE)
    assert result.probs.shape == (2, 2) and result.method == "gradcam"
    assert np.isnan(result.labels[1, 0])


def test_heatmap_set_refuses_a_wrong_number_of_aus():
    with pytest.raises(AufacsError, match="aus lists 3 AUs"):
        heatmap_set(QuadrantModel(), positive_batch(1), aus=(1, 2, 4))


def test_mass_inside_is_the_share_of_the_map_inside_the_mask():
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0] = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    maps[0, 1] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    masks = torch.tensor([[[[True, False], [False, False]], [[True, True], [False, False]]]])
    assert torch.allclose(attention_mass_inside(maps, masks), torch.tensor([[0.75, 0.5]]))


def test_mass_inside_an_empty_map_is_nan():
    share = attention_mass_inside(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2, dtype=torch.bool))
    assert torch.isnan(share).all()


def test_mass_inside_refuses_masks_of_another_shape():
    with pytest.raises(AufacsError, match="same shape"):
        attention_mass_inside(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 2, 2, dtype=torch.bool))


def test_denormalise_inverts_the_input_normalisation():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    scaled = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1) / 255
    normalised = (scaled - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    assert np.array_equal(denormalise(normalised, mean, std), rgb)


def test_overlay_draws_the_face_and_the_heatmap_on_one_axes():
    ax = overlay(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0).random((2, 2)))
    assert len(ax.get_images()) == 2
    assert ax.get_images()[1].get_extent() == ax.get_images()[0].get_extent()


def test_draw_landmarks_skips_unknown_points():
    ax = overlay(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)))
    draw_landmarks(ax, np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]]))
    assert len(ax.collections[0].get_offsets()) == 2


def test_probability_bars_have_one_bar_per_au():
    ax = overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4)))
    au_probability_bars(ax, np.array([0.2, 0.9, 0.6]), (1, 2, 4), np.array([0.0, 1.0, np.nan]))
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AU1", "AU2", "AU4"]


def test_gallery_has_one_axes_per_sample_and_au_up_to_max_aus():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    maps = np.zeros((2, 5, 4, 4))
    figure = heatmap_gallery(images, maps, (1, 2, 4, 6, 7), probs=np.full((2, 5), 0.7), max_aus=3)
    assert len(figure.axes) == 2 * 3 + 1  # and the colour bar
    assert figure.axes[1].get_title() == "AU2 p=0.70"
    assert figure.axes[0].get_title() == "face 1: AU1 p=0.70"


def test_gallery_refuses_maps_that_do_not_fit_the_images():
    with pytest.raises(AufacsError, match="maps must be"):
        heatmap_gallery(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 2, 4, 4)), (1, 2))


def test_heatmap_set_counts_its_samples():
    sample = HeatmapSet(np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 1, 8, 8)), (1,))
    assert sample.num_samples == 4


def test_a_map_that_prefers_nothing_is_no_different_from_a_uniform_map() -> None:
    rng = np.random.default_rng(0)
    uniform = rng.uniform(0.05, 0.2, (40, 3))
    inside = uniform * rng.uniform(0.9, 1.1, (40, 3))
    ratio = uniform_map_ratio(inside, uniform, np.ones((40, 3), bool), n_boot=500)
    assert ratio["low"] < 1 < ratio["high"] and ratio["faces"] == 40
    assert ratio["ratio"] == pytest.approx(inside.sum() / uniform.sum())


def test_a_map_on_the_regions_is_better_and_absent_aus_and_empty_maps_do_not_count() -> None:
    uniform = np.full((20, 2), 0.1)
    inside = np.full((20, 2), 0.3)
    inside[:, 1] = np.nan  # maps without mass
    kept = np.ones((20, 2), bool)
    kept[:5] = False  # faces that show neither AU
    ratio = uniform_map_ratio(inside, uniform, kept)
    assert ratio["ratio"] == pytest.approx(3.0) and ratio["low"] > 1
    assert ratio["faces"] == 15


def test_no_kept_pair_gives_nan_and_no_faces() -> None:
    ratio = uniform_map_ratio(np.ones((3, 2)), np.ones((3, 2)), np.zeros((3, 2), bool))
    assert ratio["faces"] == 0 and np.isnan(ratio["ratio"])


def test_the_ratio_table_gives_each_map_a_verdict_and_a_sentence() -> None:
    from aufacs.report.maps import RegionMass, ratio_notes, uniform_ratios

    shape, aus = (8, 2), ["AU1", "AU2"]
    uniform, present = np.full(shape, 0.1), np.ones(shape, bool)
    masses = {
        "on (attention)": RegionMass(np.full(shape, 0.3), uniform, present, aus),
        "off (gradcam)": RegionMass(np.full(shape, 0.02), uniform, present, aus),
    }
    ratios = uniform_ratios(masses)
    assert list(ratios["verdict"]) == ["better than a uniform map", "worse than a uniform map"]
    notes = ratio_notes(ratios).splitlines()
    assert notes[0].startswith("- **on (attention)** is better") and "3.00×" in notes[0]
