"""Every loss against its formula written out directly, plus masking and numerical edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aufacs.core.errors import AufacsError
from aufacs.models.losses import (
    IGNORE_INDEX,
    attention_refine_loss,
    au_softmax_loss,
    dice_loss,
    edge_cross_entropy,
    edge_labels,
    landmark_loss,
    shifted_cross_entropy,
    weighted_asymmetric_loss,
)

B, N = 6, 4
NAN = float("nan")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_prob(seed: int = 0) -> torch.Tensor:
    return 0.02 + 0.96 * torch.rand(B, N, generator=generator(seed), dtype=torch.float64)


def random_target(seed: int = 1, unknown: float = 0.25) -> torch.Tensor:
    g = generator(seed)
    target = (torch.rand(B, N, generator=g) < 0.4).double()
    target[torch.rand(B, N, generator=g) < unknown] = NAN
    return target


WEIGHTS = torch.tensor([1.3, 0.5, 0.8, 1.4], dtype=torch.float64)


def known_labels(target: torch.Tensor, i: int) -> tuple[list[int], list[float]]:
    """Rows with a known label for AU i, and those labels."""
    rows = [n for n in range(B) if not math.isnan(target[n, i].item())]
    return rows, [target[n, i].item() for n in rows]


# --- formulas -----------------------------------------------------------------------------


def test_au_softmax_loss_matches_the_weighted_nll_over_known_labels():
    logits = torch.randn(B, N, generator=generator(2), dtype=torch.float64)
    target = random_target()
    expected = 0.0
    for i in range(N):
        rows, labels = known_labels(target, i)
        p = [1 / (1 + math.exp(-logits[n, i].item())) for n in rows]
        nll = [-math.log(q if t == 1 else 1 - q) for q, t in zip(p, labels, strict=True)]
        expected += WEIGHTS[i].item() * sum(nll) / len(nll)
    loss = au_softmax_loss(logits, target, WEIGHTS)
    assert loss.item() == pytest.approx(expected / N, rel=1e-12)


def test_au_softmax_loss_on_log_odds_equals_nll_of_the_two_logit_softmax():
    pair = torch.randn(B, 2, N, generator=generator(3), dtype=torch.float64)
    target = (torch.rand(B, N, generator=generator(4)) < 0.5).long()
    log_prob = F.log_softmax(pair, dim=1)
    official = sum(WEIGHTS[i] * F.nll_loss(log_prob[:, :, i], target[:, i]) for i in range(N)) / N
    loss = au_softmax_loss(pair[:, 1] - pair[:, 0], target.double(), WEIGHTS)
    assert loss.item() == pytest.approx(official.item(), rel=1e-12)


def test_per_sample_dice_matches_the_paper_formula():
    prob, target = random_prob(), random_target()
    expected = 0.0
    for i in range(N):
        rows, labels = known_labels(target, i)
        ratios = [
            (2 * prob[n, i].item() * t + 1) / (prob[n, i].item() ** 2 + t * t + 1)
            for n, t in zip(rows, labels, strict=True)
        ]
        expected += WEIGHTS[i].item() * (1 - sum(ratios) / len(ratios))
    loss = dice_loss(prob, target, WEIGHTS)
    assert loss.item() == pytest.approx(expected / N, rel=1e-12)


def test_batch_dice_matches_the_official_pytorch_formula_divided_by_the_batch():
    prob, target = random_prob(), random_target()
    expected = 0.0
    for i in range(N):
        rows, labels = known_labels(target, i)
        p = [prob[n, i].item() for n in rows]
        ratio = (2 * sum(a * t for a, t in zip(p, labels, strict=True)) + 1) / (
            sum(a * a for a in p) + sum(t * t for t in labels) + 1
        )
        expected += WEIGHTS[i].item() * (1 - ratio / len(rows))
    loss = dice_loss(prob, target, WEIGHTS, per_sample=False)
    assert loss.item() == pytest.approx(expected / N, rel=1e-12)


def test_batch_dice_stays_near_one_where_per_sample_dice_is_near_zero():
    target = random_target(unknown=0.0)
    perfect = target.clone()
    assert dice_loss(perfect, target, torch.ones(N)).item() == pytest.approx(0.0, abs=1e-12)
    assert dice_loss(perfect, target, torch.ones(N), per_sample=False).item() > 0.7


def test_landmark_loss_matches_the_biocular_normalised_squared_error():
    g = generator(5)
    pred = torch.rand(B, 49, 2, generator=g, dtype=torch.float64) * 176
    target = torch.rand(B, 49, 2, generator=g, dtype=torch.float64) * 176
    biocular = 3000 + 2000 * torch.rand(B, generator=g, dtype=torch.float64)
    expected = sum(
        ((pred[n] - target[n]) ** 2).sum().item() / (2 * biocular[n].item()) for n in range(B)
    )
    loss = landmark_loss(pred, target, biocular)
    assert loss.item() == pytest.approx(expected / B, rel=1e-12)


def test_landmark_loss_skips_samples_without_target_landmarks():
    g = generator(6)
    pred = torch.rand(B, 49, 2, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(B, 49, 2, generator=g, dtype=torch.float64)
    biocular = torch.ones(B, dtype=torch.float64)
    target[0] = NAN
    target[1, 3, 1] = NAN
    loss = landmark_loss(pred, target, biocular)
    loss.backward()
    assert loss.item() == pytest.approx(
        landmark_loss(pred[2:], target[2:], biocular[2:]).item(), rel=1e-12
    )
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[:2].abs().sum() == 0


def test_attention_refine_loss_matches_bce_on_the_nearest_resized_target():
    g = generator(7)
    refined = 0.01 + 0.98 * torch.rand(2, 3, 44, 44, generator=g, dtype=torch.float64)
    initial = torch.rand(2, 3, 52, 52, generator=g, dtype=torch.float64)
    # torch's (and so the official) nearest: floor(k * (52 / 44)) with a float32 scale
    scale = torch.tensor(52 / 44, dtype=torch.float32)
    source = [int(torch.floor(k * scale)) for k in range(44)]
    target = initial[:, :, source][:, :, :, source]
    bce = -(target * refined.log() + (1 - target) * (1 - refined).log())
    expected = sum(bce[:, i].mean().item() for i in range(3))
    loss = attention_refine_loss(refined, initial)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_shifted_cross_entropy_matches_the_release_formula_over_known_labels():
    prob, target = random_prob(), random_target()
    terms = []
    for i in range(N):
        rows, labels = known_labels(target, i)
        for n, t in zip(rows, labels, strict=True):
            p = prob[n, i].item()
            terms.append(-(t * math.log((p + 0.05) / 1.05) + (1 - t) * math.log((1.05 - p) / 1.05)))
    loss = shifted_cross_entropy(prob, target)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


def test_shifted_cross_entropy_weights_each_label_by_its_au():
    prob, target = random_prob(), random_target(unknown=0.0)
    plain = -(target * ((prob + 0.05) / 1.05).log() + (1 - target) * ((1.05 - prob) / 1.05).log())
    loss = shifted_cross_entropy(prob, target, WEIGHTS)
    assert loss.item() == pytest.approx((plain * WEIGHTS).mean().item(), rel=1e-12)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_shifted_cross_entropy_lies_between_zero_and_log_21_for_every_probability(label):
    losses = [
        shifted_cross_entropy(torch.tensor([[p]]), torch.tensor([[label]])).item()
        for p in torch.linspace(0, 1, 101).tolist()
    ]
    assert min(losses) == pytest.approx(0.0, abs=1e-6)
    assert max(losses) == pytest.approx(math.log(1.05 / 0.05), rel=1e-6)  # 3.04


def test_weighted_asymmetric_loss_matches_the_official_formula():
    prob, target = random_prob(), random_target()
    terms = []
    for i in range(N):
        rows, labels = known_labels(target, i)
        for n, t in zip(rows, labels, strict=True):
            p = prob[n, i].item()
            terms.append(WEIGHTS[i].item() * (t * math.log(p) + (1 - t) * p * math.log(1 - p)))
    loss = weighted_asymmetric_loss(prob, target, WEIGHTS)
    assert loss.item() == pytest.approx(-sum(terms) / len(terms), rel=1e-12)


def test_weighted_asymmetric_loss_gives_no_gradient_through_the_negative_weight():
    prob = random_prob().requires_grad_()
    target = torch.zeros(B, N, dtype=torch.float64)
    weighted_asymmetric_loss(prob, target, WEIGHTS).backward()
    p = prob.detach()
    expected = WEIGHTS * p / (1 - p) / (B * N)  # d/dp of -w * p' * log(1 - p), p' constant
    assert torch.allclose(prob.grad, expected, rtol=1e-12)


def test_weighted_asymmetric_loss_leaves_grad_mode_alone():
    with torch.no_grad():
        weighted_asymmetric_loss(random_prob(), random_target(), WEIGHTS)
        assert not torch.is_grad_enabled()


def test_edge_labels_code_each_ordered_pair_and_ignore_unknowns():
    target = torch.tensor([[1.0, 0.0, NAN], [0.0, 1.0, 1.0]])
    labels = edge_labels(target)
    assert labels.dtype == torch.long
    expected = [
        [2 * target[b, j].item() + target[b, k].item() for j in range(3) for k in range(3)]
        for b in range(2)
    ]
    expected = [[IGNORE_INDEX if math.isnan(v) else int(v) for v in row] for row in expected]
    assert labels.tolist() == expected


def test_edge_cross_entropy_is_the_mean_over_known_edges():
    target = random_target()
    logits = torch.randn(B, N * N, 4, generator=generator(8), dtype=torch.float64)
    labels = edge_labels(target)
    terms = [
        -torch.log_softmax(logits[b, e], 0)[labels[b, e]].item()
        for b in range(B)
        for e in range(N * N)
        if labels[b, e] != IGNORE_INDEX
    ]
    loss = edge_cross_entropy(logits, target)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


# --- masking and edge cases, for every AU loss ------------------------------------------------


def pair_logits(prob: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, N*N, 4) edge logits of pair (j, k) that depend only on p_j and p_k and
    favour class 2 p_j + p_k; at p in {0, 1} they reach -450."""
    code = 2 * prob[:, :, None] + prob[:, None, :]  # (B, N, N)
    classes = torch.arange(4, dtype=prob.dtype)
    return -50 * (code.flatten(1)[..., None] - classes).square()


