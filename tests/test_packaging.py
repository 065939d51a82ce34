"""The set-up files agree with each other (conda cannot run here, so check them statically)."""

from __future__ import annotations

import tomllib

from conftest import REPO_ROOT

REQUIRED = [
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "opencv-python-headless",
    "scipy",
    "matplotlib",
    "seaborn",
    "jupyterlab",
    "ipywidgets",
    "papermill",
    "nbconvert",
    "tqdm",
]


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_pyproject_declares_every_runtime_dependency():
    declared = " ".join(_pyproject()["project"]["dependencies"])
    for name in REQUIRED:
        assert name in declared, name


def test_torch_pins_stay_loose_for_users_elsewhere():
    declared = _pyproject()["project"]["dependencies"]
    assert "torch>=2.2" in declared
    assert "torchvision>=0.17" in declared


def test_environment_file_installs_aufacs_with_pip_on_python_3_11():
    text = (REPO_ROOT / "environment.yml").read_text()
    assert "python=3.11" in text
    assert '-e ".[dev]"' in text


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    assert "make test" in (REPO_ROOT / "README.md").read_text()


def test_the_wheel_lists_every_package_folder_and_ships_the_notebooks():
    options = _pyproject()["tool"]["setuptools"]
    folders = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for path in (REPO_ROOT / "aufacs").rglob("__init__.py")
    }
    assert set(options["packages"]) == folders | {"aufacs.notebooks"}
    assert options["package-dir"]["aufacs.notebooks"] == "notebooks"
    assert options["package-data"]["aufacs.notebooks"] == ["*.ipynb"]
