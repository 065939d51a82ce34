"""Training logs: CSV rows appended as they come, and trimmed back to a checkpoint on resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

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
    table = pd.read_csv(path).dropna()
    with atomic_write(path) as handle:
        table[table["epoch"] <= epoch].to_csv(handle, index=False)
