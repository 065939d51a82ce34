"""JAA-Net training step on CPU: aufacs against the official code's structure, interleaved.

    python benchmarks/bench_jaa_step.py                    # batch 8, crop 176, 2 threads
    python benchmarks/bench_jaa_step.py --repeats 9 --branch-schedule grouped
    python benchmarks/bench_jaa_step.py --official-code ~/src/PyTorch-JAANet   # + the real code

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

``--official-code DIR`` adds the official code itself, from a clone of PyTorch-JAANet that the
user provides (its ``network.py`` and ``util.py`` are imported from DIR at run time; none of
it ships with aufacs): the six modules built as ``train_JAAv1.py`` builds them, loaded with
the same weights, and its step as that script's loop runs it per batch, with ``util.py``'s
losses. It is timed as a third call, "official code", and checked like the reference.

aufacs's step is the engine's: ``aufacs.engine.train.make_optimizer`` gives the same SGD, as one
fused kernel from torch 2.4 on. ``--amp bf16`` runs its forward pass and losses under bf16
autocast, as ``aufacs train --amp bf16`` does; the script then prints how far its AU
probabilities are from float32's, since the function is no longer bit-for-bit the same.

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
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.analysis.speed import count_parameters, device_name, example_batch
from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.align import biocular
from aufacs.engine.train import TrainConfig, autocast, make_optimizer, resolve_amp
from aufacs.models.attention import JAA_AU_CENTRES
from aufacs.models.jaa_net import JAANet, RegionLayer, build_jaa_net

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

#: ``train_JAAv1.py`` defaults: λ_au, λ_land, λ_refine and grad_enhance.
LAMBDA_AU, LAMBDA_LAND, LAMBDA_REFINE, GRAD_ENHANCE = 1.0, 0.5, 2e-4, 2.0


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
    times: dict[str, dict[str, list[float]]], reference: str, candidate: str, *others: str
) -> list[list[str]]:
    """Rows under :data:`STEP_HEADER` for every call, then the speed-up of ``candidate`` over
    ``reference`` (and over each of ``others``, the row then naming it): the median of
    per-round ratios (wall, CPU) and the ratio of the minima (the least disturbed estimate
    where other processes only ever add time)."""
    rows = [
        [
            name,
            f"{statistics.median(t['wall']):.3f}",
            f"{statistics.median(t['cpu']):.3f}",
            f"{min(t['wall']):.3f}",
        ]
        for name, t in times.items()
    ]
    cand = times[candidate]
    for name in (reference, *others):
        ref = times[name]
        over = f" over {name}" if others else ""
        rows.append(
            [
                f"speed-up{over}: median of per-round ratios; ratio of minima",
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


# --- where the official layouts keep their weights --------------------------------------------


@dataclass(frozen=True)
class OfficialLayout:
    """The modules of an official-layout JAA-Net v1 that take aufacs's weights.

    ``region_layers``: per region layer, its first conv, its closing BatchNorm and, per
    partitioned branch (8 x 8, 4 x 4, 2 x 2 cells), the per-cell BatchNorms and convs, cells in
    row-major order. The stacks are conv / BN / ReLU / pooling sequences in aufacs's layer
    order; ``refine`` and ``local`` hold one per AU. The heads are two Linear layers each."""

    region_layers: Sequence[tuple[nn.Module, nn.Module, Sequence[tuple[nn.ModuleList, ...]]]]
    align_feat: nn.Sequential
    align_output: nn.Sequential
    refine: Sequence[nn.Sequential]
    local: Sequence[nn.Sequential]
    global_au_feat: nn.Sequential
    au_net: nn.Sequential


def load_official(layout: OfficialLayout, model: JAANet) -> None:
    """Copy ``model``'s parameters and statistics into the official-layout modules."""
    for k, (conv, norm, branches) in zip((0, 2), layout.region_layers, strict=True):
        ours = model.region_learning[k]
        copy_slice(ours.conv, 0, 1, conv)
        copy_slice(ours.norm, 0, 1, norm)
        for branch, (norms, convs) in zip(ours.branches, branches, strict=True):
            cells = branch.grid**2
            for cell, (cell_norm, cell_conv) in enumerate(zip(norms, convs, strict=True)):
                copy_slice(branch.norm, cell, cells, cell_norm)
                copy_slice(branch.conv, cell, cells, cell_conv)
    pairs = [
        (model.align_net.features, [layout.align_feat]),
        (model.global_au_feat, [layout.global_au_feat]),
        (model.attention_refine, layout.refine),
        (model.local_au_net.branches, layout.local),
    ]
    for stack, officials in pairs:
        for k, official in enumerate(officials):
            for layer, official_layer in zip(stack, official, strict=True):
                copy_slice(layer, k, len(officials), official_layer)
    layout.align_output.load_state_dict(model.align_net.head.state_dict())
    layout.au_net.load_state_dict(model.au_net.state_dict())


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
        return official_groups(modules, self.refine)

    def layout(self) -> OfficialLayout:
        """Where this reference keeps the weights aufacs's model has."""
        return OfficialLayout(
            region_layers=[
                (layer.conv, layer.norm, [(b.norms, b.convs) for b in layer.branches])
                for layer in self.region_learning[::2]
            ],
            align_feat=self.align_feat,
            align_output=self.align_output,
            refine=self.refine,
            local=self.local_branches,
            global_au_feat=self.global_au_feat,
            au_net=self.au_net,
        )


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
    return (
        LAMBDA_AU * au_loss
        + LAMBDA_LAND * torch.cat(land).mean()
        + (LAMBDA_REFINE / GRAD_ENHANCE) * torch.cat(refine).sum()
    )


