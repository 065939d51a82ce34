"""The papers' table (:func:`aufacs.analysis.folds.fold_table`) as files to paste into a paper:
CSV, Markdown and LaTeX (booktabs), F1 ×100 with one decimal as the papers print it, the best
value of each column among the compared rows in bold, and the note on how the mean is taken
under the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.analysis.folds import comparison_rows, table_note
from aufacs.core.io import write_text_atomic

#: File stem of the three written files.
STEM = "three_fold_f1"


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """Values ×100 with one decimal, "–" where missing (e.g. one fold has no spread)."""
    return table.map(lambda v: "–" if pd.isna(v) else f"{100 * v:.1f}")


def best_cells(table: pd.DataFrame) -> pd.DataFrame:
    """True where a value is its column's best (highest, at the printed precision) among
    :func:`aufacs.analysis.folds.comparison_rows`; False elsewhere."""
    compared = comparison_rows(table).round(3)
    best = compared.max()
    marks = pd.DataFrame(False, index=table.index, columns=table.columns)
    marks.loc[compared.index] = compared.eq(best) & compared.notna()
    return marks


def to_markdown(table: pd.DataFrame) -> str:
    """A pipe table with the best values in ``**bold**`` and the note below it."""
    cells = _cells(table).mask(best_cells(table), lambda c: "**" + c + "**")
    header = ["model", "row", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (model, row), values in cells.iterrows():
        lines.append("| " + " | ".join([str(model), str(row), *values]) + " |")
    return "\n".join(lines) + f"\n\n{table_note(table)}\n"


def _latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs ``tabular`` (``\\toprule``/``\\midrule``/``\\bottomrule``, a rule between
    models) with the best values in ``\\textbf``; the note as a comment and a caption line."""
    cells = _cells(table).mask(best_cells(table), lambda c: r"\textbf{" + c + "}")
    models = table.index.get_level_values("model")
    lines = [
        r"% needs \usepackage{booktabs}",
        r"\begin{tabular}{ll" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(["Model", "Row", *table.columns]) + r" \\",
    ]
    for at, ((model, row), values) in enumerate(cells.iterrows()):
        if at == 0 or models[at] != models[at - 1]:
            lines.append(r"\midrule")
        first = _latex_escape(str(model)) if at == 0 or models[at] != models[at - 1] else ""
        lines.append(" & ".join([first, _latex_escape(str(row)), *values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", f"% {table_note(table)}"]
    return "\n".join(lines) + "\n"


def write_paper_table(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write ``three_fold_f1.csv`` (fractions, full precision), ``.md`` and ``.tex`` into
    ``out`` (created); returns ``{"csv" | "md" | "tex": path}``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {suffix: out / f"{STEM}.{suffix}" for suffix in ("csv", "md", "tex")}
    write_text_atomic(paths["csv"], table.astype(np.float64).to_csv())
    write_text_atomic(paths["md"], to_markdown(table))
    write_text_atomic(paths["tex"], to_latex(table))
    return paths
