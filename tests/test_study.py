"""The study runner: its plan, its refusals, its lock, its threads, its index, and what happens
when a notebook fails.

The failure test runs two trivial notebooks through papermill (two kernel starts); the real
workbook runs in tests/test_notebooks.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from aufacs.cli import main
from aufacs.core.errors import AufacsError
from aufacs.core.locks import exclusive_lock
from aufacs.engine.runs import LOCK_FILE
from aufacs.models import available_models
from aufacs.report.notebook_files import NOTEBOOKS
from aufacs.report.study import StudyConfig, run_study, study_plan

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


def test_a_study_over_folds_trains_every_model_on_every_fold(tmp_path):
    steps = study_plan(config(tmp_path, models=("jaa_net", "eac_net"), folds=(1, 2, 3)))
    trainings = [s for s in steps if s.notebook == "02_train"]
    assert [(s.parameters["MODEL"], s.parameters["FOLD"]) for s in trainings] == [
        (model, fold) for fold in (1, 2, 3) for model in ("jaa_net", "eac_net")
    ]
    runs = tmp_path.resolve() / "runs" / "t"
    assert [s.parameters["RUN_DIR"] for s in trainings[:2]] == [
        str(runs / "jaa_net_fold1"),
        str(runs / "eac_net_fold1"),
    ]
    by_notebook = {s.notebook: s.parameters for s in steps}
    assert len(by_notebook["03_evaluate_epochs"]["RUN_DIRS"]) == 6
    assert by_notebook["04_heatmaps"]["RUN_DIRS"] == [
        str(runs / m) + "_fold1" for m in ("jaa_net", "eac_net")
    ]
    assert by_notebook["05_compare_models"]["FOLD_RUNS"] == {
        m: [str(runs / f"{m}_fold{k}") for k in (1, 2, 3)] for m in ("jaa_net", "eac_net")
    }


def test_one_fold_keeps_the_run_folders_and_gives_no_three_fold_table(tmp_path):
    steps = study_plan(config(tmp_path, models=("jaa_net",), fold=2))
    assert [s.parameters["FOLD"] for s in steps if "FOLD" in s.parameters] == [2, 2]
    compare = next(s for s in steps if s.notebook == "05_compare_models")
    assert compare.parameters["FOLD_RUNS"] == {}
    assert compare.parameters["RUN_DIRS"] == [str(tmp_path.resolve() / "runs" / "t" / "jaa_net")]


def test_repeated_or_unknown_folds_are_refused_in_one_sentence(tmp_path):
    with pytest.raises(AufacsError, match="folds must differ"):
        study_plan(config(tmp_path, folds=(1, 1)))
    with pytest.raises(AufacsError, match="fold"):
        study_plan(config(tmp_path, folds=(1, 4)))


def test_the_plan_passes_absolute_paths_and_every_run_to_the_later_notebooks(tmp_path):
    steps = study_plan(config(tmp_path, models=("jaa_net", "eac_net")))
    runs = steps[-2].parameters["RUN_DIRS"]
    assert runs == [str((tmp_path / "runs" / "t" / m).resolve()) for m in ("jaa_net", "eac_net")]
    assert steps[-1].parameters["RUN"] == runs[0]
    assert Path(steps[0].parameters["DATA_ROOT"]).is_absolute()


def test_the_plan_turns_progress_bars_off_and_leaves_the_html_heatmap_browser_on(tmp_path):
    steps = study_plan(config(tmp_path))
    with_bars = {s.notebook for s in steps if s.parameters.get("PROGRESS") is False}
    assert with_bars == {"01_data_cleaning", "02_train", "03_evaluate_epochs"}
    assert all("BROWSER" not in s.parameters for s in steps)


def test_every_notebook_gets_the_studys_threads(tmp_path):
    assert {s.parameters["THREADS"] for s in study_plan(config(tmp_path, threads=2))} == {2}


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


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--size", "smok"], "size must be one of cpu, smoke, paper, got 'smok'"),
        (
            ["--models", "jaa_net", "eacnet"],
            # the built-in models, then the installed plug-ins (examples/plain_cnn)
            f"models must name one or more of {', '.join(available_models())}, got jaa_net, eacnet",
        ),
    ],
)
def test_the_command_line_refuses_a_misspelt_size_or_model_before_anything_runs(
    tmp_path, monkeypatch, capsys, flags, message
):
    monkeypatch.chdir(tmp_path)
    assert main(["study", "--notebooks", str(REPO_NOTEBOOKS), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_second_study_into_the_same_reports_folder_is_refused_naming_the_first(tmp_path):
    study = config(tmp_path)
    folder = (tmp_path / "reports" / "t").resolve()
    with exclusive_lock(folder / LOCK_FILE, "the first study"):
        with pytest.raises(AufacsError) as error:
            run_study(study)
    assert str(error.value).startswith(
        f"reports folder {folder} is in use by process {os.getpid()} ("
    )
    assert [p.name for p in folder.iterdir()] == [LOCK_FILE]


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


#: The trivial 01 of the failing study: is the study's lock held while it runs, and which
#: THREADS did the study pass (the notebook does not declare it: papermill injects it anyway)?
PROBE = """from aufacs.core.errors import AufacsError
from aufacs.core.locks import exclusive_lock
from aufacs.report import workbook
try:
    with exclusive_lock('../reports/t/.aufacs.lock', 'the study'):
        held = False
