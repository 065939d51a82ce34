"""Working with a prediction table (:mod:`aufacs.inference.predict`): the long form, one row
per face and AU (:func:`long_table`), a face's AU time course in a video (:func:`first_video`,
:func:`time_course`, :func:`plot_time_course`), smoothing along face tracks and headline counts.

A table's wide form has ``AU<n>_prob`` and ``AU<n>`` columns per AU; the long form has the
columns :data:`LONG_COLUMNS`: the row's identity (``source frame time_s face face_id``),
``au`` (the AU number), ``prob`` and ``present`` (the decision, 1 or 0). Rows without a face
are left out of the long form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from aufacs.core.aus import au_column
from aufacs.core.errors import AufacsError

#: The note of a frame without a face.
NO_FACE = "no face found"
#: Identity columns kept in the long form.
KEY_COLUMNS = ["source", "frame", "time_s", "face", "face_id"]
#: The columns of the long form, in order.
LONG_COLUMNS = [*KEY_COLUMNS, "au", "prob", "present"]


def table_aus(table: pd.DataFrame) -> list[int]:
    """The AU numbers of a prediction table, in column order (from its ``AU<n>_prob``)."""
    return [int(c[2:-5]) for c in table.columns if c.startswith("AU") and c.endswith("_prob")]


def long_table(table: pd.DataFrame, aus: Sequence[int] | None = None) -> pd.DataFrame:
    """The long form (module docstring) of prediction table ``table`` for ``aus`` (None: all
    of its AUs): one row per face and AU, ordered like the table, then by AU."""
    aus = table_aus(table) if aus is None else list(aus)
    faces = table[table["face"].notna()]
    keys = [c for c in KEY_COLUMNS if c in faces]
    parts = []
    for order, au in enumerate(aus):
        part = faces[keys].copy()
        part["au"] = au
        part["prob"] = faces[f"{au_column(au)}_prob"].to_numpy(dtype=np.float64)
        part["present"] = faces[au_column(au)].astype("Int64")
        part["_row"], part["_order"] = np.arange(len(faces)), order
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*keys, "au", "prob", "present"])
    long = pd.concat(parts).sort_values(["_row", "_order"], kind="stable")
    return long.drop(columns=["_row", "_order"]).reset_index(drop=True)


def first_video(table: pd.DataFrame) -> str | None:
    """The ``source`` of the first video in prediction table ``table`` with a face in some
    frame, or None when there is none (photos only, or no face found)."""
    video = table.loc[table["frame"].notna() & table["face"].notna(), "source"]
    return None if video.empty else str(video.iloc[0])


def time_course(
    table: pd.DataFrame,
    source: str | None = None,
    face_id: int | None = None,
    aus: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The AU probabilities of one face track of one video over time: index ``time_s``
    (seconds), one column ``AU<n>`` per AU. ``source``: None for the table's only video;
    ``face_id``: None for the track seen in most frames. AufacsError when there is no such
    video or track."""
    video = table[table["frame"].notna() & table["face"].notna()]
    sources = list(dict.fromkeys(video["source"]))
    if source is None:
        if len(sources) != 1:
            raise AufacsError(f"name the video (source); the table has {len(sources)} videos")
        source = sources[0]
    video = video[video["source"] == str(source)]
    if video.empty:
        raise AufacsError(f"the table has no video frames with a face from {source}")
    track = "face_id" if "face_id" in video else "face"
    face_id = int(video[track].value_counts().idxmax()) if face_id is None else face_id
    rows = video[video[track] == face_id].sort_values("frame")
    if rows.empty:
        raise AufacsError(
            f"{source} has no face {face_id}; its faces: {sorted(map(int, set(video[track])))}"
        )
    aus = table_aus(table) if aus is None else list(aus)
    course = rows[[f"{au_column(a)}_prob" for a in aus]].to_numpy(dtype=np.float64)
    index = pd.Index(rows["time_s"].to_numpy(dtype=np.float64), name="time_s")
    return pd.DataFrame(course, index=index, columns=[au_column(a) for a in aus])


def plot_time_course(
    table: pd.DataFrame,
    source: str | None = None,
    face_id: int | None = None,
    aus: Sequence[int] | None = None,
    threshold: float = 0.5,
    ax: Axes | None = None,
) -> Figure:
    """Line plot of :func:`time_course` (one line per AU, probability over seconds) with the
    decision ``threshold`` dashed; draws into ``ax`` (a new figure's if None)."""
    course = time_course(table, source, face_id, aus)
    if ax is None:
        ax = Figure(figsize=(8, 3.5), layout="constrained").add_subplot()
    for column in course.columns:
        ax.plot(course.index, course[column], label=column, linewidth=1.2)
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    return ax.figure


def prob_columns(aus: Sequence[int]) -> list[str]:
    """``AU<n>_prob`` for each AU."""
    return [f"{au_column(a)}_prob" for a in aus]


def smooth_probabilities(
    table: pd.DataFrame, aus: Sequence[int], window: int, threshold: float
) -> pd.DataFrame:
    """A copy of prediction table ``table`` whose video rows have the probabilities of AUs
    ``aus`` averaged per face track over a centred window of ``window`` predicted frames (fewer
    at the ends of a track), and their decisions re-taken at ``threshold``. A track is
    (``source``, ``face_id``), or (``source``, ``face``) in a table without ``face_id``."""
    probs = prob_columns(aus)
    track = "face_id" if "face_id" in table else "face"
    smoothed = table.copy()
    tracked = table["frame"].notna() & table[track].notna()
    if window < 2 or not tracked.any():
        return smoothed
    rows = table[tracked].sort_values(["source", track, "frame"])
    averaged = rows.groupby(["source", track])[probs].transform(
        lambda column: column.rolling(window, center=True, min_periods=1).mean()
    )
    smoothed.loc[averaged.index, probs] = averaged
    decisions = (smoothed.loc[averaged.index, probs] >= threshold).astype(int).to_numpy()
    smoothed.loc[averaged.index, [au_column(a) for a in aus]] = decisions
    return smoothed


def summary_metrics(table: pd.DataFrame) -> dict[str, float | int | None]:
    """Headline numbers of a prediction table: files, frames, faces, frames without a face,
    and the videos' frames per second (None without videos)."""
    frames = table.drop_duplicates(["source", "frame"])
    return {
        "files": int(table["source"].nunique()),
        "frames": len(frames),
        "faces": int(table["face"].notna().sum()),
        "frames_without_face": int((table["note"] == NO_FACE).sum()),
        "video_fps": table.attrs.get("fps"),
    }
