"""Where the workbook's notebooks are: installed inside the package (a wheel ships them as
``aufacs/notebooks/``) or, in a source checkout, the repository's ``notebooks/`` folder; and
copies of them for editing in JupyterLab."""

from __future__ import annotations

import shutil
from pathlib import Path

from aufacs.core.errors import AufacsError

#: The workbook, in the order the study runs it.
NOTEBOOKS: tuple[str, ...] = (
    "01_data_cleaning",
    "02_train",
    "03_evaluate_epochs",
    "04_heatmaps",
    "05_compare_models",
    "06_own_photos",
)


def _holds_workbook(folder: Path) -> bool:
    return all((folder / f"{name}.ipynb").is_file() for name in NOTEBOOKS)


def packaged_notebooks() -> Path:
    """The folder of the notebooks installed with aufacs: ``<package>/notebooks`` in a wheel,
    ``<repository>/notebooks`` in a source checkout (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "notebooks", package.parent / "notebooks"):
        if _holds_workbook(folder):
            return folder
    raise AufacsError(
        f"the workbook's notebooks are not installed with aufacs (looked in {package / 'notebooks'}"
        f" and {package.parent / 'notebooks'}); reinstall aufacs or pass --notebooks FOLDER"
    )


def check_notebooks(folder: Path) -> None:
    """Refuse, in one sentence, a folder that lacks one of the workbook's notebooks."""
    for name in NOTEBOOKS:
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            raise AufacsError(f"notebook {path} does not exist; expected the workbook there")


def copy_notebooks(out: Path, overwrite: bool = False) -> list[Path]:
    """Copy the installed notebooks into ``out`` (created) for editing; returns the copies.
    An existing notebook there is kept unless ``overwrite``: refused in one sentence."""
    source = packaged_notebooks()
    targets = [out / f"{name}.ipynb" for name in NOTEBOOKS]
    existing = [path.name for path in targets if path.exists()]
    if existing and not overwrite:
        raise AufacsError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    for target in targets:
        shutil.copyfile(source / target.name, target)
    return targets
