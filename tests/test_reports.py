"""What the reports are made of: offline HTML pages, tidy tables, the static heatmap browser
and the index's values, without running a notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from aufacs.analysis.heatmaps import HeatmapSet
from aufacs.core.errors import AufacsError
from aufacs.report import browser, tables
from aufacs.report.index import readable
from aufacs.report.pages import WIDGET_VIEW, export_html, offline_problems


def heatmaps(samples: int, aus: tuple[int, ...], seed: int, method: str) -> HeatmapSet:
    rng = np.random.default_rng(seed)
    return HeatmapSet(
        images=rng.integers(0, 256, (samples, 12, 12, 3), dtype=np.uint8),
        maps=rng.random((samples, len(aus), 6, 6)),
        aus=aus,
        probs=rng.random((samples, len(aus))),
        labels=np.array([[1.0, np.nan][: len(aus)] + [0.0] * (len(aus) - 2)] * samples),
        method=method,
    )


@pytest.fixture
def collections() -> list[dict]:
    own = {
        ("jaa_net", 1): heatmaps(2, (1, 2, 4), 0, "attention"),
        ("jaa_net", 3): heatmaps(2, (1, 2, 4), 1, "attention"),
        ("me_graph_au", 2): heatmaps(3, (6, 12), 2, "gradcam"),
    }
    gradcam = {("jaa_net", 3): heatmaps(2, (1, 2, 4), 3, "gradcam")}
    return [own, gradcam]


def test_an_exported_page_loads_nothing_from_the_network_and_drops_widget_views(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW: {"model_id": "x"}, "text/plain": "a widget"}
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# A report"), cell]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    nbformat.write(notebook, tmp_path / "r.ipynb")
    page = export_html(tmp_path / "r.ipynb").read_text()
    assert offline_problems(page) == [] and "42" in page and "A report" in page
    assert "cdnjs" not in page and "require.js" not in page.lower()


def test_offline_problems_name_a_cdn_script_and_a_widget_view():
    page = f'<script src="https://cdn.example/require.js"></script><p>{WIDGET_VIEW}</p>'
    problems = offline_problems(page)
    assert len(problems) == 2 and "cdn.example" not in problems[1]


def test_tidy_tables_show_a_dash_for_missing_values_and_three_decimals():
    table = pd.DataFrame(
        {
            "epoch": [1.0, 2.0],
            "mean_f1": [0.5, 0.123456],
            "nme": [np.nan, np.nan],
            "frame": pd.array([pd.NA, 3], dtype="Int64"),
            "ok": [True, False],
        }
    )
    shown = tables.tidy(table)
    assert shown["epoch"].tolist() == ["1", "2"]
    assert shown["mean_f1"].tolist() == ["0.500", "0.123"]
    assert shown["nme"].tolist() == ["–", "–"] and shown["frame"].tolist() == ["–", "3"]
    assert shown["ok"].tolist() == ["yes", "no"]


def test_the_predictions_view_keeps_file_names_and_drops_frame_columns_of_photos():
    table = pd.DataFrame(
        {
            "source": ["/a/b/me.jpg"],
            "frame": pd.array([pd.NA], dtype="Int64"),
            "time_s": [np.nan],
            "face": [0],
            "landmarks": ["dlib"],
            "AU12_prob": [0.4567],
            "note": [""],
        }
    )
    shown = tables.predictions_view(table)
    assert list(shown.columns) == ["file", "face", "landmarks", "AU12", "note"]
    assert shown.iloc[0].tolist() == ["me.jpg", "0", "dlib", "0.46", "–"]


def test_index_values_are_readable():
    assert [readable(v) for v in (None, True, 3.0, 0.123456, ["a", 1])] == [
        "–",
        "yes",
        "3",
        "0.123",
        "a, 1",
    ]


def entries_of(page: str) -> list[dict]:
    (data,) = re.findall(r'<script type="application/json">(.*?)</script>', page, flags=re.S)
    return json.loads(data.replace("<\\/", "</"))["entries"]


def test_the_browser_embeds_one_overlay_per_run_map_epoch_face_and_au(collections):
    page = browser.browser_html(collections, size=32)
    entries = entries_of(page)
    keys = [(e["model"], e["method"], e["epoch"]) for e in entries]
    assert keys == [
        ("jaa_net", "attention", 1),
        ("jaa_net", "attention", 3),
        ("me_graph_au", "gradcam", 2),
        ("jaa_net", "gradcam", 3),
    ]
    me = entries[2]
    assert me["aus"] == ["AU6", "AU12"] and len(me["faces"]) == 3
    assert all(len(face["images"]) == 2 for face in me["faces"])
    assert entries[0]["faces"][0]["labels"][:2] == [1.0, None]
    assert offline_problems(page) == [] and "http" not in page


def test_the_browser_is_one_element_that_needs_no_kernel(collections):
    page = browser.browser_html(collections, size=32)
    (element,) = re.findall(r'<div id="(aufacs-browser-\w+)"', page)
    assert f'document.getElementById("{element}")' in page
    assert "require(" not in page and "Jupyter" not in page and WIDGET_VIEW not in page


def test_an_overlay_is_a_jpeg_of_the_asked_size():
    import cv2

    jpeg = browser.overlay_image(np.zeros((8, 8, 3), np.uint8), np.ones((2, 2)), size=40)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (40, 40, 3) and decoded[..., 2].mean() > 50  # red: hot


def test_a_browser_of_nothing_is_refused():
    with pytest.raises(AufacsError, match="at least one"):
        browser.browser_html([{}])


def test_the_browser_shows_in_a_notebook_as_html(collections):
    shown = browser.heatmap_browser(collections, size=16)
    assert "aufacs-browser" in shown._repr_html_()


def test_exported_pages_of_the_repository_notebooks_are_offline(tmp_path):
    source = Path(__file__).resolve().parents[1] / "notebooks" / "05_compare_models.ipynb"
    copy = tmp_path / "05.ipynb"
    copy.write_text(source.read_text())
    assert offline_problems(export_html(copy).read_text()) == []
