"""JAA-Net and ME-GraphAU list files: the real published lists and round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layout import write_image

from aufacs.core.aus import BP4D, DISFA
from aufacs.core.errors import AufacsError
from aufacs.data.lists import (
    ALIGNED_LANDMARK_COLUMNS,
    au_relations,
    megraphau_file,
    read_jaanet_lists,
    read_label_matrix,
    read_landmark_list,
    read_megraphau_lists,
    read_weights,
    write_jaanet_lists,
    write_landmark_list,
    write_megraphau_lists,
    write_paths,
    write_weights,
)
from aufacs.data.table import landmarks_of

#: The first line of ME-GraphAU's shipped BP4D_train_AU_relation_fold3.txt and the label
#: line it was computed from (2 * y_j + y_k at column 12 * j + k).
MG_LABELS = [0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0]
MG_RELATION_ROWS = {0: "0 0 0 0 1 1 0 1 0 1 0 0", 4: "2 2 2 2 3 3 2 3 2 3 2 2"}


@pytest.fixture(scope="module")
def seed(shared_fixtures: Path):
    """The seed replication's train and test lists, read once."""
    folder = shared_fixtures / "seed_subset"
    return (
        folder,
        read_jaanet_lists(folder / "BP4D_combine_1_2"),
        read_jaanet_lists(folder / "BP4D_part3"),
    )


def test_the_seed_lists_give_one_row_per_line_with_ids_from_the_paths(seed):
    _, train, test = seed
    assert (len(train.frames), len(test.frames)) == (83_924, 41_960)
    first = train.frames.iloc[0]
    assert (first["subject"], first["task"], first["frame"]) == ("F001", "T1", 2440)
    assert train.aus == BP4D and train.frames["has_labels"].all()


def test_the_seed_lists_show_m005_in_both_splits_and_a_male_only_test_split(seed):
    _, train, test = seed
    assert set(train.frames["subject"]) & set(test.frames["subject"]) == {"M005"}
    assert set(test.frames["sex"]) == {"M"}


def test_the_seed_lists_are_written_back_byte_for_byte(seed, tmp_path):
    folder, train, _ = seed
    write_jaanet_lists(
        tmp_path / "BP4D_combine_1_2",
        train.frames,
        train.aus,
        newline="\r\n",
        occurrence_suffix="_AUOccur.txt",
    )
    for suffix in ("_path.txt", "_AUOccur.txt", "_biocular.txt"):
        original = (folder / f"BP4D_combine_1_2{suffix}").read_bytes()
        assert (tmp_path / f"BP4D_combine_1_2{suffix}").read_bytes() == original, suffix


def test_a_weight_file_is_written_back_byte_for_byte(shared_fixtures, tmp_path):
    original = shared_fixtures / "seed_subset" / "BP4D_part3_weight.txt"
    weights = read_weights(original)
    write_weights(tmp_path / "w.txt", weights)
    assert weights.shape == (12,)
    assert (tmp_path / "w.txt").read_bytes() == original.read_bytes()


def test_aligned_landmarks_are_written_back_byte_for_byte(shared_fixtures, tmp_path):
    original = shared_fixtures / "bp4d_sample" / "aligned_landmarks.txt"
    landmarks = read_landmark_list(original)
    write_landmark_list(tmp_path / "land.txt", landmarks)
    assert landmarks.shape == (2, 49, 2)
    assert (tmp_path / "land.txt").read_bytes() == original.read_bytes()


def sample_lists(tmp_path: Path, land_file: Path) -> Path:
    """A JAA-Net prefix listing the two BP4D sample frames, with ``land_file`` as _land."""
    prefix = tmp_path / "BP4D_sample"
    write_paths(f"{prefix}_path.txt", ["BP4D/F001/T1/2440.jpg", "BP4D/F001/T1/2441.jpg"])
    Path(f"{prefix}_land.txt").write_bytes(land_file.read_bytes())
    return prefix


def test_a_land_file_goes_to_the_aligned_columns_by_default(shared_fixtures, tmp_path):
    aligned = shared_fixtures / "bp4d_sample" / "aligned_landmarks.txt"
    frames = read_jaanet_lists(sample_lists(tmp_path, aligned)).frames
    np.testing.assert_array_equal(
        frames[ALIGNED_LANDMARK_COLUMNS].to_numpy().reshape(-1, 49, 2), read_landmark_list(aligned)
    )
    assert np.isnan(landmarks_of(frames)).all()
    assert not frames["has_labels"].any() and frames[BP4D.columns].isna().all().all()


def test_a_raw_land_file_is_read_0_indexed_into_the_raw_columns(shared_fixtures, tmp_path):
    raw = shared_fixtures / "bp4d_sample" / "raw_landmarks.txt"
    frames = read_jaanet_lists(sample_lists(tmp_path, raw), landmarks="raw").frames
    np.testing.assert_allclose(landmarks_of(frames), read_landmark_list(raw) - 1.0)


