"""What a generated SynthBP4D folder says about itself: the manifest and the frames table.

``synthetic_manifest.json`` (:class:`SynthManifest`) holds the config, the subjects' faces,
the AU rates of the labels written and the planted defects; ``synthetic_frames.csv``
(:func:`frames_table`, read back row by row with :func:`params_from_row`) holds every frame's
parameters, to redraw it or map its AU regions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.synthetic.face import FaceParams
from aufacs.data.synthetic.planning import DEFECT_FIELDS, SynthConfig, SynthSequence
from aufacs.data.synthetic.render import FrameParams

MANIFEST_FILE = "synthetic_manifest.json"
FRAMES_FILE = "synthetic_frames.csv"
#: Columns of the manifest's planted-defects table, one row per defect.
PLANTED_COLUMNS = ["kind", "subject", "task", "frame", "path"]


@dataclass(frozen=True)
class SynthManifest:
    """What :func:`~aufacs.data.synthetic.generate.generate_synthetic` wrote: the config,
    the subjects' faces, the AU rates of the labels written, and the planted defects (one row
    per defect: the :data:`PLANTED_COLUMNS` ``kind``, ``subject``, ``task``, ``frame``,
    ``path``)."""

    config: SynthConfig
    faces: list[FaceParams]
    au_rates: dict[str, float]
    defects: pd.DataFrame

    @property
    def defect_counts(self) -> dict[str, int]:
        """Planted defects per kind."""
        return {kind: int((self.defects["kind"] == kind).sum()) for kind in DEFECT_FIELDS}

    def summary(self) -> str:
        """One line: frames, subjects by sex, tasks, planted defects."""
        c = self.config
        females = sum(face.sex == "F" for face in self.faces)
        return (
            f"{c.subjects * c.tasks * c.frames_per_task} frames of {c.subjects} subjects "
            f"({females} F, {c.subjects - females} M) x {c.tasks} tasks, "
            f"{len(self.defects)} planted defects"
        )

    def write(self, root: Path) -> None:
        """Write ``<root>/synthetic_manifest.json``."""
        content = {
            "config": asdict(self.config),
            "subjects": [face.to_dict() for face in self.faces],
            "au_rates": self.au_rates,
            "defect_counts": self.defect_counts,
            "defects": self.defects.to_dict(orient="records"),
        }
        (Path(root) / MANIFEST_FILE).write_text(json.dumps(content, indent=1) + "\n")

    @classmethod
    def read(cls, root: Path | str) -> SynthManifest:
        """The manifest of a generated folder; AufacsError if it has none."""
        path = Path(root) / MANIFEST_FILE
        if not path.is_file():
            raise AufacsError(f"{path} does not exist; expected a folder made by aufacs synth")
        content = json.loads(path.read_text())
        return cls(
            config=SynthConfig(**content["config"]),
            faces=[FaceParams.from_dict(face) for face in content["subjects"]],
            au_rates=content["au_rates"],
            defects=pd.DataFrame(content["defects"], columns=PLANTED_COLUMNS),
        )


def frames_table(sequences: list[SynthSequence]) -> pd.DataFrame:
    """Every frame's parameters, one row per frame: subject, task, frame, the AU
    intensities (columns ``AU1`` ... in [0, 1], 0 = absent) and the other
    :class:`~aufacs.data.synthetic.render.FrameParams` fields (tuples as ``name_0``, ...)."""
    rows = []
    for sequence in sequences:
        for frame, params in zip(sequence.frames, sequence.params, strict=True):
            row = {"subject": sequence.subject, "task": sequence.task, "frame": int(frame)}
            row |= dict(zip(BP4D.columns, params.intensities, strict=True))
            for name, value in asdict(params).items():
                if name == "intensities":
                    continue
                if isinstance(value, tuple):
                    row |= {f"{name}_{i}": v for i, v in enumerate(value)}
                else:
                    row[name] = value
            rows.append(row)
    return pd.DataFrame(rows)


def params_from_row(row: pd.Series) -> FrameParams:
    """The :class:`FrameParams` of one row of :func:`frames_table`."""
    values = {}
    for f in fields(FrameParams):
        if f.name == "intensities":
            values[f.name] = tuple(float(row[c]) for c in BP4D.columns)
        elif f.name in row.index:
            values[f.name] = row[f.name].item() if hasattr(row[f.name], "item") else row[f.name]
        else:
            parts = sorted(k for k in row.index if k.startswith(f"{f.name}_"))
            values[f.name] = tuple(float(row[k]) for k in parts)
    values["noise_seed"] = int(values["noise_seed"])
    return FrameParams(**values)
