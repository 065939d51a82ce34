"""JAA-Net training step on CPU: aufacs against the official code's structure, interleaved.

    python -m benchmarks.bench_jaa_step                    # batch 8, crop 176, 2 threads
    python -m benchmarks.bench_jaa_step --repeats 9 --branch-schedule grouped
    python -m benchmarks.bench_jaa_step --official-code ~/src/PyTorch-JAANet   # + the real code
    python -m benchmarks.bench_jaa_step --batch 1 --warmup 0 --repeats 1     # smallest run

Run from the repository root. A step is what the official ``train_JAAv1.py`` does per batch:
forward, the four losses (weighted softmax, Dice, landmark, attention refinement), backward,
and an SGD step (Nesterov, momentum 0.9, weight decay 5e-4, the refinement's learning rate
doubled).

The reference is the official PyTorch JAA-Net v1 (ZhiwenShao/PyTorch-JAANet, ``network.py``,
``util.py``) written out with the same structure in :mod:`benchmarks.official_jaa_net`: one
BatchNorm and one convolution module per grid cell, stitched together cell by cell; 12
separate refinement branches and 12 separate local feature extractors; the initial attention
maps drawn on the CPU by a Python double loop per sample and AU that writes one tensor element
at a time; and the losses as per-AU and per-sample Python loops. It is loaded with the aufacs
model's weights, and aufacs uses the official PyTorch Dice variant (``dice="batch"``), so both
compute the same function; the script prints both parameter counts and how far outputs and
losses differ before timing.

``--official-code DIR`` adds the official code itself, from a clone of PyTorch-JAANet that the
user provides (its ``network.py`` and ``util.py`` are imported from DIR at run time by
:mod:`benchmarks.official_jaa_code`; none of it ships with aufacs): the six modules built as
``train_JAAv1.py`` builds them, loaded with the same weights, and its step as that script's
loop runs it per batch, with ``util.py``'s losses. It is timed as a third call, "official
code", and checked like the reference.

aufacs's step is the engine's: ``aufacs.engine.optimizer.make_optimizer`` gives the same SGD,
as one fused kernel from torch 2.4 on. ``--amp bf16`` runs its forward pass and losses under
bf16 autocast, as ``aufacs train --amp bf16`` does; the script then prints how far its AU
probabilities are from float32's, since the function is no longer bit-for-bit the same.

The steps alternate in one process (:func:`benchmarks.timing.interleaved`; the order flips
every round), so load from other processes hits them alike. The figures are medians of wall
time and of process CPU time (all threads); the speed-up is the median of the per-round ratios
and, less disturbed by bursts of load, the ratio of the minimum wall times. Every round's wall
times are printed too, then :func:`benchmarks.timing.limit_table`: per step, its FLOPs and
achieved GFLOP/s, the share of it spent in convolutions and the convolutions' own GFLOP/s.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from aufacs.analysis.speed import count_parameters, example_batch
from aufacs.core.errors import AufacsError
from aufacs.data.align import biocular
from aufacs.engine.config import TrainConfig
from aufacs.engine.device import autocast, resolve_amp
from aufacs.engine.optimizer import make_optimizer
from aufacs.models.jaa_net import JAANet, build_jaa_net
from benchmarks.official_jaa_code import OfficialCode, import_official
from benchmarks.official_jaa_net import (
    OFFICIAL_AU_WEIGHTS,
    OfficialJAANet,
    load_official,
    official_loss,
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

#: A loss of an official-layout reference: (its output, the batch, the AU weights) -> scalar.
Loss = Callable[[dict, dict, torch.Tensor], torch.Tensor]

#: The reference every speed-up is given over first.
STRUCTURE = "official structure"


def training_batch(model: JAANet, batch_size: int) -> dict[str, torch.Tensor]:
    """Random images, one synthetic face's landmarks (crop pixels), random labels."""
    batch = example_batch(model, batch_size)
    generator = torch.Generator().manual_seed(0)
    batch["au"] = torch.randint(0, 2, (batch_size, model.config.num_aus), generator=generator)
    batch["au"] = batch["au"].float()
    batch["biocular"] = torch.as_tensor(biocular(batch["landmarks"].numpy()), dtype=torch.float32)
    return batch


def place_landmark_head(model: JAANet, landmarks: torch.Tensor) -> None:
    """Make the alignment head predict about ``landmarks`` (49, 2), as a trained one does, so
    that every attention ROI lies on the face (random weights put them in a corner)."""
    head = model.align_net.head[-1]
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.copy_(landmarks.flatten())


def sgd(groups: list[dict]) -> torch.optim.SGD:
    """The official optimiser at the first epoch's learning rate (0.01 x lr_mult)."""
    return torch.optim.SGD(
        [{"params": list(g["params"]), "lr": 0.01 * g["lr_mult"]} for g in groups],
        lr=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
    )


def same_function(
    model: JAANet, reference: nn.Module, loss: Loss, batch: dict[str, torch.Tensor], weight
) -> tuple[float, float, float, float]:
    """How far an official-layout ``reference`` (``forward(image)`` -> dict, scored by
    ``loss``) is from ``model``: max |Δ AU probability| and max |Δ initial attention| in eval
    mode, then both training-mode losses. Leaves both in training mode."""
    model.eval()
    reference.eval()
    with torch.no_grad():
        ours, theirs = model(batch), reference(batch["image"])
    prob_gap = (ours.au_prob - theirs["scores"][:, 1].exp()).abs().max().item()
    map_gap = (ours.extras["initial_attention"] - theirs["initial"]).abs().max().item()
    model.train()
    reference.train()
    with torch.no_grad():
        our_loss = model.loss(model(batch), batch, weight)[0].item()
        their_loss = loss(reference(batch["image"]), batch, weight).item()
    return prob_gap, map_gap, our_loss, their_loss


