"""The data-cleaning step: every defect of a frame table, and the frames fit for training.

:func:`audit` takes a :class:`~aufacs.data.table.FrameTable` (and optionally a subject
:class:`~aufacs.data.splits.Split`) and returns an :class:`AuditReport`:

* ``clean``: the frames fit for training, one row per (subject, task, frame);
* ``defects``: one row per problem (schema :data:`~aufacs.data.table.DEFECT_COLUMNS`): the
  readers' problems (a bad label row or landmark entry names its frame, which is dropped),
  then every frame-level defect; a frame with several defects has one row per defect and is
  dropped once;
* summaries: defect counts by kind, AU occurrence rates and subject / sex balance per split,
  and one-sentence warnings (subject leakage, a single-sex split, ...).

Nothing is dropped silently: every frame of the table that is absent from ``clean`` has at
least one defect row. Subject leakage is reported but drops nothing (which side should lose
the subject is the user's choice).

All checks are vectorised over the table; only the optional image check touches the files,
and it reads just the first and last bytes of each (JPEG start / end markers, PNG signature
and ``IEND`` chunk), which finds empty and truncated files without decoding them. A file
damaged in the middle passes here and is reported when the cache decodes it
(:func:`aufacs.data.cache_build.build_cache`); :func:`exclude_frames` adds such late findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aufacs.core.aus import AUSet
from aufacs.core.errors import AufacsError
from aufacs.data.naming import odd_names
from aufacs.data.splits import Split, leakage
from aufacs.data.stats import rates_by
from aufacs.data.table import (
    DEFECT_COLUMNS,
    DEFECT_KINDS,
    ID_COLUMNS,
    LANDMARK_COLUMNS,
    FrameTable,
    empty_defects,
    sex_of,
)

#: Split values of the ``split`` column, and how the warnings name them.
SPLIT_NAMES: dict[str, str] = {"train": "the training split", "test": "the test split"}
#: Group name of the summaries when no split is given.
ALL_FRAMES = "all"
_GROUP_NAMES = {**SPLIT_NAMES, ALL_FRAMES: "the data set", "": "the unassigned frames"}

_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
#: Bytes read at the end of a file when looking for the end marker (tolerates padding).
_TAIL_BYTES = 64

_REQUIRED_COLUMNS = [*ID_COLUMNS, "image_path", "has_image", "has_labels"]


@dataclass
class AuditReport:
    """What :func:`audit` found.

    ``clean``: the frames fit for training (frame-table columns, plus ``split`` =
    ``"train"`` / ``"test"`` / ``""`` when a split was given or the table had one), sorted
    by subject, task and frame. ``defects``: one row per problem, columns
    :data:`~aufacs.data.table.DEFECT_COLUMNS`. ``counts``: number of defect rows per kind
    (every kind of :data:`~aufacs.data.table.DEFECT_KINDS`, zeros included). ``rates``: per
    split (index), the clean frame count and each AU's occurrence rate. ``balance``: per
    split (index), columns ``subjects``, ``frames``, ``female_subjects``, ``male_subjects``.
    ``warnings``: one sentence per finding worth a look.
    """

    clean: pd.DataFrame
    defects: pd.DataFrame
    counts: pd.Series
    rates: pd.DataFrame
    balance: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def audit(
    table: FrameTable,
    split: Split | None = None,
    *,
    check_images: bool = True,
    require_landmarks: bool = True,
    progress: bool = False,
) -> AuditReport:
    """Find every defect of ``table`` and return the clean frames with the findings.

    ``split``: assigns each frame to ``"train"`` / ``"test"`` by subject (``""`` for a
    subject in neither; a subject in both is marked ``"train"`` and reported as leakage). A
    ``split`` column already in the table (e.g. from a training and a test list read
    together) takes precedence over ``split``.

    ``check_images``: check that each image exists and is not empty or truncated. With
    ``False`` the images are assumed present (e.g. list files read without the images): no
    ``missing_image`` / ``unreadable_image`` defects, and a frame without labels is reported
    as ``unlabelled_image``. ``require_landmarks``: frames without finite landmarks are
    defects; with ``False`` the landmarks are not checked at all (lists without landmarks).
    ``progress``: a progress bar over the image checks.
    """
    frames = _checked_frames(table)
    split_of = _split_column(frames, split)
    dropped, defects = _frame_defects(
        frames,
        table,
        check_images=check_images,
        require_landmarks=require_landmarks,
        progress=progress,
    )
    leaked = _leakage_defects(frames, split_of, split)
    defects = _concat_defects([table.problems, defects, leaked])
    group = split_of if split_of is not None else pd.Series(ALL_FRAMES, index=frames.index)
    clean = frames.loc[~dropped].assign(_group=group[~dropped])
    return _report(clean, defects, table.aus, total=len(frames), has_split=split_of is not None)


def exclude_frames(report: AuditReport, table: FrameTable, defects: pd.DataFrame) -> AuditReport:
    """``report`` (the audit of ``table``) with the frames that ``defects`` names dropped.

    ``defects``: frame-level defect rows (:data:`~aufacs.data.table.DEFECT_COLUMNS`) found
    after the audit, e.g. the images the cache could not decode
    (:attr:`aufacs.data.cache.AlignedCache.defects`). Their frames leave ``clean``; the rows
    join ``defects`` and every summary, count and warning is recomputed, so the report
    counts the frames exactly as if the audit had found them.
    """
    if defects.empty:
        return report
    named = _named_frames(report.clean, defects)
    has_split = "split" in report.clean.columns
    groups = report.clean["split"] if has_split else ALL_FRAMES
    clean = report.clean.assign(_group=groups).loc[~named.to_numpy()]
    found = _concat_defects([report.defects, defects])
    return _report(clean, found, table.aus, total=len(table.frames), has_split=has_split)


def _report(
    clean: pd.DataFrame, defects: pd.DataFrame, aus: AUSet, *, total: int, has_split: bool
) -> AuditReport:
    """The report of the clean frames (with their group in ``_group``) out of ``total``."""
    clean = clean.sort_values(ID_COLUMNS, kind="stable").reset_index(drop=True)
    groups = clean.pop("_group")
    if has_split:
        clean["split"] = groups
    counts = defects["kind"].value_counts().reindex(list(DEFECT_KINDS), fill_value=0)
    counts.name = "count"
    rates = rates_by(clean.assign(_group=groups), aus, "_group")
    rates.index.name = "split"
    balance = _balance(clean, groups)
    leaked = defects.loc[defects["kind"] == "subject_leakage", "subject"]
    warnings = [f"subject {s} is in both the training and the test split" for s in leaked]
    warnings += _balance_warnings(balance, rates, aus, has_split=has_split)
    if len(clean) < total:
        warnings.append(f"{total - len(clean)} of {total} frames were dropped; see the defects")
    return AuditReport(clean, defects, counts, rates, balance, warnings)


def image_problem(path: str) -> str:
    """Why the image file at ``path`` is unusable, or ``""`` if it looks whole.

    Reads only the first and the last bytes: a JPEG must start with the SOI marker and end
    with EOI, a PNG must start with its signature and end with the ``IEND`` chunk.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_PNG_START))
            size = handle.seek(0, 2)
            handle.seek(max(size - _TAIL_BYTES, 0))
            tail = handle.read()
    except OSError as error:
        return f"the file cannot be read ({error.strerror or error})"
    if size == 0:
        return "the file is empty"
    if head.startswith(_JPEG_START):
        return "" if _JPEG_END in tail else "the JPEG has no end-of-image marker (truncated)"
    if head.startswith(_PNG_START):
        return "" if _PNG_END in tail else "the PNG has no IEND chunk (truncated)"
    return "the file is neither a JPEG nor a PNG"


