"""Random damage to BP4D and DISFA trees costs no traceback and no clean frame it did not touch.

The fast size of ``python -m benchmarks.fuzz_readers`` (the large run's figures are in
docs/robustness.md), the same damage to the community's list files, and the one guard that
makes any failure to read a file its sentence.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError, reading_file
from aufacs.data.lists import (
    ALIGNED_LANDMARK_COLUMNS,
    BIOCULAR_COLUMN,
    read_jaanet_lists,
    read_megraphau_lists,
    write_jaanet_lists,
    write_megraphau_lists,
)
from benchmarks.fuzz_damage import DAMAGES
from benchmarks.fuzz_readers import fuzz

#: Damaged trees of the fast size, half of them BP4D, half DISFA.
TREES = 20


@pytest.fixture(scope="module")
def tallies(tmp_path_factory):
    return fuzz(TREES, tmp_path_factory.mktemp("fuzz"), seed=0)


def test_damaged_trees_are_audited_and_prepared_without_a_traceback_or_a_broken_property(
    tallies,
):
    assert [failure for tally in tallies.values() for failure in tally.failures] == []
    assert {kind: (t.trees, t.tracebacks) for kind, t in tallies.items()} == {
        "bp4d": (TREES // 2, 0),
        "disfa": (TREES // 2, 0),
    }


def test_the_fast_size_draws_every_kind_of_damage(tallies):
    drawn = {kind for tally in tallies.values() for kind in tally.changes}
    assert drawn == set(DAMAGES)


def test_the_command_runs_a_tree_through_aufacs_audit_and_prepare_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fuzz_readers", "--trees", "2", "--cli", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "| bp4d | 1 |" in done.stdout and "| disfa | 1 |" in done.stdout
    assert re.search(r"^2 trees in \d+ s \(seed 0\)$", done.stdout, re.MULTILINE)


@pytest.mark.parametrize("error", [ValueError("bad"), IndexError(), ZeroDivisionError("x")])
def test_any_failure_to_read_a_file_becomes_one_sentence_naming_it(error):
    with pytest.raises(AufacsError, match=r"^F001_T1\.mat could not be read as a MAT-file \("):
        with reading_file("F001_T1.mat", "a MAT-file"):
            raise error


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
def test_an_interrupt_or_a_lack_of_memory_is_not_taken_for_a_damaged_file(error):
    with pytest.raises(error):
        with reading_file("F001_T1.mat", "a MAT-file"):
            raise error


def write_lists(folder: Path) -> None:
    """JAA-Net lists (paths, labels, aligned landmarks, biocular) and ME-GraphAU lists of
    six BP4D frames."""
    rng = np.random.default_rng(0)
    ids = {"subject": ["F001"] * 3 + ["M002"] * 3, "task": ["T1"] * 6, "frame": [1, 2, 3] * 2}
    labels = rng.integers(0, 2, (6, len(BP4D.columns))).astype(float)
    points = rng.uniform(0, 200, (6, len(ALIGNED_LANDMARK_COLUMNS)))
    frames = pd.concat(
        [
            pd.DataFrame(ids),
            pd.DataFrame(labels, columns=BP4D.columns),
            pd.DataFrame(points, columns=ALIGNED_LANDMARK_COLUMNS),
            pd.DataFrame({BIOCULAR_COLUMN: rng.uniform(100, 900, 6)}),
        ],
        axis=1,
    )
    write_jaanet_lists(folder / "BP4D_part1", frames, BP4D, newline="\r\n")
    write_megraphau_lists(folder / "list", frames, BP4D, split="train", fold=1)


def read_lists(folder: Path) -> list[pd.DataFrame]:
    return [
        read_jaanet_lists(folder / "BP4D_part1").frames,
        read_megraphau_lists(folder / "list", "BP4D", "train", 1).frames,
    ]


#: What is done to a list file: kinds of :data:`~benchmarks.fuzz_damage.DAMAGES`.
LIST_DAMAGES = (
    "label_bytes_changed",
    "garbage_or_short_line",
    "empty_label_file",
    "truncated_image",  # cuts any file short
    "random_bytes_mat",  # fills any file with random bytes
    "crlf_endings",
    "utf8_bom",
)


def test_damaged_list_files_are_read_or_refused_in_one_sentence_and_harmless_changes_change_nothing(
    tmp_path,
):
    write_lists(tmp_path / "clean")
    expected = read_lists(tmp_path / "clean")
    rng = np.random.default_rng(1)
    refused = 0
    for attempt in range(40):
        folder = Path(shutil.copytree(tmp_path / "clean", tmp_path / str(attempt)))
        files = sorted(p for p in folder.rglob("*.txt"))
        kind = LIST_DAMAGES[attempt % len(LIST_DAMAGES)]
        DAMAGES[kind].apply(files[rng.integers(len(files))], rng)
        harmful = DAMAGES[kind].harmful
        try:
            tables = read_lists(folder)
        except AufacsError as error:
            assert harmful and "\n" not in str(error), (kind, str(error))
            refused += 1
            continue
        if not harmful:
            for table, before in zip(tables, expected, strict=True):
                relative = table["image_path"].str.replace(str(folder), "", regex=False)
                was = before["image_path"].str.replace(str(tmp_path / "clean"), "", regex=False)
                pd.testing.assert_frame_equal(
                    table.assign(image_path=relative), before.assign(image_path=was)
                )
    assert refused > 10
