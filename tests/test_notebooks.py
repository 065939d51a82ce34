"""The workbook notebooks: their shape in git, their defaults, their refusals, and one
smoke-size study through papermill.

The study fixture executes every notebook once (session scope) at the ``smoke`` preset on one
CPU thread, with aufacs installed from its wheel into a fresh environment and started in an
empty folder, as a user who installs it with pip would; the tests then read what it wrote.
Two more papermill runs stop in their first cells: a misspelt parameter, and a notebook
started from the wrong folder.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from conftest import REPO_ROOT, SMOKE_STUDY
from installed import install_wheel, jupyter_path, pip_install

from aufacs.core.aus import BP4D_AUS
from aufacs.report.notebook_files import NOTEBOOKS
from aufacs.report.pages import offline_problems
from aufacs.report.study import StudyConfig, study_plan

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = [NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOKS]
#: Parameters that name folders, relative to the notebook's folder by default.
FOLDER_PARAMETERS = ("DATA_ROOT", "OUT_DIR", "RUN_DIR", "RUN", "RUN_DIRS")
#: What the study turns off in batch runs (progress widgets), unlike a notebook in JupyterLab.
BATCH_ONLY = ("PROGRESS",)
#: The smoke study's models: the three and the example plug-in (docs/your_model.md), which
#: rides along here rather than in a study of its own (that would cost a minute of CPU).
SMOKE_MODELS = ("jaa_net", "eac_net", "me_graph_au", "plain_cnn")
#: The smoke study runs the papers' protocol: every model on each of the three folds.
SMOKE_FOLDS = (1, 2, 3)


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def python_of(cell: nbformat.NotebookNode) -> str:
    """A cell's source without IPython magics."""
    return "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_notebooks_in_git_have_no_outputs(path):
    assert all(not c.outputs and c.execution_count is None for c in code_cells(path))


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 requires them; JupyterLab and papermill would otherwise make new ones."""
    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)


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


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_the_cell_after_the_parameters_checks_their_names(path):
    cells = code_cells(path)
    tagged = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert cells[tagged + 1].source.startswith("inputs.check_parameters(globals())")


def notebook_defaults(path: Path) -> dict:
    """A notebook's default parameters, its folders made absolute from the notebook's folder
    (the working directory of JupyterLab and of the study)."""
    values = {
        name: ast.literal_eval(about["default"])
        for name, about in papermill.inspect_notebook(str(path)).items()
    }
    for name in set(FOLDER_PARAMETERS) & set(values):
        value = values[name]
        folders = [value] if isinstance(value, str) else value
        absolute = [str((path.parent / folder).resolve()) for folder in folders]
        values[name] = absolute[0] if isinstance(value, str) else absolute
    return values


@pytest.mark.parametrize("path", PATHS, ids=NOTEBOOKS)
def test_a_notebooks_defaults_are_what_the_default_study_gives_it(path, monkeypatch):
    """So that, after `make study`, each notebook opened in JupyterLab works on its runs."""
    monkeypatch.chdir(NOTEBOOK_DIR.parent)
    # the first step of each notebook: 02_train's is JAA-Net, the notebook's default model
    step = next(s for s in study_plan(StudyConfig()) if s.notebook == path.stem)
    defaults = notebook_defaults(path)
    given = {k: v for k, v in step.parameters.items() if k not in BATCH_ONLY}
    assert set(step.parameters) <= set(defaults)
    assert {k: defaults[k] for k in given} == given


def test_a_misspelt_parameter_stops_the_notebook_in_the_cell_after_the_parameters(tmp_path):
    executed = tmp_path / "02.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(
            str(PATHS[1]),
            str(executed),
            parameters={"MODLE": "eac_net"},
            cwd=str(NOTEBOOK_DIR),
            kernel_name="python3",
            progress_bar=False,
        )
    assert error.value.ename == "AufacsError"
    assert error.value.evalue.startswith(
        "this notebook has no parameter MODLE; its parameters are MODEL, DATA_ROOT, FOLD"
    )
    failed = [c for c in code_cells(executed) if any(o.output_type == "error" for o in c.outputs)]
    assert [c.id for c in failed] == ["02-check"]


def test_a_notebook_started_from_another_folder_names_the_working_directory(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(
            str(PATHS[3]),
            str(tmp_path / "04.ipynb"),
            cwd=str(tmp_path),
            kernel_name="python3",
            progress_bar=False,
        )
    assert error.value.evalue == (
        f"run folder ../runs/default/jaa_net not found relative to the working directory "
        f"{tmp_path}; run the notebook from notebooks/ or pass absolute paths"
    )


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
    """The whole workbook at the smoke size, run as docs/workbook.md shows it by the ``aufacs``
    command of an installed wheel (its own notebooks; a subprocess in an empty folder, on one
    thread): (its configuration, its report folder)."""
    bin_folder = install_wheel(tmp_path_factory.mktemp("installed"))
    install_example(bin_folder, tmp_path_factory.mktemp("example"))
    root = tmp_path_factory.mktemp("study")
    folds = [str(fold) for fold in SMOKE_FOLDS]
    command = [*SMOKE_STUDY.split()[1:], "--models", *SMOKE_MODELS, "--folds", *folds]
    command += ["--threads", "1"]
    result = subprocess.run(
        [bin_folder / "aufacs", *command],
        cwd=root,
        env={**os.environ, "JUPYTER_PATH": jupyter_path()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (root / "console.txt").write_text(result.stdout + result.stderr)
    config = StudyConfig(
        name="smoke",
        size="smoke",
        data=root / "data" / "synthetic",
        reports=root / "reports",
        runs=root / "runs",
        notebooks=NOTEBOOK_DIR,
        threads=1,
        models=SMOKE_MODELS,
        folds=SMOKE_FOLDS,
    )
    return config, root / "reports" / "smoke"


def install_example(bin_folder: Path, folder: Path) -> None:
    """Install a copy of the example plug-in, examples/plain_cnn, into the environment of
    ``bin_folder`` as docs/your_model.md does (its dependencies come from the test
    environment)."""
    source = shutil.copytree(REPO_ROOT / "examples" / "plain_cnn", folder / "plain_cnn")
    pip_install(bin_folder, source, "--no-build-isolation")


def test_the_example_plugin_is_trained_evaluated_drawn_compared_and_shown_on_photos(smoke):
    """docs/your_model.md's promise: a plug-in beside the three, in 02 with its own recipe,
    in 03's epochs, 04's Grad-CAM, 05's ranking and 06's own-photos demo."""
    _, folder = smoke
    training = (folder / "02_train_plain_cnn_fold1.html").read_text()
    assert "plain_cnn trains with the recipe that package aufacs-plain-cnn declares" in training
    metrics = {
        r["report"]: r["metrics"]
        for r in json.loads((folder / "study.json").read_text())["reports"]
    }
    assert metrics["03_evaluate_epochs"]["plain_cnn (fold 3) best mean F1"] >= 0
    assert "plain_cnn (gradcam)" in metrics["04_heatmaps"]
    assert "plain_cnn mean F1" in metrics["05_compare_models"]
    assert "this plain_cnn run learnt" in (folder / "06_own_photos.html").read_text()


def test_the_three_fold_table_holds_each_folds_evaluation_and_their_mean(smoke):
    """Every model's row of each fold equals that fold's own ``aufacs evaluate`` (its last
    epoch in evaluation.csv), and the mean row is their arithmetic mean, in CSV, Markdown
    and LaTeX beside the reports."""
    config, folder = smoke
    written = folder / "papers_table"
    table = pd.read_csv(written / "three_fold_f1.csv", index_col=[0, 1])
    for model in SMOKE_MODELS:
        rows = []
        for fold in SMOKE_FOLDS:
            evaluation = pd.read_csv(
                config.runs / "smoke" / f"{model}_fold{fold}" / "evaluation.csv"
            )
            last = evaluation[evaluation["epoch"] == evaluation["epoch"].max()]
            rows.append(last.sort_values("au").set_index("au")["f1"])
            expected = [rows[-1][au] for au in BP4D_AUS]
            assert table.loc[(model, f"fold {fold}")].iloc[:12].tolist() == pytest.approx(expected)
        mean = pd.concat(rows, axis=1).mean(axis=1)
        mean_row = table.loc[(model, "mean of folds")]
        assert mean_row.iloc[:12].tolist() == pytest.approx([mean[au] for au in BP4D_AUS])
        assert mean_row["Avg"] == pytest.approx(mean.mean())
    assert list(table.columns) == [f"AU{au}" for au in BP4D_AUS] + ["Avg"]
    assert "arithmetic mean of the folds" in (written / "three_fold_f1.md").read_text()
    assert r"\toprule" in (written / "three_fold_f1.tex").read_text()
    page = (folder / "05_compare_models.html").read_text()
    assert "exact sign-flip" in page and "three_fold_f1.csv" in (folder / "index.html").read_text()


def test_the_study_writes_an_executed_notebook_and_html_per_report(smoke):
    config, folder = smoke
    for step in study_plan(config):
        assert (folder / f"{step.report}.ipynb").is_file()
        assert (folder / f"{step.report}.html").is_file()


def test_every_page_has_its_own_title_and_links_to_its_neighbours_and_the_index(smoke):
    config, folder = smoke
    reports = [step.report for step in study_plan(config)]
    titles = set()
    for at, report in enumerate(reports):
        page = (folder / f"{report}.html").read_text()
        title = re.search(r"<title>(.*?)</title>", page).group(1)
        assert title != "Notebook" and title.startswith(report[:2]), title
        titles.add(title)
        links = set(re.findall(r'<nav class="aufacs-nav".*?</nav>', page)[0].split('"'))
        assert "index.html" in links
        assert (at == 0) or f"{reports[at - 1]}.html" in links
        assert (at == len(reports) - 1) or f"{reports[at + 1]}.html" in links
    assert len(titles) == len(reports)


def test_the_study_console_says_nothing_alarming_of_its_kernels(smoke):
    _, folder = smoke
    console = (folder.parents[1] / "console.txt").read_text()
    assert "without encryption" not in console and "Kernel is running" not in console
    assert "[IPKernelApp]" not in console  # kernels keep their logs to themselves


def test_every_notebook_uses_and_announces_the_studys_threads(smoke):
    _, folder = smoke
    for path in folder.glob("*.ipynb"):
        printed = "".join(o.get("text", "") for c in code_cells(path) for o in c.outputs)
        assert "using 1 CPU thread\n" in printed, path.name


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
    assert (
        "random weights (pretrained=None)"
        in (folder / "02_train_me_graph_au_fold1.html").read_text()
    )


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


def table_cells(page: str) -> list[str]:
    """The text of every table cell of an HTML page."""
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page, flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]


#: What no table of a report may print: a missing value as pandas writes it, or a Python repr.
RAW = re.compile(r"^(nan|NaN|<NA>|NaT|None|True|False)$|^[{\[]'|^<[\w.]+ object|^\{\d")


def test_every_report_opens_offline_and_holds_no_widget_view(smoke):
    _, folder = smoke
    for path in sorted(folder.glob("*.html")):
        assert offline_problems(path.read_text()) == [], path.name


def test_no_report_prints_nan_na_or_a_raw_python_value(smoke):
    _, folder = smoke
    for path in sorted(folder.glob("*.html")):
        page = path.read_text()
        raw = [cell for cell in table_cells(page) if RAW.search(cell)]
        assert not raw, (path.name, raw[:5])
        assert "&lt;IPython" not in page and "&lt;Figure size" not in page, path.name
        assert "0%|" not in page, path.name  # a progress bar


def browser_entries(page: str) -> list[dict]:
    (data,) = re.findall(r'<script type="application/json">(.*?)</script>', page, flags=re.S)
    return json.loads(data.replace("<\\/", "</"))["entries"]


def test_the_heatmap_report_holds_a_browser_with_grad_cam_for_every_run(smoke):
    _, folder = smoke
    page = (folder / "04_heatmaps.html").read_text()
    entries = browser_entries(page)
    models = {e["model"] for e in entries}
    assert models == set(SMOKE_MODELS)
    assert models == {e["model"] for e in entries if e["method"] == "gradcam"}
    assert {e["model"] for e in entries if e["method"] == "attention"} == {"jaa_net", "eac_net"}
    images = [i for e in entries for face in e["faces"] for i in face["images"]]
    assert images and all(i.startswith("data:image/jpeg;base64,") for i in images)
    assert page.count('class="aufacs-browser"') == 1


def test_the_browser_offers_every_saved_epoch_and_opens_on_the_last(smoke):
    _, folder = smoke
    page = (folder / "04_heatmaps.html").read_text()
    entries = browser_entries(page)
    offered = {(e["model"], e["method"]): set() for e in entries}
    for e in entries:
        offered[(e["model"], e["method"])].add(e["epoch"])
    # the smoke preset's epochs
    trained = {"jaa_net": {1, 2}, "eac_net": {1, 2}, "me_graph_au": {1}, "plain_cnn": {1, 2}}
    assert all(epochs == trained[model] for (model, _), epochs in offered.items())
    assert "Math.max.apply(null, epochs)" in page


def test_the_comparison_states_corrected_p_values_and_the_number_of_test_subjects(smoke):
    _, folder = smoke
    page = (folder / "05_compare_models.html").read_text()
    assert "Holm-corrected p = " in page and "test subjects resampled" in page
    assert "clear difference" not in page
    assert "BP4D table" in page and "shared/spec" not in page


def test_the_index_links_every_file_a_notebook_wrote_and_shows_readable_values(smoke):
    _, folder = smoke
    index = (folder / "index.html").read_text()
    for name in ("data/clean.csv", "data/au_weights.csv", "own_photos/predictions.csv"):
        assert f'href="{name}"' in index
    assert not [cell for cell in table_cells(index) if RAW.search(cell)]
    assert "=None" not in index and "=True" not in index


def test_the_own_photos_report_says_the_model_learnt_from_synthetic_faces(smoke):
    _, folder = smoke
    assert "Trained on synthetic faces" in (folder / "06_own_photos.html").read_text()
