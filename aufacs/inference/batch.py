"""Many files into a folder of results, one CSV per input file, resumable (``--out-dir``).

:func:`predict_into_folder` predicts the input files one after another with one loaded model
and writes each file's table to ``<out_dir>/<the file's path below the inputs' common
folder>.csv`` (``clips/a.avi`` -> ``a.avi.csv``), atomically and only once the whole file is
done. A result file is therefore there only for a finished input: a run that is killed loses
at most the file it was on, and the next run into the same folder skips every file whose
result is there. ``<out_dir>/aufacs_predict.json`` (:data:`SETTINGS_FILE`) records the model
and the options the folder's results were made with; a run with other settings is refused
rather than mixing the two. A progress bar counts the files (each video's own bar, its
frames).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.core.io import write_text_atomic
from aufacs.inference.sinks import write_table

#: The file of a results folder that records how its results were made.
SETTINGS_FILE = "aufacs_predict.json"


def result_paths(files: Sequence[Path], out_dir: Path | str) -> dict[Path, Path]:
    """Input file -> its result CSV in ``out_dir``: the file's path below the common folder
    of all ``files``, with ``.csv`` appended (so ``a.avi`` and ``a.mp4`` do not collide)."""
    resolved = {Path(f): Path(f).resolve() for f in files}
    root = Path(os.path.commonpath([r.parent for r in resolved.values()]))
    return {f: Path(out_dir) / f"{r.relative_to(root)}.csv" for f, r in resolved.items()}


def predict_into_folder(
    files: Sequence[Path],
    out_dir: Path | str,
    predict_one: Callable[[Path], pd.DataFrame],
    settings: Mapping[str, Any],
    aus: Sequence[int],
    progress: bool = True,
) -> tuple[list[pd.DataFrame], int]:
    """Predict each of ``files`` whose result is not yet in ``out_dir`` with ``predict_one``
    (a file -> its results table of AUs ``aus``) and write its CSV in
    ``settings["format"]`` (:mod:`aufacs.inference.sinks`). ``settings``: plain JSON
    values that say how results are made (model, epoch, options, format). Returns the
    tables of the files predicted now and the number skipped as already done."""
    out_dir = Path(out_dir)
    claim_folder(out_dir, settings)
    targets = result_paths(files, out_dir)
    todo = [path for path in files if not targets[path].is_file()]
    skipped = len(files) - len(todo)
    if progress and skipped:
        say(f"{skipped} of {len(files)} files already have their results in {out_dir}")
    bar = tqdm(
        todo, desc="predict", unit="file", initial=skipped, total=len(files), disable=not progress
    )
    tables = []
    for path in bar:
        table = predict_one(path)
        write_table(table, targets[path], settings["format"], aus)
        tables.append(table)
    return tables, skipped


def claim_folder(out_dir: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in a new or empty ``out_dir``, or check that they are the ones
    recorded there; refuses, in one sentence, other settings and a folder that holds other
    things than results."""
    wanted = json.loads(json.dumps(dict(settings)))
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AufacsError(f"cannot read {path}: {error}") from None
        saved = saved if isinstance(saved, dict) else {}
        changed = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in wanted.items() if saved.get(k) != v]
        if changed:
            raise AufacsError(
                f"{out_dir} holds results made with other settings ({', '.join(changed)}); "
                "choose a new --out-dir, or the same settings to resume"
            )
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise AufacsError(
            f"{out_dir} is not empty and holds no {SETTINGS_FILE} of earlier results; choose a "
            "new or empty folder for --out-dir"
        )
    write_text_atomic(path, json.dumps(wanted, indent=2) + "\n")