def official_step(
    reference: nn.Module, loss: Loss, batch: dict[str, torch.Tensor], weight: torch.Tensor
) -> Callable[[], None]:
    """One training step of an official-layout ``reference`` as ``train_JAAv1.py``'s loop runs
    it per batch: zero the gradients, forward, ``loss``, backward, SGD step."""
    optimizer = sgd(reference.optimizer_groups())

    def step() -> None:
        optimizer.zero_grad()
        loss(reference(batch["image"]), batch, weight).backward()
        optimizer.step()

    return step


def reference_steps(
    model: JAANet, modules: dict[str, ModuleType] | None, batch: dict, weight: torch.Tensor
) -> dict[str, Callable[[], None]]:
    """The official structure's step and, with the official ``modules``, the official code's,
    each loaded with ``model``'s weights; prints their parameter counts and differences."""
    references: dict[str, tuple[nn.Module, Loss]] = {STRUCTURE: (OfficialJAANet(), official_loss)}
    if modules is not None:
        code = OfficialCode(modules)
        references["official code"] = (code, code.loss)
    steps = {}
    for name, (reference, loss) in references.items():
        load_official(reference.layout(), model)
        prob_gap, map_gap, our_loss, their_loss = same_function(
            model, reference, loss, batch, weight
        )
        print(
            f"- parameters: aufacs {count_parameters(model):,}, "
            f"{name} {count_parameters(reference):,}"
        )
        print(
            f"- same function as {name}: max |Δ AU probability| (eval) {prob_gap:.1e}, max "
            f"|Δ initial attention| {map_gap:.1e}; training loss {our_loss:.5f} vs "
            f"{their_loss:.5f}"
        )
        steps[name] = official_step(reference, loss, batch, weight)
    return steps


def aufacs_step(
    model: JAANet, batch: dict, weight: torch.Tensor, amp: str
) -> tuple[str, Callable[[], None]]:
    """The name and the training step of aufacs with the engine's optimiser (the same SGD,
    fused) at precision ``amp``; under autocast, prints how far its AU probabilities are from
    float32's."""
    recipe = TrainConfig(
        model="jaa_net", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    optimizer = make_optimizer(model, recipe)
    precision = autocast(torch.device("cpu"), resolve_amp(amp, torch.device("cpu")))
    name = "aufacs" if amp == "off" else f"aufacs, {amp} autocast"
    if amp != "off":
        model.eval()
        with torch.no_grad():
            full = model(batch).au_prob
            with precision:
                mixed = model(batch).au_prob
        model.train()
        gap = (full - mixed).abs().max()
        print(f"- {name}: max |Δ AU probability| (eval) from float32 {gap:.1e}")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision:
            loss = model.loss(model(batch), batch, weight)[0]
        loss.backward()
        optimizer.step()

    return name, step


def parse_arguments() -> tuple[argparse.Namespace, dict[str, ModuleType] | None]:
    """The command line, and the official modules where ``--official-code`` names them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, threads=2, repeats=5)
    parser.add_argument("--branch-schedule", default="auto", help="aufacs branch_schedule")
    parser.add_argument(
        "--amp",
        choices=["off", "bf16"],
        default="off",
        help="aufacs's precision: off (float32, the same function) or bf16 autocast, as "
        "`aufacs train --amp bf16` runs it",
    )
    parser.add_argument(
        "--official-code",
        type=Path,
        metavar="DIR",
        help="a clone of ZhiwenShao/PyTorch-JAANet (network.py, util.py) to time as well",
    )
    args = parser.parse_args()
    if args.official_code is None:
        return args, None
    try:
        modules = import_official(args.official_code.expanduser())
    except AufacsError as error:
        parser.error(str(error))
    # util.py's losses pass size_average / reduce, which torch 2 accepts with a warning.
    warnings.filterwarnings("ignore", "size_average and reduce args will be deprecated")
    return args, modules


def main() -> None:
    args, modules = parse_arguments()
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))
    torch.manual_seed(0)
    model = build_jaa_net(12, dice="batch", branch_schedule=args.branch_schedule)
    batch = training_batch(model, args.batch)
    place_landmark_head(model, batch["landmarks"][0])
    weight = torch.tensor(OFFICIAL_AU_WEIGHTS)
    calls = reference_steps(model, modules, batch, weight)
    others = [name for name in calls if name != STRUCTURE]
    ours, our_step = aufacs_step(model, batch, weight, args.amp)
    calls[ours] = our_step
    times = interleaved(calls, args.warmup, args.repeats)
    print(
        f"\nJAA-Net v1 training step, batch {args.batch}, crop 176, branch_schedule "
        f"{args.branch_schedule!r}, aufacs amp {args.amp!r}; warm-up {args.warmup}, "
        f"{args.repeats} timed rounds\n"
    )
    print(markdown_table(STEP_HEADER, step_table(times, STRUCTURE, ours, *others)))
    print(rounds_line(times))
    print("\nDistance to the limit (one more step each, counted and profiled):\n")
    print(limit_table(calls, times))
    print(load_line())


if __name__ == "__main__":
    main()
