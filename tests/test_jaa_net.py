"""JAA-Net v1: official parameter counts, the batched modules against per-cell and per-branch
references built like the official code, the forward's data flow, the loss, and a tiny overfit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aufacs.core.aus import BP4D_AUS, DISFA_AUS
from aufacs.core.errors import AufacsError
from aufacs.models import build_model
from aufacs.models.attention import jaa_initial_attention
from aufacs.models.jaa_net import (
    AttentionRefine,
    BranchStack,
    FeatureExtractor,
    JAANet,
    LocalAUNet,
    PartitionedConv,
    build_jaa_net,
)
from aufacs.models.losses import attention_refine_loss, au_softmax_loss, dice_loss, landmark_loss
from benchmarks.official_jaa_net import (
    OFFICIAL_AU_WEIGHTS,
    OfficialJAANet,
    PerCellReference,
    copy_slice,
    load_official,
    official_feature_extractor,
    official_loss,
    official_refine_branch,
)

#: The smallest crop the layout allows (region maps 8 x 8, features 1 x 1), one channel unit.
TINY = {"crop_size": 32, "unit_dim": 1}
SCHEDULES = ("grouped", "per_branch")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors run faster on one thread, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**options) -> JAANet:
    torch.manual_seed(0)
    return build_jaa_net(12, **{**TINY, **options})


def make_batch(size: int = 2, side: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    face = side * (0.25 + 0.5 * torch.rand(1, 49, 2, generator=generator))
    return {
        "image": torch.randn(size, 3, side, side, generator=generator),
        "au": torch.randint(0, 2, (size, 12), generator=generator).float(),
        "landmarks": face + torch.rand(size, 49, 2, generator=generator),
        "biocular": torch.full((size,), (0.3 * side) ** 2),
    }


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- official configuration -------------------------------------------------------------------


def test_official_configuration_has_the_official_parameter_counts():
    with torch.device("meta"):
        model = build_jaa_net()
    assert count(model.region_learning) == 1_615_392
    assert count(model.align_net) == 2_912_098
    assert count(model.attention_refine) == 905_484
    assert count(model.local_au_net) == 9_759_744
    assert count(model.global_au_feat) == 813_312
    assert count(model.au_net) == 6_156_824
    assert count(model) == 22_162_854


def test_input_spec_is_a_176_crop_scaled_to_minus_one_one():
    with torch.device("meta"):
        spec = build_jaa_net().input_spec
    assert (spec.crop_size, spec.mean, spec.std) == (176, (0.5,) * 3, (0.5,) * 3)
    assert not spec.needs_landmarks


def test_builds_by_name_with_disfa_aus_for_eight():
    model = build_model("jaa_net", 8, **TINY)
    assert isinstance(model, JAANet)
    assert model.config.aus == DISFA_AUS


@pytest.mark.parametrize(
    "options",
    [
        {"crop_size": 40},
        {"crop_size": 16},
        {"num_aus": 5},
        {"num_aus": 12, "aus": DISFA_AUS},
        {"num_aus": 1, "aus": [5]},
        {"num_landmarks": 68},
        {"dice": "sum"},
        {"branch_schedule": "fast"},
        {"unit_dim": 0},
    ],
)
def test_builder_rejects_invalid_options_with_one_sentence(options):
    with pytest.raises(AufacsError):
        build_jaa_net(**options)


# --- batched modules against the official per-cell and per-branch layout ---------------------


@pytest.mark.parametrize("training", [True, False])
def test_partitioned_conv_is_the_per_cell_function(training):
    torch.manual_seed(0)
    grid, cin, cout = 4, 3, 2
    grouped = PartitionedConv(grid, cin, cout)
    with torch.no_grad():  # distinct per-cell statistics, so a mix-up would show
        grouped.norm.running_mean.uniform_(-1, 1)
        grouped.norm.running_var.uniform_(0.5, 2)
    reference = PerCellReference(grid, cin, cout)
    for k in range(grid * grid):
        copy_slice(grouped.norm, k, grid * grid, reference.norms[k])
        copy_slice(grouped.conv, k, grid * grid, reference.convs[k])
    grouped.train(training)
    reference.train(training)
    x = torch.randn(2, cin, 8, 8) * torch.linspace(0.5, 3, 8)  # cells differ in scale
    x_ref = x.clone().requires_grad_()
    x = x.requires_grad_()

    out, out_ref = grouped(x), reference(x_ref)
    out.square().sum().backward()
    out_ref.square().sum().backward()

    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    cells = range(grid * grid)
    torch.testing.assert_close(
        grouped.conv.weight.grad, torch.cat([reference.convs[k].weight.grad for k in cells])
    )
    torch.testing.assert_close(
        grouped.norm.running_mean, torch.cat([reference.norms[k].running_mean for k in cells])
    )
    torch.testing.assert_close(
        grouped.norm.running_var, torch.cat([reference.norms[k].running_var for k in cells])
    )


def branch_references(stack: BranchStack, build) -> list[nn.Sequential]:
    """Separate official-style branches holding the slices of ``stack``'s parameters."""
    references = []
    for k in range(stack.branches):
        reference = build()
        for layer, ref_layer in zip(stack, reference, strict=True):
            copy_slice(layer, k, stack.branches, ref_layer)
        reference.train(stack.training)
        references.append(reference)
    return references


