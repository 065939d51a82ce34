"""Smoke runs of every benchmark script at its smallest size: each runs and prints its figures.

Each script runs as ``python -m benchmarks.<name>`` from the repository root, in its own
process with one thread, as a user runs it (most of each run's few seconds is importing torch
and aufacs). The figures of such tiny runs mean nothing; the checks are that the tables are
there, that the times in them are positive, and, where a benchmark first checks that aufacs and
its reference compute the same function, that they do. ``bench_jaa_step`` runs without
``--official-code`` (there is no clone of the official code here); ``bench_megraph_step`` runs
with it once more, on a stand-in clone written into the test's folder (:data:`FAKE_MEGRAPH`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

from benchmarks.probe_small_cnn import network_loss
from benchmarks.timing import step_flops

#: Seconds one smoke run may take (each takes about 5 to 10 s on a quiet 2-core machine).
TIMEOUT = 180

#: Per benchmark module, its arguments at the smallest size; ``{tmp}`` is a fresh folder.
RUNS = {
    "bench_jaa_step": "--threads 1 --batch 1 --warmup 0 --repeats 1",
    "bench_megraph_step": "--threads 1 --batch 1 --size 64 --warmup 0 --repeats 1",
    "bench_models": "--model me_graph_au --threads 1 --warmup 0 --repeats 1 --train-step "
    "--train-batch 1",
    "bench_speed": "--models jaa_net --threads 1 --batch-sizes 1 --warmup 0 --repeats 1 --no-onnx",
    "bench_data_loading": "--data {tmp} --subjects 3 --tasks 1 --frames 8 --workers 0 "
    "--threads 1 --batch 2 --batches 2 --warmup 0 --repeats 1",
    "bench_epoch": "--out {tmp} --smoke --frames 8 --steps 1 --threads 1",
    "train_small": "--data {tmp}/data --out {tmp}/runs --models jaa_net --epochs 1 --smoke "
    "--threads 1",
    "bench_predict": "--threads 1 --frames 3 --warmup 0 --repeats 1 --backends haar",
    "probe_small_cnn": "--data {tmp}/data --smoke --epochs 2 --threads 1",
}


#: A stand-in for a CVI-SZU/ME-GraphAU clone, file by file: what the harness imports, with the
#: official names and return conventions, the models borrowed from the official-structure
#: reference; its ``resnet50`` refuses to load ImageNet weights and its stage-2 forward has the
#: official CUDA-only branch (``start``, ``end`` unset on the CPU) that the harness fixes.
FAKE_MEGRAPH = {
    "model/resnet.py": """
        import torchvision

        class ResNet(torchvision.models.ResNet):
            def forward(self, x):  # (B, 3, H, W) -> (B, T, 2048) tokens, as the official one
                for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
                    x = getattr(self, name)(x)
                return self.layer4(x).flatten(2).transpose(1, 2)

        def resnet50(pretrained=True):
            if pretrained:
                raise RuntimeError("checkpoints/resnet50-19c8e357.pth: no such file")
            model = ResNet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3])
            model.out_channels, model.fc = model.fc.in_features, None
            return model
    """,
    "model/ANFL.py": """
        from benchmarks.official_me_graph_au import RefMEFARG
        from .resnet import resnet50

        class MEFARG(RefMEFARG):
            def __init__(self, num_classes=12, backbone="resnet50", neighbor_num=4, metric="dots"):
                super().__init__(resnet50(), num_classes, stage=1)
                self.head.gnn.k = neighbor_num

            def forward(self, x):
                return super().forward(x)[0]
    """,
    "model/MEFL.py": """
        from benchmarks.official_me_graph_au import RefMEFARG
        from .resnet import resnet50

        class MEFARG(RefMEFARG):
            def __init__(self, num_classes=12, backbone="resnet50"):
                super().__init__(resnet50(), num_classes, stage=2)
                self.start = self.end = None

            def forward(self, x):
                dev = x.get_device()
                if dev >= 0:
                    start, end = self.start, self.end
                del start, end
                return super().forward(x)
    """,
    "utils.py": """
        from torch import nn
        from aufacs.models.losses import weighted_asymmetric_loss

        class WeightedAsymmetricLoss(nn.Module):
            def __init__(self, eps=1e-8, disable_torch_grad=True, weight=None):
                super().__init__()
                self.weight = weight

            def forward(self, x, y):
                return weighted_asymmetric_loss(x, y, self.weight)
    """,
}


def write_fake_megraph(folder: Path) -> Path:
    """Write :data:`FAKE_MEGRAPH` under ``folder``; the clone's root."""
    for path, text in FAKE_MEGRAPH.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(textwrap.dedent(text))
    return folder


