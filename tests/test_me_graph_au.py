"""ME-GraphAU: shapes, official parameter counts, equality with a naive per-AU / per-edge
reference in the official module layout, gradients, stage-1 -> stage-2 transfer, overfitting."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from aufacs.core.errors import AufacsError
from aufacs.engine.recipes import recipe_for
from aufacs.models import build_model
from aufacs.models.losses import edge_cross_entropy, weighted_asymmetric_loss
from aufacs.models.me_graph_au import (
    STAGE1_TRANSFER,
    build_me_graph_au,
    convert_official_state_dict,
)
from aufacs.models.me_graph_au.anfl import top_k_graph
from benchmarks.official_me_graph_au import RefMEFARG

TINY = {"pretrained": None, "backbone": "resnet18"}


def tiny_model(stage: int, num_aus: int = 5, **options) -> nn.Module:
    return build_me_graph_au(num_aus, stage=stage, neighbor_num=2, **TINY, **options)


def tiny_batch(batch_size: int = 3, num_aus: int = 5, size: int = 64) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    labels = (torch.rand(batch_size, num_aus, generator=generator) < 0.5).float()
    labels[0, 1] = float("nan")
    return {"image": torch.randn(batch_size, 3, size, size, generator=generator), "au": labels}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# --- the naive official-layout reference (benchmarks.official_me_graph_au), randomised ---


def reference_and_model(stage: int) -> tuple[RefMEFARG, nn.Module]:
    """A randomised naive reference and an aufacs model loaded from its converted weights."""
    torch.manual_seed(0)
    model = tiny_model(stage)
    reference = RefMEFARG(copy.deepcopy(model.backbone), 5, stage)
    with torch.no_grad():
        for name, value in reference.named_parameters():
            if not name.startswith("backbone."):
                value.add_(0.3 * torch.randn_like(value))
        for name, value in reference.named_buffers():
            if name.endswith("running_mean"):
                value.add_(torch.randn_like(value))
            elif name.endswith("running_var"):
                value.mul_(torch.rand_like(value) + 0.5)
        if stage == 2:
            reference.head.edge_extractor.edge_proj.bias.add_(8.0)  # a large mean per edge
    model.load_state_dict(convert_official_state_dict(reference.state_dict()), strict=True)
    return reference, model


# --- tests ---


@pytest.mark.parametrize("stage", [1, 2])
def test_outputs_have_the_documented_shapes_and_dtypes(stage):
    model = build_model("me_graph_au", num_aus=5, stage=stage, neighbor_num=2, **TINY)
    output = model(tiny_batch())
    assert output.au_prob.shape == (3, 5) and output.au_prob.dtype == torch.float32
    assert output.au_logits is None
    if stage == 1:
        assert output.edge_logits is None and output.extras["adjacency"].shape == (3, 5, 5)
    else:
        assert output.edge_logits.shape == (3, 25, 4)
        assert output.edge_logits.dtype == torch.float32


def test_probabilities_are_cosines_in_the_unit_interval():
    probabilities = tiny_model(2).eval()(tiny_batch()).au_prob
    assert probabilities.min() >= 0 and probabilities.max() <= 1 + 1e-6


def test_input_is_an_imagenet_normalised_224_crop_of_a_256_face():
    spec = tiny_model(1).input_spec
    assert (spec.crop_size, spec.resize_to, spec.mean) == (224, 256, (0.485, 0.456, 0.406))


def test_input_size_sets_the_crop_and_the_resize_in_the_official_ratio():
    model = tiny_model(1, input_size=96)
    assert (model.input_spec.crop_size, model.input_spec.resize_to) == (96, 110)
    assert model.eval()(tiny_batch(size=96)).au_prob.shape == (3, 5)
    with pytest.raises(AufacsError, match="input_size must be a multiple of 32"):
        tiny_model(1, input_size=100)


def test_each_stage_has_its_official_training_recipe():
    stage1, stage2 = recipe_for("me_graph_au", 1), recipe_for("me_graph_au", 2)
    assert (stage1.lr, stage2.lr) == (1e-4, 1e-5)
    assert stage1.optimizer == "adamw" and stage1.batch_size == 64


@pytest.mark.parametrize("stage, expected", [(1, 28_253_784), (2, 31_666_132)])
def test_parameter_counts_match_the_official_resnet50_models(stage, expected):
    model = build_me_graph_au(12, stage=stage, pretrained=None)
    assert parameter_count(model.backbone) == 23_508_032
    assert parameter_count(model) == expected


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batched_model_equals_the_naive_reference(stage, mode):
    reference, model = reference_and_model(stage)
    reference.train(mode == "train")
    model.train(mode == "train")
    image = tiny_batch(size=96)["image"]  # 3 x 3 = 9 tokens
    expected_prob, expected_edges = reference(image)
    output = model({"image": image})
    torch.testing.assert_close(output.au_prob, expected_prob, atol=1e-5, rtol=1e-4)
    if stage == 2:
        torch.testing.assert_close(output.edge_logits, expected_edges, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_float64_stage2_model_computes_its_edge_batch_norm_in_float64(mode):
    """The edge BatchNorm's closed form runs in float64 in a float64 model (float32 would
    leave differences near 1e-7), so gradient checks in float64 hold to float64 accuracy."""
    reference, model = reference_and_model(2)
    reference.double().train(mode == "train")
    gnn = reference.head.gnn  # its incidence matrices are plain attributes
    gnn.start, gnn.end = gnn.start.double(), gnn.end.double()
    model.double().train(mode == "train")
    image = tiny_batch(size=96)["image"].double()
    expected_prob, expected_edges = reference(image)
    output = model({"image": image})
    assert output.edge_logits.dtype == torch.float64
    torch.testing.assert_close(output.au_prob, expected_prob, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(output.edge_logits, expected_edges, atol=1e-10, rtol=1e-10)


def gradient_probe(prob: torch.Tensor, edge_logits: torch.Tensor | None) -> torch.Tensor:
    """A scalar that gives every output element its own gradient."""
    probe = (prob * torch.linspace(-1.0, 1.0, prob.shape[1])).sum()
    return probe if edge_logits is None else probe + edge_logits.square().mean()


@pytest.mark.parametrize("stage", [1, 2])
def test_gradients_equal_the_naive_references(stage):
    reference, model = reference_and_model(stage)
    image = tiny_batch(size=96)["image"]
    gradient_probe(*reference(image)).backward()
    output = model({"image": image})
    gradient_probe(output.au_prob, output.edge_logits).backward()
    expected = convert_official_state_dict({n: p.grad for n, p in reference.named_parameters()})
    for name, value in model.named_parameters():  # tolerance relative to each tensor's scale
        tolerance = 1e-3 * expected[name].abs().max().item() + 1e-6
        torch.testing.assert_close(value.grad, expected[name], atol=tolerance, rtol=0, msg=name)


@pytest.mark.parametrize("stage", [1, 2])
def test_training_updates_the_same_running_statistics_as_the_reference(stage):
    reference, model = reference_and_model(stage)
    image = tiny_batch(size=96)["image"]
    reference(image)
    model({"image": image})
    expected = convert_official_state_dict(reference.state_dict())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], atol=1e-4, rtol=1e-4, msg=key)


@pytest.mark.parametrize("stage", [1, 2])
def test_gradients_reach_every_parameter(stage):
    model = tiny_model(stage)
    batch = tiny_batch()
    total, _ = model.loss(model(batch), batch, torch.ones(5))
    total.backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_stage1_loss_is_the_weighted_asymmetric_loss():
    model = tiny_model(1)
    batch, weights = tiny_batch(), torch.linspace(0.5, 1.5, 5)
    output = model(batch)
    total, parts = model.loss(output, batch, weights)
    expected = weighted_asymmetric_loss(output.au_prob, batch["au"], weights)
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"wa"} and not parts["wa"].requires_grad


def test_stage2_loss_adds_lambda_times_the_edge_loss():
    model = tiny_model(2, lam_edge=0.05)
    batch, weights = tiny_batch(), torch.linspace(0.5, 1.5, 5)
    output = model(batch)
    total, parts = model.loss(output, batch, weights)
    wa = weighted_asymmetric_loss(output.au_prob, batch["au"], weights)
    edge = edge_cross_entropy(output.edge_logits, batch["au"])
    torch.testing.assert_close(total, wa + 0.05 * edge)
    assert set(parts) == {"wa", "edge"} and not parts["edge"].requires_grad


def test_stage2_starts_from_a_stage1_weight_file(tmp_path):
    stage1 = tiny_model(1)
    stage1(tiny_batch())  # move the BatchNorm running statistics away from their init
    torch.save({"epoch": 3, "state_dict": stage1.state_dict()}, tmp_path / "stage1.pth")
    stage2 = build_me_graph_au(
        5, stage=2, backbone="resnet18", stage1_weights=tmp_path / "stage1.pth"
    )
    source, loaded = stage1.state_dict(), stage2.state_dict()
    transferred = [k for k in loaded if k.split(".")[0] in STAGE1_TRANSFER]
    assert len(transferred) > 100
    assert all(torch.equal(loaded[k], source[k]) for k in transferred)


def test_stage2_loads_an_official_stage1_state_dict():
    reference, _ = reference_and_model(1)
    stage2 = tiny_model(2)
    stage2.load_stage1(
        {"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}
    )
    torch.testing.assert_close(stage2.sc, reference.head.sc)
    torch.testing.assert_close(
        stage2.afg.fc.weight[128:256], reference.head.class_linears[1].fc.weight
    )


def test_stage1_weights_of_another_size_are_refused_in_one_sentence():
    with pytest.raises(AufacsError, match="another backbone or number of AUs"):
        tiny_model(2, num_aus=4).load_stage1(tiny_model(1).state_dict())


def test_top_k_graph_links_each_node_to_its_k_most_similar_nodes():
    nodes = torch.tensor([[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 2.0]]])
    adjacency = top_k_graph(nodes, 2)
    expected = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]])
    torch.testing.assert_close(adjacency, expected.float())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"stage": 3}, "stage must be 1"),
        ({"neighbor_num": 6}, "neighbor_num"),
        ({"backbone": "vgg19"}, "unknown backbone"),
        ({"lam_edge": -1.0}, "lam_edge"),
        ({"stage1_weights": "x.pth"}, "stage=2"),
    ],
)
def test_invalid_options_raise_one_sentence(options, message):
    with pytest.raises(AufacsError, match=message):
        build_me_graph_au(5, **{**TINY, **options})


def test_resnet18_refuses_pretrained_weights():
    with pytest.raises(AufacsError, match="pretrained=None"):
        build_me_graph_au(5, backbone="resnet18", pretrained="imagenet")


def test_missing_imagenet_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(AufacsError, match="torchvision's cache"):
        build_me_graph_au(12)


def test_a_tiny_model_overfits_sixteen_samples():
    torch.manual_seed(0)
    model = build_me_graph_au(4, stage=1, neighbor_num=2, **TINY)
    batch = {"image": torch.randn(16, 3, 16, 16), "au": (torch.rand(16, 4) < 0.5).float()}
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        total, _ = model.loss(model(batch), batch, torch.ones(4))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert math.isfinite(losses[-1]) and losses[-1] <= 0.1 * losses[0]
