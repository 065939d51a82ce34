"""The raw BP4D reader and writers, on tiny trees written by tests/layout.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from layout import make_bp4d, random_landmarks, write_bp4d_sequence, write_image

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.bp4d import (
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    read_au_occ_csv,
    read_bp4d,
    read_landmark_mat,
    write_au_occ_csv,
    write_landmark_mat,
)
from aufacs.data.table import ID_COLUMNS, LANDMARK_COLUMNS, labels_of, landmarks_of


@pytest.fixture
def tree(tmp_path: Path):
    """(root, what make_bp4d wrote)."""
    root = tmp_path / "BP4D"
    return root, make_bp4d(root)


def rows_of(frames, subject: str, task: str):
    return frames[(frames["subject"] == subject) & (frames["task"] == task)]


def test_every_labelled_frame_and_every_image_gets_one_row(tree):
    root, written = tree
    frames = read_bp4d(root).frames
    assert len(frames) == 16  # 15 label rows + 1 image without labels
    assert list(frames.columns[:7]) == [*ID_COLUMNS, "image_path", "has_image", "has_labels", "sex"]
    assert list(frames.columns[7:]) == BP4D.columns + LANDMARK_COLUMNS


def test_labels_are_read_back_as_written_with_code_9_as_nan(tree):
    root, written = tree
    frames = read_bp4d(root).frames
    for (subject, task), seq in written.items():
        got = labels_of(rows_of(frames, subject, task).iloc[: len(seq.frames)], BP4D)
        np.testing.assert_array_equal(got, seq.labels.astype(np.float32))
    assert np.isnan(rows_of(frames, "F001", "T1")["AU1"].iloc[2])


def test_landmarks_are_read_back_in_0_indexed_pixels(tree):
    root, written = tree
    frames = read_bp4d(root).frames
    got = landmarks_of(rows_of(frames, "F001", "T2"))
    np.testing.assert_allclose(got, written["F001", "T2"].landmarks, atol=1e-9)


def test_a_frame_without_landmarks_has_nan_landmarks_and_no_problem(tree):
    root, _ = tree
    table = read_bp4d(root)
    assert np.isnan(landmarks_of(rows_of(table.frames, "F001", "T1"))[3]).all()
    assert table.problems.empty


def test_zero_padded_and_unpadded_image_names_are_both_found(tree):
    root, _ = tree
    frames = read_bp4d(root).frames
    padded = rows_of(frames, "F001", "T1")
    unpadded = rows_of(frames, "F001", "T2")
    assert padded["has_image"].all() and unpadded["has_image"].all()
    assert padded["image_path"].iloc[0].endswith(os.path.join("F001", "T1", "0001.jpg"))
    assert unpadded["image_path"].iloc[0].endswith(os.path.join("F001", "T2", "11.jpg"))


def test_a_label_row_without_image_is_flagged_with_its_expected_path(tree):
    root, _ = tree
    row = rows_of(read_bp4d(root).frames, "M001", "T1").set_index("frame").loc[5]
    assert row["has_labels"] and not row["has_image"]
    assert row["image_path"] == str(bp4d_image_path(root, "M001", "T1", 5))


def test_an_image_without_label_row_is_flagged_with_nan_labels(tree):
    root, _ = tree
    row = rows_of(read_bp4d(root).frames, "M001", "T1").set_index("frame").loc[6]
    assert row["has_image"] and not row["has_labels"]
    assert np.isnan(row[BP4D.columns].to_numpy(dtype=float)).all()


def test_sex_comes_from_the_subject_id(tree):
    root, _ = tree
    frames = read_bp4d(root).frames
    assert set(zip(frames["subject"], frames["sex"], strict=True)) == {("F001", "F"), ("M001", "M")}


def test_a_csv_missing_au_columns_is_a_problem_and_the_rest_is_read(tree):
    root, _ = tree
    frames = np.arange(1, 4)
    write_au_occ_csv(bp4d_label_path(root, "F002", "T1"), frames, np.zeros((3, 3)), aus=(1, 2, 4))
    table = read_bp4d(root)
    assert table.problems["kind"].tolist() == ["bad_label_file"]
    assert "lacks the AU columns 6, 7" in table.problems["detail"].iloc[0]
    assert table.frames["has_labels"].sum() == 15


def test_a_csv_with_a_value_other_than_0_1_9_is_a_problem(tree):
    root, _ = tree
    path = bp4d_label_path(root, "F001", "T1")
    path.write_text(path.read_text().replace("\n2,", "\n2,x", 1))
    problem = read_bp4d(root).problems.iloc[0]
    assert (problem["kind"], problem["subject"], problem["task"]) == (
        "bad_label_file",
        "F001",
        "T1",
    )
    assert "data row 2" in problem["detail"]


def test_a_csv_whose_frame_column_is_named_frame_is_accepted(tmp_path):
    path = tmp_path / "F001_T1.csv"
    write_au_occ_csv(path, np.array([7, 8]), np.ones((2, 12)), frame_column="frame")
    assert read_au_occ_csv(path)["frame"].tolist() == [7, 8]


def test_the_written_csv_has_the_distributed_header_with_an_occlusion_column(tmp_path):
    path = tmp_path / "F001_T1.csv"
    write_au_occ_csv(path, np.array([1]), np.ones((1, 12)))
    header = path.read_text().splitlines()[0].split(",")
    assert header[:4] == ["0", "1", "2", "3"] and header[-2:] == ["24", "occlusion"]


def test_a_mat_with_the_wrong_number_of_points_is_a_problem_and_frames_keep_nan(tree):
    root, _ = tree
    rng = np.random.default_rng(1)
    write_landmark_mat(
        bp4d_landmark_path(root, "F001", "T2"), np.arange(11, 16), random_landmarks(rng, 5, 66)
    )
    table = read_bp4d(root)
    assert table.problems["kind"].tolist() == ["bad_landmark_file"]
    assert "66 points" in table.problems["detail"].iloc[0]
    assert np.isnan(landmarks_of(rows_of(table.frames, "F001", "T2"))).all()
    assert np.isfinite(landmarks_of(rows_of(table.frames, "M001", "T1"))[:5]).all()


def test_a_missing_mat_file_is_reported_for_its_sequence(tree):
    root, _ = tree
    bp4d_landmark_path(root, "M001", "T1").unlink()
    problem = read_bp4d(root).problems.iloc[0]
    assert (problem["kind"], problem["subject"], problem["task"]) == (
        "bad_landmark_file",
        "M001",
        "T1",
    )


def test_a_missing_2dfeatures_folder_is_reported_not_raised(tree):
    root, _ = tree
    shutil.rmtree(root / "2DFeatures")
    table = read_bp4d(root)
    assert table.problems["kind"].tolist() == ["missing_root"]
    assert np.isnan(landmarks_of(table.frames)).all()


def test_a_missing_root_raises_a_sentence_naming_the_folder(tmp_path):
    with pytest.raises(AufacsError, match=r"nowhere does not exist; expected a folder holding"):
        read_bp4d(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "folder, message",
    [("AUCoding", "has no AUCoding/AU_OCC/ folder"), ("2D+3D", r"has no 2D\+3D/ folder")],
)
def test_a_missing_label_or_image_folder_raises_a_sentence_naming_it(tree, folder, message):
    root, _ = tree
    shutil.rmtree(root / folder)
    with pytest.raises(AufacsError, match=message):
        read_bp4d(root)


def test_images_under_the_root_and_csvs_under_aucoding_are_accepted(tree):
    root, _ = tree
    for subject in ("F001", "M001"):
        (root / "2D+3D" / subject).rename(root / subject)
    for csv in (root / "AUCoding" / "AU_OCC").iterdir():
        csv.rename(root / "AUCoding" / csv.name)
    (root / "AUCoding" / "AU_OCC").rmdir()
    (root / "2D+3D").rmdir()
    frames = read_bp4d(root).frames
    assert len(frames) == 16 and frames["has_image"].sum() == 15


def test_padded_and_unpadded_copies_of_a_frame_are_kept_as_two_rows(tree):
    root, _ = tree
    write_image(bp4d_image_path(root, "F001", "T1", 2, padded=False))
    rows = rows_of(read_bp4d(root).frames, "F001", "T1")
    twins = rows[rows["frame"] == 2]
    assert len(twins) == 2 and twins["has_labels"].all()
    assert {Path(p).name for p in twins["image_path"]} == {"0002.jpg", "2.jpg"}


def test_a_csv_repeating_a_frame_number_keeps_both_rows(tmp_path):
    frames = np.array([1, 2, 2, 3])
    labels = np.eye(4, 12)
    write_bp4d_sequence(tmp_path, "F001", "T1", frames, labels, None, image_frames=(1, 3))
    rows = read_bp4d(tmp_path).frames
    twins = rows[rows["frame"] == 2]
    assert len(twins) == 2 and not twins["has_image"].any()
    assert twins["AU2"].tolist() == [1.0, 0.0]


def test_landmark_mat_version_5_reads_like_version_7_3(tmp_path):
    frames = np.array([2, 4])
    points = random_landmarks(np.random.default_rng(2), 2)
    write_landmark_mat(tmp_path / "a.mat", frames, points, matlab_version="7.3")
    write_landmark_mat(tmp_path / "b.mat", frames, points, matlab_version="5")
    v73 = read_landmark_mat(tmp_path / "a.mat")
    np.testing.assert_array_equal(v73, read_landmark_mat(tmp_path / "b.mat"))
    np.testing.assert_allclose(v73[[1, 3]], points, atol=1e-9)
    assert np.isnan(v73[[0, 2]]).all()


def test_landmark_mat_7_3_is_hdf5_behind_a_matlab_header_storing_1_indexed_2x49(tmp_path):
    import h5py

    path = tmp_path / "F001_T1.mat"
    points = random_landmarks(np.random.default_rng(3), 1)
    write_landmark_mat(path, np.array([1]), points)
    with pytest.raises(NotImplementedError, match="v7.3"):
        scipy.io.loadmat(path)
    with h5py.File(path, "r") as f:
        stored = f[f["fit/pred"][0][0]][()]
    np.testing.assert_allclose(stored, points[0].T + 1.0)


def test_frames_past_the_end_of_fit_pred_have_nan_landmarks(tmp_path):
    path = tmp_path / "F001_T1.mat"
    write_landmark_mat(path, np.array([1]), random_landmarks(np.random.default_rng(4), 1))
    assert np.isnan(read_landmark_mat(path, np.array([1, 2]))[1]).all()


def test_an_unreadable_mat_raises_a_sentence_naming_it(tmp_path):
    path = tmp_path / "F001_T1.mat"
    path.write_bytes(b"not a mat file")
    with pytest.raises(AufacsError, match="F001_T1.mat could not be read"):
        read_landmark_mat(path)


def test_the_real_sample_frames_are_found_in_a_layout_tree(shared_fixtures, tmp_path):
    sample = shared_fixtures / "bp4d_sample" / "raw" / "F001" / "T1"
    task = tmp_path / "2D+3D" / "F001" / "T1"
    task.mkdir(parents=True)
    for image in sample.iterdir():
        (task / image.name).symlink_to(image)
    write_au_occ_csv(bp4d_label_path(tmp_path, "F001", "T1"), np.array([2440]), np.ones((1, 12)))
    frames = read_bp4d(tmp_path).frames
    assert frames["frame"].tolist() == [2440, 2441]
    assert frames["has_image"].all() and frames["has_labels"].tolist() == [True, False]
