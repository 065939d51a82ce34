"""Every training loss of the three detectors, as plain vectorized functions.

Conventions shared by all functions here:

* B is the batch size, N the number of AUs.
* ``target`` (B, N) holds AU labels: 1 present, 0 absent, NaN unknown. Unknown labels are
  masked out of every loss; an AU with no known label in the batch contributes 0, never NaN.
* ``au_weights`` (N,) are the per-AU class weights of the method (mean 1, see
  ``aufacs.data.stats``).
* Losses are computed in float32 (float64 stays float64), so half-precision inputs from
  mixed-precision training are safe; the result is a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aufacs.core.errors import AufacsError

#: Label of an AU pair with an unknown label in :func:`edge_labels` (cross-entropy's default
#: ``ignore_index``).
IGNORE_INDEX = -100


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or float64 if it already is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _known(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(known mask, labels with unknowns set to 0), both (B, N) in a float dtype."""
    target = _wide(target)
    known = ~torch.isnan(target)
    return known.to(target.dtype), torch.where(known, target, torch.zeros_like(target))


def _check_pair(name: str, values: torch.Tensor, target: torch.Tensor) -> None:
    if values.dim() != 2 or values.shape != target.shape:
        raise AufacsError(
            f"{name} must have the shape of target (B, N) = {tuple(target.shape)}, "
            f"got {tuple(values.shape)}"
        )


def _check_weights(au_weights: torch.Tensor, num_aus: int) -> None:
    if au_weights.shape != (num_aus,):
        raise AufacsError(
            f"au_weights must have shape ({num_aus},), one weight per AU, "
            f"got {tuple(au_weights.shape)}"
        )