def _checked_frames(table: FrameTable) -> pd.DataFrame:
    """The table's frames with a fresh index, or AufacsError if contract columns are absent."""
    frames = table.frames
    missing = [c for c in [*_REQUIRED_COLUMNS, *table.aus.columns] if c not in frames.columns]
    if missing:
        raise AufacsError(f"the frame table lacks the columns {missing}; read it with aufacs.data")
    frames = frames.reset_index(drop=True)
    if "sex" not in frames.columns:
        frames = frames.assign(sex=frames["subject"].map(sex_of))
    return frames


def _split_column(frames: pd.DataFrame, split: Split | None) -> pd.Series | None:
    """Each frame's split (``"train"``, ``"test"`` or ``""``), or None without a split."""
    if "split" in frames.columns:
        values = frames["split"].fillna("").astype(str)
        unknown = sorted(set(values) - {*SPLIT_NAMES, ""})
        if unknown:
            raise AufacsError(
                f"the frame table's split column holds {unknown}; expected 'train', 'test' or ''"
            )
        return values
    if split is None:
        return None
    role = frames["subject"].map(
        {s: "test" for s in split.test} | {s: "train" for s in split.train}
    )
    return role.fillna("")


def _frame_defects(
    frames: pd.DataFrame,
    table: FrameTable,
    *,
    check_images: bool,
    require_landmarks: bool,
    progress: bool,
) -> tuple[pd.Series, pd.DataFrame]:
    """Which frames are dropped (boolean Series) and their defect rows, one per defect."""
    has_image = frames["has_image"].astype(bool)
    # A frame whose label row or landmark entry the reader refused is dropped for that
    # reason (its row in the reader's problems), not again as unlabelled or landmark-less.
    problems = table.problems.reindex(columns=DEFECT_COLUMNS)
    bad_row, bad_entry = (
        _named_frames(frames, problems[problems["kind"] == kind])
        for kind in ("bad_label_row", "bad_landmark_entry")
    )
    has_labels = frames["has_labels"].astype(bool)
    unlabelled = ~has_labels & ~bad_row
    checks: dict[str, tuple[pd.Series, pd.Series | str]] = {}
    if check_images:
        problem = _image_problems(frames["image_path"], has_image, progress)
        checks["missing_image"] = (~has_image, "no image file at this path")
        checks["unreadable_image"] = (problem != "", problem)
        checks["unlabelled_image"] = (has_image & unlabelled, "the image has no label row")
    else:
        checks["unlabelled_image"] = (unlabelled, "the frame has no label row")
    unknown = frames[table.aus.columns].isna().all(axis=1)
    checks["all_unknown_labels"] = (has_labels & unknown, "every AU is not coded (9) or missing")
    if require_landmarks:
        points = frames.reindex(columns=LANDMARK_COLUMNS).to_numpy(dtype=np.float64)
        bad = (~np.isfinite(points)).sum(axis=1)
        none = pd.Series(np.isnan(points).all(axis=1), index=frames.index)
        some = pd.Series(bad > 0, index=frames.index) & ~none
        detail = pd.Series(bad, index=frames.index).astype(str) + (
            f" of {points.shape[1]} landmark coordinates are NaN or infinite"
        )
        checks["missing_landmarks"] = (none & ~bad_entry, "the frame has no landmarks")
        checks["nonfinite_landmarks"] = (some, detail)
    checks["duplicate_frame"] = _duplicates(frames)
    parts = [_defect_rows(frames, kind, mask, detail) for kind, (mask, detail) in checks.items()]
    masks = [bad_row, bad_entry, *(mask for mask, _ in checks.values())]
    dropped = np.logical_or.reduce([mask.to_numpy() for mask in masks])
    return pd.Series(dropped, index=frames.index), _concat_defects(parts)