def run_benchmark(name: str, folder: Path, extra: str = "") -> str:
    """Run ``benchmarks.<name>`` with its smoke arguments (and ``extra``) on one thread; its
    standard output."""
    arguments = [argument.format(tmp=folder) for argument in f"{RUNS[name]} {extra}".split()]
    command = [sys.executable, "-m", f"benchmarks.{name}", *arguments]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


# --- reading the output -----------------------------------------------------------------------


def table_rows(output: str, first_header: str) -> dict[str, list[str]]:
    """The rows of the markdown table whose header starts with ``| first_header |``, by their
    first cell (cells stripped; the header and the rule left out)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def number(text: str) -> float:
    """The first number in ``text`` (``1,234.5x`` -> 1234.5)."""
    return float(re.search(r"-?[\d,]*\.?\d+(?:e[-+]?\d+)?", text).group().replace(",", ""))


def check_step_table(output: str, reference: str = "official structure") -> None:
    """The first step table has positive times for ``reference`` and aufacs, and a positive
    speed-up."""
    rows = table_rows(output, "")
    for name in (reference, "aufacs"):
        assert all(number(cell) > 0 for cell in rows[name]), rows[name]
    speed_up = rows["speed-up: median of per-round ratios; ratio of minima"]
    assert all(cell.endswith("x") and number(cell) > 0 for cell in speed_up)


def check_limit_table(output: str, reference: str) -> None:
    """The first distance-to-the-limit table: per step, positive GFLOP and GFLOP/s and a
    convolution share in [0, 100] %."""
    rows = table_rows(output.split("Distance to the limit")[1], "")
    for name in (reference, "aufacs"):
        gflop, rate, share = (number(cell) for cell in rows[name][:3])
        assert gflop > 0 and rate > 0 and 0 <= share <= 100, rows[name]


# --- what each benchmark prints ---------------------------------------------------------------


def check_jaa_step(output: str, folder: Path) -> None:
    """The same parameters, outputs and loss as the official structure; the step table."""
    assert "- parameters: aufacs 22,162,854, official structure 22,162,854" in output
    gaps = re.search(r"as official structure: .*?\(eval\) (\S+), .*?\| (\S+);", output)
    assert number(gaps.group(1)) < 1e-5 and number(gaps.group(2)) < 1e-5
    losses = re.search(r"training loss (\S+) vs (\S+)", output)
    assert abs(float(losses.group(1)) - float(losses.group(2))) < 1e-4
    assert "JAA-Net v1 training step, batch 1, crop 176" in output
    check_step_table(output)
    check_limit_table(output, "official structure")
    assert "load average (1, 5, 15 min) after" in output


def check_megraph_step(output: str, folder: Path, reference: str = "official structure") -> None:
    """Per stage, the same parameters, outputs and loss as ``reference``; its two tables."""
    for stage, parameters in ((1, "28,253,784"), (2, "31,666,132")):
        part = output.split(f"ME-GraphAU stage {stage},")[1]
        assert f"aufacs {parameters}, {reference} {parameters}" in part
        assert number(part.split("(eval)")[1]) < 1e-5
        losses = re.search(r"training loss (\S+) vs (\S+)", part)
        assert abs(float(losses.group(1)) - float(losses.group(2))) < 1e-4
        check_step_table(part, reference)
        check_limit_table(part, reference)


def check_models(output: str, folder: Path) -> None:
    """A forward time and a training step time, both positive."""
    forward = re.search(r"me_graph_au: forward batch 1 at 224 px: wall (\d+) ms", output)
    step = re.search(r"me_graph_au: training step batch 1 at 224 px: wall (\d+) ms", output)
    assert int(forward.group(1)) > 0 and int(step.group(1)) > 0


def check_speed(output: str, folder: Path) -> None:
    """The inference table's row: torch on one thread, the parameters, FLOPs and latency."""
    row = table_rows(output, "model")["jaa_net"]
    runtime, _, threads, batch, parameters, gflops, median_ms = row[:7]
    assert (runtime, threads, batch, parameters) == ("torch", "1", "1", "22.16 M")
    assert number(gflops) > 0 and number(median_ms) > 0


def check_data_loading(output: str, folder: Path) -> None:
    """Both loaders' time and rate, positive, and aufacs's speed-up."""
    rows = table_rows(output, "loader")
    official, ours = rows["official (PIL JPEG)"], rows["aufacs (cache)"]
    for row in (official, ours):
        assert row[0] == "0" and number(row[1]) > 0 and number(row[2]) > 0
    assert number(ours[3]) > 0 and ours[3].endswith("x")


