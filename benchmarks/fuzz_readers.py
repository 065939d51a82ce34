"""Random damage to BP4D and DISFA trees, and what the audit and ``prepare`` make of it.

``python -m benchmarks.fuzz_readers --trees 1000`` copies a tiny synthetic set (2 subjects x
2 tasks x 4 frames, written by :mod:`aufacs.data.synthetic` in the BP4D layout and laid out
again as DISFA) once per tree, every other tree in each layout, and makes 1 to 3 random
changes to each copy (:data:`benchmarks.fuzz_damage.DAMAGES`: what an interrupted copy, a
spreadsheet or a Mac or Windows file browser leave). Each tree is then audited and prepared
in this process (``--cli N``: the first N trees also through the ``aufacs audit`` and
``aufacs prepare`` commands), and these properties are checked (:func:`check_tree`):

- no traceback: only :class:`~aufacs.core.errors.AufacsError` may stop a step, and a command
  exits 0 or prints one ``aufacs ...: error:`` line;
- the clean frames of every sequence no change touched are exactly those of the undamaged
  set, and a tree whose changes are all harmless gives the undamaged audit exactly;
- a landmark file replaced by random bytes or cut short is a ``bad_landmark_file`` of its
  sequence, and every defect's detail is one line;
- the cache holds exactly the clean frames that OpenCV decodes.

It prints one line per failed tree (its seed and changes) and a table per layout; the exit
status is 1 when a property failed. ``docs/robustness.md`` gives the figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from aufacs.core.aus import DISFA_AUS, FROM_66
from aufacs.core.errors import AufacsError
from aufacs.data.audit import AuditReport
from aufacs.data.bp4d import read_bp4d
from aufacs.data.disfa import (
    disfa_image_path,
    disfa_landmark_path,
    write_disfa_labels,
    write_disfa_landmarks,
)
from aufacs.data.prepare import PrepareConfig, Prepared, audit_dataset, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.data.synthetic.planning import DEFECT_FIELDS
from aufacs.data.table import landmarks_of
from benchmarks.fuzz_damage import DAMAGES, LAYOUTS, Change, Layout, damage_tree

#: The synthetic set every tree is copied from: no planted defects, small frames.
SOURCE = SynthConfig(
    subjects=2,
    tasks=2,
    frames_per_task=4,
    frame_width=130,
    frame_height=174,
    **dict.fromkeys(DEFECT_FIELDS.values(), 0),
)
#: Side of the aligned crops the fuzzed ``prepare`` caches, pixels (small, for speed).
CROP_SIZE = 64


# --------------------------------------------------------------------------- the trees


def make_sources(folder: Path) -> dict[str, Path]:
    """The undamaged sets, one per layout: the synthetic set, and the same frames as DISFA
    (each BP4D sequence a subject, 0-based frame names, one 66-point ``.mat`` per frame)."""
    bp4d = folder / "bp4d"
    generate_synthetic(bp4d, SOURCE, progress=False)
    disfa = folder / "disfa"
    frames = read_bp4d(bp4d).frames
    for number, (_, rows) in enumerate(frames.groupby(["subject", "task"]), start=1):
        subject = f"SN{number:03d}"
        points = landmarks_of(rows)
        for t, (image, face) in enumerate(zip(rows["image_path"], points, strict=True)):
            target = disfa_image_path(disfa, subject, t, suffix=".jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, target)
            full = np.broadcast_to(face.mean(axis=0), (66, 2)).copy()
            full[list(FROM_66)] = face
            write_disfa_landmarks(
                disfa_landmark_path(disfa, subject, t, one_based_name=number % 2 == 0), full
            )
        present = rows.reindex(columns=[f"AU{au}" for au in DISFA_AUS]).fillna(0).to_numpy()
        write_disfa_labels(disfa, subject, (3 * present).astype(np.int64))
    return {"bp4d": bp4d, "disfa": disfa}


@dataclass
class Outcome:
    """What the audit and ``prepare`` made of one tree: the audit's report and the prepared
    cache, or the one sentence that refused (``refusal``) or the traceback (``crash``)."""

    root: Path
    audit: AuditReport | None = None
    prepared: Prepared | None = None
    refusal: str = ""
    crash: str = ""


def run_steps(root: Path, layout: Layout) -> Outcome:
    """Audit and prepare the tree at ``root`` in this process."""
    outcome = Outcome(root.resolve())
    config = PrepareConfig(data=root, kind=layout.kind, size=CROP_SIZE)
    try:
        outcome.audit = audit_dataset(config, root / "audit", progress=False)
        outcome.prepared = prepare(config, progress=False)
    except AufacsError as error:
        outcome.refusal = str(error)
    except Exception:  # noqa: BLE001 - what the fuzzing looks for
        outcome.crash = traceback.format_exc(limit=-3)
    return outcome


def run_commands(root: Path, layout: Layout) -> list[str]:
    """``aufacs audit`` and ``aufacs prepare`` on the tree as subprocesses: what went wrong
    (a traceback, or a failure that is not one ``aufacs ...: error:`` line)."""
    found = []
    for command in (
        ["audit", "--out", str(root / "cli_audit")],
        ["prepare", "--cache", str(root / "cli_cache"), "--size", str(CROP_SIZE)],
    ):
        argv = [sys.executable, "-m", "aufacs.cli", *command, "--data", str(root)]
        done = subprocess.run(
            [*argv, "--kind", layout.kind], capture_output=True, text=True, timeout=600
        )
        errors = [line for line in done.stderr.splitlines() if ": error:" in line]
        one_sentence = len(errors) == 1 and re.match(r"aufacs[^:]*: error: ", errors[0])
        if "Traceback" in done.stderr or (done.returncode != 0 and not one_sentence):
            found.append(f"aufacs {command[0]} exited {done.returncode}: {done.stderr[-600:]}")
    return found


# --------------------------------------------------------------------------- the properties


def sequence_keys(table: pd.DataFrame) -> pd.Series:
    """The sequence of each row of a frame or defect table, named as
    :meth:`Layout.sequence_of` names it (``F001/T1``, ``SN001``)."""
    task = table["task"].fillna("").astype(str)
    return table["subject"].astype(str) + np.where(task != "", "/" + task, "")


def clean_rows(outcome: Outcome, sequences: set[str] | None = None) -> str:
    """The audit's clean frames (of ``sequences``; None: all) as CSV text, image paths
    relative to the tree, so that trees in different folders compare."""
    clean = outcome.audit.clean
    rows = clean[sequence_keys(clean).isin(sequences)] if sequences is not None else clean
    relative = [Path(p).relative_to(outcome.root).as_posix() for p in rows["image_path"]]
    return rows.assign(image_path=relative).to_csv(index=False)


def check_tree(
    layout: Layout, changes: list[Change], baseline: Outcome, outcome: Outcome
) -> list[str]:
    """The properties of the module docstring that ``outcome`` breaks, one sentence each."""
    if outcome.crash:
        return [f"traceback: {outcome.crash}"]
    if outcome.refusal:
        return []  # one sentence, as the command prints it
    found = []
    touched = {layout.sequence_of(c.path) for c in changes if c.harmful}
    untouched = set(sequence_keys(baseline.audit.clean)) - touched
    if clean_rows(baseline, untouched) != clean_rows(outcome, untouched):
        found.append(f"the clean frames of the untouched sequences {sorted(untouched)} changed")
    same_counts = outcome.audit.counts.equals(baseline.audit.counts)
    if not touched and not (same_counts and clean_rows(baseline) == clean_rows(outcome)):
        found.append("harmless changes changed the audit")
    found += _expected_defects(layout, changes, outcome)
    details = outcome.prepared.report.defects["detail"].astype(str)
    if details.str.contains("\n").any():
        found.append("a defect's detail runs over several lines")
    return found + _cache_problems(outcome.prepared)


def _expected_defects(layout: Layout, changes: list[Change], outcome: Outcome) -> list[str]:
    """A change with an expected defect kind that its sequence does not show, where no later
    change touched the same file."""
    defects = outcome.audit.defects
    keys = sequence_keys(defects)
    found = []
    for position, change in enumerate(changes):
        later = any(c.path == change.path for c in changes[position + 1 :])
        if change.expect is None or later:
            continue
        hit = (defects["kind"] == change.expect) & defects["path"].astype(str).str.endswith(
            change.path
        )
        if not (keys[hit] == layout.sequence_of(change.path)).any():
            found.append(f"{change.path} ({change.kind}) is no {change.expect} of its sequence")
    return found


def _cache_problems(prepared: Prepared) -> list[str]:
    """Where the cache is not exactly the clean frames that OpenCV decodes."""
    ids = ["subject", "task", "frame"]
    cached = set(prepared.cache.table[ids].itertuples(index=False, name=None))
    clean = set(prepared.report.clean[ids].itertuples(index=False, name=None))
    found = [] if cached == clean else ["the cache and the clean frames differ"]
    if any(cv2.imread(p) is None for p in prepared.report.clean["image_path"]):
        found.append("a clean frame does not decode")
    if any(cv2.imread(p) is not None for p in prepared.cache.defects["path"]):
        found.append("a frame left out of the cache decodes")
    return found


# --------------------------------------------------------------------------- the run


@dataclass
class Tally:
    """One layout's figures: trees, changes by kind, refusals, tracebacks and the trees
    that broke a property (one line each)."""

    trees: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    refusals: int = 0
    tracebacks: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz(
    trees: int,
    folder: Path,
    *,
    seed: int = 0,
    layouts: tuple[str, ...] = ("bp4d", "disfa"),
    commands: int = 0,
) -> dict[str, Tally]:
    """Damage ``trees`` copies of the sources (layouts in turn) in ``folder`` and check
    each; the first ``commands`` trees also through the command line."""
    sources = make_sources(folder / "sources")
    baselines = {
        kind: run_steps(_copy(sources[kind], folder / f"{kind}_clean"), LAYOUTS[kind])
        for kind in layouts
    }
    tallies = {kind: Tally() for kind in layouts}
    for index in range(trees):
        kind = layouts[index % len(layouts)]
        layout, tally = LAYOUTS[kind], tallies[kind]
        root = _copy(sources[kind], folder / "tree")
        changes = damage_tree(root, layout, np.random.default_rng([seed, index]))
        problems = run_commands(root, layout) if index < commands else []
        outcome = run_steps(root, layout)
        problems += check_tree(layout, changes, baselines[kind], outcome)
        tally.trees += 1
        tally.refusals += bool(outcome.refusal)
        tally.tracebacks += any("Traceback" in p for p in problems)  # the crash or a command
        for change in changes:
            tally.changes[change.kind] = tally.changes.get(change.kind, 0) + 1
        if problems:
            listed = ", ".join(f"{c.kind} {c.path}" for c in changes)
            tally.failures.append(f"tree {index} ({kind}; {listed}): {'; '.join(problems)}")
        shutil.rmtree(root)
    return tallies


def _copy(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    return Path(shutil.copytree(source, target))


def main(argv: list[str] | None = None) -> int:
    """Fuzz as the flags say, print the failed trees and the tables; 1 when a tree failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=100, help="damaged trees, layouts in turn")
    parser.add_argument("--seed", type=int, default=0, help="seed of the damage")
    parser.add_argument("--layouts", nargs="+", default=["bp4d", "disfa"], choices=LAYOUTS)
    parser.add_argument(
        "--cli", type=int, default=0, help="trees also run through `aufacs audit` and `prepare`"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aufacs_fuzz_") as folder:
        tallies = fuzz(
            args.trees,
            Path(folder),
            seed=args.seed,
            layouts=tuple(args.layouts),
            commands=args.cli,
        )
    seconds = time.perf_counter() - start
    for tally in tallies.values():
        for failure in tally.failures:
            print(failure)
    print("| layout | trees | changes | refused in one sentence | tracebacks | failed trees |")
    print("|---|---|---|---|---|---|")
    for kind, t in tallies.items():
        changes = sum(t.changes.values())
        failed = len(t.failures)
        print(f"| {kind} | {t.trees} | {changes} | {t.refusals} | {t.tracebacks} | {failed} |")
    drawn = Counter()
    for tally in tallies.values():
        drawn.update(tally.changes)
    print("changes by kind: " + ", ".join(f"{kind} {drawn[kind]}" for kind in DAMAGES))
    print(f"{sum(t.trees for t in tallies.values())} trees in {seconds:.0f} s (seed {args.seed})")
    return 1 if any(t.failures for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