def _named_frames(frames: pd.DataFrame, defects: pd.DataFrame) -> pd.Series:
    """Which rows of ``frames`` have their (subject, task, frame) named by a row of
    ``defects`` (boolean Series on the index of ``frames``)."""
    defects = defects.reindex(columns=DEFECT_COLUMNS)
    rows = defects[defects["frame"].notna()]
    named = set(
        zip(
            rows["subject"].astype(str),
            rows["task"].fillna("").astype(str),
            rows["frame"].astype(np.int64),
            strict=True,
        )
    )
    keys = zip(frames["subject"], frames["task"], frames["frame"], strict=True)
    return pd.Series([key in named for key in keys] if named else False, index=frames.index)


def _image_problems(paths: pd.Series, has_image: pd.Series, progress: bool) -> pd.Series:
    """:func:`image_problem` of every existing image (``""`` for the others)."""
    problem = pd.Series("", index=paths.index, dtype=object)
    present = paths[has_image]
    found = [
        image_problem(p)
        for p in tqdm(present, desc="checking images", unit="img", disable=not progress)
    ]
    problem[present.index] = found
    return problem


def _duplicates(frames: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Rows repeating an earlier (subject, task, frame), with details. Of the rows of one
    frame, the one named in the style its sequence mostly uses (``0643.jpg`` or ``643.jpg``,
    see :func:`~aufacs.data.naming.odd_names`) is kept, then the first in path order."""
    order = frames.assign(_odd=odd_names(frames)).sort_values(["_odd", "image_path"], kind="stable")
    repeated = order.duplicated(ID_COLUMNS, keep="first").reindex(frames.index)
    kept = order.groupby(ID_COLUMNS, sort=False)["image_path"].transform("first")
    detail = "repeats the frame of " + kept.reindex(frames.index).astype(str) + ", which is kept"
    return repeated, detail


def _defect_rows(
    frames: pd.DataFrame, kind: str, mask: pd.Series, detail: pd.Series | str
) -> pd.DataFrame:
    """Defect rows of ``kind`` for the frames selected by ``mask``."""
    hit = frames.loc[mask.to_numpy()]
    why = detail[mask] if isinstance(detail, pd.Series) else pd.Series(detail, index=hit.index)
    return pd.DataFrame(
        {
            "kind": kind,
            "subject": hit["subject"],
            "task": hit["task"],
            "frame": hit["frame"].astype(object),
            "path": hit["image_path"],
            "detail": why.astype(str) + "; dropped",
        },
        columns=DEFECT_COLUMNS,
    )


def _concat_defects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Defect tables one after the other, in the :data:`DEFECT_COLUMNS` schema."""
    rows = [p.reindex(columns=DEFECT_COLUMNS).astype(object) for p in parts if len(p)]
    return pd.concat(rows, ignore_index=True) if rows else empty_defects()


def _leakage_defects(
    frames: pd.DataFrame, split_of: pd.Series | None, split: Split | None
) -> pd.DataFrame:
    """One ``subject_leakage`` row per subject in both splits (nothing is dropped for it)."""
    if split_of is None:
        return empty_defects()
    sides = pd.crosstab(frames["subject"], split_of).reindex(
        columns=list(SPLIT_NAMES), fill_value=0
    )
    if split is not None and "split" not in frames.columns:
        subjects = list(leakage(split))
        details = [
            f"the split lists the subject on both sides; its {sides['train'].get(s, 0)} frames "
            "are marked 'train', not dropped"
            for s in subjects
        ]
    else:
        subjects = list(sides.index[(sides["train"] > 0) & (sides["test"] > 0)])
        details = [
            f"{sides.at[s, 'train']} training and {sides.at[s, 'test']} test frames; not dropped"
            for s in subjects
        ]
    return pd.DataFrame(
        {"kind": "subject_leakage", "subject": subjects, "detail": details}, columns=DEFECT_COLUMNS
    )


def _balance(clean: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Per split: distinct subjects, frames, and female / male subject counts."""
    subjects = clean[["subject", "sex"]].assign(split=groups).drop_duplicates()
    sexes = pd.crosstab(subjects["split"], subjects["sex"]).reindex(
        columns=["F", "M"], fill_value=0
    )
    balance = pd.DataFrame(
        {
            "subjects": subjects.groupby("split").size(),
            "frames": groups.value_counts(),
            "female_subjects": sexes["F"],
            "male_subjects": sexes["M"],
        }
    )
    balance.index.name = "split"
    return balance.fillna(0).astype(int)


def _balance_warnings(
    balance: pd.DataFrame, rates: pd.DataFrame, aus: AUSet, *, has_split: bool
) -> list[str]:
    """Sentences on single-sex, empty or unassigned splits and on AUs a split never shows."""
    expected = SPLIT_NAMES if has_split else {ALL_FRAMES: _GROUP_NAMES[ALL_FRAMES]}
    found = [
        f"{name} has no clean frames" for g, name in expected.items() if g not in balance.index
    ]
    for group, row in balance.iterrows():
        if group == "":
            found.append(
                f"{row['frames']} clean frames of {row['subjects']} subjects belong to neither "
                "the training nor the test split"
            )
        elif row["female_subjects"] == row["subjects"]:
            found.append(f"{_GROUP_NAMES[group]} is female only")
        elif row["male_subjects"] == row["subjects"]:
            found.append(f"{_GROUP_NAMES[group]} is male only")
    for group, row in rates.iterrows():
        never = [c for c in aus.columns if row[c] == 0]
        if never:
            found.append(f"{_GROUP_NAMES[group]} has no clean frame with {', '.join(never)}")
    return found
