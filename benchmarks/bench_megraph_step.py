"""ME-GraphAU training step on CPU: aufacs against the official code or its structure, interleaved.

    python -m benchmarks.bench_megraph_step --stage 1      # batch 8 at 224 px, 2 threads
    python -m benchmarks.bench_megraph_step --stage 2 --repeats 5
    python -m benchmarks.bench_megraph_step --official-code ~/src/ME-GraphAU   # the real code
    python -m benchmarks.bench_megraph_step --batch 1 --size 64 --warmup 0 --repeats 1  # smallest

Run from the repository root. A step is what the official ``train_stage1.py`` /
``train_stage2.py`` do per batch: a forward pass in training mode, the method's loss (stage 1:
the weighted asymmetric loss L_WA; stage 2: L_WA + 0.05 L_E, λ of the README's BP4D command),
the backward pass and an AdamW step (betas 0.9, 0.999, weight decay 5e-4, learning rate 1e-4
in stage 1 and 1e-5 in stage 2, as the README runs them), on ResNet-50 with random weights
(speed does not depend on them) and random labels, 12 AUs.

The reference, by default, is the naive official-layout ME-GraphAU of
:mod:`benchmarks.official_me_graph_au` (``RefMEFARG``: one LinearBlock module per AU, the edge
model's cross-attention over every ordered AU pair built with ``repeat``, the gated GCN with
its start / end incidence products), on a plain torchvision ResNet-50, scored with aufacs's
loss functions. ``--official-code DIR`` makes it the official code itself, from a clone of
CVI-SZU/ME-GraphAU that the user provides (imported from DIR at run time by
:mod:`benchmarks.official_me_graph_au_code`; none of it ships with aufacs): ``model/ANFL.py``'s
or ``model/MEFL.py``'s ``MEFARG`` with ``model/resnet.py``'s ResNet-50, scored with
``utils.WeightedAsymmetricLoss`` and ``nn.CrossEntropyLoss`` as the training scripts do. Either
way the reference takes a plain ``torch.optim.AdamW`` as the scripts do, and the aufacs model
is loaded with the reference's weights through
:func:`aufacs.models.me_graph_au.convert_official_state_dict`, so both compute the same
function: the script prints the parameter counts, the largest output differences and both
training losses. aufacs's step is the engine's (``make_optimizer``: the same AdamW, fused).

Timing as in ``bench_jaa_step``: both alternate in one process; medians of wall and process
CPU time; the speed-up as the median of per-round ratios and the ratio of minima; then
:func:`benchmarks.timing.limit_table`, how far each step is from what the convolutions allow.
``--size`` (default 224, the official input) is only there to make a smoke run small.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from aufacs.analysis.speed import count_parameters
from aufacs.core.errors import AufacsError
from aufacs.engine.config import TrainConfig
from aufacs.engine.optimizer import make_optimizer
from aufacs.engine.recipes import recipe_for
from aufacs.models.losses import edge_cross_entropy, edge_labels, weighted_asymmetric_loss
from aufacs.models.me_graph_au import build_me_graph_au, convert_official_state_dict
from benchmarks.official_me_graph_au import PlainResNetTokens, RefMEFARG
from benchmarks.official_me_graph_au_code import (
    import_official,
    official_loss,
    official_model,
    official_outputs,
    official_step,
)
from benchmarks.timing import (
    STEP_HEADER,
    interleaved,
    limit_table,
    load_line,
    machine_description,
    markdown_table,
    rounds_line,
    step_table,
    timing_arguments,
)

#: λ of the stage-2 loss (README BP4D command).
LAM_EDGE = 0.05

#: A reference's loss: (its outputs (AU probabilities, edge logits or None), the batch) -> scalar.
Loss = Callable[[tuple, dict], torch.Tensor]


def structure_loss(weights: torch.Tensor) -> Loss:
    """The method's loss with aufacs's loss functions, for the official-structure reference."""

    def loss(outputs: tuple, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        prob, edge_logits = outputs
        total = weighted_asymmetric_loss(prob, batch["au"], weights)
        if edge_logits is not None:
            total = total + LAM_EDGE * edge_cross_entropy(edge_logits, batch["au"])
        return total

    return loss


def reference(
    stage: int, modules: dict[str, ModuleType] | None, weights: torch.Tensor, k: int
) -> tuple[str, nn.Module, dict[str, torch.Tensor], Loss]:
    """The reference's name, module, state dict under the official key names, and loss: the
    official code where ``modules`` are given, else the official structure (``k`` neighbours
    in stage 1)."""
    if modules is not None:
        net = official_model(modules, stage, len(weights), k)
        return "official code", net, net.state_dict(), official_loss(modules, weights, LAM_EDGE)
    net = RefMEFARG(PlainResNetTokens(), len(weights), stage)
    if stage == 1:
        net.head.gnn.k = k
    state = {
        **{f"backbone.{key}": v for key, v in net.backbone.official_state_dict().items()},
        **{key: v for key, v in net.state_dict().items() if not key.startswith("backbone.")},
    }
    return "official structure", net, state, structure_loss(weights)


def same_function(
    model: nn.Module, net: nn.Module, loss: Loss, batch: dict, weights: torch.Tensor
) -> str:
    """How far the reference ``net`` is from ``model``: max |Δ AU probability| and, in stage
    2, max |Δ edge logit| in eval mode, then both training-mode losses. Leaves both training."""
    model.eval()
    net.eval()
    with torch.no_grad():
        ours, (prob, edge_logits) = model(batch), official_outputs(net, batch["image"])
    text = f"max |Δ AU probability| (eval) {(ours.au_prob - prob).abs().max():.1e}"
    if edge_logits is not None:
        gap = (ours.edge_logits - edge_logits).abs().max()
        text += (
            f", max |Δ edge logit| {gap:.1e} (of |edge logits| up to {edge_logits.abs().max():.1e})"
        )
    model.train()
    net.train()
    with torch.no_grad():
        our_loss = model.loss(model(batch), batch, weights)[0].item()
        their_loss = loss(official_outputs(net, batch["image"]), batch).item()
    return f"{text}; training loss {our_loss:.5f} vs {their_loss:.5f}"


def aufacs_step(model: nn.Module, batch: dict, weights: torch.Tensor) -> Callable[[], None]:
    """aufacs's training step with the engine's optimiser for the stage's recipe (AdamW)."""
    recipe = recipe_for("me_graph_au", model.stage)
    config = TrainConfig(
        model="me_graph_au",
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
    )
    optimizer = make_optimizer(model, config)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(batch), batch, weights)[0].backward()
        optimizer.step()

    return step


