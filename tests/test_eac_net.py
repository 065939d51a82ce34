"""EAC-Net: release parameter counts, the vectorized C-Net against a per-crop reference, the
E-layer formula, stages and freezing, attention per AU, loss, and a tiny overfit."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.errors import AufacsError
from aufacs.models import build_model
from aufacs.models.attention import eac_attention_map, eac_crop_centres, eac_region_maps
from aufacs.models.base import IMAGENET_NORMALISATION
from aufacs.models.eac_net import (
    NUM_CROPS,
    EACNet,
    build_eac_net,
    gather_crops,
    local_response_norm,
)

TINY = {"pretrained": None, "input_size": 64, "width_divisor": 16}


def tiny(stage: str = "joint", **options) -> EACNet:
    torch.manual_seed(0)
    return build_eac_net(12, stage=stage, **{**TINY, **options})


def batch(size: int = 2, side: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(size, 3, side, side, generator=generator),
        "landmarks": torch.rand(size, 49, 2, generator=generator) * (side * 0.6) + side * 0.2,
        "au": torch.randint(0, 2, (size, 12), generator=generator).float(),
    }


def count(module: nn.Module, trainable: bool | None = None) -> int:
    return sum(
        p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable
    )


def test_release_configuration_has_the_release_parameter_counts():
    with torch.device("meta"):
        enet = build_eac_net(12, pretrained=None, stage="enet")
        cnet = build_eac_net(12, pretrained=None, stage="cnet")
    assert count(enet) == 131_204_172
    assert count(enet, trainable=True) == 130_944_012
    assert count(enet, trainable=False) == 38_720 + 221_440
    assert count(enet.enet_head.fc6) == 102_764_544
    assert count(cnet.cnet_head) == 77_945_796
    assert count(cnet.cnet_head.crop_conv) == NUM_CROPS * 2_359_808
    per_crop_dense = cnet.cnet_head.crop_fc_weight.numel() + cnet.cnet_head.crop_fc_bias.numel()
    assert per_crop_dense == NUM_CROPS * 1_228_950


def test_builds_by_name_through_the_registry():
    model = build_model("eac_net", 12, **TINY)
    assert isinstance(model, EACNet)


def test_input_spec_is_224_imagenet_normalised_with_landmarks():
    with torch.device("meta"):
        spec = build_eac_net(pretrained=None).input_spec
    assert (spec.crop_size, spec.resize_to, spec.needs_landmarks) == (224, 224, True)
    assert (spec.mean, spec.std) == IMAGENET_NORMALISATION


@pytest.mark.parametrize("stage", ["enet", "cnet", "joint"])
def test_every_stage_returns_probabilities_logits_and_per_au_attention(stage):
    output = tiny(stage)(batch(3))
    assert output.au_prob.shape == output.au_logits.shape == (3, 12)
    assert torch.allclose(output.au_prob, torch.sigmoid(output.au_logits))
    assert output.attention.shape == (3, 12, 100, 100)


def test_lrn_matches_lasagnes_formula():
    a = torch.rand(2, 7, 3, 3) * 10
    squares = F.pad(a**2, (0, 0, 0, 0, 2, 2))
    window = sum(squares[:, i : i + 7] for i in range(5))
    expected = a / (2 + 0.002 * window) ** 0.75
    assert torch.allclose(local_response_norm()(a), expected, rtol=1e-5)


def test_gathered_crops_equal_slices_around_each_centre():
    features = torch.randn(2, 4, 8, 8)
    cells = torch.randint(1, 7, (2, NUM_CROPS, 2))
    crops = gather_crops(features, cells)
    for b in range(2):
        for k in range(NUM_CROPS):
            x, y = cells[b, k].tolist()
            assert torch.equal(crops[b, k], features[b, :, y - 1 : y + 2, x - 1 : x + 2])


def test_grouped_cnet_equals_a_per_crop_reference_with_copied_weights():
    head = tiny("cnet").cnet_head.eval()
    conv4_all = torch.rand(2, head.crop_conv.in_channels // NUM_CROPS, 8, 8)
    centres = torch.rand(2, NUM_CROPS, 2) * 100
    channels = conv4_all.shape[1]
    normalised = local_response_norm()(conv4_all)
    cells = eac_crop_centres(centres, 8)
    features = []
    for k in range(NUM_CROPS):
        conv = nn.Conv2d(channels, channels, 3)
        dense = nn.Linear(head.crop_fc_weight.shape[1], head.crop_fc_weight.shape[2])
        with torch.no_grad():
            conv.weight.copy_(head.crop_conv.weight[k * channels : (k + 1) * channels])
            conv.bias.copy_(head.crop_conv.bias[k * channels : (k + 1) * channels])
            dense.weight.copy_(head.crop_fc_weight[k].T)
            dense.bias.copy_(head.crop_fc_bias[k])
        crop = torch.stack(
            [
                normalised[b, :, y - 1 : y + 2, x - 1 : x + 2]
                for b, (x, y) in enumerate(cells[:, k].tolist())
            ]
        )
        upscaled = crop.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        features.append(F.relu(dense(F.relu(conv(upscaled)).flatten(1))))
    reference = head.out(F.relu(head.local_fc(torch.cat(features, dim=1))))
    with torch.no_grad():
        assert torch.allclose(head(conv4_all, centres), reference, atol=1e-5)


def test_e_layers_add_the_first_conv_times_the_pooled_attention():
    trunk = tiny().trunk
    convs = trunk.convs
    image = torch.randn(1, 3, 64, 64)
    attention = torch.rand(1, 1, 64, 64)

    def run(x, names):
        outputs = []
        for name in names:
            x = F.relu(convs[name](x))
            outputs.append(x)
        return outputs

    x = F.max_pool2d(run(image, ["conv1_1", "conv1_2"])[-1], 2)
    x = F.max_pool2d(run(x, ["conv2_1", "conv2_2"])[-1], 2)
    conv3 = run(x, [f"conv3_{i}" for i in range(1, 5)])
    attention_16 = F.max_pool2d(attention, 4)
    conv3_all = conv3[3] + conv3[0] * attention_16
    conv4 = run(F.max_pool2d(conv3_all, 2), [f"conv4_{i}" for i in range(1, 5)])
    expected = conv4[3] + conv4[0] * F.max_pool2d(attention, 8)
    with torch.no_grad():
        assert torch.allclose(trunk(image, attention), expected, atol=1e-6)


def test_each_au_shows_the_attention_of_its_own_region():
    inputs = batch(2)
    output = tiny()(inputs)
    regions = eac_region_maps(inputs["landmarks"], (64, 64))
    assert torch.equal(output.attention[:, 0], regions[:, 0])  # AU1: region "AU1"
    assert torch.equal(output.attention[:, 6], output.attention[:, 7])  # AU12, AU14 share
    assert torch.equal(output.attention[:, 6], regions[:, 6])  # lip corners


def test_region_maps_merge_into_the_network_attention_map():
    landmarks = batch(3)["landmarks"]
    for variant in ("release", "single"):
        merged = eac_region_maps(landmarks, (64, 64), variant=variant).amax(dim=1, keepdim=True)
        assert torch.equal(merged, eac_attention_map(landmarks, (64, 64), variant=variant))


def test_an_au_without_a_region_shows_the_whole_attention_map():
    model = build_eac_net(8, **TINY)  # DISFA: AU9 has no EAC-Net region
    inputs = batch(2)
    output = model({**inputs, "au": inputs["au"][:, :8]})
    whole = eac_attention_map(inputs["landmarks"], (64, 64))[:, 0]
    assert torch.equal(output.attention[:, 4], whole)


@pytest.mark.parametrize("stage", ["enet", "joint"])
def test_gradients_reach_every_trainable_parameter_and_no_frozen_one(stage):
    model = tiny(stage)
    inputs = batch(4)
    model.loss(model(inputs), inputs, torch.ones(12))[0].backward()
    for name, parameter in model.named_parameters():
        if name.startswith(("trunk.convs.conv1", "trunk.convs.conv2")):
            assert not parameter.requires_grad and parameter.grad is None, name
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_cnet_stage_trains_the_cnet_head_only():
    model = tiny("cnet")
    inputs = batch(4)
    model.loss(model(inputs), inputs, torch.ones(12))[0].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.trunk.parameters())
    assert all(p.grad is not None for p in model.cnet_head.parameters())


def test_cnet_stage_takes_the_trunk_of_a_trained_enet_file(tmp_path):
    enet = tiny("enet")
    path = tmp_path / "enet.pth"
    torch.save(enet.state_dict(), path)
    cnet = build_eac_net(12, stage="cnet", enet_weights=path, **TINY)
    for key, value in enet.trunk.state_dict().items():
        assert torch.equal(cnet.trunk.state_dict()[key], value), key


def test_load_enet_rejects_a_state_dict_without_the_trunk():
    with pytest.raises(AufacsError, match="trunk"):
        tiny("cnet").load_enet(tiny("cnet").cnet_head.state_dict())


def test_imagenet_weights_go_to_the_convolutions_in_order_and_to_fc6(monkeypatch):
    model = tiny("enet")
    widths = [
        c.out_channels for c in [*model.trunk.convs.values(), *model.enet_head.convs.values()]
    ]
    layers, in_channels = [], 3
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
        in_channels = width
    fc6 = model.enet_head.fc6
    fake_vgg = SimpleNamespace(
        features=nn.Sequential(*layers), classifier=[nn.Linear(fc6.in_features, fc6.out_features)]
    )
    monkeypatch.setattr(
        "aufacs.models.eac_net.model.torchvision_backbone", lambda arch, pretrained: fake_vgg
    )
    model.load_imagenet("imagenet")
    assert torch.equal(model.trunk.convs["conv1_1"].weight, layers[0].weight)
    assert torch.equal(model.enet_head.convs["conv5_4"].bias, layers[-2].bias)
    assert torch.equal(model.enet_head.fc6.weight, fake_vgg.classifier[0].weight)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stage": "both"}, "stage"),
        ({"attention_variant": "paper"}, "attention_variant"),
        ({"input_size": 100}, "input_size"),
        ({"aus": (1, 2)}, "aus"),
        ({"pretrained": "imagenet"}, "pretrained"),
        ({"stage": "enet", "enet_weights": "x.pth"}, "enet_weights"),
        ({"stage": "cnet", "enet_weights": "missing.pth"}, "does not exist"),
    ],
)
def test_builder_rejects_bad_options_with_one_sentence(options, message):
    with pytest.raises(AufacsError, match=message):
        build_eac_net(12, **{**TINY, **options})


def test_forward_refuses_missing_or_nan_landmarks():
    model, inputs = tiny(), batch(2)
    with pytest.raises(AufacsError, match="landmarks"):
        model({"image": inputs["image"]})
    inputs["landmarks"][1, 3] = math.nan
    with pytest.raises(AufacsError, match="NaN"):
        model(inputs)


def test_loss_is_the_shifted_cross_entropy_over_known_labels():
    model, inputs = tiny(), batch(3)
    inputs["au"][0, :5] = math.nan
    output = model(inputs)
    total, parts = model.loss(output, inputs, torch.full((12,), 7.0))
    p, t = output.au_prob, inputs["au"]
    each = -(t * torch.log((p + 0.05) / 1.05) + (1 - t) * torch.log((1.05 - p) / 1.05))
    known = ~torch.isnan(t)
    assert torch.allclose(total, each[known].mean())
    assert set(parts) == {"shifted_ce"}


def test_a_tiny_model_overfits_sixteen_samples():
    model, inputs = tiny(), batch(16)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)

    def evaluation_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = model.loss(model(inputs), inputs, torch.ones(12))[0].item()
        model.train()
        return value

    before = evaluation_loss()
    for _ in range(50):
        optimizer.zero_grad()
        model.loss(model(inputs), inputs, torch.ones(12))[0].backward()
        optimizer.step()
    assert evaluation_loss() <= 0.1 * before


@pytest.mark.parametrize("stage", ["enet", "cnet", "joint"])
def test_the_model_reports_its_training_stage(stage):
    assert tiny(stage).stage == stage