def _weights_like(au_weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return au_weights.to(device=like.device, dtype=like.dtype)


def _masked_mean(values: torch.Tensor, known: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` over the known entries (along ``dim``, or all); 0 where none is."""
    if dim is None:
        return (values * known).sum() / known.sum().clamp_min(1)
    return (values * known).sum(dim) / known.sum(dim).clamp_min(1)


def au_softmax_loss(
    logits: torch.Tensor, target: torch.Tensor, au_weights: torch.Tensor
) -> torch.Tensor:
    """JAA-Net's weighted softmax loss (ECCV 2018; official ``util.au_softmax_loss``).

    ``logits`` (B, N): log-odds of "present". JAA-Net's head gives two logits per AU; the
    2-class log-softmax equals the log-sigmoid of their difference, which the model passes.

    E = (1/N) sum_i w_i * mean_n[-log p(t_ni)], the mean over the known labels of AU i, with
    -log p(t) = -logsigmoid((2t - 1) * logit). Every AU counts in the 1/N, also one with no
    known label (it adds 0).
    """
    _check_pair("logits", logits, target)
    _check_weights(au_weights, target.shape[1])
    known, labels = _known(target)
    nll = -F.logsigmoid((2 * labels - 1) * _wide(logits))
    per_au = _masked_mean(nll, known, dim=0)
    return (_weights_like(au_weights, per_au) * per_au).mean()


def dice_loss(
    prob: torch.Tensor,
    target: torch.Tensor,
    au_weights: torch.Tensor,
    *,
    per_sample: bool = True,
    smooth: float = 1.0,
) -> torch.Tensor:
    """JAA-Net's weighted multi-label Dice loss, E_dice = (1/N) sum_i w_i D_i.

    ``prob`` (B, N): probability of "present". For AU i, over its n_i known labels,
    with eps = ``smooth``:

    * ``per_sample=True`` (the paper and the original Caffe ``dice_coef_loss_layer``):
      D_i = 1 - (1/n_i) sum_n (2 p_n t_n + eps) / (p_n^2 + t_n^2 + eps).
    * ``per_sample=False`` (the official PyTorch ``util.dice_loss``): one ratio over the
      batch, *also divided by the batch size*: D_i = 1 - [(2 sum p t + eps) /
      (sum p^2 + sum t^2 + eps)] / n_i. It stays near 1 and its gradient shrinks as 1/n_i.

    An AU with no known label has D_i = 0.
    """
    _check_pair("prob", prob, target)
    _check_weights(au_weights, target.shape[1])
    known, labels = _known(target)
    p = _wide(prob) * known
    if per_sample:
        ratio = (2 * p * labels + smooth) / (p * p + labels * labels + smooth)
        per_au = 1 - _masked_mean(ratio, known, dim=0)
    else:
        count = known.sum(0)
        ratio = (2 * (p * labels).sum(0) + smooth) / (
            (p * p).sum(0) + (labels * labels).sum(0) + smooth
        )
        per_au = 1 - ratio / count.clamp_min(1)
    per_au = torch.where(known.any(0), per_au, torch.zeros_like(per_au))
    return (_weights_like(au_weights, per_au) * per_au).mean()


def landmark_loss(pred: torch.Tensor, target: torch.Tensor, biocular: torch.Tensor) -> torch.Tensor:
    """JAA-Net's face-alignment loss (ECCV 2018; official ``util.landmark_loss``).

    ``pred``, ``target``: (B, 49, 2) landmarks in input pixels; ``biocular`` (B,): the
    *squared* inter-ocular distance in pixels². Per sample
    E = sum_j ||pred_j - target_j||^2 / (2 * biocular), averaged over the samples whose
    target landmarks are all finite and whose ``biocular`` is positive (0 if none is).
    """
    if pred.shape != target.shape or pred.dim() != 3 or pred.shape[-1] != 2:
        raise AufacsError(
            f"pred and target landmarks must both have shape (B, P, 2), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if biocular.shape != pred.shape[:1]:
        raise AufacsError(
            f"biocular must have shape ({pred.shape[0]},), one per sample, "
            f"got {tuple(biocular.shape)}"
        )
    target = _wide(target)
    biocular = _wide(biocular)
    valid = torch.isfinite(target).flatten(1).all(1) & (biocular > 0)
    clean_target = torch.where(valid[:, None, None], target, torch.zeros_like(target))
    clean_biocular = torch.where(valid, biocular, torch.ones_like(biocular))
    squared = (_wide(pred) - clean_target).square().flatten(1).sum(1)
    return _masked_mean(squared / (2 * clean_biocular), valid.to(squared.dtype))


def attention_refine_loss(refined: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """JAA-Net's attention-refinement loss (ECCV 2018 Eq. 4; official
    ``util.attention_refine_loss``).

    ``refined`` (B, N, h, w): refined maps in (0, 1); ``initial`` (B, N, H0, W0): the
    predefined maps (detached). The target is ``initial`` resized to (h, w) by
    ``F.interpolate``'s nearest neighbour, as in the official code (source index
    ``floor(k * H0 / h)`` with a float32 scale, e.g. 52 -> 44). The loss is the binary
    cross-entropy averaged over batch and pixels per AU, summed over the N AUs. (The paper
    sums over pixels; the official code averages, and its lambda absorbs the difference.)
    Logs are clamped at -100 as in ``torch.nn.BCELoss``.
    """
    if refined.dim() != 4 or initial.dim() != 4 or refined.shape[:2] != initial.shape[:2]:
        raise AufacsError(
            f"refined and initial attention maps must be (B, N, h, w) with the same B and N, "
            f"got {tuple(refined.shape)} and {tuple(initial.shape)}"
        )
    refined = _wide(refined)
    target = F.interpolate(_wide(initial.detach()), size=refined.shape[-2:], mode="nearest")
    with torch.autocast(device_type=refined.device.type, enabled=False):
        bce = F.binary_cross_entropy(refined, target.to(refined.dtype), reduction="none")
    return bce.mean(dim=(0, 2, 3)).sum()


def shifted_cross_entropy(
    prob: torch.Tensor,
    target: torch.Tensor,
    au_weights: torch.Tensor | None = None,
    *,
    shift: float = 0.05,
) -> torch.Tensor:
    """EAC-Net's shifted cross-entropy (official Theano code ``multi_label_ACE``).

    ``prob`` (B, N): sigmoid probability of "present". Per label, with s = ``shift``:
    l = -[t * log((p + s) / (1 + s)) + (1 - t) * log((1 + s - p) / (1 + s))], so both log
    arguments stay in [s / (1 + s), 1] and l <= 3.04 for s = 0.05. The seed brief's
    "p/1.05 + 0.5" is a transcription error: with 0.5 the log turns positive for p > 0.525
    and the loss negative; the authors' code uses 0.05.

    The release sums l over all labels and divides by 12 * batch size; with unknown labels
    masked we divide by the number of known labels, the same when all are known. Unweighted
    by default, like the release; with ``au_weights`` (N,) each l is multiplied by its AU's
    weight before the same division.
    """
    _check_pair("prob", prob, target)
    known, labels = _known(target)
    p = _wide(prob).clamp(0, 1)
    loss = -(
        labels * torch.log((p + shift) / (1 + shift))
        + (1 - labels) * torch.log((1 + shift - p) / (1 + shift))
    )
    if au_weights is not None:
        _check_weights(au_weights, target.shape[1])
        loss = loss * _weights_like(au_weights, loss)
    return _masked_mean(loss, known)


def weighted_asymmetric_loss(
    prob: torch.Tensor, target: torch.Tensor, au_weights: torch.Tensor, *, eps: float = 1e-8
) -> torch.Tensor:
    """ME-GraphAU's weighted asymmetric loss, L_WA (IJCAI 2022; official ``utils.py``).

    ``prob`` (B, N): probability of "present". Per label, with p' = p detached:
    l = w_i * [t log(max(p, eps)) + (1 - t) * p' * log(max(1 - p, eps))], and
    L = -mean over the known labels of l (the official -mean_batch mean_AU when all are
    known). The negative term's weight p' carries no gradient, as in the official code,
    which gets it by switching global grad mode off and on; here ``detach`` does it.
    """
    _check_pair("prob", prob, target)
    _check_weights(au_weights, target.shape[1])
    known, labels = _known(target)
    p = _wide(prob)
    positive = labels * torch.log(p.clamp_min(eps))
    negative = (1 - labels) * p.detach() * torch.log((1 - p).clamp_min(eps))
    loss = _weights_like(au_weights, p) * (positive + negative)
    return -_masked_mean(loss, known)


def edge_labels(target: torch.Tensor) -> torch.Tensor:
    """ME-GraphAU's co-occurrence class of every ordered AU pair (official
    ``tool/BP4D_deal_AU_relation.py``).

    ``target`` (B, N) -> LongTensor (B, N * N): column j * N + k holds 2 * y_j + y_k
    (0: both absent, 1: only k present, 2: only j present, 3: both present), self-pairs
    included; a pair with an unknown label holds :data:`IGNORE_INDEX` (-100).
    """
    if target.dim() != 2:
        raise AufacsError(f"target must have shape (B, N), got {tuple(target.shape)}")
    known, labels = _known(target)
    classes = (2 * labels[:, :, None] + labels[:, None, :]).long()
    pair_known = (known[:, :, None] * known[:, None, :]).bool()
    return torch.where(pair_known, classes, IGNORE_INDEX).flatten(1)


def edge_cross_entropy(edge_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ME-GraphAU's edge loss L_E (official ``train_stage2.py``): cross-entropy of the 4-way
    co-occurrence class of each ordered AU pair.

    ``edge_logits`` (B, N * N, 4), ``target`` (B, N). The mean over all edges whose two
    labels are known (:func:`edge_labels`); 0 when none is.
    """
    labels = edge_labels(target)
    if edge_logits.dim() != 3 or edge_logits.shape != (*labels.shape, 4):
        raise AufacsError(
            f"edge_logits must have shape (B, N*N, 4) = {(*labels.shape, 4)}, "
            f"got {tuple(edge_logits.shape)}"
        )
    loss = F.cross_entropy(
        _wide(edge_logits).flatten(0, 1),
        labels.flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    known = (labels.flatten() != IGNORE_INDEX).to(loss.dtype)
    return _masked_mean(loss, known)