def test_the_disfa_fold_list_gives_0_based_frames_and_disfa_aus(shared_fixtures):
    table = read_jaanet_lists(shared_fixtures / "bp4d_folds" / "DISFA_part1")
    assert table.aus == DISFA and len(table.frames) == 43_173
    first = table.frames.iloc[0]
    assert (first["subject"], first["task"], first["frame"]) == ("SN002", "", 0)


def test_has_image_says_which_listed_images_exist(tmp_path):
    write_paths(tmp_path / "x_path.txt", ["BP4D/F001/T1/0001.jpg", "BP4D/F001/T1/0002.jpg"])
    write_image(tmp_path / "images" / "BP4D" / "F001" / "T1" / "0001.jpg")
    frames = read_jaanet_lists(tmp_path / "x", image_root=tmp_path / "images").frames
    assert frames["has_image"].tolist() == [True, False]


def test_a_label_list_with_the_wrong_line_count_raises_naming_it(tmp_path):
    write_paths(tmp_path / "x_path.txt", ["BP4D/F001/T1/0001.jpg", "BP4D/F001/T1/0002.jpg"])
    (tmp_path / "x_AUoccur.txt").write_text("0 0 0 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(AufacsError, match=r"x_AUoccur.txt has 1 lines; expected 2"):
        read_jaanet_lists(tmp_path / "x")


def test_a_path_that_is_not_a_frame_raises_naming_the_line(tmp_path):
    write_paths(tmp_path / "x_path.txt", ["BP4D/F001/T1/0001.jpg", "BP4D/F001/notes.txt"])
    with pytest.raises(AufacsError, match="line 2"):
        read_jaanet_lists(tmp_path / "x")


def test_unknown_labels_are_written_as_9_and_read_back_as_nan(tmp_path):
    frames = pd.DataFrame(
        {"subject": ["F001"], "task": ["T1"], "frame": [7]}
        | {c: [np.nan if c == "AU4" else 1.0] for c in BP4D.columns}
    )
    write_jaanet_lists(tmp_path / "x", frames, BP4D)
    assert (tmp_path / "x_AUoccur.txt").read_text() == "1 1 9 1 1 1 1 1 1 1 1 1\n"
    assert np.isnan(read_label_matrix(tmp_path / "x_AUoccur.txt")[0, 2])


def test_au_relations_match_me_graphau_shipped_sample():
    relations = au_relations(np.array([MG_LABELS])).astype(int).reshape(12, 12)
    for row, text in MG_RELATION_ROWS.items():
        assert " ".join(map(str, relations[row])) == text


def test_me_graphau_lists_round_trip_with_unknown_as_minus_1(tmp_path):
    labels = np.array([[1.0, 0.0, np.nan, 1.0, 0.0, 0.0, 1.0, 1.0]] * 2)
    frames = pd.DataFrame({"subject": ["SN001", "SN001"], "task": ["", ""], "frame": [0, 1]})
    frames[DISFA.columns] = labels
    list_dir = tmp_path / "DISFA" / "list"
    write_megraphau_lists(list_dir, frames, DISFA, split="train", fold=2)
    paths = megraphau_file(list_dir, "DISFA", "img_path", 2, "train").read_text()
    assert paths == "SN001/0.png\nSN001/1.png\n"
    assert "-1" in megraphau_file(list_dir, "DISFA", "label", 2, "train").read_text()
    table = read_megraphau_lists(list_dir, "DISFA", "train", 2)
    np.testing.assert_array_equal(table.frames[DISFA.columns].to_numpy(), labels)
    assert table.frames["image_path"].iloc[1] == str(tmp_path / "DISFA" / "img" / "SN001" / "1.png")


def test_me_graphau_writes_a_relation_list_for_training_only(tmp_path):
    frames = pd.DataFrame({"subject": ["F001"], "task": ["T1"], "frame": [643]})
    frames[BP4D.columns] = np.array([MG_LABELS], dtype=float)
    write_megraphau_lists(tmp_path, frames, BP4D, split="test", fold=1)
    assert not megraphau_file(tmp_path, "BP4D", "AU_relation", 1).exists()
    write_megraphau_lists(tmp_path, frames, BP4D, split="train", fold=1)
    relation = megraphau_file(tmp_path, "BP4D", "AU_relation", 1).read_text().split()
    assert " ".join(relation[:12]) == MG_RELATION_ROWS[0]
    test_paths = megraphau_file(tmp_path, "BP4D", "img_path", 1, "test")
    assert test_paths.read_text() == "F001/T1/643.jpg\n"


def test_me_graphau_file_names_follow_the_official_scheme(tmp_path):
    names = [
        megraphau_file(tmp_path, "BP4D", kind, 3, "test").name
        for kind in ("img_path", "label", "weight", "AU_relation")
    ]
    assert names == [
        "BP4D_test_img_path_fold3.txt",
        "BP4D_test_label_fold3.txt",
        "BP4D_weight_fold3.txt",
        "BP4D_train_AU_relation_fold3.txt",
    ]
