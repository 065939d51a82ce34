"""JAA-Net and ME-GraphAU list files, in and out: a whole set of lists <-> one frame table.

Both projects describe a data set as line-aligned text files, one line per frame.

**JAA-Net** (``<prefix>_*.txt``, e.g. ``BP4D_combine_1_2``; PyTorch-JAANet
``data_list.py`` and ``dataset/*.py``):

==================  ====================================================================
``_path.txt``       relative image path: ``BP4D/F001/T1/2440.jpg`` (4-digit zero-padded
                    frame), ``DISFA/SN002/0.jpg`` (0-based frame); the official BP4D
                    lists end lines with CRLF, the DISFA ones with LF
``_AUoccur.txt``    n space-separated ints, 1 / 0 (9 = unknown); also spelled
                    ``_AUOccur.txt``
``_land.txt``       98 tab-separated ``%f``: x1 y1 ... x49 y49 in the **aligned 200 x 200
                    crop**, 0-indexed (``face_transform.py`` output). The raw lists fed
                    into the alignment share the name but hold 1-indexed raw-frame
                    coordinates, space separated: read those with ``landmarks="raw"``
``_biocular.txt``   one ``%f`` per line: squared inter-ocular distance in the aligned crop
``_weight.txt``     one line of n tab-separated ``%f`` AU weights
==================  ====================================================================

**ME-GraphAU** (``data/<DS>/list/``; ``tool/*.py``, ``dataset.py``):

======================================  ================================================
``{DS}_{split}_img_path_fold{k}.txt``   relative to ``data/<DS>/img/``: ``F001/T1/643.jpg``
                                        (unpadded), ``SN001/0.png`` (0-based)
``{DS}_{split}_label_fold{k}.txt``      n space-separated ``%d`` (-1 = unknown, as
                                        OpenGraphAU writes; ME-GraphAU has no code)
``{DS}_weight_fold{k}.txt``             one line of n tab-separated ``%f``
``{DS}_train_AU_relation_fold{k}.txt``  n * n space-separated ``%d``; column j * n + k
                                        holds 2 * y_j + y_k
======================================  ================================================

Reading gives a :class:`~aufacs.data.table.FrameTable`. Beyond the standard columns a
JAA-Net table may carry :data:`ALIGNED_LANDMARK_COLUMNS` (``ax0 ay0 ... ay48``, the
aligned-crop landmarks of ``_land.txt``; the raw-frame columns ``x0 ... y48`` then stay NaN)
and :data:`BIOCULAR_COLUMN`.

One file at a time (paths, label matrices, landmark lists, values, weights) is
:mod:`aufacs.data.list_files`; its readers and writers are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.aus import BP4D, DISFA, NUM_LANDMARKS, AUSet
from aufacs.core.errors import AufacsError
from aufacs.data.list_files import (
    au_relations,
    read_label_matrix,
    read_landmark_list,
    read_paths,
    read_values,
    read_weights,
    write_label_matrix,
    write_landmark_list,
    write_paths,
    write_values,
    write_weights,
)
from aufacs.data.reading import MATLAB_OFFSET
from aufacs.data.table import LANDMARK_COLUMNS, FrameTable, sex_of

__all__ = [
    "ALIGNED_LANDMARK_COLUMNS",
    "BIOCULAR_COLUMN",
    "MEGRAPHAU_KINDS",
    "OCCURRENCE_SUFFIXES",
    "au_relations",
    "jaanet_image_path",
    "megraphau_file",
    "read_jaanet_lists",
    "read_label_matrix",
    "read_landmark_list",
    "read_megraphau_lists",
    "read_paths",
    "read_values",
    "read_weights",
    "write_jaanet_lists",
    "write_label_matrix",
    "write_landmark_list",
    "write_megraphau_lists",
    "write_paths",
    "write_values",
    "write_weights",
]

#: Aligned-crop landmark columns of a table read from a JAA-Net ``_land.txt``.
ALIGNED_LANDMARK_COLUMNS = [f"a{axis}{i}" for i in range(NUM_LANDMARKS) for axis in ("x", "y")]
#: Squared inter-ocular distance (aligned crop) of a table read from ``_biocular.txt``.
BIOCULAR_COLUMN = "biocular"

#: Spellings of the JAA-Net label file suffix (official, and the seed subset's).
OCCURRENCE_SUFFIXES = ("_AUoccur.txt", "_AUOccur.txt")
#: ME-GraphAU list kinds, as they appear in the file names.
MEGRAPHAU_KINDS = ("img_path", "label", "weight", "AU_relation")

_DATASETS: dict[str, AUSet] = {"BP4D": BP4D, "DISFA": DISFA}
_PATH_PATTERN = (
    r"^(?:(?P<dataset>BP4D|DISFA)/)?(?P<subject>[^/]+)/(?:(?P<task>[^/]+)/)?"
    r"(?P<frame>[0-9]{1,9})\.[A-Za-z]+$"
)


# --------------------------------------------------------------------------- JAA-Net


def jaanet_image_path(dataset: str, subject: str, task: str, frame: int) -> str:
    """JAA-Net's relative path of a frame: ``BP4D/F001/T1/2440.jpg`` (zero-padded to four
    digits) or ``DISFA/SN002/0.jpg``."""
    if dataset == "DISFA":
        return f"DISFA/{subject}/{frame}.jpg"
    return f"{dataset}/{subject}/{task}/{frame:04d}.jpg"


def read_jaanet_lists(
    prefix: Path | str, *, image_root: Path | str | None = None, landmarks: str = "aligned"
) -> FrameTable:
    """Read ``<prefix>_path.txt`` and whichever of ``_AUoccur`` (or ``_AUOccur``),
    ``_land`` and ``_biocular`` exist beside it.

    Subject, task and frame come from the paths; ``image_path`` is ``image_root`` (default:
    the folder of the lists) joined with the relative path. The AU set follows the paths'
    ``BP4D/`` or ``DISFA/`` prefix. ``landmarks`` says what ``_land.txt`` holds:
    ``"aligned"`` (the official lists; stored in :data:`ALIGNED_LANDMARK_COLUMNS`) or
    ``"raw"`` (1-indexed raw-frame coordinates; stored 0-indexed in ``x0 ... y48``).
    """
    if landmarks not in ("aligned", "raw"):
        raise AufacsError(f"landmarks must be 'aligned' or 'raw', got {landmarks!r}")
    prefix = Path(prefix)
    path_file = Path(f"{prefix}_path.txt")
    if not path_file.is_file():
        raise AufacsError(f"{path_file} does not exist; expected a JAA-Net image path list")
    rel_paths = read_paths(path_file)
    ids = _parse_paths(rel_paths, path_file)
    datasets = ids.pop("dataset").unique()
    if len(datasets) != 1 or datasets[0] not in _DATASETS:
        raise AufacsError(f"{path_file} must list paths of one data set, BP4D/... or DISFA/...")
    aus = _DATASETS[datasets[0]]
    root = Path(image_root) if image_root is not None else prefix.parent
    occurrence = next(
        (Path(f"{prefix}{s}") for s in OCCURRENCE_SUFFIXES if Path(f"{prefix}{s}").is_file()),
        None,
    )
    labels = (
        None if occurrence is None else _aligned(read_label_matrix(occurrence), ids, occurrence)
    )
    raw_points, extras = None, []
    land_file = Path(f"{prefix}_land.txt")
    if land_file.is_file():
        points = _aligned(read_landmark_list(land_file), ids, land_file)
        if landmarks == "raw":
            raw_points = points - MATLAB_OFFSET
        else:
            flat = points.reshape(len(ids), -1)
            extras.append(pd.DataFrame(flat, columns=ALIGNED_LANDMARK_COLUMNS))
    biocular_file = Path(f"{prefix}_biocular.txt")
    if biocular_file.is_file():
        biocular = _aligned(read_values(biocular_file), ids, biocular_file)
        extras.append(pd.DataFrame({BIOCULAR_COLUMN: biocular}))
    frames = _frame_table(ids, rel_paths, root, aus, labels, raw_points)
    frames = pd.concat([frames, *extras], axis=1)
    return FrameTable(frames=frames, aus=aus, root=root)


def write_jaanet_lists(
    prefix: Path | str,
    frames: pd.DataFrame,
    aus: AUSet,
    *,
    newline: str = "\n",
    occurrence_suffix: str = "_AUoccur.txt",
) -> None:
    """Write ``<prefix>_path.txt`` and the ``occurrence_suffix`` label list for the rows
    of ``frames`` (NaN labels written as 9), plus ``_land.txt`` and ``_biocular.txt`` when
    the table has :data:`ALIGNED_LANDMARK_COLUMNS` / :data:`BIOCULAR_COLUMN`. ``newline``
    ends the path lines (``"\\r\\n"`` as in the official BP4D lists)."""
    dataset = "DISFA" if aus.name == "disfa" else "BP4D"
    rel_paths = [
        jaanet_image_path(dataset, s, t, f)
        for s, t, f in zip(frames["subject"], frames["task"], frames["frame"], strict=True)
    ]
    write_paths(f"{prefix}_path.txt", rel_paths, newline=newline)
    write_label_matrix(f"{prefix}{occurrence_suffix}", frames[aus.columns].to_numpy())
    if set(ALIGNED_LANDMARK_COLUMNS) <= set(frames.columns):
        aligned = frames[ALIGNED_LANDMARK_COLUMNS].to_numpy(dtype=np.float64)
        write_landmark_list(f"{prefix}_land.txt", aligned.reshape(-1, NUM_LANDMARKS, 2))
    if BIOCULAR_COLUMN in frames.columns:
        write_values(f"{prefix}_biocular.txt", frames[BIOCULAR_COLUMN].to_numpy())


# --------------------------------------------------------------------------- ME-GraphAU


def megraphau_file(
    list_dir: Path | str, dataset: str, kind: str, fold: int, split: str = "train"
) -> Path:
    """Path of an ME-GraphAU list: ``kind`` one of :data:`MEGRAPHAU_KINDS`; ``split``
    (``"train"`` / ``"test"``) is part of the name for ``img_path`` and ``label``."""
    if kind not in MEGRAPHAU_KINDS:
        raise AufacsError(f"kind must be one of {MEGRAPHAU_KINDS}, got {kind!r}")
    if split not in ("train", "test"):
        raise AufacsError(f"split must be 'train' or 'test', got {split!r}")
    names = {
        "img_path": f"{dataset}_{split}_img_path_fold{fold}.txt",
        "label": f"{dataset}_{split}_label_fold{fold}.txt",
        "weight": f"{dataset}_weight_fold{fold}.txt",
        "AU_relation": f"{dataset}_train_AU_relation_fold{fold}.txt",
    }
    return Path(list_dir) / names[kind]


def read_megraphau_lists(
    list_dir: Path | str,
    dataset: str,
    split: str,
    fold: int,
    *,
    image_root: Path | str | None = None,
) -> FrameTable:
    """Read ``{dataset}_{split}_img_path_fold{fold}.txt`` and, when present, the matching
    label list. ``image_root`` defaults to ME-GraphAU's ``data/<DS>/img`` beside the
    ``list`` folder."""
    if dataset not in _DATASETS:
        raise AufacsError(f"dataset must be one of {sorted(_DATASETS)}, got {dataset!r}")
    path_file = megraphau_file(list_dir, dataset, "img_path", fold, split)
    if not path_file.is_file():
        raise AufacsError(f"{path_file} does not exist; expected an ME-GraphAU image list")
    rel_paths = read_paths(path_file)
    ids = _parse_paths(rel_paths, path_file).drop(columns="dataset")
    label_file = megraphau_file(list_dir, dataset, "label", fold, split)
    labels = (
        _aligned(read_label_matrix(label_file), ids, label_file) if label_file.is_file() else None
    )
    root = Path(image_root) if image_root is not None else Path(list_dir).parent / "img"
    frames = _frame_table(ids, rel_paths, root, _DATASETS[dataset], labels)
    return FrameTable(frames=frames, aus=_DATASETS[dataset], root=root)


def write_megraphau_lists(
    list_dir: Path | str,
    frames: pd.DataFrame,
    aus: AUSet,
    *,
    split: str,
    fold: int,
) -> None:
    """Write the image and label lists of ``frames`` (and, for ``split="train"``, the AU
    relation list) as ME-GraphAU names them; unknown labels are written as -1. BP4D paths
    are ``F001/T1/643.jpg``, DISFA paths ``SN001/0.png``."""
    dataset = "DISFA" if aus.name == "disfa" else "BP4D"
    ids = zip(frames["subject"], frames["task"], frames["frame"], strict=True)
    if dataset == "DISFA":
        rel_paths = [f"{s}/{f}.png" for s, _, f in ids]
    else:
        rel_paths = [f"{s}/{t}/{f}.jpg" for s, t, f in ids]
    Path(list_dir).mkdir(parents=True, exist_ok=True)
    write_paths(megraphau_file(list_dir, dataset, "img_path", fold, split), rel_paths)
    labels = frames[aus.columns].to_numpy(dtype=np.float64)
    write_label_matrix(megraphau_file(list_dir, dataset, "label", fold, split), labels, unknown=-1)
    if split == "train":
        relations = au_relations(labels)
        path = megraphau_file(list_dir, dataset, "AU_relation", fold)
        write_label_matrix(path, relations, unknown=-1)


# --------------------------------------------------------------------------- helpers


def _parse_paths(rel_paths: list[str], list_file: Path) -> pd.DataFrame:
    """dataset (or NaN), subject, task ("" for DISFA), frame (int64) of each path."""
    parts = pd.Series(rel_paths, dtype=object).str.extract(_PATH_PATTERN)
    bad = parts["subject"].isna().to_numpy()
    if bad.any():
        line = int(np.flatnonzero(bad)[0])
        raise AufacsError(
            f"{list_file} line {line + 1} ({rel_paths[line]!r}) is not a frame path like "
            f"F001/T1/643.jpg or SN001/0.png"
        )
    return pd.DataFrame(
        {
            "dataset": parts["dataset"].to_numpy(dtype=object),
            "subject": parts["subject"].astype(str),
            "task": parts["task"].fillna("").astype(str),
            "frame": parts["frame"].astype(np.int64),
        }
    )


def _aligned(values: np.ndarray, ids: pd.DataFrame, path: Path) -> np.ndarray:
    """``values`` after checking it has one row per listed frame."""
    if len(values) != len(ids):
        raise AufacsError(f"{path} has {len(values)} lines; expected {len(ids)}, one per image")
    return values


def _frame_table(
    ids: pd.DataFrame,
    rel_paths: list[str],
    image_root: Path,
    aus: AUSet,
    labels: np.ndarray | None,
    landmarks: np.ndarray | None = None,
) -> pd.DataFrame:
    """The standard frame-table columns for listed frames (list order kept); ``labels``
    (N, n) and raw-frame ``landmarks`` (N, 49, 2, 0-indexed) are NaN when ``None``."""
    root = str(image_root)
    image_paths = [os.path.join(root, rel) for rel in rel_paths]
    frames = ids.assign(
        image_path=image_paths,
        has_image=_exists(image_paths),
        has_labels=labels is not None,
        sex=ids["subject"].map(sex_of),
    )
    au_values = np.full((len(ids), len(aus)), np.nan) if labels is None else labels
    if au_values.shape[1] != len(aus):
        raise AufacsError(
            f"the label list has {au_values.shape[1]} columns; expected {len(aus)} "
            f"({', '.join(aus.columns)})"
        )
    au_table = pd.DataFrame(au_values, columns=aus.columns, index=frames.index)
    points = np.full((len(ids), 2 * NUM_LANDMARKS), np.nan) if landmarks is None else landmarks
    landmark_table = pd.DataFrame(
        points.reshape(len(ids), -1), columns=LANDMARK_COLUMNS, index=frames.index
    )
    return pd.concat([frames, au_table, landmark_table], axis=1)


def _exists(paths: list[str]) -> np.ndarray:
    """Whether each file exists, from one directory listing per folder."""
    folders: dict[str, set[str]] = {}
    found = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        folder, name = os.path.split(path)
        if folder not in folders:
            try:
                folders[folder] = set(os.listdir(folder))
            except OSError:
                folders[folder] = set()
        found[i] = name in folders[folder]
    return found
