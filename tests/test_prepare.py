"""``prepare`` as a user runs it: counts that agree, one-sentence refusals, one run at a time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layout import make_bp4d, make_disfa

from aufacs.core.config import config_from_dict
from aufacs.core.errors import AufacsError
from aufacs.data.audit import image_problem
from aufacs.data.bp4d import (
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    write_au_occ_csv,
    write_landmark_mat,
)
from aufacs.data.cache import AlignedCache
from aufacs.data.cache_lock import lock_file
from aufacs.data.prepare import CACHE_FOLDER, PrepareConfig, prepare, read_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
#: Clean frames of make_bp4d's tree: 15 labelled frames less one without landmarks and one
#: without image.
CLEAN_FRAMES = 13

#: A process that holds the lock of the cache folder argv[1] until its stdin closes.
HOLD_LOCK = """
import sys
from aufacs.data.cache_lock import cache_lock
with cache_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""

#: A process that prepares the BP4D tree argv[1] and prints what became of it.
PREPARE = f"""
import sys
from pathlib import Path
from aufacs.core.errors import AufacsError
from aufacs.data.prepare import PrepareConfig, prepare
try:
    prepared = prepare(PrepareConfig(data=Path(sys.argv[1]), kind="bp4d", size={SIZE}),
                       progress=False)
except AufacsError as error:
    print(f"refused: {{error}}")
    sys.exit(2)
print(f"cached {{len(prepared.cache)}}")
"""


@pytest.fixture
def bp4d(tmp_path: Path) -> Path:
    root = tmp_path / "BP4D"
    make_bp4d(root)
    return root


def config(root: Path, **options) -> PrepareConfig:
    return PrepareConfig(data=root, kind="bp4d", size=SIZE, **options)


