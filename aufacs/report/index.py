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
    from aufacs.report.steps import Step, StepResult
    from aufacs.report.study import StudyConfig

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
    rows = "\n".join(_index_row(out, step, done.get(step.report)) for step in steps)
    settings = ", ".join(f"{k}={html.escape(readable(v))}" for k, v in record["config"].items())
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


def readable(value: Any) -> str:
    """A published value as a reader wants it: numbers to 3 significant decimals, whole
    numbers without a point, yes / no, and "–" for nothing."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def outputs(out: Path, step: Step) -> list[Path]:
    """The files (CSV, figures, photos) a step wrote into its ``OUT_DIR`` inside ``out``,
    relative to ``out``."""
    folder = step.parameters.get("OUT_DIR")
    if not folder or not Path(folder).is_dir():
        return []
    folder = Path(folder).resolve()
    if not folder.is_relative_to(out.resolve()):
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [p.relative_to(out.resolve()) for p in files]


def _index_row(out: Path, step: Step, result: StepResult | None) -> str:
    name = html.escape(step.report)
    if result is None:
        return f"<tr><td>{name}</td>{'<td></td>' * 2}<td>not run</td>{'<td></td>' * 3}</tr>"
    metrics = "<br>".join(
        f"{html.escape(str(k))}: {html.escape(readable(v))}" for k, v in result.metrics.items()
    )
    files = "<br>".join(
        f'<a href="{html.escape(p.as_posix())}">{html.escape(p.as_posix())}</a>'
        for p in outputs(out, step)
    )
    status = "ok" if result.status == "ok" else f"<b>failed</b>: {html.escape(result.error)}"
    return (
        f'<tr><td>{name}</td><td><a href="{name}.html">report</a></td>'
        f'<td><a href="{name}.ipynb">notebook</a></td><td>{status}</td>'
        f"<td>{result.seconds:.0f}</td><td>{metrics}</td><td>{files}</td></tr>"
    )


_INDEX_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>aufacs study {name}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}} table{{border-collapse:collapse}}</style></head>
<body><h1>aufacs study: {name}</h1>
<p>Size preset: {description}. Settings: {settings}.</p>
<p>Total time: {seconds:.0f} s.</p>
<table><tr><th>report</th><th>HTML</th><th>executed notebook</th><th>status</th>
<th>seconds</th><th>published metrics</th><th>files written</th></tr>
{rows}
</table>
<p>Published numbers of the methods shown in 05_compare_models are literature values on the
real BP4D, not results of this study.</p></body></html>
"""
