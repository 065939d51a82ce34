"""Every command line that README.md and docs/*.md show runs, as a user would type it.

The commands are read from the documents themselves: each line of a fenced code block, and
each inline code span, that starts with a command (``aufacs``, ``papermill``, ``torchrun``,
``python -m``, ``make``, ...). They run in document order in one fresh folder that holds a
copy of the notebooks, the way a user follows the documents: placeholders and example paths
point into that folder, and smoke-size flags are appended to each (argparse and papermill let
the last value of a flag win), so every command runs in seconds.

A command that has no rule below fails the test: a document cannot show a command that no
test runs. What does not run here is listed in :data:`NOT_RUN` with the reason, and what runs
elsewhere in the suite in :data:`RUN_ELSEWHERE`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT, SMOKE_STUDY

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PROGRAMS = (
    "aufacs",
    ".venv/bin/aufacs",
    "papermill",
    "torchrun",
    "python",
    "make",
    "conda",
    "pip",
    "mkdir",
)
TINY_JAA_NET = '{"crop_size": 32, "unit_dim": 1}'

#: Commands that do not run in the suite, and why.
NOT_RUN = {
    "make test": "it is the test suite itself (CI runs it)",
    "make study": "the default study takes minutes; aufacs study --plan checks its notebooks",
    "conda env create": "conda is not installed here; environment.yml is checked by "
    "tests/test_packaging.py",
    "pip install": "installs packages; make test installs the same extras",
    "python -m benchmarks.bench_jaa_step --official-code": "needs a clone of the official "
    "JAA-Net code, which is not in the repository",
    "python -m benchmarks.bench_megraph_step --official-code": "needs a clone of the official "
    "ME-GraphAU code (tests/test_benchmarks.py runs it against a stand-in clone)",
}
#: Commands that another test runs, by their start.
RUN_ELSEWHERE = {
    "python -m benchmarks.fuzz_readers": "tests/test_fuzz.py runs it on 2 trees, one through "
    "the commands",
    "python -m benchmarks.": "tests/test_benchmarks.py runs every benchmark at its smallest size",
    SMOKE_STUDY: "tests/test_notebooks.py's smoke fixture runs it as a subprocess",
    "python -m aufacs.data.synthetic.proof": "tests/test_synthetic.py measures the same "
    "learnability and locality",
    "aufacs import": "tests/test_published.py imports official-layout JAA-Net and ME-GraphAU "
    "files written from the reference modules (the published files are not in the repository)",
    "aufacs cross-evaluate": "tests/test_cross_dataset.py scores a BP4D-AU run on a DISFA tree "
    "from the command line (no DISFA data set is made here)",
    "aufacs evaluate --run runs/published_": "tests/test_published.py evaluates imported runs "
    "from the command line against the reference models' outputs",
}
#: Inline code in prose that names a command or an option rather than a line to type.
MENTIONS = {
    "aufacs predict",
    "aufacs synth",
    "aufacs train --amp bf16",
    "papermill --help-notebook",
    "python benchmarks/<name>.py",
}
#: Example paths and placeholders of the documents -> paths in the user's folder.
PLACES = [
    ("/path/to/BP4D", "data/bp4d"),
    ("/data/BP4D", "data/bp4d"),
    ("DIR", "data/bp4d"),
    ("runs/NAME", "runs/jaa_net_fold1"),
    ("PATH...", "me.jpg"),
]
#: Flags appended to each subcommand so that it runs at the smallest size.
SMOKE = {
    "synth": "--subjects 6 --tasks 2 --frames-per-task 6",
    "preview": "--n 2 --subjects 2 --tasks 1",
    "audit": "",
    "prepare": "--size 40",
    "train": "--epochs 1 --batch-size 2 --max-steps-per-epoch 1 --device cpu --threads 1 "
    f"--no-progress --model-options '{TINY_JAA_NET}'",
    "evaluate": "--device cpu --threads 1 --no-progress",
    "predict": "--device cpu --threads 1 --no-progress",
    "export": "",
    "study": "--plan --device cpu",
    "notebooks": "",
}
#: Parameters appended to each notebook's papermill command, by notebook.
NOTEBOOK_SMOKE = {
    "01_data_cleaning": "-p SYNTH_SUBJECTS 6 -p SYNTH_TASKS 2 -p SYNTH_FRAMES 6 -p ALIGNED_SIZE 40",
    "02_train": "-p EPOCHS 1 -p BATCH_SIZE 2 -p MAX_STEPS_PER_EPOCH 1",
    "03_evaluate_epochs": "",
    "04_heatmaps": "-p N_SAMPLES 2 -p SCORE_SAMPLES 2",
    "05_compare_models": "-p N_BOOT 20 -p SPEED_BATCH 2 -p SPEED_REPEATS 1",
    "06_own_photos": "",
}
#: JAA-Net trains at 32 px with channel unit 1 in the notebook, as on the command line.
JAA_NET_SMOKE = "-p IMAGE_SIZE 32 -y 'MODEL_OPTIONS: {unit_dim: 1}'"


def documented_commands() -> list[tuple[str, str]]:
    """(document name, command) for every command line of the documents, in order, each
    command once (continuation lines joined, trailing comments dropped)."""
    found: dict[str, str] = {}
    for path in DOCUMENTS:
        text = path.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        lines = [line for block in blocks for line in re.sub(r"\\\n", " ", block).splitlines()]
        spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in lines + spans:
            command = " ".join(line.split("#")[0].split())
            if command.split(" ")[0] in PROGRAMS and " " in command and command not in MENTIONS:
                found.setdefault(command, path.name)
    return [(name, command) for command, name in found.items()]


COMMANDS = documented_commands()


def rule_of(command: str) -> str:
    """``"not run"``, ``"elsewhere"`` or ``"run"``; refuses a command no rule covers."""
    plain = command.removeprefix(".venv/bin/")
    if any(plain.startswith(start) for start in NOT_RUN):
        return "not run"
    if any(plain.startswith(start) for start in RUN_ELSEWHERE):
        return "elsewhere"
    program, *rest = plain.split()
    known = (
        (program == "aufacs" and rest[0] in SMOKE)
        or (program == "papermill")
        or (program == "torchrun" and "aufacs.cli train" in plain)
        or plain.startswith("mkdir -p ")
        or plain == "make lint"
    )
    assert known, f"no test runs the documented command {command!r}; add a rule"
    return "run"


def as_run_here(command: str, folder: Path) -> list[str]:
    """The argument list that runs ``command`` in ``folder`` at the smallest size."""
    plain = command.removeprefix(".venv/bin/")
    for place, here in PLACES:
        plain = re.sub(rf"(?<![\w/.-]){re.escape(place)}(?![\w/-])", here, plain)
    words = shlex.split(plain)
    program, rest = words[0], words[1:]
    if program == "aufacs":
        extra = SMOKE[rest[0]]
        return [sys.executable, "-m", "aufacs.cli", *rest, *shlex.split(extra)]
    if program == "torchrun":
        rest = [w.replace("runs/jaa_net_fold1", "runs/ddp") for w in rest]
        return [sys.executable, "-m", "torch.distributed.run", *rest, *shlex.split(SMOKE["train"])]
    if program == "papermill":
        return [sys.executable, "-m", "papermill", *rest, *_notebook_smoke(rest)]
    if program == "make":
        return ["make", "-C", str(REPO_ROOT), *rest]
    return words


def _notebook_smoke(arguments: list[str]) -> list[str]:
    notebook = next((Path(a).stem for a in arguments if a.startswith("notebooks/")), None)
    if notebook is None or "--help-notebook" in arguments:
        return []
    extra = NOTEBOOK_SMOKE[notebook] + " -p THREADS 1"
    if notebook == "02_train" and "jaa_net" in arguments:
        extra += " " + JAA_NET_SMOKE
    return shlex.split(extra)


def own_media(folder: Path) -> None:
    """The example inputs of docs/own_photos.md: a photo, a folder of photos and a video, all
    made of synthetic frames."""
    frames = sorted((folder / "data" / "bp4d" / "2D+3D").rglob("*.jpg"))[:6]
    shutil.copy(frames[0], folder / "me.jpg")
    (folder / "holiday").mkdir()
    shutil.copy(frames[1], folder / "holiday" / "beach.jpg")
    first = cv2.imread(str(frames[0]))
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(
        str(folder / "interview.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (width, height)
    )
    for frame in frames:
        writer.write(np.ascontiguousarray(cv2.imread(str(frame))))
    writer.release()


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A fresh folder with the notebooks, a data set in the BP4D layout where the documents
    say ``/path/to/BP4D``, and the photos and video of docs/own_photos.md."""
    folder = tmp_path_factory.mktemp("user")
    shutil.copytree(REPO_ROOT / "notebooks", folder / "notebooks")
    synth = as_run_here(f"aufacs synth --out data/bp4d {SMOKE['synth']}", folder)
    subprocess.run(synth, cwd=folder, env=_environment(), check=True, capture_output=True)
    own_media(folder)
    return folder


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def test_every_documented_command_has_a_rule():
    assert len(COMMANDS) > 20
    rules = {command: rule_of(command) for _, command in COMMANDS}
    assert sum(rule == "run" for rule in rules.values()) > 20


def test_the_documents_run_in_order(user_folder):
    """One test, not one per command: each command may need what the ones before it made."""
    for document, command in COMMANDS:
        if rule_of(command) != "run":
            continue
        arguments = as_run_here(command, user_folder)
        result = subprocess.run(
            arguments,
            cwd=user_folder,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"{document}: {command!r} failed ({' '.join(arguments)}):\n{result.stderr[-3000:]}"
        )
    run = user_folder / "runs" / "jaa_net_fold1"
    assert list(pd.read_csv(run / "evaluation_summary.csv")["epoch"]) == [1]
    assert (user_folder / "runs" / "ddp" / "checkpoints" / "epoch_001.pt").is_file()
    sources = pd.read_csv(user_folder / "predictions.csv")["source"]
    assert {"me.jpg", "beach.jpg", "interview.mp4"} <= {Path(s).name for s in sources}
    assert (user_folder / "audit" / "clean.csv").is_file()
    assert (user_folder / "docs" / "img" / "synth_grid.png").is_file()
    assert (user_folder / "out" / "06.ipynb").is_file()
