"""The study runner: its plan, its refusals, its index, and what happens when a notebook fails.

The failure test runs two trivial notebooks through papermill (two kernel starts); the real
workbook runs in tests/test_notebooks.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from aufacs.cli import main
from aufacs.core.errors import AufacsError
from aufacs.report.study import NOTEBOOKS, StudyConfig, run_study, study_plan

REPO_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def config(tmp_path: Path, **changes) -> StudyConfig:
    values = {
        "name": "t",
        "size": "smoke",
        "data": tmp_path / "data",
        "reports": tmp_path / "reports",
        "runs": tmp_path / "runs",
        "notebooks": REPO_NOTEBOOKS,
        **changes,
    }
    return StudyConfig(**values)


def test_the_plan_cleans_once_trains_each_model_then_evaluates_explains_and_compares(tmp_path):
    reports = [step.report for step in study_plan(config(tmp_path))]
    assert reports == [
        "01_data_cleaning",
        "02_train_jaa_net",
        "02_train_eac_net",
        "02_train_me_graph_au",
        "03_evaluate_epochs",
        "04_heatmaps",
        "05_compare_models",
        "06_own_photos",
    ]


def test_the_plan_passes_absolute_paths_and_every_run_to_the_later_notebooks(tmp_path):
    steps = study_plan(config(tmp_path, models=("jaa_net", "eac_net")))
    runs = steps[-2].parameters["RUN_DIRS"]
    assert runs == [str((tmp_path / "runs" / "t" / m).resolve()) for m in ("jaa_net", "eac_net")]
    assert steps[-1].parameters["RUN"] == runs[0]
    assert Path(steps[0].parameters["DATA_ROOT"]).is_absolute()


def test_the_epochs_option_overrides_every_models_preset(tmp_path):
    steps = study_plan(config(tmp_path, epochs=5))
    assert {s.parameters["EPOCHS"] for s in steps if s.notebook == "02_train"} == {5}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"size": "huge"}, "size"),
        ({"models": ("resnet",)}, "models"),
        ({"models": ()}, "models"),
        ({"kind": "affectnet"}, "kind"),
        ({"fold": 4}, "fold"),
        ({"threads": 0}, "threads"),
    ],
)
def test_a_bad_setting_is_refused_in_one_sentence_naming_it(tmp_path, change, named):
    with pytest.raises(AufacsError, match=named):
        study_plan(config(tmp_path, **change))


def test_a_missing_notebook_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(AufacsError, match="01_data_cleaning.ipynb does not exist"):
        run_study(config(tmp_path, notebooks=tmp_path / "nowhere"))
    assert not (tmp_path / "reports").exists()


def test_the_command_line_refuses_an_unknown_size_with_exit_status_2(capsys):
    assert main(["study", "--size", "huge"]) == 2
    assert "size must be one of cpu, smoke, paper" in capsys.readouterr().err


def _notebook(path: Path, *sources: str) -> None:
    cells = [new_code_cell(source) for source in sources]
    cells[0].metadata["tags"] = ["parameters"]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def failed_study(tmp_path_factory):
    """A study whose 01 publishes a metric and whose 02 raises; returns (folder, error)."""
    root = tmp_path_factory.mktemp("failing")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "01_data_cleaning.ipynb",
        "KIND = 'x'  # kind",
        "from aufacs.report import workbook\nworkbook.publish({'clean_frames': 7})",
    )
    _notebook(
        notebooks / "02_train.ipynb",
        "MODEL = 'x'  # model",
        "raise RuntimeError('the model would not train')",
    )
    for name in NOTEBOOKS[2:]:
        _notebook(notebooks / f"{name}.ipynb", "RUN_DIRS = []  # runs")
    study = config(root, notebooks=notebooks, models=("jaa_net",), threads=1)
    with pytest.raises(AufacsError) as error:
        run_study(study)
    return root / "reports" / "t", str(error.value)


def test_a_failing_notebook_stops_the_study_with_a_message_naming_it(failed_study):
    _, message = failed_study
    assert message.startswith("notebook 02_train_jaa_net failed: RuntimeError: the model")


def test_the_failing_notebooks_partial_output_is_kept(failed_study):
    folder, _ = failed_study
    executed = nbformat.read(folder / "02_train_jaa_net.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and (folder / "02_train_jaa_net.html").is_file()


def test_reports_before_the_failure_stay_and_later_ones_do_not_run(failed_study):
    folder, _ = failed_study
    reports = json.loads((folder / "study.json").read_text())["reports"]
    assert [r["status"] for r in reports] == ["ok", "failed"] + ["not run"] * 4
    assert (folder / "01_data_cleaning.html").is_file()
    assert not (folder / "03_evaluate_epochs.ipynb").exists()


def test_the_index_links_what_ran_and_shows_published_metrics(failed_study):
    folder, _ = failed_study
    index = (folder / "index.html").read_text()
    assert 'href="01_data_cleaning.html"' in index and 'href="02_train_jaa_net.ipynb"' in index
    assert "clean_frames: 7" in index and "<b>failed</b>" in index
