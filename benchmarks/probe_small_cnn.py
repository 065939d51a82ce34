"""What the study's frames allow at its budget: a small plain CNN, mean F1 of every epoch.

    python -m benchmarks.probe_small_cnn --data /tmp/synth [--epochs 12] [--no-positive-weight]
        [--aufacs-dataset] [--loss {eac_net,jaa_net,me_graph_au}] [--network resnet18]
    python -m benchmarks.probe_small_cnn --data /tmp/s --smoke

Run from the repository root. No model of the study: four blocks of two 3×3 convolutions with
batch norm and ReLU (16, 32, 64, 128 channels, each block ending in a 2×2 max-pool), global
average pooling and one linear layer to the AUs, trained from random weights with AdamW
(``--lr``) at batch ``--batch`` on random ``--crop`` px crops of the aligned faces with
horizontal flips (test faces: the centre crop), pixels scaled to [-1, 1]. The loss is the
binary cross-entropy over the known labels with, per AU, the positive weight (1 - p) / p of its
positive rate p among the training frames (``--no-positive-weight``: plain).
``--aufacs-dataset`` feeds the same network through the study's own input pipeline instead
(:class:`~aufacs.data.dataset.AlignedFaceDataset`: a random crop and flip per face in
training, the centre crop in test, the same [-1, 1] scaling), which tells whether that
pipeline holds the three networks back. ``--loss`` replaces the BCE by one network's AU
loss from :mod:`aufacs.models.losses`, with the study's inverse AU weights: EAC-Net's
shifted cross-entropy, JAA-Net's weighted softmax + dice, or ME-GraphAU's weighted
asymmetric loss. ``--network resnet18`` swaps the four blocks for the trunk of the ``cpu``
preset's ME-GraphAU (torchvision's ResNet-18, random weights, its own global average pooling
and one linear layer to the AUs), which tells whether that trunk or ME-GraphAU's heads hold
it back. The data set and
its cache are the study's, made as by ``benchmarks.train_small`` (the ``cpu`` preset's set
generated into an empty ``--data``, faces aligned at its 72 px; ``--smoke``: the ``smoke``
preset's). Fold 1: trains on its training subjects, scores its test subjects.

Prints, per epoch, the mean F1 (threshold 0.5, the package's metric) on the test subjects and
on 640 training frames, and the seconds of training; ``docs/training_experiments.md`` quotes
it as the reference point the three networks are measured against.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aufacs.analysis.metrics import confusion
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import AlignedFaceDataset
from aufacs.data.stats import au_weights, occurrence_rates
from aufacs.engine.runs import fold_split
from aufacs.models.losses import (
    au_softmax_loss,
    dice_loss,
    shifted_cross_entropy,
    weighted_asymmetric_loss,
)
from benchmarks.train_small import preset_cache

#: Training frames scored each epoch, to show the gap between fitting and generalising.
TRAIN_SCORED = 640


def small_cnn(num_aus: int) -> nn.Module:
    """The probe network: (B, 3, S, S) in [-1, 1] -> (B, num_aus) logits."""

    def block(inputs: int, outputs: int) -> nn.Sequential:
        layers = []
        for channels in (inputs, outputs):
            layers += [
                nn.Conv2d(channels, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
            ]
        return nn.Sequential(*layers, nn.MaxPool2d(2))

    widths = (3, 16, 32, 64, 128)
    blocks = [block(a, b) for a, b in zip(widths, widths[1:], strict=False)]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_aus))


def probe_network(name: str, num_aus: int) -> nn.Module:
    """``small_cnn`` or ``resnet18`` (``--network``): (B, 3, S, S) -> (B, num_aus) logits."""
    if name == "small_cnn":
        return small_cnn(num_aus)
    import torchvision  # imported on use: it takes seconds

    return torchvision.models.resnet18(weights=None, num_classes=num_aus)


def crops(images: torch.Tensor, crop: int, train: bool) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> (B, 3, crop, crop) float in [-1, 1]: one random crop for the
    batch and a flip half the time when ``train``, else the centre crop."""
    side = images.shape[-1]
    if train:
        top, left = np.random.randint(0, side - crop + 1, 2)
    else:
        top = left = (side - crop) // 2
    out = images[..., top : top + crop, left : left + crop].float() / 127.5 - 1.0
    return out.flip(-1) if train and np.random.rand() < 0.5 else out


