"""Training logs: CSV rows appended as they come, trimmed back to a checkpoint on resume, and
read back (with the evaluation tables, also numbers only) by :func:`read_run_table`."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from pandas.api.types import is_numeric_dtype

from aufacs.core.console import say
from aufacs.core.errors import AufacsError, reading_file
from aufacs.core.io import atomic_write


class CsvLog:
    """Rows appended to a CSV file, flushed at once; the header comes from the first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None
        self.writer: csv.DictWriter | None = None

    def write(self, row: dict[str, float]) -> None:
        if self.writer is None:
            fresh = not self.path.is_file() or self.path.stat().st_size == 0
            self.handle = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
            self.writer = csv.DictWriter(self.handle, fieldnames=list(row))
            if fresh:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def drop_rows_after(path: Path, epoch: int) -> None:
    """Keep only the rows of ``path`` (a CSV with an ``epoch`` column) up to ``epoch``.

    Rows are logged before the checkpoint of their epoch is written, so every row up to a
    checkpoint is complete; a row cut short by a crash has empty fields and is dropped.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        table = read_run_table(path).dropna()
    except AufacsError as error:
        aside = path.with_name(path.name + ".damaged")
        path.replace(aside)
        say(f"warning: {error}; moved it to {aside} and start the log again")
        return
    with atomic_write(path) as handle:
        table[table["epoch"] <= epoch].to_csv(handle, index=False)


def read_run_table(path: Path, columns: tuple[str, ...] = ("epoch",)) -> pd.DataFrame:
    """A CSV table that a run wrote (``iterations.csv``, ``epochs.csv``, ``evaluation.csv``,
    ``evaluation_summary.csv``): numbers only, empty cells NaN. :class:`AufacsError` naming
    the file when it cannot be parsed, lacks one of ``columns`` or holds text where numbers
    belong (a damaged file)."""
    with reading_file(path, "a CSV table of numbers"):
        table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    text = [str(c) for c in table.columns if not is_numeric_dtype(table[c])]
    if missing or text:
        found = f"no column {missing[0]!r}" if missing else f"text in the column {text[0]!r}"
        raise AufacsError(
            f"{path} holds {found} where a run writes numbers; the file is damaged (train or "
            "evaluate the run again to rewrite it)"
        )
    return table