# --- the official code itself (a user's clone, imported at run time) ---------------------------

#: What the harness uses from each official file.
OFFICIAL_NAMES = {
    "network": ("HMRegionLearning", "AlignNet", "LocalAttentionRefine", "LocalAUNetv1",
                "HLFeatExtractor", "AUNet"),
    "util": ("au_softmax_loss", "au_dice_loss", "landmark_loss", "attention_refine_loss"),
}  # fmt: skip


def import_official(folder: Path) -> dict[str, ModuleType]:
    """Import ``network.py`` and ``util.py`` from a PyTorch-JAANet clone at ``folder``, under
    private module names (nothing is added to ``sys.path``)."""
    modules = {}
    for name, needed in OFFICIAL_NAMES.items():
        path = folder / f"{name}.py"
        if not path.is_file():
            raise AufacsError(
                f"--official-code {folder}: no {name}.py there; expected a clone of "
                "ZhiwenShao/PyTorch-JAANet holding network.py and util.py"
            )
        spec = importlib.util.spec_from_file_location(f"_official_jaanet_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        missing = [n for n in needed if not hasattr(module, n)]
        if missing:
            raise AufacsError(
                f"--official-code {path} lacks {', '.join(missing)}; expected the file of "
                "ZhiwenShao/PyTorch-JAANet"
            )
        modules[name] = module
    return modules


class OfficialCode(nn.Module):
    """The official JAA-Net v1 as ``train_JAAv1.py`` builds it with its defaults (crop 176,
    map size 44, 12 AUs, 49 landmarks, unit_dim 8, ``LocalAUNetv1``, AUNet input 12000): the
    six official modules under their official names, run and scored by the official code."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        super().__init__()
        network, unit = modules["network"], 8
        self.util = modules["util"]
        self.region_learning = network.HMRegionLearning(input_dim=3, unit_dim=unit)
        self.align_net = network.AlignNet(
            crop_size=176, map_size=44, au_num=12, land_num=49, input_dim=unit * 8
        )
        self.local_attention_refine = network.LocalAttentionRefine(au_num=12, unit_dim=unit)
        self.local_au_net = network.LocalAUNetv1(au_num=12, input_dim=unit * 8, unit_dim=unit)
        self.global_au_feat = network.HLFeatExtractor(input_dim=unit * 8, unit_dim=unit)
        self.au_net = network.AUNet(au_num=12, input_dim=12000, unit_dim=unit)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official forward of a training batch: (B, 3, 176, 176) -> ``scores`` (B, 2, 12)
        log-softmax, ``landmarks`` (B, 98), ``initial`` (B, 12, 52, 52) CPU maps, ``refined``
        (B, 12, 44, 44)."""
        region_feat = self.region_learning(image)
        align_feat, align_output, aus_map = self.align_net(region_feat)
        output_aus_map = self.local_attention_refine(aus_map.detach())
        local_feat = self.local_au_net(region_feat, output_aus_map)
        global_feat = self.global_au_feat(region_feat)
        scores = self.au_net(torch.cat((align_feat, global_feat, local_feat), 1))
        return {
            "scores": scores,
            "landmarks": align_output,
            "initial": aus_map,
            "refined": output_aus_map,
        }

    def loss(self, out: dict[str, torch.Tensor], batch: dict, weight: torch.Tensor) -> torch.Tensor:
        """The total loss from ``util.py``'s four functions with ``train_JAAv1.py``'s lambdas."""
        util, au = self.util, batch["au"].long()
        au_loss = util.au_softmax_loss(out["scores"], au, weight=weight) + util.au_dice_loss(
            out["scores"], au, weight=weight
        )
        land = util.landmark_loss(
            out["landmarks"], batch["landmarks"].flatten(1), batch["biocular"]
        )
        resized = F.interpolate(out["initial"], size=out["refined"].size(2))
        refine = util.attention_refine_loss(out["refined"], resized.detach())
        return LAMBDA_AU * au_loss + LAMBDA_LAND * land + (LAMBDA_REFINE / GRAD_ENHANCE) * refine

    def optimizer_groups(self) -> list[dict]:
        """The official six groups in the official order; the refinement's ``lr`` x 2."""
        modules = [
            self.region_learning,
            self.align_net,
            self.local_attention_refine,
            self.local_au_net,
            self.global_au_feat,
            self.au_net,
        ]
        return official_groups(modules, self.local_attention_refine)

    def layout(self) -> OfficialLayout:
        """Where the official modules keep the weights aufacs's model has."""
        branches = ("local_conv_branch1", "local_conv_branch2", "local_conv_branch3")
        return OfficialLayout(
            region_layers=[
                (
                    layer.conv,
                    layer.bn,
                    [(getattr(layer, b).bns, getattr(layer, b).convs) for b in branches],
                )
                for layer in self.region_learning.multiscale_feat[::2]
            ],
            align_feat=self.align_net.align_feat.feat_extract,
            align_output=self.align_net.align_output,
            refine=self.local_attention_refine.local_aus_attention,
            local=[b.feat_extract for b in self.local_au_net.local_aus_branch],
            global_au_feat=self.global_au_feat.feat_extract,
            au_net=self.au_net.au_output,
        )


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


def official_groups(modules: Sequence[nn.Module], refine: nn.Module) -> list[dict]:
    """One optimiser group per official module, in order; ``refine`` (the attention
    refinement) at ``GRAD_ENHANCE`` times the learning rate."""
    return [
        {
            "params": [p for p in m.parameters() if p.requires_grad],
            "lr_mult": GRAD_ENHANCE if m is refine else 1.0,
        }
        for m in modules
    ]


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
    model: JAANet,
    reference: nn.Module,
    loss: Callable[[dict, dict, torch.Tensor], torch.Tensor],
    batch: dict[str, torch.Tensor],
    weight: torch.Tensor,
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
    reference: nn.Module,
    loss: Callable[[dict, dict, torch.Tensor], torch.Tensor],
    batch: dict[str, torch.Tensor],
    weight: torch.Tensor,
) -> Callable[[], None]:
    """One training step of an official-layout ``reference`` as ``train_JAAv1.py``'s loop runs
    it per batch: zero the gradients, forward, ``loss``, backward, SGD step."""
    optimizer = sgd(reference.optimizer_groups())

    def step() -> None:
        optimizer.zero_grad()
        loss(reference(batch["image"]), batch, weight).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, threads=2, repeats=5)
    parser.add_argument("--branch-schedule", default="auto", help="aufacs branch_schedule")
    parser.add_argument(
        "--amp", choices=["off", "bf16"], default="off",
        help="aufacs's precision: off (float32, the same function) or bf16 autocast, as "
        "`aufacs train --amp bf16` runs it",
    )  # fmt: skip
    parser.add_argument(
        "--official-code",
        type=Path,
        metavar="DIR",
        help="a clone of ZhiwenShao/PyTorch-JAANet (network.py, util.py) to time as well",
    )
    args = parser.parse_args()
    modules = None
    if args.official_code is not None:
        try:
            modules = import_official(args.official_code.expanduser())
        except AufacsError as error:
            parser.error(str(error))
        # util.py's losses pass size_average / reduce, which torch 2 accepts with a warning.
        warnings.filterwarnings("ignore", "size_average and reduce args will be deprecated")
    torch.set_num_threads(args.threads)
    print(machine_description(args.threads))

    torch.manual_seed(0)
    model = build_jaa_net(12, dice="batch", branch_schedule=args.branch_schedule)
    batch = training_batch(model, args.batch)
    place_landmark_head(model, batch["landmarks"][0])
    weight = torch.tensor(OFFICIAL_AU_WEIGHTS)
    references = {"official structure": (OfficialJAANet(), official_loss)}
    if modules is not None:
        code = OfficialCode(modules)
        references["official code"] = (code, code.loss)

    calls = {}
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
        calls[name] = official_step(reference, loss, batch, weight)

    recipe = TrainConfig(model="jaa_net", optimizer="sgd", lr=0.01, momentum=0.9,
                         weight_decay=5e-4, nesterov=True)  # fmt: skip
    our_opt = make_optimizer(model, recipe)  # the engine's optimiser: the same SGD, fused
    precision = autocast(torch.device("cpu"), resolve_amp(args.amp, torch.device("cpu")))
    ours = "aufacs" if args.amp == "off" else f"aufacs, {args.amp} autocast"
    if args.amp != "off":
        model.eval()
        with torch.no_grad():
            full = model(batch).au_prob
            with precision:
                mixed = model(batch).au_prob
        model.train()
        gap = (full - mixed).abs().max()
        print(f"- {ours}: max |Δ AU probability| (eval) from float32 {gap:.1e}")

    def our_step() -> None:
        our_opt.zero_grad(set_to_none=True)
        with precision:
            loss = model.loss(model(batch), batch, weight)[0]
        loss.backward()
        our_opt.step()

    calls[ours] = our_step
    times = interleaved(calls, args.warmup, args.repeats)
    print(
        f"\nJAA-Net v1 training step, batch {args.batch}, crop 176, branch_schedule "
        f"{args.branch_schedule!r}, aufacs amp {args.amp!r}; warm-up {args.warmup}, "
        f"{args.repeats} timed rounds\n"
    )
    others = [name for name in references if name != "official structure"]
    print(markdown_table(STEP_HEADER, step_table(times, "official structure", ours, *others)))
    print(rounds_line(times))
    print(load_line())


if __name__ == "__main__":
    main()