#: Each AU loss as a function of probabilities in [0, 1], the labels and the AU weights (the
#: softmax loss gets log-odds of +-1e4 at p = 1 or 0, the edge loss :func:`pair_logits`).
AU_LOSSES = {
    "softmax": lambda p, t, w: au_softmax_loss((2 * p - 1) * 1e4, t, w),
    "dice": lambda p, t, w: dice_loss(p, t, w),
    "batch_dice": lambda p, t, w: dice_loss(p, t, w, per_sample=False),
    "shifted_ce": lambda p, t, w: shifted_cross_entropy(p, t, w),
    "asymmetric": lambda p, t, w: weighted_asymmetric_loss(p, t, w),
    "edge": lambda p, t, w: edge_cross_entropy(pair_logits(p), t),
}


def loss_and_grad(name: str, prob: torch.Tensor, target: torch.Tensor):
    prob = prob.clone().requires_grad_()
    loss = AU_LOSSES[name](prob, target, WEIGHTS.to(prob.dtype))
    loss.backward()
    return loss.detach(), prob.grad


@pytest.mark.parametrize("name", AU_LOSSES)
@pytest.mark.parametrize("extreme", [0.0, 1.0], ids=["p=0", "p=1"])
def test_au_losses_and_gradients_are_finite_at_saturated_probabilities(name, extreme):
    prob = torch.full((B, N), extreme, dtype=torch.float32)
    target = random_target(unknown=0.2).float()
    loss, grad = loss_and_grad(name, prob, target)
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", AU_LOSSES)
def test_au_losses_are_finite_when_every_au_is_absent(name):
    loss, grad = loss_and_grad(name, random_prob(), torch.zeros(B, N, dtype=torch.float64))
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", AU_LOSSES)
def test_au_losses_ignore_predictions_for_an_au_with_no_known_label(name):
    target = random_target()
    target[:, 1] = NAN
    prob = random_prob()
    other = prob.clone()
    other[:, 1] = 1 - other[:, 1]
    loss, grad = loss_and_grad(name, prob, target)
    assert loss == loss_and_grad(name, other, target)[0]
    assert grad[:, 1].abs().sum() == 0