class ProbeFaces:
    """The fold's faces as network inputs (B, 3, crop, crop) in [-1, 1] with their labels
    (B, N), NaN unknown: cropped here (:func:`crops`), or with ``pipeline`` by the study's
    :class:`AlignedFaceDataset`."""

    def __init__(self, cache: AlignedCache, crop: int, batch: int, pipeline: bool) -> None:
        split = fold_split(cache, "synthetic", 1)
        subjects = cache.table["subject"].to_numpy()
        self.train_rows = np.flatnonzero(np.isin(subjects, split.train))
        self.test_rows = np.flatnonzero(np.isin(subjects, split.test))
        self.labels = torch.from_numpy(cache.labels)  # (F, N), NaN unknown
        self.images = torch.from_numpy(np.array(cache.images)).permute(0, 3, 1, 2)  # uint8
        self.crop, self.batch = crop, batch
        self.datasets = None
        if pipeline:
            parts = {
                "train": (split.train, True),
                "scored": (split.train, False),
                "test": (split.test, False),
            }
            self.datasets = {
                name: AlignedFaceDataset(cache, subjects=part, train=train, crop_size=crop)
                for name, (part, train) in parts.items()
            }

    def training(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches."""
        order = np.random.permutation(len(self.train_rows))
        if self.datasets is not None:
            self.datasets["train"].set_epoch(epoch)
        for chosen in np.array_split(order, max(1, len(order) // self.batch)):
            if self.datasets is None:
                rows = self.train_rows[chosen]
                yield crops(self.images[rows], self.crop, True), self.labels[rows]
            else:
                items = self.datasets["train"][chosen]
                yield items["image"], items["au"]

    def scored(self, test: bool) -> tuple[torch.Tensor, np.ndarray]:
        """Test-mode inputs and labels of the test frames (``test``) or of the first
        :data:`TRAIN_SCORED` training frames."""
        rows = self.test_rows if test else self.train_rows[:TRAIN_SCORED]
        if self.datasets is None:
            return crops(self.images[rows], self.crop, False), self.labels[rows].numpy()
        batch = self.datasets["test" if test else "scored"][np.arange(len(rows))]
        return batch["image"], batch["au"].numpy()


def network_loss(
    name: str, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The AU loss of network ``name`` (``--loss``) on logits and labels (B, N), NaN unknown,
    with per-AU ``weights`` (N,)."""
    prob = torch.sigmoid(logits)
    if name == "eac_net":
        return shifted_cross_entropy(prob, target)
    if name == "jaa_net":
        return au_softmax_loss(logits, target, weights) + dice_loss(
            prob, target, weights, per_sample=False
        )
    return weighted_asymmetric_loss(prob, target, weights)


def mean_f1(net: nn.Module, inputs: torch.Tensor, labels: np.ndarray) -> float:
    """Mean F1 over the AUs of ``net`` on ``inputs`` (B, 3, crop, crop)."""
    net.eval()
    with torch.no_grad():
        logits = [net(part) for part in inputs.split(256)]
    prob = torch.sigmoid(torch.cat(logits)).numpy()
    return float(confusion(prob, labels).f1.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data folder")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--crop", type=int, default=64, help="input side, pixels")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--no-positive-weight", action="store_true", help="plain BCE")
    parser.add_argument(
        "--loss",
        choices=["bce", "eac_net", "jaa_net", "me_graph_au"],
        default="bce",
        help="the BCE, or one network's AU loss",
    )
    parser.add_argument(
        "--aufacs-dataset", action="store_true", help="feed the faces through the study's pipeline"
    )
    parser.add_argument(
        "--network",
        choices=["small_cnn", "resnet18"],
        default="small_cnn",
        help="the four blocks, or ME-GraphAU's ResNet-18 trunk under the same head",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the training")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true", help="the smoke preset's set, 32 px")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    preset, crop = ("smoke", 32) if args.smoke else ("cpu", args.crop)
    cache = AlignedCache.open(preset_cache(args.data, preset, None, 0))
    faces = ProbeFaces(cache, crop, args.batch, args.aufacs_dataset)
    positive = torch.nanmean(faces.labels[faces.train_rows], dim=0).clamp(1e-3, 1 - 1e-3)
    weight = torch.ones_like(positive) if args.no_positive_weight else (1 - positive) / positive
    rates = occurrence_rates(cache.labels[faces.train_rows])
    inverse = torch.as_tensor(au_weights(rates, "inverse"), dtype=torch.float32)
    net = probe_network(args.network, faces.labels.shape[1])
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    test, scored = faces.scored(test=True), faces.scored(test=False)
    print(f"{len(faces.train_rows)} training and {len(faces.test_rows)} test frames, {crop} px")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        net.train()
        for inputs, target in faces.training(epoch - 1):
            logits, known = net(inputs), ~torch.isnan(target)
            if args.loss == "bce":
                loss = F.binary_cross_entropy_with_logits(
                    logits[known], target[known], pos_weight=weight.expand_as(target)[known]
                )
            else:
                loss = network_loss(args.loss, logits, target, inverse)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        test_f1, train_f1 = mean_f1(net, *test), mean_f1(net, *scored)
        print(
            f"epoch {epoch}: test mean F1 {test_f1:.3f}, training {train_f1:.3f}, {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
