"""Table rows of analysed frames: one row per face, or one saying why a frame has none.

:func:`frame_rows` turns one analysed frame (:class:`aufacs.inference.frame.FrameFaces`) into
rows whose coordinates are pixels of the source frame; :func:`empty_row` is the row of a frame
or file without a face; :func:`rows_table` makes rows into the results table with every
column of :func:`output_columns`. ``docs/own_photos.md`` ("The table") documents the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aufacs.core.aus import au_column
from aufacs.data.table import LANDMARK_COLUMNS
from aufacs.inference.faces import edges_to_source, rescale_points
from aufacs.inference.frame import FrameFaces
from aufacs.inference.pose import POSE_COLUMNS, head_pose
from aufacs.inference.predictor import Predictor
from aufacs.inference.results import NO_FACE, prob_columns

#: Where a row comes from: file, video frame and time, face rank and track, detector, score.
ID_COLUMNS = ["source", "frame", "time_s", "face", "face_id", "backend", "score"]
#: Box columns, pixel edges in the source frame.
BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]


def output_columns(aus: Sequence[int]) -> list[str]:
    """The columns of a results table for AUs ``aus``, in order (``docs/own_photos.md``,
    "The table")."""
    return [
        *ID_COLUMNS,
        *BOX_COLUMNS,
        "landmarks",
        *LANDMARK_COLUMNS,
        *POSE_COLUMNS,
        *prob_columns(aus),
        *[au_column(a) for a in aus],
        "note",
    ]


def frame_rows(
    predictor: Predictor,
    result: FrameFaces | None,
    ids: list[int],
    factor: np.ndarray,
    size: tuple[int, int],
    source: str,
    backend: str,
    frame: tuple[int, float] | None = None,
) -> list[dict]:
    """Table rows of one analysed frame of ``size`` (width, height) source pixels, whose
    working copy was made with ``factor``: one per face (track ids ``ids``), or one saying
    no face was found. ``frame``: a video frame's index and time in seconds."""
    index, time_s = frame if frame is not None else (pd.NA, np.nan)
    if result is None:
        return [empty_row(source, backend, NO_FACE, index, time_s)]
    faces = result.faces
    boxes = edges_to_source(np.array([face.box for face in faces]), factor)  # (F, 4)
    points = rescale_points(result.points, 1.0 / factor)  # (F, 49, 2)
    pose = head_pose(points, size)  # (F, 3)
    numbers = np.concatenate([boxes, points.reshape(len(faces), -1), pose, result.probs], axis=1)
    decisions = (result.probs >= predictor.threshold).astype(int)  # (F, N)
    names = [*BOX_COLUMNS, *LANDMARK_COLUMNS, *POSE_COLUMNS, *prob_columns(predictor.aus)]
    decision_columns = [au_column(a) for a in predictor.aus]
    return [
        {
            "source": source,
            "frame": index,
            "time_s": time_s,
            "face": k,
            "face_id": ids[k],
            "backend": face.backend,
            "score": face.score,
            "landmarks": result.landmark_sources[k],
            "note": result.notes[k],
            **dict(zip(names, numbers[k], strict=True)),
            **dict(zip(decision_columns, decisions[k], strict=True)),
        }
        for k, face in enumerate(faces)
    ]


def empty_row(
    source: str, backend: str, note: str, frame: object = pd.NA, time_s: float = np.nan
) -> dict:
    """A row for a frame or file without a face: only source, frame, backend and note."""
    return {"source": source, "frame": frame, "time_s": time_s, "backend": backend, "note": note}


def rows_table(predictor: Predictor, rows: list[dict]) -> pd.DataFrame:
    """Rows -> a table with every column, integer columns nullable."""
    table = pd.DataFrame(rows).reindex(columns=output_columns(predictor.aus))
    integers = ["frame", "face", "face_id", *[au_column(a) for a in predictor.aus]]
    table[integers] = table[integers].astype("Int64")
    text = ["source", "backend", "landmarks", "note"]
    table[text] = table[text].astype(object).fillna("").astype(str)
    return table