def python(code: str, *args: str, **options) -> subprocess.Popen:
    """A Python process running ``code`` with ``args``, its output as text pipes."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **options,
    )


def corrupt_middle(path: Path) -> None:
    """Zero everything between the JPEG start (4 bytes kept) and the end marker: the audit's
    byte check passes it, decoding fails."""
    data = bytearray(path.read_bytes())
    data[4:-2] = bytes(len(data) - 6)
    path.write_bytes(bytes(data))


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def test_a_frame_that_fails_only_at_caching_is_counted_in_the_audit(bp4d):
    image = bp4d_image_path(bp4d, "F001", "T2", 12, padded=False)
    corrupt_middle(image)
    prepared = prepare(config(bp4d), progress=False)
    report = prepared.report
    assert len(report.clean) == len(prepared.cache) == CLEAN_FRAMES - 1
    assert report.counts["unreadable_image"] == 1
    assert report.defects.loc[report.defects["kind"] == "unreadable_image", "path"].tolist() == [
        str(image)
    ]
    assert report.rates["frames"].sum() == report.balance["frames"].sum() == CLEAN_FRAMES - 1
    summary = json.loads((prepared.cache.path / "audit.json").read_text())
    assert summary["clean_frames"] == len(prepared.cache)
    assert summary["counts"]["unreadable_image"] == 1
    written = pd.read_csv(prepared.cache.path / "defects.csv")
    assert str(image) in written.loc[written["kind"] == "unreadable_image", "path"].tolist()


def test_a_reused_cache_gives_the_same_counts_as_the_build(bp4d):
    corrupt_middle(bp4d_image_path(bp4d, "F001", "T2", 12, padded=False))
    first = prepare(config(bp4d), progress=False).report
    again = prepare(config(bp4d), progress=False).report
    pd.testing.assert_frame_equal(again.clean, first.clean)
    pd.testing.assert_series_equal(again.counts, first.counts)
    assert again.warnings == first.warnings


def test_an_unknown_kind_is_refused_with_one_sentence_wherever_it_enters(tmp_path):
    expected = r"^unknown data set kind 'bp4dx'; expected one of bp4d, disfa, synthetic$"
    with pytest.raises(AufacsError, match=expected):
        PrepareConfig(data=tmp_path, kind="bp4dx")
    with pytest.raises(AufacsError, match=expected):
        config_from_dict(PrepareConfig, {"kind": "bp4dx"})  # how the command line builds it
    with pytest.raises(AufacsError, match=expected):
        read_dataset(tmp_path, "bp4dx")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "kind, message",
    [
        ("bp4d", r"BP4D folder \S+nowhere does not exist; expected a folder holding 2D\+3D/, "),
        ("disfa", r"DISFA folder \S+nowhere does not exist; expected a folder holding Action"),
        ("synthetic", r"synthetic data folder \S+nowhere does not exist; expected the output of"),
    ],
)
def test_a_missing_data_folder_is_refused_before_anything_is_written(tmp_path, kind, message):
    settings = PrepareConfig(data=tmp_path / "nowhere", kind=kind, cache=tmp_path / "cache")
    with pytest.raises(AufacsError, match=message) as refusal:
        prepare(settings, progress=False)
    assert "\n" not in str(refusal.value)
    assert files_under(tmp_path) == []


def test_a_disfa_tree_prepared_as_bp4d_is_refused_before_anything_is_written(tmp_path):
    make_disfa(tmp_path / "DISFA")
    before = files_under(tmp_path)
    expected = r"DISFA has no 2D\+3D/ folder; expected the frame images in 2D\+3D/<subject>/<task>/"
    with pytest.raises(AufacsError, match=expected):
        prepare(config(tmp_path / "DISFA"), progress=False)
    assert files_under(tmp_path) == before


def test_a_bp4d_tree_prepared_as_disfa_is_refused_before_anything_is_written(bp4d):
    before = files_under(bp4d)
    expected = r"has no ActionUnit_Labels/ folder; expected the AU files in ActionUnit_Labels/"
    with pytest.raises(AufacsError, match=expected):
        prepare(PrepareConfig(data=bp4d, kind="disfa"), progress=False)
    assert files_under(bp4d) == before


def test_a_bp4d_tree_without_its_label_folder_is_refused_before_anything_is_written(bp4d):
    for csv in (bp4d / "AUCoding" / "AU_OCC").iterdir():
        csv.unlink()
    (bp4d / "AUCoding" / "AU_OCC").rmdir()
    (bp4d / "AUCoding").rmdir()
    before = files_under(bp4d)
    with pytest.raises(AufacsError, match=r"has no AUCoding/AU_OCC/ folder; expected the AU"):
        prepare(config(bp4d), progress=False)
    assert files_under(bp4d) == before


def test_a_prepare_while_another_process_holds_the_cache_is_refused_naming_it(bp4d):
    folder = bp4d / CACHE_FOLDER
    holder = python(HOLD_LOCK, str(folder), stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        with pytest.raises(AufacsError, match=rf"in use by process {holder.pid} \(") as refusal:
            prepare(config(bp4d), progress=False)
        assert str(refusal.value).startswith(f"cache folder {folder.resolve()} is in use")
        assert not folder.exists() and not folder.with_name(CACHE_FOLDER + ".partial").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert len(prepare(config(bp4d), progress=False).cache) == CLEAN_FRAMES
    assert lock_file(folder) == bp4d.resolve() / f".{CACHE_FOLDER}.lock"


def test_two_prepares_at_once_leave_the_cache_of_a_solo_run(bp4d, tmp_path):
    solo = prepare(config(bp4d, cache=tmp_path / "solo"), progress=False).cache
    runs = [python(PREPARE, str(bp4d)) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert "Traceback" not in err, err
        finished = run.returncode == 0 and out.strip() == f"cached {len(solo)}"
        refused = run.returncode == 2 and "is in use by process" in out
        assert finished or refused, (run.returncode, out, err)
    assert 0 in [run.returncode for run in runs]
    cache = AlignedCache.open(bp4d / CACHE_FOLDER)
    np.testing.assert_array_equal(cache.images, solo.images)
    pd.testing.assert_frame_equal(cache.table, solo.table)
    assert not (bp4d / f"{CACHE_FOLDER}.partial").exists()


def real_sample_tree(fixtures: Path, root: Path) -> Path:
    """The two real BP4D frames of the fixtures, copied into a BP4D tree with their raw
    landmarks and all-present labels; returns the tree's root."""
    sample = fixtures / "bp4d_sample"
    frames = np.array([2440, 2441])
    for frame in frames:
        target = bp4d_image_path(root, "F001", "T1", int(frame))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample / "raw" / "F001" / "T1" / f"{frame}.jpg", target)
    raw = np.loadtxt(sample / "raw_landmarks.txt").reshape(-1, 49, 2) - 1.0  # 1-indexed
    write_landmark_mat(bp4d_landmark_path(root, "F001", "T1"), frames, raw)
    write_au_occ_csv(bp4d_label_path(root, "F001", "T1"), frames, np.ones((2, 12)))
    return root


def test_a_real_frame_whose_jpeg_header_is_zeroed_is_one_defect_and_not_cached(
    shared_fixtures, tmp_path
):
    root = real_sample_tree(shared_fixtures, tmp_path / "BP4D")
    image = bp4d_image_path(root, "F001", "T1", 2441)
    data = bytearray(image.read_bytes())
    scan = data.index(b"\xff\xda")  # the header runs from the first marker to the scan
    data[4:scan] = bytes(scan - 4)
    image.write_bytes(bytes(data))
    assert image_problem(str(image)) == ""  # the byte check cannot see it
    prepared = prepare(config(root), progress=False)
    assert len(prepared.report.clean) == len(prepared.cache) == 1
    assert prepared.cache.table["frame"].tolist() == [2440]
    assert prepared.report.counts["unreadable_image"] == 1
    summary = json.loads((prepared.cache.path / "audit.json").read_text())
    assert summary["clean_frames"] == 1