def time_stage(
    stage: int, batch: dict, weights: torch.Tensor, modules: dict | None, warmup: int, repeats: int
) -> None:
    """Time one stage's aufacs model against its reference on ``batch``; print the tables."""
    torch.manual_seed(0)
    model = build_me_graph_au(len(weights), stage=stage, pretrained=None, lam_edge=LAM_EDGE)
    k = model.gnn.neighbor_num if stage == 1 else 4  # 4 for BP4D
    name, net, state, loss = reference(stage, modules, weights, k)
    model.load_state_dict(convert_official_state_dict(state), strict=True)
    image = batch["image"]
    print(
        f"\nME-GraphAU stage {stage}, training step (forward, loss, backward, AdamW), batch "
        f"{len(image)} at {image.shape[-1]} px; warm-up {warmup}, {repeats} timed rounds"
    )
    print(
        f"- parameters: aufacs {count_parameters(model):,}, {name} {count_parameters(net):,}; "
        f"{same_function(model, net, loss, batch, weights)}\n"
    )
    lr = recipe_for("me_graph_au", stage).lr
    calls = {
        name: official_step(net, loss, batch, lr),
        "aufacs": aufacs_step(model, batch, weights),
    }
    times = interleaved(calls, warmup, repeats)
    print(markdown_table(STEP_HEADER, step_table(times, name, "aufacs")))
    print(rounds_line(times))
    print(f"\nDistance to the limit, stage {stage} (one more step each, counted and profiled):\n")
    print(limit_table(calls, times))
    print(load_line())


def parse_arguments() -> tuple[argparse.Namespace, dict[str, ModuleType] | None]:
    """The command line, and the official modules where ``--official-code`` names them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--size", type=int, default=224, help="image side, px (default 224)")
    timing_arguments(parser, threads=2, repeats=5)
    parser.add_argument(
        "--official-code",
        type=Path,
        metavar="DIR",
        help="a clone of CVI-SZU/ME-GraphAU (model/, utils.py) to time instead of the "
        "official structure",
    )
    args = parser.parse_args()
    if args.official_code is None:
        return args, None
    try:
        return args, import_official(args.official_code.expanduser())
    except AufacsError as error:
        parser.error(str(error))


def main() -> None:
    args, modules = parse_arguments()
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))
    num_aus = 12
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    labels = torch.randint(0, 2, (args.batch, num_aus), generator=generator).float()
    # The relation labels the official data lists hold (tool/BP4D_deal_AU_relation.py).
    batch = {"image": image, "au": labels, "relations": edge_labels(labels)}
    for stage in args.stage:
        time_stage(stage, batch, torch.ones(num_aus), modules, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
