"""ME-GraphAU forward + backward on CPU: aufacs against the official code's structure, interleaved.

    python benchmarks/bench_megraph_step.py --stage 1      # batch 8 at 224 px, 2 threads
    python benchmarks/bench_megraph_step.py --stage 2 --repeats 5

One call is a forward pass in training mode, the method's loss (stage 1: the weighted
asymmetric loss L_WA; stage 2: L_WA + 0.05 L_E) and the backward pass, on ResNet-50 with
random weights (speed does not depend on them) and random labels.

The reference is the naive official-layout ME-GraphAU of ``tests/test_me_graph_au.py``
(``RefMEFARG``: one LinearBlock module per AU, the edge model's cross-attention over every
ordered AU pair built with ``repeat``, the gated GCN with its start / end incidence products),
on a plain torchvision ResNet-50 in the default memory format, as the official ``MEFARG``.
The aufacs model is loaded from the reference's converted weights, so both compute the same
function; the script prints the parameter counts and the largest output difference. Both
losses use aufacs's loss functions (the official ones are the same vectorized formulas).

Timing as in ``bench_jaa_step.py``: both alternate in one process; medians of wall and
process CPU time; the speed-up as the median of per-round ratios and the ratio of minima.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torchvision
from bench_jaa_step import (
    STEP_HEADER,
    interleaved,
    load_line,
    machine_description,
    markdown_table,
    rounds_line,
    step_table,
    timing_arguments,
)
from torch import nn

from aufacs.analysis.speed import count_parameters
from aufacs.models.losses import edge_cross_entropy, weighted_asymmetric_loss
from aufacs.models.me_graph_au import build_me_graph_au, convert_official_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_me_graph_au import RefMEFARG  # noqa: E402  (the naive official-layout reference)

#: λ of the stage-2 loss (README BP4D command).
LAM_EDGE = 0.05


class PlainResNetTokens(nn.Module):
    """The official backbone: torchvision ResNet-50 up to ``layer4``, default memory format;
    (B, 3, H, W) -> (B, 49, 2048) tokens at 224 px."""

    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        self.out_channels = resnet.fc.in_features
        self.trunk = nn.Sequential(*list(resnet.children())[:-2])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.trunk(image).flatten(2).transpose(1, 2)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict under torchvision's names (``conv1.weight``, ``layer1.0...``)."""
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        return {
            f"{names[int(key.split('.', 1)[0])]}.{key.split('.', 1)[1]}": value
            for key, value in self.trunk.state_dict().items()
        }


def reference_and_model(stage: int, num_aus: int) -> tuple[RefMEFARG, nn.Module]:
    """The official-layout reference and an aufacs model holding the same weights."""
    reference = RefMEFARG(PlainResNetTokens(), num_aus, stage)
    model = build_me_graph_au(num_aus, stage=stage, pretrained=None, lam_edge=LAM_EDGE)
    if stage == 1:
        reference.head.gnn.k = model.gnn.neighbor_num  # 4 for BP4D
    state = {
        **{f"backbone.{k}": v for k, v in reference.backbone.official_state_dict().items()},
        **{k: v for k, v in reference.state_dict().items() if not k.startswith("backbone.")},
    }
    model.load_state_dict(convert_official_state_dict(state), strict=True)
    return reference, model


def time_stage(
    stage: int, batch: dict[str, torch.Tensor], weights: torch.Tensor, warmup: int, repeats: int
) -> None:
    """Time one stage's aufacs model against the reference on ``batch``; print the table."""
    torch.manual_seed(0)
    reference, model = reference_and_model(stage, len(weights))
    image, labels = batch["image"], batch["au"]
    reference.eval()
    model.eval()
    with torch.no_grad():
        gap = (model(batch).au_prob - reference(image)[0]).abs().max().item()
    reference.train()
    model.train()

    def ours() -> None:
        model.zero_grad(set_to_none=True)
        model.loss(model(batch), batch, weights)[0].backward()

    def theirs() -> None:
        reference.zero_grad(set_to_none=True)
        prob, edge_logits = reference(image)
        loss = weighted_asymmetric_loss(prob, labels, weights)
        if edge_logits is not None:
            loss = loss + LAM_EDGE * edge_cross_entropy(edge_logits, labels)
        loss.backward()

    times = interleaved({"official structure": theirs, "aufacs": ours}, warmup, repeats)
    print(
        f"\nME-GraphAU stage {stage}, forward + loss + backward, batch {len(image)} at 224 px; "
        f"warm-up {warmup}, {repeats} timed rounds"
    )
    print(
        f"- parameters: aufacs {count_parameters(model):,}, official structure "
        f"{count_parameters(reference):,}; max |Δ AU probability| (eval) {gap:.1e}\n"
    )
    print(markdown_table(STEP_HEADER, step_table(times, "official structure", "aufacs")))
    print(rounds_line(times))
    print(load_line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    timing_arguments(parser, threads=2, repeats=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))
    num_aus = 12
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(args.batch, 3, 224, 224, generator=generator)
    labels = torch.randint(0, 2, (args.batch, num_aus), generator=generator).float()
    batch, weights = {"image": image, "au": labels}, torch.ones(num_aus)

    for stage in args.stage:
        time_stage(stage, batch, weights, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