def assert_matches_branches(stack: BranchStack, references, inputs: torch.Tensor) -> None:
    """``stack`` on the branch inputs stacked along channels == each reference on its own,
    for outputs, parameter gradients and BatchNorm statistics."""
    out = stack(inputs.flatten(1, 2))
    expected = torch.cat([ref(inputs[:, k]) for k, ref in enumerate(references)], dim=1)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    for name, tensor in stack.named_parameters():
        ref_grads = [ref.get_parameter(name).grad for ref in references]
        torch.testing.assert_close(tensor.grad, torch.cat(ref_grads), rtol=1e-3, atol=1e-4)
    for name, tensor in stack.named_buffers():
        if tensor.dim() > 0:
            torch.testing.assert_close(
                tensor, torch.cat([ref.get_buffer(name) for ref in references])
            )


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("training", [True, False])
def test_grouped_feature_extractor_is_separate_official_extractors(schedule, training):
    torch.manual_seed(0)
    stack = FeatureExtractor(2, 1, branches=3, schedule=schedule).train(training)
    references = branch_references(stack, lambda: official_feature_extractor(2, 1))
    assert_matches_branches(stack, references, torch.randn(2, 3, 2, 16, 16))


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("training", [True, False])
def test_attention_refinement_is_separate_official_branches(schedule, training):
    torch.manual_seed(0)
    stack = AttentionRefine(3, 1, schedule=schedule).train(training)
    references = branch_references(stack, lambda: official_refine_branch(1))
    assert_matches_branches(stack, references, torch.rand(2, 3, 1, 12, 12))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_local_au_net_averages_each_aus_branch_on_attended_features(schedule):
    torch.manual_seed(0)
    local = LocalAUNet(3, 2, 1, schedule=schedule)
    references = branch_references(local.branches, lambda: official_feature_extractor(2, 1))
    features, attention = torch.randn(2, 2, 16, 16), torch.rand(2, 3, 16, 16)
    expected = sum(ref(features * attention[:, k : k + 1]) for k, ref in enumerate(references))
    torch.testing.assert_close(local(features, attention), expected / 3, rtol=1e-4, atol=1e-5)


def test_both_schedules_give_the_same_model_output():
    grouped, per_branch = tiny(branch_schedule="grouped"), tiny(branch_schedule="per_branch")
    batch = make_batch()
    out_grouped, out_per_branch = grouped(batch), per_branch(batch)
    torch.testing.assert_close(out_grouped.au_prob, out_per_branch.au_prob, rtol=1e-4, atol=1e-5)
    assert grouped.state_dict().keys() == per_branch.state_dict().keys()


# --- forward ----------------------------------------------------------------------------------


def test_forward_gives_documented_shapes_without_input_landmarks():
    model = tiny()
    batch = make_batch()
    out = model({"image": batch["image"]})
    assert out.au_prob.shape == out.au_logits.shape == (2, 12)
    assert out.landmarks.shape == (2, 49, 2)
    assert out.attention.shape == (2, 12, 8, 8)
    assert out.extras["initial_attention"].shape == (2, 12, 16, 16)
    assert all(t.dtype == torch.float32 for t in (out.au_prob, out.landmarks, out.attention))
    assert ((out.attention > 0) & (out.attention < 1)).all()


