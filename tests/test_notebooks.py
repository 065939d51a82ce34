"""The workbook notebooks: their shape in git, and one smoke-size study through papermill.

The study fixture executes every notebook once (session scope) at the ``smoke`` preset on one
CPU thread; the tests then read what it wrote.
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from aufacs.report.study import NOTEBOOKS, StudyConfig, run_study, study_plan

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = [NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOKS]


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def python_of(cell: nbformat.NotebookNode) -> str:
    """A cell's source without IPython magics."""
    return "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_notebooks_in_git_have_no_outputs(path):
    assert all(not c.outputs and c.execution_count is None for c in code_cells(path))


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_each_notebook_has_one_tagged_parameters_cell(path):
    tagged = [c for c in code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_every_parameter_is_upper_case_typed_and_commented(path):
    parameters = papermill.inspect_notebook(str(path))
    (cell,) = [c for c in code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == len(cell.source.splitlines())
    for name, about in parameters.items():
        assert name.isupper() and about["inferred_type_name"] != "None" and about["help"]


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_notebooks_define_no_functions_or_classes(path):
    for cell in code_cells(path):
        nodes = ast.walk(ast.parse(python_of(cell)))
        assert not any(isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda) for n in nodes)


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_the_median_code_cell_is_at_most_two_lines(path):
    assert statistics.median(len(c.source.splitlines()) for c in code_cells(path)) <= 2


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_the_last_cell_publishes_the_notebooks_metrics(path):
    assert code_cells(path)[-1].source.startswith("workbook.publish(")


def test_papermill_lists_the_typed_parameters_of_a_notebook():
    result = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(PATHS[1])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"MODEL: str \(default \"jaa_net\"\)\s+jaa_net, eac_net", result.stdout)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> tuple[StudyConfig, Path]:
    """The whole workbook at the smoke size: (its configuration, its report folder)."""
    root = tmp_path_factory.mktemp("study")
    config = StudyConfig(
        name="smoke",
        size="smoke",
        data=root / "data",
        reports=root / "reports",
        runs=root / "runs",
        notebooks=NOTEBOOK_DIR,
        threads=1,
    )
    return config, run_study(config)


def test_the_study_writes_an_executed_notebook_and_html_per_report(smoke):
    config, folder = smoke
    for step in study_plan(config):
        assert (folder / f"{step.report}.ipynb").is_file()
        assert (folder / f"{step.report}.html").is_file()


def test_no_executed_notebook_holds_an_error(smoke):
    _, folder = smoke
    for path in folder.glob("*.ipynb"):
        outputs = [o for c in code_cells(path) for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name


def test_the_index_links_every_report(smoke):
    config, folder = smoke
    index = (folder / "index.html").read_text()
    for step in study_plan(config):
        assert f'href="{step.report}.html"' in index and f'href="{step.report}.ipynb"' in index


def test_every_report_publishes_its_metrics(smoke):
    _, folder = smoke
    reports = json.loads((folder / "study.json").read_text())["reports"]
    assert all(r["status"] == "ok" and r["metrics"] for r in reports)


def test_data_cleaning_writes_the_clean_table_and_the_au_weights(smoke):
    _, folder = smoke
    assert {"clean.csv", "defects.csv", "au_weights.csv"} <= {
        p.name for p in (folder / "data").iterdir()
    }


def test_training_reports_say_the_backbone_starts_from_random_weights(smoke):
    _, folder = smoke
    assert "random weights (pretrained=None)" in (folder / "02_train_me_graph_au.html").read_text()


def test_the_heatmap_report_carries_static_galleries(smoke):
    _, folder = smoke
    page = (folder / "04_heatmaps.html").read_text()
    titles = re.findall(r"<h3[^>]*>(\w+), epoch \d+: (attention|gradcam)", page)
    assert {"jaa_net", "eac_net", "me_graph_au"} <= {name for name, _ in titles}
    assert page.count("data:image/png") >= len(titles)


def test_the_comparison_report_labels_the_published_numbers_as_literature(smoke):
    _, folder = smoke
    page = (folder / "05_compare_models.html").read_text()
    assert "literature value (published, real BP4D)" in page