def check_epoch(output: str, folder: Path) -> None:
    """The second of two one-step epochs timed, at a positive time per step."""
    assert "- set: 8 training frames (fold 1), batch 2: 4 steps per epoch; timed 1 steps" in output
    per_step = re.search(r"- (\S+) s per step, (\S+) frames/s", output)
    assert float(per_step.group(1)) > 0 and float(per_step.group(2)) > 0
    assert (folder / "run_smoke" / "epochs.csv").is_file()


def check_train_small(output: str, folder: Path) -> None:
    """The final table: seconds per epoch, an F1 in [0, 1], evaluated test frames."""
    header, row = output.strip().splitlines()[-2:]
    table = dict(zip(header.split(), row.split(), strict=True))
    assert table["model"] == "jaa_net" and float(table["s_per_epoch"]) > 0
    assert 0 <= float(table["f1_epoch1"]) <= 1 and int(table["test_frames"]) > 0
    assert (folder / "runs" / "jaa_net" / "epochs.csv").is_file()


def check_probe(output: str, folder: Path) -> None:
    """One line per epoch, with an F1 in [0, 1] and positive seconds."""
    epochs = re.findall(r"epoch (\d+): test mean F1 (\S+), training (\S+), (\S+) s", output)
    assert [int(e[0]) for e in epochs] == [1, 2]
    assert all(0 <= float(e[1]) <= 1 and 0 <= float(e[2]) <= 1 and float(e[3]) > 0 for e in epochs)
    assert (folder / "data" / "aufacs_cache_40" / "cache.json").is_file()


def check_predict(output: str, folder: Path) -> None:
    """Per pipeline, a positive rate and speed-up; stage times for the new pipelines."""
    rows = [line.strip("|").split("|") for line in output.splitlines() if line.startswith("| haar")]
    cells = {row[1].strip(): [cell.strip() for cell in row[2:]] for row in rows}
    assert list(cells) == ["previous", "batched", "detect every 5"]
    for name, row in cells.items():
        assert number(row[2]) > 0 and row[3].endswith("x") and number(row[3]) > 0
        assert all(number(cell) >= 0 for cell in row[4:]) if name != "previous" else True
    assert "load average (1, 5, 15 min) after" in output


CHECKS: dict[str, Callable[[str, Path], None]] = {
    "bench_jaa_step": check_jaa_step,
    "bench_megraph_step": check_megraph_step,
    "bench_models": check_models,
    "bench_speed": check_speed,
    "bench_data_loading": check_data_loading,
    "bench_epoch": check_epoch,
    "train_small": check_train_small,
    "bench_predict": check_predict,
    "probe_small_cnn": check_probe,
}


def test_every_benchmark_has_a_smoke_run():
    scripts = {p.stem for p in (REPO_ROOT / "benchmarks").glob("*.py")}
    runnable = {s for s in scripts if s.startswith(("bench_", "train_", "probe_"))}
    assert runnable == set(RUNS) == set(CHECKS)


@pytest.mark.parametrize("name", list(RUNS))
def test_benchmark_runs_at_its_smallest_size(name, tmp_path):
    CHECKS[name](run_benchmark(name, tmp_path), tmp_path)


def test_the_probe_runs_a_resnet18_through_the_studys_input_pipeline_with_a_networks_loss(tmp_path):
    extra = "--aufacs-dataset --loss jaa_net --network resnet18"
    check_probe(run_benchmark("probe_small_cnn", tmp_path, extra), tmp_path)


@pytest.mark.parametrize("name", ["eac_net", "jaa_net", "me_graph_au"])
def test_each_networks_loss_in_the_probe_is_a_finite_scalar_with_gradients(name):
    logits = torch.randn(4, 3, requires_grad=True)
    target = torch.tensor([[1.0, 0.0, float("nan")], [0.0, 1.0, 1.0]] * 2)
    loss = network_loss(name, logits, target, torch.tensor([1.0, 2.0, 0.5]))
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_megraph_step_runs_the_official_code_of_a_clone(tmp_path):
    clone = write_fake_megraph(tmp_path / "ME-GraphAU")
    output = run_benchmark("bench_megraph_step", tmp_path, f"--official-code {clone}")
    check_megraph_step(output, tmp_path, reference="official code")


@pytest.mark.parametrize("groups", [1, 16])
def test_a_convolutions_training_step_counts_three_forward_passes_whatever_its_groups(groups):
    conv = torch.nn.Conv2d(32, 32, 3, padding=1, groups=groups)
    image = torch.randn(2, 32, 8, 8, requires_grad=True)
    forward = 2 * 2 * 32 * 8 * 8 * (32 // groups) * 9
    flops, convolutions = step_flops(lambda: conv(image).sum().backward())
    assert flops == convolutions == 3 * forward
