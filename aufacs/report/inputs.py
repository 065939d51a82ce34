"""What a notebook is given, checked before it works: its parameter names and the folders it reads.

Every notebook calls :func:`check_parameters` in the cell after its parameters. Papermill
injects ``-p NAME value`` into a cell of its own after the ``parameters`` cell even when the
notebook declares no ``NAME``, and only warns; a misspelt name would then run the notebook
with the default it meant to change. Both cells are in the kernel's input history (``In``):
the notebook declares its parameters with annotations (``MODEL: str = "jaa_net"``), and
papermill's cell opens with its ``# Parameters`` comment and assigns without them.

Notebooks run with their own folder as the working directory, so their relative default paths
(``../runs/default/jaa_net``) point at what ``aufacs study`` writes. :func:`found` and
:func:`named_runs` refuse a folder that is not there, and name the working directory when the
path is relative: the usual cause is a notebook started from another folder.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aufacs.analysis.compare import name_runs
from aufacs.core.errors import AufacsError

#: The first line of the cell in which papermill injects the parameters it was given.
INJECTED_CELL = "# Parameters"


def assigned_names(source: str, *, annotated: bool) -> list[str]:
    """The names a cell assigns at its top level, with annotations (``NAME: type = value``)
    or without; none for a cell that is not valid Python."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    if annotated:
        targets = [node.target for node in body if isinstance(node, ast.AnnAssign)]
    else:
        targets = [
            target for node in body if isinstance(node, ast.Assign) for target in node.targets
        ]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def check_parameters(namespace: Mapping[str, Any]) -> None:
    """Refuse a parameter that papermill injected into the notebook (``globals()``:
    ``namespace``) but that its parameters cell does not declare, in one sentence listing the
    declared ones."""
    history = namespace.get("In", [])
    declared = dict.fromkeys(n for cell in history for n in assigned_names(cell, annotated=True))
    injected = {
        name
        for cell in history
        if cell.startswith(INJECTED_CELL)
        for name in assigned_names(cell, annotated=False)
    }
    unknown = sorted(injected - set(declared))
    if unknown:
        raise AufacsError(
            f"this notebook has no parameter {', '.join(unknown)}; its parameters are "
            f"{', '.join(declared)}"
        )


def found(path: Path | str, what: str) -> Path:
    """``path`` as a :class:`Path` when it exists; else refuses in one sentence naming it as
    ``what`` (e.g. ``"run folder"``), and the working directory when ``path`` is relative."""
    folder = Path(path)
    if folder.exists():
        return folder
    if folder.is_absolute():
        raise AufacsError(f"{what} {folder} does not exist")
    raise AufacsError(
        f"{what} {path} not found relative to the working directory {Path.cwd()}; run the "
        "notebook from notebooks/ or pass absolute paths"
    )


def named_runs(folders: Sequence[Path | str]) -> dict[str, Path]:
    """``{model name: folder}`` of run folders that exist (see :func:`found` and
    :func:`aufacs.analysis.compare.name_runs`)."""
    return name_runs([found(folder, "run folder") for folder in folders])