except AufacsError:
    held = True
workbook.publish({'clean_frames': 7, 'lock_held': held, 'threads': THREADS})"""


@pytest.fixture(scope="module")
def failed_study(tmp_path_factory):
    """A study whose 01 publishes a metric and whose 02 raises, on the default threads with
    OMP_NUM_THREADS=1; returns (folder, error, what the study printed)."""
    root = tmp_path_factory.mktemp("failing")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_data_cleaning.ipynb", "KIND = 'x'  # kind", PROBE)
    _notebook(
        notebooks / "02_train.ipynb",
        "MODEL = 'x'  # model",
        "raise RuntimeError('the model would not train')",
    )
    for name in NOTEBOOKS[2:]:
        _notebook(notebooks / f"{name}.ipynb", "RUN_DIRS = []  # runs")
    study = config(root, notebooks=notebooks, models=("jaa_net",), threads=None)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("OMP_NUM_THREADS", "1")
        with pytest.raises(AufacsError) as error:
            run_study(study)
    return root / "reports" / "t", str(error.value), printed.getvalue()


def test_a_failing_notebook_stops_the_study_with_a_message_naming_it(failed_study):
    _, message, _ = failed_study
    assert message.startswith("notebook 02_train_jaa_net failed: RuntimeError: the model")


def test_the_failing_notebooks_partial_output_is_kept(failed_study):
    folder, _, _ = failed_study
    executed = nbformat.read(folder / "02_train_jaa_net.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and (folder / "02_train_jaa_net.html").is_file()


def test_reports_before_the_failure_stay_and_later_ones_do_not_run(failed_study):
    folder, _, _ = failed_study
    reports = json.loads((folder / "study.json").read_text())["reports"]
    assert [r["status"] for r in reports] == ["ok", "failed"] + ["not run"] * 4
    assert (folder / "01_data_cleaning.html").is_file()
    assert not (folder / "03_evaluate_epochs.ipynb").exists()


def test_the_index_links_what_ran_and_shows_published_metrics(failed_study):
    folder, _, _ = failed_study
    index = (folder / "index.html").read_text()
    assert 'href="01_data_cleaning.html"' in index and 'href="02_train_jaa_net.ipynb"' in index
    assert "clean_frames: 7" in index and "<b>failed</b>" in index


def test_the_study_holds_its_lock_while_notebooks_run_and_releases_it(failed_study):
    folder, _, _ = failed_study
    reports = json.loads((folder / "study.json").read_text())["reports"]
    assert reports[0]["metrics"]["lock_held"] is True
    with exclusive_lock(folder / LOCK_FILE, "a later study"):
        pass


def test_the_default_threads_are_announced_once_and_passed_to_every_notebook(failed_study):
    folder, _, printed = failed_study
    assert printed.count("using 1 CPU thread") == 1
    reports = json.loads((folder / "study.json").read_text())["reports"]
    assert reports[0]["metrics"]["threads"] == 1
    for name in ("01_data_cleaning", "02_train_jaa_net"):
        executed = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        assert executed.metadata.papermill.parameters["THREADS"] == 1


def test_the_study_record_holds_absolute_folders_and_the_threads_used(failed_study):
    folder, _, _ = failed_study
    recorded = json.loads((folder / "study.json").read_text())["config"]
    assert all(Path(recorded[k]).is_absolute() for k in ("data", "reports", "runs", "notebooks"))
    assert recorded["threads"] == 1
