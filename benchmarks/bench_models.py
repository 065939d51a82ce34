"""CPU time of each registered model at its official input size: forward and training step.

    python -m benchmarks.bench_models                          # every model, 2 threads
    python -m benchmarks.bench_models --model jaa_net --threads 2 --train-step
    python -m benchmarks.bench_models --model jaa_net --option branch_schedule=grouped
    python -m benchmarks.bench_models --model jaa_net --warmup 0 --repeats 1   # smallest run

Run from the repository root. Each model is timed for a forward pass at batch 1 and, with
``--train-step``, a training step (forward, the model's own loss, backward, SGD). Models get
random weights (``pretrained=None`` where the builder takes it): speed does not depend on
them. Inputs come from :func:`aufacs.analysis.speed.example_batch` (random image, one
synthetic face's landmarks); the training step adds random AU labels, the landmarks'
squared inter-ocular distance and unit AU weights, and uses SGD (momentum 0.9, Nesterov,
weight decay 5e-4) over the model's ``optimizer_param_groups`` where it has them.

Each figure is the median of ``--repeats`` runs after ``--warmup`` runs: wall time, and the
process CPU time (all threads), which other processes on a shared machine disturb less.
The 1-minute load average before and after is printed beside them.
"""

from __future__ import annotations

import argparse
import ast
import functools
import os
from collections.abc import Callable

import torch

from aufacs.analysis.speed import example_batch
from aufacs.data.align import biocular
from aufacs.models import available_models, build_model, model_options
from aufacs.models.base import AUModel
from benchmarks.timing import time_call


def parse_option(text: str) -> tuple[str, object]:
    """``"key=value"`` -> (key, value), the value read as a Python literal when it is one."""
    key, _, value = text.partition("=")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build(name: str, options: dict[str, object]) -> AUModel:
    """The model ``name`` with random weights and the given builder options."""
    if "pretrained" in model_options(name):
        options = {"pretrained": None, **options}
    return build_model(name, **options)


def training_batch(model: AUModel, batch_size: int, num_aus: int) -> dict[str, torch.Tensor]:
    """:func:`example_batch` plus random AU labels and the squared inter-ocular distance."""
    batch = example_batch(model, batch_size)
    generator = torch.Generator().manual_seed(0)
    batch["au"] = torch.randint(0, 2, (batch_size, num_aus), generator=generator).float()
    distance = biocular(batch["landmarks"].numpy())
    batch["biocular"] = torch.as_tensor(distance, dtype=torch.float32)
    return batch


def training_step(model: AUModel, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    """One SGD step of ``model`` on ``batch`` (the official JAA-Net optimiser settings)."""
    lr = 0.01
    if hasattr(model, "optimizer_param_groups"):
        groups = [
            {"params": g["params"], "lr": lr * g["lr_mult"]} for g in model.optimizer_param_groups()
        ]
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    num_aus = batch["au"].shape[1]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        total, _ = model.loss(model(batch), batch, torch.ones(num_aus))
        total.backward()
        optimizer.step()

    model.train()
    return step


def time_model(name: str, options: dict[str, object], args: argparse.Namespace) -> None:
    """Print the forward time of model ``name`` at batch 1 and, with ``--train-step``, its
    training step time, each with the load before and after."""
    torch.manual_seed(0)
    model = build(name, options)
    size = model.input_spec.crop_size
    load = os.getloadavg()[0]
    batch = example_batch(model, 1)
    model.eval()
    with torch.inference_mode():
        wall, cpu = time_call(functools.partial(model, batch), args.warmup, args.repeats)
        num_aus = model(batch).au_prob.shape[1]
    print(
        f"{name}: forward batch 1 at {size} px: wall {wall:.0f} ms, CPU {cpu:.0f} ms "
        f"(load {load:.1f} -> {os.getloadavg()[0]:.1f})"
    )
    if not args.train_step:
        return
    step = training_step(model, training_batch(model, args.train_batch, num_aus))
    load = os.getloadavg()[0]
    wall, cpu = time_call(step, args.warmup, args.repeats)
    print(
        f"{name}: training step batch {args.train_batch} at {size} px: wall {wall:.0f} ms, "
        f"CPU {cpu:.0f} ms (load {load:.1f} -> {os.getloadavg()[0]:.1f})"
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        nargs="+",
        choices=available_models(),
        default=None,
        help="models to time (default: every registered model)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument(
        "--train-step", action="store_true", help="also time a training step at --train-batch"
    )
    parser.add_argument("--train-batch", type=int, default=8, help="training batch (default 8)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option for every model timed, e.g. branch_schedule=grouped (repeatable)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    options = dict(parse_option(text) for text in args.option)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} logical CPUs; "
        f"warm-up {args.warmup}, median of {args.repeats}; options {options}"
    )
    for name in args.model or available_models():
        time_model(name, options, args)


if __name__ == "__main__":
    main()
