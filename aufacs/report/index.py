"""The study's index: ``study.json`` (settings, times, metrics) and ``index.html`` of reports."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aufacs.core.config import config_to_dict
from aufacs.report.presets import PRESETS

if TYPE_CHECKING:
    from aufacs.report.study import Step, StepResult, StudyConfig

STUDY_FILE = "study.json"
INDEX_FILE = "index.html"


def write_index(
    out: Path,
    config: StudyConfig,
    steps: Sequence[Step],
    results: Sequence[StepResult],
    seconds: float,
) -> Path:
    """Write ``study.json`` and ``index.html``: one row per planned report with its links,
    status, seconds and published metrics."""
    done = {r.step.report: r for r in results}
    record = {
        "config": config_to_dict(config),
        "seconds": round(seconds, 1),
        "reports": [
            {"report": s.report, "notebook": s.notebook, **_result_record(done.get(s.report))}
            for s in steps
        ],
    }
    (out / STUDY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    rows = "\n".join(_index_row(step, done.get(step.report)) for step in steps)
    settings = ", ".join(f"{k}={html.escape(str(v))}" for k, v in record["config"].items())
    page = _INDEX_PAGE.format(
        name=html.escape(config.name),
        settings=settings,
        rows=rows,
        seconds=seconds,
        description=html.escape(PRESETS[config.size].description),
    )
    path = out / INDEX_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _result_record(result: StepResult | None) -> dict[str, Any]:
    if result is None:
        return {"status": "not run"}
    return {
        "status": result.status,
        "seconds": round(result.seconds, 1),
        "metrics": result.metrics,
        "error": result.error,
    }


def _index_row(step: Step, result: StepResult | None) -> str:
    name = html.escape(step.report)
    if result is None:
        return f"<tr><td>{name}</td><td></td><td></td><td>not run</td><td></td><td></td></tr>"
    metrics = "<br>".join(
        f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in result.metrics.items()
    )
    status = "ok" if result.status == "ok" else f"<b>failed</b>: {html.escape(result.error)}"
    return (
        f'<tr><td>{name}</td><td><a href="{name}.html">report</a></td>'
        f'<td><a href="{name}.ipynb">notebook</a></td><td>{status}</td>'
        f"<td>{result.seconds:.0f}</td><td>{metrics}</td></tr>"
    )


_INDEX_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>aufacs study {name}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}} table{{border-collapse:collapse}}</style></head>
<body><h1>aufacs study: {name}</h1>
<p>Size preset: {description}. Settings: {settings}.</p>
<p>Total time: {seconds:.0f} s.</p>
<table><tr><th>report</th><th>HTML</th><th>executed notebook</th><th>status</th>
<th>seconds</th><th>published metrics</th></tr>
{rows}
</table>
<p>Published numbers of the methods shown in 05_compare_models are literature values on the
real BP4D, not results of this study.</p></body></html>
"""
