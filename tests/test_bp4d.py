"""The raw BP4D reader and writers, on tiny trees written by tests/layout.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from layout import (
    insert_line,
    make_bp4d,
    random_landmarks,
    set_field,
    write_bp4d_sequence,
    write_image,
    write_landmark_entries,
)

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.bp4d import (
    bp4d_image_path,
    bp4d_label_path,
    bp4d_landmark_path,
    read_au_occ_csv,
    read_au_occ_rows,
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


@pytest.mark.parametrize("code", ["3", "x", ""])
def test_a_code_other_than_0_1_9_costs_only_its_row_and_names_the_line(tree, code):
    root, _ = tree
    path = bp4d_label_path(root, "F001", "T1")
    set_field(path, 3, "2", code)  # line 3 holds frame 2
    table = read_bp4d(root)
    problem = table.problems.iloc[0]
    assert len(table.problems) == 1
    assert (problem["kind"], problem["subject"], problem["task"], problem["frame"]) == (
        "bad_label_row",
        "F001",
        "T1",
        2,
    )
    assert problem["path"] == str(path)
    assert f"{path} line 3: column '2' holds" in problem["detail"]
    rows = rows_of(table.frames, "F001", "T1").set_index("frame")
    assert not rows.at[2, "has_labels"] and rows["has_labels"].sum() == 4


def test_a_garbage_line_costs_only_itself_and_names_the_line(tree):
    root, written = tree
    path = bp4d_label_path(root, "F001", "T2")
    insert_line(path, 4, "this line is no row of codes")
    table = read_bp4d(root)
    problem = table.problems.iloc[0]
    assert table.problems["kind"].tolist() == ["bad_label_row"]
    assert problem["path"] == str(path) and pd.isna(problem["frame"])
    assert f"{path} line 4: column '0' holds 'this line is no row of codes'" in problem["detail"]
    rows = rows_of(table.frames, "F001", "T2")
    assert rows["has_labels"].all() and len(rows) == 5
    np.testing.assert_array_equal(labels_of(rows, BP4D), written["F001", "T2"].labels)


def test_a_row_with_more_fields_than_the_header_is_skipped_alone(tree):
    root, _ = tree
    path = bp4d_label_path(root, "F001", "T2")
    lines = path.read_text().splitlines()
    insert_line(path, 3, lines[2] + ",1,1")  # a second, longer row for frame 12
    table = read_bp4d(root)
    problem = table.problems.iloc[0]
    assert (problem["kind"], problem["frame"]) == ("bad_label_row", 12)
    assert "line 3: 28 fields where the header has 26" in problem["detail"]
    assert rows_of(table.frames, "F001", "T2")["has_labels"].sum() == 5


def test_a_trailing_comma_on_a_row_costs_nothing(tree):
    root, _ = tree
    path = bp4d_label_path(root, "F001", "T2")
    lines = path.read_text().splitlines()
    lines[2] += ","
    path.write_text("\n".join(lines) + "\n")
    table = read_bp4d(root)
    assert table.problems.empty
    assert rows_of(table.frames, "F001", "T2")["has_labels"].sum() == 5


def test_the_strict_csv_reader_still_refuses_a_file_with_a_bad_row(tmp_path):
    path = tmp_path / "F001_T1.csv"
    write_au_occ_csv(path, np.array([1, 2]), np.ones((2, 12)))
    set_field(path, 3, "12", "3")
    with pytest.raises(AufacsError, match=r"line 3: column '12' holds '3'; expected 0, 1 or 9"):
        read_au_occ_csv(path)
    table, bad_rows = read_au_occ_rows(path)
    assert table["frame"].tolist() == [1] and [(b.line, b.frame) for b in bad_rows] == [(3, 2)]


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


def test_one_landmark_entry_of_68_points_costs_only_its_frame(tree):
    root, written = tree
    path = bp4d_landmark_path(root, "F001", "T2")
    points = written["F001", "T2"].landmarks
    entries: list = [None] * 10 + list(points)  # frames 11-15 are entries 10-14
    entries[12] = random_landmarks(np.random.default_rng(5), 1, 68)[0]  # frame 13
    write_landmark_entries(path, entries)
    table = read_bp4d(root)
    problem = table.problems.iloc[0]
    assert len(table.problems) == 1
    assert (problem["kind"], problem["subject"], problem["task"], problem["frame"]) == (
        "bad_landmark_entry",
        "F001",
        "T2",
        13,
    )
    assert f"{path} holds 68 points for frame 13; expected 49" in problem["detail"]
    got = landmarks_of(rows_of(table.frames, "F001", "T2"))
    assert np.isnan(got[2]).all()
    np.testing.assert_allclose(got[[0, 1, 3, 4]], points[[0, 1, 3, 4]], atol=1e-9)


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


def test_a_file_given_as_root_is_refused_as_no_folder(tmp_path):
    (tmp_path / "BP4D.zip").write_bytes(b"PK")
    with pytest.raises(AufacsError, match=r"BP4D.zip is a file, not a folder; expected a folder"):
        read_bp4d(tmp_path / "BP4D.zip")


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


def test_a_stray_unpadded_image_does_not_rename_the_missing_frame_of_a_padded_sequence(tmp_path):
    frames = np.arange(641, 647)
    write_bp4d_sequence(
        tmp_path,
        "F002",
        "T1",
        frames,
        np.ones((6, 12)),
        None,
        image_frames=(641, 642, 643, 644, 646),
    )
    write_image(bp4d_image_path(tmp_path, "F002", "T1", 643, padded=False))  # stray 643.jpg
    rows = read_bp4d(tmp_path).frames.set_index("frame")
    assert not rows.at[645, "has_image"]
    assert rows.at[645, "image_path"] == str(bp4d_image_path(tmp_path, "F002", "T1", 645))


def test_a_stray_padded_image_does_not_rename_the_missing_frame_of_an_unpadded_sequence(tmp_path):
    frames = np.arange(641, 647)
    shown = (641, 642, 643, 644, 646)
    write_bp4d_sequence(
        tmp_path, "F002", "T1", frames, np.ones((6, 12)), None, padded=False, image_frames=shown
    )
    write_image(bp4d_image_path(tmp_path, "F002", "T1", 650))  # stray 0650.jpg
    rows = read_bp4d(tmp_path).frames.set_index("frame")
    expected = bp4d_image_path(tmp_path, "F002", "T1", 645, padded=False)
    assert rows.at[645, "image_path"] == str(expected)


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


def test_a_version_5_mat_whose_fit_is_a_struct_array_reads_like_the_cell_form(tmp_path):
    points = random_landmarks(np.random.default_rng(6), 3)
    matrices = [points[0] + 1.0, np.zeros((0, 0)), points[2] + 1.0]  # frame 2 empty
    cells = np.empty((1, 3), dtype=object)
    structs = np.empty((1, 3), dtype=[("pred", object)])
    for i, matrix in enumerate(matrices):
        cells[0, i] = matrix
        structs[0, i]["pred"] = matrix
    scipy.io.savemat(tmp_path / "cell.mat", {"fit": {"pred": cells}})
    scipy.io.savemat(tmp_path / "struct.mat", {"fit": structs})
    assert scipy.io.loadmat(tmp_path / "struct.mat")["fit"].shape == (1, 3)  # fit(i).pred
    from_struct = read_landmark_mat(tmp_path / "struct.mat")
    np.testing.assert_array_equal(from_struct, read_landmark_mat(tmp_path / "cell.mat"))
    np.testing.assert_allclose(from_struct[[0, 2]], points[[0, 2]], atol=1e-9)
    assert np.isnan(from_struct[1]).all()


def test_a_version_5_struct_array_of_one_frame_is_one_frame(tmp_path):
    points = random_landmarks(np.random.default_rng(7), 1)
    structs = np.empty((1, 1), dtype=[("pred", object)])
    structs[0, 0]["pred"] = points[0] + 1.0
    scipy.io.savemat(tmp_path / "one.mat", {"fit": structs})
    np.testing.assert_allclose(read_landmark_mat(tmp_path / "one.mat"), points, atol=1e-9)


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


def test_the_real_sample_landmarks_read_alike_from_a_struct_array_and_a_cell_mat(
    shared_fixtures, tmp_path
):
    raw = np.loadtxt(shared_fixtures / "bp4d_sample" / "raw_landmarks.txt").reshape(-1, 49, 2)
    frames = np.array([2440, 2441])  # 1-indexed MATLAB pixels, as the .mat holds them
    structs = np.empty((1, frames.max()), dtype=[("pred", object)])
    for i in range(frames.max()):
        structs[0, i]["pred"] = np.zeros((0, 0))
    for frame, points in zip(frames, raw, strict=True):
        structs[0, frame - 1]["pred"] = points
    scipy.io.savemat(tmp_path / "struct.mat", {"fit": structs})
    write_landmark_mat(tmp_path / "cell.mat", frames, raw - 1.0, matlab_version="5")
    from_struct = read_landmark_mat(tmp_path / "struct.mat", frames)
    np.testing.assert_array_equal(from_struct, read_landmark_mat(tmp_path / "cell.mat", frames))
    np.testing.assert_allclose(from_struct, raw - 1.0, atol=1e-9)