@pytest.mark.parametrize("name", AU_LOSSES)
def test_au_losses_are_zero_when_no_label_is_known(name):
    loss, grad = loss_and_grad(name, random_prob(), torch.full((B, N), NAN, dtype=torch.float64))
    assert loss == 0
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", AU_LOSSES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_au_losses_accept_half_precision_and_return_float32(name, dtype):
    prob, target = random_prob(), random_target()
    low = AU_LOSSES[name](prob.to(dtype), target.to(dtype), WEIGHTS.to(dtype))
    full = AU_LOSSES[name](prob.to(dtype).float(), target.float(), WEIGHTS.to(dtype).float())
    assert low.dtype == torch.float32
    assert torch.allclose(low, full, rtol=1e-2)


def test_attention_refine_loss_is_finite_for_saturated_maps():
    refined = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4).clone()
    refined.requires_grad_()
    loss = attention_refine_loss(refined, torch.full((1, 2, 5, 5), 0.5))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(refined.grad).all()


def test_losses_reject_predictions_of_another_shape():
    with pytest.raises(AufacsError, match="prob"):
        dice_loss(torch.zeros(B, N + 1), torch.zeros(B, N), torch.ones(N + 1))


def test_losses_reject_weights_of_another_length():
    with pytest.raises(AufacsError, match="au_weights"):
        au_softmax_loss(torch.zeros(B, N), torch.zeros(B, N), torch.ones(N + 1))
