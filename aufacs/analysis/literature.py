"""Published BP4D results of the three methods, to print beside ours as literature values.

Every number here was reported by someone else, on the real BP4D (3-fold, subject-exclusive,
frame-based F1 at threshold 0.5), with its source; stored as printed (×100), returned as
fractions. They are not
comparable with a run on the synthetic data set; the comparison notebook shows them in their
own, labelled table.

Source (:data:`CITATIONS`): the BP4D table of the ME-GraphAU repository's README
(CVI-SZU/ME-GraphAU, README.md, commit dda53cba), which lists the per-AU F1 of ME-GraphAU
ResNet-50, EAC-Net and JAA-Net as their papers report them. That table gives no accuracy, and
we show none: a mean accuracy quoted for JAA-Net elsewhere could not be traced to a table we
could check. The seed's
student replication of JAA-Net on a BP4D subset is unpublished: :func:`seed_epoch_table`
keeps it for reference, and no report shows it as a literature value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aufacs.core.aus import BP4D_AUS, au_column
from aufacs.core.errors import AufacsError

#: Label that every literature table carries, so that no reader takes it for a measurement.
LABEL = "literature value (published, real BP4D)"


@dataclass(frozen=True)
class Published:
    """One published result, as printed (×100): ``per_au_f1`` the 12 F1 values in BP4D AU
    order (AU1 2 4 6 7 10 12 14 15 17 23 24) separated by spaces, the reported mean F1 and,
    where reported, the mean accuracy; ``source`` says where the numbers come from."""

    method: str
    model: str
    per_au_f1: str
    mean_f1: float
    mean_accuracy: float | None
    source: str

    @property
    def per_au(self) -> tuple[float, ...]:
        """The per-AU F1 as fractions, BP4D AU order."""
        return tuple(float(value) / 100 for value in self.per_au_f1.split())


#: Where the numbers come from, as a reader can look them up.
CITATIONS: dict[str, str] = {
    "me_graph_au": "ME-GraphAU repository README (github.com/CVI-SZU/ME-GraphAU, commit "
    "dda53cba), BP4D table (F1 per AU, as published by each method's paper)",
}

#: Published BP4D results, keyed by the aufacs model name.
PUBLISHED: dict[str, Published] = {
    "eac_net": Published(
        method="EAC-Net (TPAMI 2018)",
        model="eac_net",
        per_au_f1="39.0 35.2 48.6 76.1 72.9 81.9 86.2 58.8 37.5 59.1 35.9 35.8",
        mean_f1=55.9,
        mean_accuracy=None,
        source=f"{CITATIONS['me_graph_au']}, EAC-Net row; its per-AU values average 55.6",
    ),
    "jaa_net": Published(
        method="JAA-Net (ECCV 2018)",
        model="jaa_net",
        per_au_f1="47.2 44.0 54.9 77.5 74.6 84.0 86.9 61.9 43.6 60.3 42.7 41.9",
        mean_f1=60.0,
        mean_accuracy=None,
        source=f"{CITATIONS['me_graph_au']}, JAA-Net row",
    ),
    "me_graph_au": Published(
        method="ME-GraphAU ResNet-50 (IJCAI 2022)",
        model="me_graph_au",
        per_au_f1="53.7 46.9 59.0 78.5 80.0 84.4 87.8 67.3 52.5 63.2 50.6 52.4",
        mean_f1=64.7,
        mean_accuracy=None,
        source=f"{CITATIONS['me_graph_au']}, ME-GraphAU ResNet-50 row",
    ),
}

#: The seed replication of JAA-Net on a BP4D subset (trained on F001-F022 and M001-M005,
#: tested on M005-M018): epoch, mean F1, mean accuracy, mean landmark error (NME, fraction
#: of the inter-ocular distance), failure rate (NME > 0.1).
SEED_REPLICATION_SOURCE = "seed study's replication of JAA-Net on a BP4D subset (unpublished)"
_SEED_ROWS: tuple[tuple[int, float, float, float, float], ...] = (
    (1, 0.521639, 0.709132, 0.046760, 0.003956),
    (2, 0.527294, 0.775433, 0.044694, 0.002002),
    (3, 0.534872, 0.783711, 0.040380, 0.000715),
    (4, 0.534648, 0.787174, 0.040828, 0.000763),
    (5, 0.541575, 0.761680, 0.040338, 0.000643),
    (6, 0.556645, 0.776259, 0.040349, 0.000667),
    (7, 0.555009, 0.770363, 0.040505, 0.000620),
    (8, 0.553778, 0.764504, 0.040265, 0.000596),
    (9, 0.551945, 0.760742, 0.039970, 0.000572),
    (10, 0.549276, 0.764444, 0.040630, 0.000596),
    (11, 0.550392, 0.764053, 0.040060, 0.000596),
    (12, 0.552339, 0.767260, 0.039748, 0.000620),
)


def published(model: str) -> Published:
    """The published BP4D result of ``model`` (an aufacs model name)."""
    if model not in PUBLISHED:
        raise AufacsError(
            f"no published BP4D result for model {model!r}; known: {', '.join(PUBLISHED)}"
        )
    return PUBLISHED[model]


def literature_table(models: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """Published BP4D F1 per AU (columns AU1..AU24), ``mean_f1``, ``mean_accuracy`` (NaN
    where the source did not report it: shown as not reported), ``source`` (paper and
    table) and ``label``; one row per method, indexed by model name.
    ``models``: which ones (default all), in that order."""
    chosen = list(PUBLISHED) if models is None else [published(m).model for m in models]
    rows = []
    for name in chosen:
        result = PUBLISHED[name]
        rows.append(
            {
                "model": name,
                "method": result.method,
                **{au_column(au): f1 for au, f1 in zip(BP4D_AUS, result.per_au, strict=True)},
                "mean_f1": result.mean_f1 / 100,
                "mean_accuracy": np.nan
                if result.mean_accuracy is None
                else result.mean_accuracy / 100,
                "source": result.source,
                "label": LABEL,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def seed_epoch_table() -> pd.DataFrame:
    """The seed replication's per-epoch results: ``epoch``, ``mean_f1``, ``mean_accuracy``,
    ``nme``, ``failure_rate`` (the columns of ``evaluation_summary.csv``), ``source``."""
    table = pd.DataFrame(
        _SEED_ROWS, columns=["epoch", "mean_f1", "mean_accuracy", "nme", "failure_rate"]
    )
    return table.assign(source=SEED_REPLICATION_SOURCE)
