"""One step of a study: a notebook executed by papermill into the reports folder and rendered
as an offline page with its title and links to the pages beside it."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aufacs.report.pages import PageLinks, export_html
from aufacs.report.workbook import METRICS_MIME

#: What each notebook's page is about, for its title.
PAGE_TOPICS: dict[str, str] = {
    "01_data_cleaning": "Data cleaning",
    "02_train": "Training",
    "03_evaluate_epochs": "Evaluation epoch by epoch",
    "04_heatmaps": "Attention heatmaps",
    "05_compare_models": "Model comparison",
    "06_own_photos": "Own photos and videos",
}


@dataclass(frozen=True)
class Step:
    """One notebook execution: the notebook, the report name and its parameters."""

    notebook: str
    report: str
    parameters: dict[str, Any]


@dataclass
class StepResult:
    """What one step produced: ``status`` ``"ok"`` or ``"failed"``, seconds, metrics."""

    step: Step
    status: str
    seconds: float
    metrics: dict[str, Any]
    error: str = ""


def page_title(step: Step) -> str:
    """A report page's title: its number, topic and run, e.g. "02 Training: jaa_net"."""
    number = step.notebook.split("_", 1)[0]
    run = step.report.removeprefix(step.notebook).strip("_")
    return f"{number} {PAGE_TOPICS[step.notebook]}" + (f": {run}" if run else "")


def page_links(steps: Sequence[Step], step: Step) -> PageLinks:
    """The pages before and after ``step``'s in the study, and its index."""
    reports = [s.report for s in steps]
    at = reports.index(step.report)
    previous = f"{reports[at - 1]}.html" if at > 0 else None
    following = f"{reports[at + 1]}.html" if at + 1 < len(reports) else None
    return PageLinks(previous, following)


def _private_socket() -> str:
    """A path prefix for one kernel's IPC sockets in Jupyter's runtime folder (readable by
    this user only), so that no socket lands in the notebooks' folder."""
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(jupyter_runtime_dir())
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(folder / f"aufacs-kernel-{os.getpid()}-{time.time_ns()}")


def run_step(step: Step, notebooks: Path, out: Path, links: PageLinks | None = None) -> StepResult:
    """Execute one notebook with papermill into ``out`` and render it to HTML (also when it
    fails, so that the partial report can be read).

    The kernel talks to papermill over IPC sockets in Jupyter's private runtime folder rather
    than over local TCP ports, which other users of the machine could reach, and keeps its
    own log to itself (a failing cell still fails the step)."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    source = notebooks.resolve() / f"{step.notebook}.ipynb"
    executed = out / f"{step.report}.ipynb"
    started = time.perf_counter()
    status, error = "ok", ""
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=step.parameters,
            cwd=str(source.parent),
            kernel_name="python3",
            progress_bar=False,
            config=Config({"KernelManager": {"transport": "ipc", "ip": _private_socket()}}),
            # jupyter_client interrupts every kernel it shuts down, and a kernel caught in a
            # reply then logs "KeyboardInterrupt caught in kernel": noise, not a failure
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as failure:
        status, error = "failed", f"{failure.ename}: {failure.evalue}"
    except DeadKernelError as failure:
        status, error = "failed", f"the kernel died ({failure})"
    seconds = time.perf_counter() - started
    export_html(executed, page_title(step), links)
    metrics = published_metrics(executed) if status == "ok" else {}
    return StepResult(step, status, seconds, metrics, error)


def published_metrics(notebook: Path) -> dict[str, Any]:
    """The metrics that :func:`aufacs.report.workbook.publish` wrote into an executed notebook
    (the last ones)."""
    import nbformat

    node = nbformat.read(notebook, as_version=4)
    for cell in reversed(node.cells):
        for output in reversed(cell.get("outputs", [])):
            if METRICS_MIME in output.get("data", {}):
                return dict(output["data"][METRICS_MIME])
    return {}
