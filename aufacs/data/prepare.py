"""Raw data set on disk -> audited, aligned, cached: the one data step before training.

``prepare(PrepareConfig(data=ROOT, kind="bp4d"))`` reads the raw layout, audits it against a
subject split (for the leakage and balance checks), aligns every clean frame once into the
aligned-crop cache (by default ``<ROOT>/aufacs_cache``) and writes the audit there:
``defects.csv`` (one row per problem), ``audit.json`` (counts, warnings, rates, balance).
Frames the cache cannot decode are counted in that audit, so its clean frames are the cached
ones. An unknown kind, a missing data folder or one that is not a copy of the kind is refused
with one sentence before anything is written; the whole step holds the cache folder's lock
(:mod:`aufacs.data.cache_lock`), so a second ``prepare`` of the same cache refuses at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aufacs.core.errors import AufacsError
from aufacs.data.audit import AuditReport, audit, exclude_frames
from aufacs.data.bp4d import bp4d_folders, read_bp4d
from aufacs.data.cache import AlignedCache
from aufacs.data.cache_build import build_cache
from aufacs.data.cache_lock import cache_lock
from aufacs.data.disfa import disfa_folders, read_disfa
from aufacs.data.splits import Split, split_subjects, standard_fold
from aufacs.data.table import FrameTable

#: Data set kinds and their readers; the synthetic set is written in the BP4D layout.
KINDS = ("bp4d", "disfa", "synthetic")
CACHE_FOLDER = "aufacs_cache"


@dataclass(frozen=True)
class PrepareConfig:
    """What to prepare and where the cache goes."""

    data: Path = field(default=Path("data/synthetic"), metadata={"help": "data set root folder"})
    kind: str = field(default="synthetic", metadata={"help": "bp4d, disfa or synthetic"})
    fold: int = field(default=1, metadata={"help": "fold (1-3) whose split the audit checks"})
    cache: Path | None = field(
        default=None, metadata={"help": "cache folder (default: <data>/aufacs_cache)"}
    )
    size: int = field(default=200, metadata={"help": "aligned face size in pixels"})
    box_enlarge: float = field(default=2.9, metadata={"help": "alignment box enlargement"})
    check_images: bool = field(
        default=True, metadata={"help": "check every image for truncation (reads two bytes ends)"}
    )

    def __post_init__(self) -> None:
        check_kind(self.kind)


@dataclass
class Prepared:
    """The audit of a data set and the cache of its clean frames."""

    report: AuditReport
    cache: AlignedCache


def cache_folder(data: Path | str, cache: Path | str | None = None) -> Path:
    """Where the aligned-crop cache of data set ``data`` lives: ``cache``, or
    ``<data>/aufacs_cache`` when it is None."""
    return Path(cache) if cache is not None else Path(data) / CACHE_FOLDER


def check_kind(kind: str) -> None:
    """:class:`AufacsError` unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise AufacsError(f"unknown data set kind {kind!r}; expected one of {', '.join(KINDS)}")


def check_dataset(root: Path | str, kind: str) -> Path:
    """``root`` resolved if it looks like a data set of ``kind`` (its folders are where the
    reader expects them), else :class:`AufacsError` saying what was expected where. Reads
    no file and writes nothing."""
    check_kind(kind)
    if kind == "synthetic" and not Path(root).expanduser().exists():
        raise AufacsError(
            f"synthetic data folder {root} does not exist; expected the output of "
            f"`aufacs synth --out {root}` there"
        )
    if kind == "disfa":
        return disfa_folders(root)[0]
    return bp4d_folders(root)[0]


def read_dataset(root: Path, kind: str, *, progress: bool = False) -> FrameTable:
    """Read a raw data set of ``kind`` (``bp4d``, ``disfa`` or ``synthetic``)."""
    check_kind(kind)
    if kind == "disfa":
        return read_disfa(root, progress=progress)
    return read_bp4d(root, progress=progress)


def dataset_split(table: FrameTable, kind: str, fold: int) -> Split:
    """The subject split of fold ``fold``: the standard 3-fold protocol for BP4D and DISFA,
    a deterministic sex-balanced 3-fold split of the subjects present for the synthetic set."""
    if kind == "synthetic":
        return split_subjects(sorted(table.frames["subject"].unique()), fold)
    return standard_fold(kind, fold)


def audit_dataset(config: PrepareConfig, out: Path, *, progress: bool = True) -> AuditReport:
    """Read and audit ``config.data`` without caching anything; writes the audit
    (``defects.csv``, ``audit.json``) and the clean frames (``clean.csv``) to ``out``."""
    root = check_dataset(config.data, config.kind)
    table = read_dataset(root, config.kind, progress=progress)
    split = dataset_split(table, config.kind, config.fold)
    report = audit(table, split, check_images=config.check_images, progress=progress)
    write_audit(report, out, kind=config.kind)
    report.clean.to_csv(out / "clean.csv", index=False)
    return report


def prepare(config: PrepareConfig, *, progress: bool = True) -> Prepared:
    """Read, audit and cache ``config.data``; returns the audit and the cache.

    The audit returned and written counts the frames the cache could not decode, so its
    ``clean`` frames are exactly the cached ones. Raises :class:`AufacsError` before writing
    anything when the kind is unknown or the folder is no data set of that kind, and when
    another process is preparing or building the same cache folder.
    """
    root = check_dataset(config.data, config.kind)
    folder = cache_folder(config.data, config.cache)
    with cache_lock(folder):
        table = read_dataset(root, config.kind, progress=progress)
        report = audit(
            table,
            dataset_split(table, config.kind, config.fold),
            check_images=config.check_images,
            progress=progress,
        )
        cache = build_cache(
            report.clean,
            folder,
            size=config.size,
            box_enlarge=config.box_enlarge,
            progress=progress,
        )
        report = exclude_frames(report, table, cache.defects)
        write_audit(report, folder, kind=config.kind)
    return Prepared(report, cache)


def write_audit(report: AuditReport, folder: Path, *, kind: str) -> None:
    """Write ``defects.csv`` and ``audit.json`` (counts, warnings, rates, balance) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    report.defects.to_csv(folder / "defects.csv", index=False)
    summary = {
        "kind": kind,
        "clean_frames": len(report.clean),
        "counts": {k: int(v) for k, v in report.counts.items()},
        "warnings": report.warnings,
        "rates": json.loads(report.rates.to_json(orient="index")),
        "balance": json.loads(report.balance.to_json(orient="index")),
    }
    (folder / "audit.json").write_text(json.dumps(summary, indent=2) + "\n")
