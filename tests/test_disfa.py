"""The raw DISFA reader and writers, on tiny trees written by tests/layout.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layout import make_disfa, random_landmarks

from aufacs.core.aus import DISFA, DISFA_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.disfa import (
    disfa_image_path,
    disfa_label_path,
    disfa_landmark_path,
    read_disfa,
    read_disfa_au_file,
    read_disfa_landmarks,
    write_disfa_landmarks,
)
from aufacs.data.table import labels_of, landmarks_of


@pytest.fixture
def tree(tmp_path: Path):
    """(root, what make_disfa wrote)."""
    root = tmp_path / "DISFA"
    return root, make_disfa(root)


def rows_of(frames, subject: str):
    return frames[frames["subject"] == subject].set_index("frame")


def test_every_labelled_frame_and_every_image_gets_one_row(tree):
    root, _ = tree
    frames = read_disfa(root).frames
    assert len(frames) == 11  # 10 label lines + 1 image without labels
    assert set(frames["task"]) == {""} and set(frames["sex"]) == {"?"}


def test_frames_are_the_0_based_line_numbers(tree):
    root, _ = tree
    assert rows_of(read_disfa(root).frames, "SN001").index.tolist() == [0, 1, 2, 3, 4]


def test_an_au_is_present_from_intensity_2(tree):
    root, written = tree
    frames = read_disfa(root).frames
    for subject, subject_written in written.items():
        got = labels_of(rows_of(frames, subject).loc[0:4].reset_index(), DISFA)
        np.testing.assert_array_equal(got, subject_written.labels.astype(np.float32))


def test_both_landmark_file_names_give_the_49_points_0_indexed(tree):
    root, written = tree
    frames = read_disfa(root).frames
    for subject in ("SN001", "SN002"):
        got = landmarks_of(rows_of(frames, subject).loc[0:4].reset_index())
        np.testing.assert_allclose(got, written[subject].landmarks, atol=1e-9, equal_nan=True)


def test_a_frame_without_landmark_file_has_nan_landmarks(tree):
    root, _ = tree
    table = read_disfa(root)
    assert np.isnan(landmarks_of(rows_of(table.frames, "SN001").loc[[2]].reset_index())).all()
    assert table.problems.empty


def test_a_label_line_without_image_and_an_image_without_label_are_flagged(tree):
    root, _ = tree
    rows = rows_of(read_disfa(root).frames, "SN002")
    assert rows.loc[4, "has_labels"] and not rows.loc[4, "has_image"]
    assert rows.loc[4, "image_path"] == str(disfa_image_path(root, "SN002", 4))
    assert rows.loc[6, "has_image"] and not rows.loc[6, "has_labels"]


def test_a_missing_au_file_is_a_problem_and_that_au_is_unknown(tree):
    root, _ = tree
    disfa_label_path(root, "SN001", 9).unlink()
    table = read_disfa(root)
    assert table.problems["kind"].tolist() == ["bad_label_file"]
    assert "does not exist" in table.problems["detail"].iloc[0]
    assert rows_of(table.frames, "SN001")["AU9"].isna().all()
    assert rows_of(table.frames, "SN002").loc[0:4, "AU9"].notna().all()


def test_an_intensity_outside_0_to_5_is_a_problem_naming_the_line(tree):
    root, _ = tree
    path = disfa_label_path(root, "SN002", 26)
    lines = path.read_text().splitlines()
    lines[2] = "3,7"
    path.write_text("\n".join(lines) + "\n")
    problem = read_disfa(root).problems.iloc[0]
    assert problem["kind"] == "bad_label_file" and "line 3" in problem["detail"]


def test_au_files_of_different_lengths_are_reported_and_padded_with_nan(tree):
    root, _ = tree
    path = disfa_label_path(root, "SN001", 1)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    table = read_disfa(root)
    assert "[3, 5]" in table.problems["detail"].iloc[0]
    assert rows_of(table.frames, "SN001").loc[3:4, "AU1"].isna().all()


def test_a_landmark_file_with_the_wrong_number_of_points_is_a_problem(tree):
    root, _ = tree
    bad = disfa_landmark_path(root, "SN001", 0)
    write_disfa_landmarks(bad, random_landmarks(np.random.default_rng(5), 1, points=30)[0])
    table = read_disfa(root)
    assert table.problems["kind"].tolist() == ["bad_landmark_file"]
    assert "30 x 2" in table.problems["detail"].iloc[0]
    assert np.isnan(landmarks_of(rows_of(table.frames, "SN001").loc[[0]].reset_index())).all()


def test_a_missing_root_raises_a_sentence_naming_the_folder(tmp_path):
    with pytest.raises(AufacsError, match="nowhere does not exist; expected a folder holding"):
        read_disfa(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "folder, message",
    [("ActionUnit_Labels", "has no ActionUnit_Labels/ folder"), ("img", "left-camera frames")],
)
def test_a_missing_label_or_image_folder_raises_a_sentence_naming_it(tree, folder, message):
    root, _ = tree
    shutil.rmtree(root / folder)
    with pytest.raises(AufacsError, match=message):
        read_disfa(root)


def test_an_au_file_is_read_in_line_order(tmp_path):
    path = tmp_path / "SN001_au1.txt"
    path.write_text("1,0\n2,3\n3,5\n")
    np.testing.assert_array_equal(read_disfa_au_file(path), [0, 3, 5])


def test_the_label_files_cover_disfa_aus_in_order(tree):
    root, _ = tree
    names = sorted(p.name for p in (root / "ActionUnit_Labels" / "SN001").iterdir())
    assert names == sorted(f"SN001_au{au}.txt" for au in DISFA_AUS)


def test_real_66_point_landmarks_map_to_the_published_49(shared_fixtures, tmp_path):
    sample = shared_fixtures / "disfa_sample"
    raw_66 = np.loadtxt(sample / "raw_landmarks_66.txt").reshape(-1, 66, 2)
    raw_49 = np.loadtxt(sample / "raw_landmarks_49.txt").reshape(-1, 49, 2)
    for index, points in enumerate(raw_66):
        path = tmp_path / f"SN002_{index:04d}_lm.mat"
        write_disfa_landmarks(path, points - 1.0)
        np.testing.assert_allclose(read_disfa_landmarks(path), raw_49[index] - 1.0, atol=1e-9)


@pytest.mark.parametrize("length", [0, 100, 127, 700])
def test_a_landmark_file_of_random_bytes_is_a_bad_landmark_file_of_its_subject(tree, length):
    root, _ = tree
    before = read_disfa(root).frames
    bad = disfa_landmark_path(root, "SN001", 0)
    bad.write_bytes(np.random.default_rng(length).bytes(length))
    table = read_disfa(root)
    assert table.problems[["kind", "subject", "path"]].values.tolist() == [
        ["bad_landmark_file", "SN001", str(bad)]
    ]
    assert table.problems["detail"].iloc[0].startswith(f"{bad} could not be read as a MAT-file")
    assert np.isnan(landmarks_of(rows_of(table.frames, "SN001").loc[[0]].reset_index())).all()
    others = ~((table.frames["subject"] == "SN001") & (table.frames["frame"] == 0))
    pd.testing.assert_frame_equal(table.frames[others], before[others])
