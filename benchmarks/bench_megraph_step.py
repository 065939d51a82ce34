"""ME-GraphAU forward + backward on CPU: aufacs against the official code's structure, interleaved.

    python -m benchmarks.bench_megraph_step --stage 1      # batch 8 at 224 px, 2 threads
    python -m benchmarks.bench_megraph_step --stage 2 --repeats 5
    python -m benchmarks.bench_megraph_step --batch 1 --size 64 --warmup 0 --repeats 1  # smallest

Run from the repository root. One call is a forward pass in training mode, the method's loss
(stage 1: the weighted asymmetric loss L_WA; stage 2: L_WA + 0.05 L_E) and the backward pass,
on ResNet-50 with random weights (speed does not depend on them) and random labels.

The reference is the naive official-layout ME-GraphAU of
:mod:`benchmarks.official_me_graph_au` (``RefMEFARG``: one LinearBlock module per AU, the edge
model's cross-attention over every ordered AU pair built with ``repeat``, the gated GCN with
its start / end incidence products), on a plain torchvision ResNet-50 in the default memory
format, as the official ``MEFARG``. The aufacs model is loaded from the reference's converted
weights, so both compute the same function; the script prints the parameter counts and the
largest output difference. Both losses use aufacs's loss functions (the official ones are the
same vectorized formulas).

Timing as in ``bench_jaa_step``: both alternate in one process; medians of wall and process
CPU time; the speed-up as the median of per-round ratios and the ratio of minima. ``--size``
(default 224, the official input) is only there to make a smoke run small.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from aufacs.analysis.speed import count_parameters
from aufacs.models.losses import edge_cross_entropy, weighted_asymmetric_loss
from aufacs.models.me_graph_au import build_me_graph_au, convert_official_state_dict
from benchmarks.official_me_graph_au import PlainResNetTokens, RefMEFARG
from benchmarks.timing import (
    STEP_HEADER,
    interleaved,
    load_line,
    machine_description,
    markdown_table,
    rounds_line,
    step_table,
    timing_arguments,
)

#: λ of the stage-2 loss (README BP4D command).
LAM_EDGE = 0.05


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
        f"\nME-GraphAU stage {stage}, forward + loss + backward, batch {len(image)} at "
        f"{image.shape[-1]} px; warm-up {warmup}, {repeats} timed rounds"
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
    parser.add_argument("--size", type=int, default=224, help="image side, px (default 224)")
    timing_arguments(parser, threads=2, repeats=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))
    num_aus = 12
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    labels = torch.randint(0, 2, (args.batch, num_aus), generator=generator).float()
    batch, weights = {"image": image, "au": labels}, torch.ones(num_aus)

    for stage in args.stage:
        time_stage(stage, batch, weights, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
