"""A notebook's inputs: parameter names it does not declare, and folders it cannot find."""

from __future__ import annotations

from pathlib import Path

import pytest

from aufacs.core.errors import AufacsError
from aufacs.report.inputs import assigned_names, check_parameters, found, named_runs

#: The kernel's input history: the imports and the parameters cell, as a notebook runs them.
HISTORY = ["", "import os", 'MODEL: str = "jaa_net"  # model\nEPOCHS: int = 3  # epochs']


def namespace(*cells: str) -> dict:
    return {"In": [*HISTORY, *cells, "inputs.check_parameters(globals())"]}


def test_a_cell_declares_with_annotations_and_papermill_assigns_without():
    assert assigned_names(HISTORY[2], annotated=True) == ["MODEL", "EPOCHS"]
    injected = "# Parameters\nMODLE = 'eac_net'\nRUN_DIRS = ['a']\n"
    assert assigned_names(injected, annotated=False) == ["MODLE", "RUN_DIRS"]
    assert assigned_names("x = (", annotated=False) == []


def test_declared_parameters_pass():
    check_parameters(namespace("# Parameters\nMODEL = 'eac_net'\nEPOCHS = 2\n"))
    check_parameters(namespace())  # JupyterLab: nothing injected
    check_parameters(namespace("RUNS = 3"))  # a name assigned in a cell of the user's


def test_a_misspelt_parameter_is_refused_naming_the_declared_ones():
    with pytest.raises(AufacsError) as error:
        check_parameters(namespace("# Parameters\nMODLE = 'eac_net'\n"))
    assert str(error.value) == (
        "this notebook has no parameter MODLE; its parameters are MODEL, EPOCHS"
    )


def test_a_relative_folder_that_is_not_there_names_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AufacsError) as error:
        found("../runs/default/jaa_net", "run folder")
    assert str(error.value) == (
        f"run folder ../runs/default/jaa_net not found relative to the working directory "
        f"{Path.cwd()}; run the notebook from notebooks/ or pass absolute paths"
    )


def test_an_absolute_folder_that_is_not_there_is_named(tmp_path):
    with pytest.raises(AufacsError, match=f"^run folder {tmp_path}/gone does not exist$"):
        found(tmp_path / "gone", "run folder")
    assert found(tmp_path, "run folder") == tmp_path


def test_named_runs_refuse_the_first_run_folder_that_is_not_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AufacsError, match="run folder runs/eac_net not found relative"):
        named_runs([Path("runs/eac_net")])
