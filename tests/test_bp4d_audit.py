"""The audit of raw BP4D trees: a bad label row, landmark entry or stray name costs one frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layout import (
    insert_line,
    make_bp4d,
    random_landmarks,
    set_field,
    write_image,
    write_landmark_entries,
)

from aufacs.data.audit import audit, exclude_frames
from aufacs.data.bp4d import bp4d_image_path, bp4d_label_path, bp4d_landmark_path, read_bp4d
from aufacs.data.table import DEFECT_COLUMNS


@pytest.fixture
def tree(tmp_path: Path):
    """(root, what make_bp4d wrote, the number of clean frames of the untouched tree)."""
    root = tmp_path / "BP4D"
    written = make_bp4d(root)
    return root, written, len(audit(read_bp4d(root)).clean)


def clean_frames(report, subject: str, task: str) -> list[int]:
    rows = report.clean[(report.clean["subject"] == subject) & (report.clean["task"] == task)]
    return rows["frame"].tolist()


def test_a_garbage_label_line_drops_no_frame_and_is_one_defect_naming_file_and_line(tree):
    root, _, clean_count = tree
    path = bp4d_label_path(root, "F001", "T2")
    insert_line(path, 5, "#### garbage ####")
    report = audit(read_bp4d(root))
    assert len(report.clean) == clean_count
    assert clean_frames(report, "F001", "T2") == [11, 12, 13, 14, 15]
    (row,) = report.defects[report.defects["path"] == str(path)].itertuples()
    assert (row.kind, row.subject, row.task) == ("bad_label_row", "F001", "T2")
    assert f"{path} line 5: column '0' holds '#### garbage ####'" in row.detail
    assert report.counts["bad_label_row"] == 1 and report.counts.sum() == len(report.defects)


@pytest.mark.parametrize("code", ["3", "x"])
def test_a_bad_code_drops_only_its_frame_with_one_defect_row(tree, code):
    root, _, clean_count = tree
    path = bp4d_label_path(root, "F001", "T2")
    set_field(path, 4, "4", code)  # line 4 holds frame 13
    report = audit(read_bp4d(root))
    assert len(report.clean) == clean_count - 1
    assert clean_frames(report, "F001", "T2") == [11, 12, 14, 15]
    frame_rows = report.defects[report.defects["frame"] == 13]
    assert frame_rows["kind"].tolist() == ["bad_label_row"]  # not also "unlabelled_image"
    assert f"{path} line 4" in frame_rows["detail"].iloc[0]


def test_a_bad_landmark_entry_drops_only_its_frame_with_one_defect_row(tree):
    root, written, clean_count = tree
    entries: list = [None] * 10 + list(written["F001", "T2"].landmarks)
    entries[13] = random_landmarks(np.random.default_rng(8), 1, 68)[0]  # frame 14
    write_landmark_entries(bp4d_landmark_path(root, "F001", "T2"), entries)
    report = audit(read_bp4d(root))
    assert len(report.clean) == clean_count - 1
    assert clean_frames(report, "F001", "T2") == [11, 12, 13, 15]
    frame_rows = report.defects[report.defects["frame"] == 14]
    assert frame_rows["kind"].tolist() == ["bad_landmark_entry"]  # not also "missing_landmarks"
    assert "holds 68 points for frame 14" in frame_rows["detail"].iloc[0]


def test_a_stray_padded_twin_in_an_unpadded_sequence_is_the_copy_dropped(tree):
    root, _, clean_count = tree
    stray = bp4d_image_path(root, "F001", "T2", 12)  # 0012.jpg beside 12.jpg
    write_image(stray)
    report = audit(read_bp4d(root))
    assert len(report.clean) == clean_count
    kept = report.clean.set_index(["subject", "task", "frame"]).loc[("F001", "T2", 12)]
    assert kept["image_path"] == str(bp4d_image_path(root, "F001", "T2", 12, padded=False))
    (row,) = report.defects[report.defects["kind"] == "duplicate_frame"].itertuples()
    assert row.path == str(stray)


def test_a_stray_unpadded_twin_in_a_padded_sequence_is_the_copy_dropped(tree):
    root, _, clean_count = tree
    stray = bp4d_image_path(root, "F001", "T1", 2, padded=False)  # 2.jpg beside 0002.jpg
    write_image(stray)
    report = audit(read_bp4d(root))
    assert len(report.clean) == clean_count
    (row,) = report.defects[report.defects["kind"] == "duplicate_frame"].itertuples()
    assert row.path == str(stray)


def test_excluded_frames_leave_clean_and_are_counted_like_audit_findings(tree):
    root, _, clean_count = tree
    table = read_bp4d(root)
    report = audit(table)
    late = pd.DataFrame(
        [["unreadable_image", "F001", "T2", 12, "x/12.jpg", "OpenCV could not decode it"]],
        columns=DEFECT_COLUMNS,
    )
    after = exclude_frames(report, table, late)
    assert len(after.clean) == clean_count - 1 and 12 not in clean_frames(after, "F001", "T2")
    assert after.counts["unreadable_image"] == report.counts["unreadable_image"] + 1
    assert len(after.defects) == len(report.defects) + 1
    assert after.rates.loc["all", "frames"] == clean_count - 1
    assert after.balance.loc["all", "frames"] == clean_count - 1
    dropped = len(table.frames) - clean_count + 1
    assert f"{dropped} of {len(table.frames)} frames were dropped; see the defects" in (
        after.warnings
    )
    assert exclude_frames(report, table, late.iloc[:0]) is report


def other_sequences(report, subject: str, task: str) -> pd.DataFrame:
    rows = report.clean[(report.clean["subject"] != subject) | (report.clean["task"] != task)]
    return rows.reset_index(drop=True)


@pytest.mark.parametrize("length", [0, 1, 100, 127])
def test_a_mat_shorter_than_its_header_is_a_bad_landmark_file_of_its_sequence_alone(tree, length):
    root, _, _ = tree
    before = audit(read_bp4d(root))
    path = bp4d_landmark_path(root, "F001", "T2")
    path.write_bytes(np.random.default_rng(length).bytes(length))
    report = audit(read_bp4d(root))
    (row,) = report.defects[report.defects["path"] == str(path)].itertuples()
    assert (row.kind, row.subject, row.task) == ("bad_landmark_file", "F001", "T2")
    assert f"{path} could not be read as a MAT-file: it holds {length} bytes" in row.detail
    assert clean_frames(report, "F001", "T2") == []
    pd.testing.assert_frame_equal(
        other_sequences(report, "F001", "T2"), other_sequences(before, "F001", "T2")
    )


def test_a_mat_cut_at_any_length_is_a_bad_landmark_file_of_its_sequence_alone(tree):
    root, _, _ = tree
    before = audit(read_bp4d(root))
    path = bp4d_landmark_path(root, "F001", "T2")
    whole = path.read_bytes()
    rng = np.random.default_rng(30)
    for length in [128, 512, 513, *rng.integers(129, len(whole), 6)]:
        path.write_bytes(whole[:length])
        report = audit(read_bp4d(root))
        rows = report.defects[report.defects["path"] == str(path)]
        assert rows[["kind", "subject", "task"]].values.tolist() == [
            ["bad_landmark_file", "F001", "T2"]
        ], length
        assert rows["detail"].str.startswith(f"{path} could not be read as a MAT-file").all()
        pd.testing.assert_frame_equal(
            other_sequences(report, "F001", "T2"), other_sequences(before, "F001", "T2")
        )