def test_forward_follows_the_official_data_flow():
    model = tiny().eval()
    image = make_batch()["image"]
    with torch.no_grad():
        out = model({"image": image})
        region = model.region_learning(image)
        align, _ = model.align_net(region)
        interleaved = model.align_net.head(align.flatten(1))  # x1, y1, x2, y2, ...
        landmarks = torch.stack((interleaved[:, 0::2], interleaved[:, 1::2]), dim=-1)
        initial = jaa_initial_attention(landmarks, BP4D_AUS, crop_size=32, map_size=16)
        refined = model.attention_refine(initial)
        local = model.local_au_net(region, refined)
        concat = torch.cat([align, model.global_au_feat(region), local], dim=1)
        scores = model.au_net(concat.flatten(1)).view(2, 2, 12)  # (B, absent/present, N)
    torch.testing.assert_close(out.landmarks, landmarks)
    torch.testing.assert_close(out.extras["initial_attention"], initial)
    torch.testing.assert_close(out.attention, refined)
    torch.testing.assert_close(out.au_prob, scores.softmax(dim=1)[:, 1])
    torch.testing.assert_close(out.au_logits, scores[:, 1] - scores[:, 0])


def test_initial_attention_carries_no_gradient():
    out = tiny()(make_batch())
    assert out.landmarks.requires_grad
    assert not out.extras["initial_attention"].requires_grad


def test_channels_last_input_gives_the_same_output():
    model = tiny().eval()
    image = make_batch()["image"]
    with torch.no_grad():
        expected = model({"image": image}).au_prob
        got = model({"image": image.contiguous(memory_format=torch.channels_last)}).au_prob
    torch.testing.assert_close(got, expected)


def test_forward_rejects_an_image_of_the_wrong_size():
    with pytest.raises(AufacsError, match="32"):
        tiny()({"image": torch.zeros(1, 3, 48, 48)})


# --- loss and training ------------------------------------------------------------------------


def test_default_loss_is_the_official_pytorch_codes_with_its_batch_dice():
    """The default Dice is the official PyTorch code's batch ratio (``dice="batch"``): the
    default model's loss equals the official-layout reference's, whose ``util.py`` loops
    divide one batch ratio by B."""
    model = tiny().train()
    assert model.config.dice == "batch"
    reference = OfficialJAANet(crop_size=32, unit_dim=1).train()
    load_official(reference.layout(), model)
    batch = make_batch(4)
    weights = torch.tensor(OFFICIAL_AU_WEIGHTS, dtype=torch.float32)
    total, parts = model.loss(model(batch), batch, weights)
    expected = official_loss(reference(batch["image"]), batch, weights)
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)
    per_sample = tiny(dice="per_sample")
    _, caffe = per_sample.loss(per_sample(batch), batch, weights)
    assert caffe["au_dice"] < parts["au_dice"]


@pytest.mark.parametrize("dice", ["per_sample", "batch"])
def test_loss_is_the_official_weighted_sum_of_its_parts(dice):
    model = tiny(dice=dice)
    batch = make_batch(4)
    weights = torch.linspace(0.5, 1.5, 12)
    out = model(batch)
    total, parts = model.loss(out, batch, weights)
    expected = {
        "au_softmax": au_softmax_loss(out.au_logits, batch["au"], weights),
        "au_dice": dice_loss(out.au_prob, batch["au"], weights, per_sample=dice == "per_sample"),
        "landmark": landmark_loss(out.landmarks, batch["landmarks"], batch["biocular"]),
        "attention_refine": attention_refine_loss(out.attention, out.extras["initial_attention"]),
    }
    combined = (
        expected["au_softmax"]
        + expected["au_dice"]
        + 0.5 * expected["landmark"]
        + (2e-4 / 2.0) * expected["attention_refine"]
    )
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value.detach())
    torch.testing.assert_close(total, combined)
    assert all(not p.requires_grad for p in parts.values())


def test_gradients_reach_every_parameter():
    model = tiny()
    batch = make_batch(4)
    total, _ = model.loss(model(batch), batch, torch.ones(12))
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_optimizer_groups_cover_every_parameter_once_and_double_the_refinement():
    model = tiny()
    groups = model.optimizer_param_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    multipliers = {g["name"]: g["lr_mult"] for g in groups}
    assert multipliers.pop("attention_refine") == 2.0
    assert set(multipliers.values()) == {1.0}


def test_tiny_model_overfits_sixteen_samples():
    model = tiny()
    batch = make_batch(16, seed=1)
    weights = torch.ones(12)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = []
    for _ in range(20):
        optimizer.zero_grad()
        total, parts = model.loss(model(batch), batch, weights)
        total.backward()
        optimizer.step()
        history.append(parts)
    assert history[-1]["total"] < 0.1 * history[0]["total"]
    assert history[-1]["au_softmax"] < 0.1 * history[0]["au_softmax"]
