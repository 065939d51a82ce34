"""JAA-Net training step on CPU: aufacs against the official code's structure, interleaved.

    python benchmarks/bench_jaa_step.py                    # batch 8, crop 176, 2 threads
    python benchmarks/bench_jaa_step.py --repeats 9 --branch-schedule grouped

A step is what the official ``train_JAAv1.py`` does per batch: forward, the four losses
(weighted softmax, Dice, landmark, attention refinement), backward, and an SGD step
(Nesterov, momentum 0.9, weight decay 5e-4, the refinement's learning rate doubled).

The reference is the official PyTorch JAA-Net v1 (ZhiwenShao/PyTorch-JAANet, ``network.py``,
``util.py``) written out with the same structure: one BatchNorm and one convolution module per
grid cell, stitched together cell by cell; 12 separate refinement branches and 12 separate
local feature extractors; the initial attention maps drawn on the CPU by a Python double loop
per sample and AU that writes one tensor element at a time; and the losses as per-AU and
per-sample Python loops. It is loaded with the aufacs model's weights, and aufacs uses the
official PyTorch Dice variant (``dice="batch"``), so both compute the same function; the script
prints both parameter counts and how far outputs and losses differ before timing.

The two steps alternate in one process (the order flips every round), so load from other
processes hits both alike. The figures are medians of wall time and of process CPU time (all
threads); the speed-up is the median of the per-round ratios and, less disturbed by bursts of
load, the ratio of the minimum wall times. Every round's wall times are printed too.

The other benchmarks (``bench_megraph_step.py``, ``bench_data_loading.py``) reuse this
script's machine description and interleaved timing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.aus import BP4D_AUS
from aufacs.data.align import biocular
from aufacs.models.attention import JAA_AU_CENTRES
from aufacs.models.jaa_net import JAANet, RegionLayer, build_jaa_net
from aufacs.speed import count_parameters, device_name, example_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_jaa_net import (  # noqa: E402  (the naive official-layout pieces of the tests)
    PerCellReference,
    copy_slice,
    official_feature_extractor,
    official_refine_branch,
)

#: BP4D AU weights of the official release (Caffe ``BP4D_combine_1_2_weight.txt``).
OFFICIAL_AU_WEIGHTS = (1.3451, 1.6916, 1.2479, 0.5613, 0.43292, 0.43562,
                       0.457, 0.54098, 1.4068, 0.7221, 1.4918, 1.667)  # fmt: skip


# --- shared by the benchmarks ------------------------------------------------------------------


def machine_description(threads: int) -> str:
    """Markdown lines naming the machine, the software, the date and the current load."""
    load = os.getloadavg()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"- CPU: {device_name('cpu')}, {os.cpu_count()} logical CPUs; torch threads: {threads}\n"
        f"- Python {platform.python_version()}, torch {torch.__version__}; {now}\n"
        f"- load average (1, 5, 15 min) before: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    )


def load_line() -> str:
    """The load average after a run, as a markdown line."""
    load = os.getloadavg()
    return f"- load average (1, 5, 15 min) after: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def timing_arguments(parser: argparse.ArgumentParser, threads: int, repeats: int) -> None:
    """Add ``--threads``, ``--batch`` (8), ``--warmup`` (1) and ``--repeats`` to ``parser``."""
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds (default 1)")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed rounds")


def interleaved(
    calls: Mapping[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Run every call once per round, ``warmup`` untimed rounds then ``repeats`` timed ones;
    the order of the calls reverses every round. Returns, per call name, ``wall`` and ``cpu``
    (process CPU time, all threads): ``repeats`` durations in seconds."""
    names = list(calls)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for round_ in range(warmup + repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            calls[name]()
            if round_ >= warmup:
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["cpu"].append(time.process_time() - cpu)
    return times


def median_ratio(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of ``slow / fast`` (durations of the same rounds)."""
    return statistics.median(s / f for s, f in zip(slow, fast, strict=True))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


#: Header of :func:`step_table`.
STEP_HEADER = ["", "median wall s", "median CPU s", "min wall s"]


def step_table(
    times: dict[str, dict[str, list[float]]], reference: str, candidate: str
) -> list[list[str]]:
    """Rows under :data:`STEP_HEADER` for both calls, then the speed-up of ``candidate`` over
    ``reference``: the median of per-round ratios (wall, CPU) and the ratio of the minima
    (the least disturbed estimate where other processes only ever add time)."""
    rows = [
        [
            name,
            f"{statistics.median(t['wall']):.3f}",
            f"{statistics.median(t['cpu']):.3f}",
            f"{min(t['wall']):.3f}",
        ]
        for name, t in times.items()
    ]
    ref, cand = times[reference], times[candidate]
    rows.append(
        [
            "speed-up: median of per-round ratios; ratio of minima",
            f"{median_ratio(ref['wall'], cand['wall']):.2f}x",
            f"{median_ratio(ref['cpu'], cand['cpu']):.2f}x",
            f"{min(ref['wall']) / min(cand['wall']):.2f}x",
        ]
    )
    return rows


def rounds_line(times: dict[str, dict[str, list[float]]]) -> str:
    """A markdown line with every round's wall time per call, seconds."""
    parts = [name + " " + ", ".join(f"{w:.2f}" for w in run["wall"]) for name, run in times.items()]
    return "- wall s per round: " + "; ".join(parts)


# --- the official structure --------------------------------------------------------------------


class OfficialLocalConv(PerCellReference):
    """Official ``LocalConv2dReLU``: per grid cell its own BatchNorm -> ReLU -> 3 x 3 conv
    (the tests' per-cell reference), the outputs concatenated as the official code does: one
    cell at a time along the row, then one row at a time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for i, row in enumerate(torch.split(x, x.size(2) // self.grid, 2)):
            stitched = None
            for j, cell in enumerate(torch.split(row, row.size(3) // self.grid, 3)):
                k = i * self.grid + j
                y = self.convs[k](F.relu(self.norms[k](cell.contiguous())))
                stitched = y if stitched is None else torch.cat((stitched, y), 3)
            out = stitched if out is None else torch.cat((out, stitched), 2)
        return out


class OfficialRegionLayer(RegionLayer):
    """Official ``HierarchicalMultiScaleRegionLayer``: aufacs's region layer (same forward)
    with each partitioned branch replaced by per-cell modules."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(in_channels, channels)
        self.branches = nn.ModuleList(
            OfficialLocalConv(
                b.grid, b.norm.num_features // b.grid**2, b.conv.out_channels // b.grid**2
            )
            for b in self.branches
        )


def official_generate_map(
    grid: torch.Tensor, crop_size: int, ratio: float, coeff: float, centres: list[tuple]
) -> None:
    """Official ``generate_map``: draw two centres (x, y in crop pixels) into the (M, M)
    tensor ``grid`` in place, one element at a time."""
    size = grid.shape[0]
    scale = float(size) / crop_size
    half = round((size - 1) / 2.0 * ratio)
    for x, y in centres:
        cx, cy = round(x * scale), round(y * scale)
        top, bottom = min(max(cy - half, 0), size - 1), min(max(cy + half, 0), size - 1)
        left, right = min(max(cx - half, 0), size - 1), min(max(cx + half, 0), size - 1)
        for h in range(int(top), int(bottom) + 1):
            for w in range(int(left), int(right) + 1):
                value = 1 - (abs(h - cy) + abs(w - cx)) * coeff / (size * ratio)
                grid[h, w] = max(value, grid[h, w])


def official_initial_maps(landmarks: torch.Tensor, aus: tuple[int, ...], map_size: int):
    """Official ``AlignNet.forward`` map drawing: (B, 98) interleaved predicted landmarks ->
    (B, N, M, M) CPU maps, sample by sample via numpy; shared regions are copied."""
    maps = torch.zeros(landmarks.size(0), len(aus), map_size, map_size)
    for i in range(landmarks.size(0)):
        points = landmarks[i].data.cpu().numpy()
        xs, ys = points[0::2], points[1::2]
        ruler = abs(xs[22] - xs[25])
        drawn: dict = {}
        for k, au in enumerate(aus):
            region = JAA_AU_CENTRES[au]
            if region in drawn:
                maps[i, k] = maps[i, drawn[region]]
                continue
            shift = float(region.offset) * ruler
            centres = [(xs[p], ys[p] + shift) for p in (region.first, region.second)]
            official_generate_map(maps[i, k], 176, 0.14, 0.56, centres)
            drawn[region] = k
    return maps


class OfficialJAANet(nn.Module):
    """The six official modules of JAA-Net v1 at the official sizes (crop 176, unit 8)."""

    def __init__(self, aus: tuple[int, ...] = BP4D_AUS) -> None:
        super().__init__()
        self.aus = aus
        n = len(aus)
        self.region_learning = nn.Sequential(
            OfficialRegionLayer(3, 32),
            nn.MaxPool2d(2),
            OfficialRegionLayer(32, 64),
            nn.MaxPool2d(2),
        )
        self.align_feat = official_feature_extractor(64, 8)
        self.align_output = nn.Sequential(nn.Linear(4000, 512), nn.Linear(512, 98))
        self.refine = nn.ModuleList(official_refine_branch(8) for _ in range(n))
        self.local_branches = nn.ModuleList(official_feature_extractor(64, 8) for _ in range(n))
        self.global_au_feat = official_feature_extractor(64, 8)
        self.au_net = nn.Sequential(nn.Linear(12000, 512), nn.Linear(512, 2 * n))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        region = self.region_learning(image)
        align_feat = self.align_feat(region)
        landmarks = self.align_output(align_feat.view(align_feat.size(0), -1))
        initial = official_initial_maps(landmarks, self.aus, 52)
        refined = torch.cat(
            [branch(initial.detach()[:, i : i + 1]) for i, branch in enumerate(self.refine)], 1
        )
        local = None
        for i, branch in enumerate(self.local_branches):
            feat = branch(region * refined[:, i : i + 1])
            local = feat if local is None else local + feat
        local = local / float(len(self.local_branches))
        features = torch.cat((align_feat, self.global_au_feat(region), local), 1)
        scores = self.au_net(features.view(features.size(0), -1))
        scores = F.log_softmax(scores.view(scores.size(0), 2, -1), dim=1)
        return {"scores": scores, "landmarks": landmarks, "initial": initial, "refined": refined}

    def optimizer_groups(self) -> list[dict]:
        """The official six groups; the refinement's learning rate doubled (grad_enhance)."""
        modules = [
            self.region_learning,
            nn.ModuleList([self.align_feat, self.align_output]),
            self.refine,
            self.local_branches,
            self.global_au_feat,
            self.au_net,
        ]
        return [
            {"params": m.parameters(), "lr_mult": 2.0 if m is self.refine else 1.0} for m in modules
        ]


def official_loss(out: dict[str, torch.Tensor], batch: dict, weight: torch.Tensor) -> torch.Tensor:
    """The official total loss, with ``util.py``'s per-AU and per-sample loops."""
    scores, au = out["scores"], batch["au"].long()
    nll, bce = nn.NLLLoss(), nn.BCELoss()
    softmax, dice = [], []
    for i in range(scores.size(2)):
        softmax.append((nll(scores[:, :, i], au[:, i]) * weight[i]).unsqueeze(0))
        p, t = scores[:, 1, i].exp(), au[:, i].float()
        ratio = (2.0 * (p * t).sum() + 1) / ((p * p).sum() + (t * t).sum() + 1)
        dice.append(((1 - ratio / p.size(0)) * weight[i]).unsqueeze(0))
    land, target = [], batch["landmarks"].flatten(1)
    for i in range(target.size(0)):
        squared = torch.sum((out["landmarks"][i] - target[i]) ** 2)
        land.append((squared / (2.0 * batch["biocular"][i])).unsqueeze(0))
    refined = out["refined"].flatten(2)
    resized = F.interpolate(out["initial"], size=out["refined"].size(2)).detach().flatten(2)
    refine = [bce(refined[:, i], resized[:, i]).unsqueeze(0) for i in range(refined.size(1))]
    au_loss = torch.cat(softmax).mean() + torch.cat(dice).mean()
    return au_loss + 0.5 * torch.cat(land).mean() + (2e-4 / 2.0) * torch.cat(refine).sum()


def load_official(reference: OfficialJAANet, model: JAANet) -> None:
    """Copy ``model``'s parameters and statistics into the official-layout ``reference``."""
    for k in (0, 2):  # the two region layers
        ours, theirs = model.region_learning[k], reference.region_learning[k]
        copy_slice(ours.conv, 0, 1, theirs.conv)
        copy_slice(ours.norm, 0, 1, theirs.norm)
        for branch, official in zip(ours.branches, theirs.branches, strict=True):
            cells = branch.grid**2
            for cell in range(cells):
                copy_slice(branch.norm, cell, cells, official.norms[cell])
                copy_slice(branch.conv, cell, cells, official.convs[cell])
    pairs = [
        (model.align_net.features, [reference.align_feat]),
        (model.global_au_feat, [reference.global_au_feat]),
        (model.attention_refine, reference.refine),
        (model.local_au_net.branches, reference.local_branches),
    ]
    for stack, officials in pairs:
        for k, official in enumerate(officials):
            for layer, official_layer in zip(stack, official, strict=True):
                copy_slice(layer, k, len(officials), official_layer)
    reference.align_output.load_state_dict(model.align_net.head.state_dict())
    reference.au_net.load_state_dict(model.au_net.state_dict())


# --- the benchmark -----------------------------------------------------------------------------


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, threads=2, repeats=5)
    parser.add_argument("--branch-schedule", default="auto", help="aufacs branch_schedule")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))

    torch.manual_seed(0)
    model = build_jaa_net(12, dice="batch", branch_schedule=args.branch_schedule)
    batch = training_batch(model, args.batch)
    place_landmark_head(model, batch["landmarks"][0])
    reference = OfficialJAANet()
    load_official(reference, model)
    weight = torch.tensor(OFFICIAL_AU_WEIGHTS)

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
        their_loss = official_loss(reference(batch["image"]), batch, weight).item()
    print(
        f"- parameters: aufacs {count_parameters(model):,}, "
        f"official structure {count_parameters(reference):,}"
    )
    print(
        f"- same function: max |Δ AU probability| (eval) {prob_gap:.1e}, max |Δ initial "
        f"attention| {map_gap:.1e}; training loss {our_loss:.5f} vs {their_loss:.5f}"
    )

    our_opt = sgd(model.optimizer_param_groups())
    their_opt = sgd(reference.optimizer_groups())

    def our_step() -> None:
        our_opt.zero_grad(set_to_none=True)
        model.loss(model(batch), batch, weight)[0].backward()
        our_opt.step()

    def their_step() -> None:
        their_opt.zero_grad(set_to_none=True)
        official_loss(reference(batch["image"]), batch, weight).backward()
        their_opt.step()

    calls = {"official structure": their_step, "aufacs": our_step}
    times = interleaved(calls, args.warmup, args.repeats)
    print(
        f"\nJAA-Net v1 training step, batch {args.batch}, crop 176, branch_schedule "
        f"{args.branch_schedule!r}; warm-up {args.warmup}, {args.repeats} timed rounds\n"
    )
    print(markdown_table(STEP_HEADER, step_table(times, *calls)))
    print(rounds_line(times))
    print(load_line())


if __name__ == "__main__":
    main()
