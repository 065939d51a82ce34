"""The audit: each planted defect found once, nothing else, and the split findings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.data.audit import audit, image_problem
from aufacs.data.lists import read_jaanet_lists
from aufacs.data.splits import custom_split
from aufacs.data.table import (
    DEFECT_COLUMNS,
    LANDMARK_COLUMNS,
    FrameTable,
    empty_defects,
    landmark_frame,
)

SUBJECTS = ("F001", "F002", "M001", "M002")
FRAMES_PER_SUBJECT = 4


def write_image(path: Path, suffix: str = ".jpg") -> Path:
    """A tiny valid image file at ``path`` (with ``suffix``)."""
    path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((8, 8, 3), 90, np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def make_table(root: Path, subjects: tuple[str, ...] = SUBJECTS) -> FrameTable:
    """A defect-free frame table: FRAMES_PER_SUBJECT frames of task T1 per subject."""
    rows = []
    for subject in subjects:
        for frame in range(1, FRAMES_PER_SUBJECT + 1):
            path = write_image(root / subject / "T1" / f"{frame:04d}")
            rows.append({"subject": subject, "task": "T1", "frame": frame, "image_path": str(path)})
    frames = pd.DataFrame(rows)
    frames["has_image"] = True
    frames["has_labels"] = True
    frames["sex"] = frames["subject"].str[0]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (len(frames), len(BP4D))).astype(float)
    labels[0] = 1.0  # every AU occurs somewhere, so no "never occurs" finding
    frames[BP4D.columns] = labels
    points = rng.uniform(10, 100, (len(frames), 49, 2))
    frames = pd.concat([frames, landmark_frame(points, frames.index)], axis=1)
    return FrameTable(frames=frames, aus=BP4D, root=root)


def plant(table: FrameTable, kind: str, row: int) -> None:
    """Give frame ``row`` of ``table`` exactly one defect of ``kind``."""
    frames = table.frames
    path = Path(frames.at[row, "image_path"])
    if kind == "missing_image":
        path.unlink()
        frames.at[row, "has_image"] = False
    elif kind == "unreadable_image":
        path.write_bytes(path.read_bytes()[:-40])
    elif kind == "unlabelled_image":
        frames.loc[row, [*BP4D.columns]] = np.nan
        frames.at[row, "has_labels"] = False
    elif kind == "all_unknown_labels":
        frames.loc[row, [*BP4D.columns]] = np.nan
    elif kind == "missing_landmarks":
        frames.loc[row, LANDMARK_COLUMNS] = np.nan
    elif kind == "nonfinite_landmarks":
        frames.at[row, "x7"] = np.inf
    elif kind == "duplicate_frame":
        twin = write_image(path.with_name(path.stem.lstrip("0")))
        copy = frames.loc[[row]].assign(image_path=str(twin))
        table.frames = pd.concat([frames, copy], ignore_index=True)
    else:
        raise AssertionError(kind)


FRAME_KINDS = [
    "missing_image",
    "unreadable_image",
    "unlabelled_image",
    "all_unknown_labels",
    "missing_landmarks",
    "nonfinite_landmarks",
    "duplicate_frame",
]


def test_a_defect_free_table_is_clean_and_has_no_defects(tmp_path):
    report = audit(make_table(tmp_path))
    assert report.defects.empty
    assert len(report.clean) == len(SUBJECTS) * FRAMES_PER_SUBJECT
    assert report.counts.sum() == 0


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_a_defect_planted_once_is_reported_once_and_nothing_else(tmp_path, kind):
    table = make_table(tmp_path)
    plant(table, kind, 5)
    report = audit(table)
    assert report.counts[kind] == 1
    assert report.counts.sum() == 1
    assert list(report.defects.columns) == DEFECT_COLUMNS


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_the_clean_table_lacks_exactly_the_defective_frame(tmp_path, kind):
    table = make_table(tmp_path)
    plant(table, kind, 5)
    report = audit(table)
    keys = list(zip(report.clean["subject"], report.clean["frame"], strict=True))
    expected = [(s, f) for s in SUBJECTS for f in range(1, FRAMES_PER_SUBJECT + 1)]
    if kind != "duplicate_frame":
        expected.remove(("F002", 2))
    assert keys == expected


def test_every_kind_planted_in_one_table_is_found_once_each(tmp_path):
    table = make_table(tmp_path)
    for row, kind in enumerate(FRAME_KINDS):
        plant(table, kind, 2 * row)
    report = audit(table)
    assert report.counts[FRAME_KINDS].tolist() == [1] * len(FRAME_KINDS)
    assert report.counts.sum() == len(FRAME_KINDS)


def test_every_frame_missing_from_the_clean_table_has_a_defect_row(tmp_path):
    table = make_table(tmp_path)
    for row, kind in enumerate(FRAME_KINDS):
        plant(table, kind, 2 * row)
    report = audit(table)
    dropped = set(table.frames["image_path"]) - set(report.clean["image_path"])
    assert dropped == set(report.defects["path"])


def test_a_frame_with_two_defects_has_two_rows_and_is_dropped_once(tmp_path):
    table = make_table(tmp_path)
    plant(table, "all_unknown_labels", 3)
    plant(table, "missing_landmarks", 3)
    report = audit(table)
    assert sorted(report.defects["kind"]) == ["all_unknown_labels", "missing_landmarks"]
    assert len(report.clean) == len(table.frames) - 1


def test_a_duplicate_keeps_the_first_path_in_sort_order(tmp_path):
    table = make_table(tmp_path)
    plant(table, "duplicate_frame", 0)
    report = audit(table)
    kept = report.clean.loc[(report.clean["subject"] == "F001") & (report.clean["frame"] == 1)]
    assert Path(kept["image_path"].item()).name == "0001.jpg"
    assert Path(report.defects["path"].item()).name == "1.jpg"


def test_an_empty_image_file_is_unreadable(tmp_path):
    path = write_image(tmp_path / "a")
    path.write_bytes(b"")
    assert image_problem(str(path)) == "the file is empty"


def test_a_whole_png_passes_and_a_truncated_one_does_not(tmp_path):
    path = write_image(tmp_path / "a", ".png")
    assert image_problem(str(path)) == ""
    path.write_bytes(path.read_bytes()[:-12])
    assert "IEND" in image_problem(str(path))


def test_a_file_that_is_no_image_is_unreadable(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_text("not an image")
    assert image_problem(str(path)) == "the file is neither a JPEG nor a PNG"


def test_without_image_checks_a_frame_without_labels_is_still_reported(tmp_path):
    table = make_table(tmp_path)
    plant(table, "unlabelled_image", 1)
    plant(table, "unreadable_image", 2)
    table.frames["has_image"] = False
    report = audit(table, check_images=False)
    assert report.defects["kind"].tolist() == ["unlabelled_image"]


def test_without_required_landmarks_missing_landmarks_are_not_defects(tmp_path):
    table = make_table(tmp_path)
    table.frames.loc[:, LANDMARK_COLUMNS] = np.nan
    report = audit(table, require_landmarks=False)
    assert report.defects.empty


def test_the_readers_file_problems_are_in_the_defects_table(tmp_path):
    table = make_table(tmp_path)
    problem = {"kind": "bad_label_file", "subject": "F001", "path": "x.csv", "detail": "bad"}
    table.problems = pd.concat([empty_defects(), pd.DataFrame([problem])], ignore_index=True)
    report = audit(table)
    assert report.counts["bad_label_file"] == 1


def test_a_subject_on_both_sides_of_a_split_is_reported_once_as_leakage(tmp_path):
    split = custom_split(["F001", "F002", "M001"], ["M001", "M002"])
    report = audit(make_table(tmp_path), split)
    assert report.defects["subject"].tolist() == ["M001"]
    assert report.counts["subject_leakage"] == 1
    assert "subject M001 is in both the training and the test split" in report.warnings


def test_a_leaked_subject_is_kept_in_the_training_split(tmp_path):
    split = custom_split(["F001", "F002", "M001"], ["M001", "M002"])
    report = audit(make_table(tmp_path), split)
    assert set(report.clean.loc[report.clean["subject"] == "M001", "split"]) == {"train"}
    assert len(report.clean) == len(SUBJECTS) * FRAMES_PER_SUBJECT


def test_a_single_sex_test_split_is_a_warning(tmp_path):
    report = audit(make_table(tmp_path), custom_split(["F001", "F002", "M001"], ["M002"]))
    assert "the test split is male only" in report.warnings
    assert report.balance.loc["test", "male_subjects"] == 1
    assert report.balance.loc["train", "female_subjects"] == 2


def test_a_split_column_in_the_table_takes_precedence_over_the_split(tmp_path):
    table = make_table(tmp_path)
    table.frames["split"] = np.where(table.frames["frame"] <= 2, "train", "test")
    report = audit(table, custom_split(["F001"], ["M002"]))
    assert report.counts["subject_leakage"] == len(SUBJECTS)
    assert report.balance.loc["test", "frames"] == len(table.frames) // 2


def test_per_split_rates_ignore_unknown_labels(tmp_path):
    table = make_table(tmp_path)
    table.frames["AU1"] = 1.0
    table.frames.loc[table.frames["subject"] == "M002", "AU1"] = 0.0
    table.frames.loc[0, "AU1"] = np.nan
    report = audit(table, custom_split(["F001", "F002", "M001"], ["M002"]))
    assert report.rates.loc["train", "AU1"] == 1.0
    assert report.rates.loc["test", "AU1"] == 0.0
    assert "the test split has no clean frame with AU1" in report.warnings


def test_frames_of_subjects_outside_the_split_are_kept_unassigned(tmp_path):
    report = audit(make_table(tmp_path), custom_split(["F001"], ["M002"]))
    assert report.balance.loc["", "subjects"] == 2
    assert (report.clean["split"] == "").sum() == 2 * FRAMES_PER_SUBJECT


def test_a_table_without_the_contract_columns_is_refused(tmp_path):
    table = make_table(tmp_path)
    table.frames = table.frames.drop(columns="has_labels")
    with pytest.raises(AufacsError, match="has_labels"):
        audit(table)


def test_the_published_seed_subset_leaks_m005_and_tests_on_men_only(shared_fixtures):
    prefix = shared_fixtures / "seed_subset"
    lists = {"train": "BP4D_combine_1_2", "test": "BP4D_part3"}
    tables = [read_jaanet_lists(prefix / name) for name in lists.values()]
    frames = pd.concat(
        [t.frames.assign(split=side) for t, side in zip(tables, lists, strict=True)],
        ignore_index=True,
    )
    table = FrameTable(frames=frames, aus=tables[0].aus, root=prefix)
    report = audit(table, check_images=False, require_landmarks=False)
    assert report.defects["kind"].tolist() == ["subject_leakage"]
    assert report.defects["subject"].tolist() == ["M005"]
    assert "subject M005 is in both the training and the test split" in report.warnings
    assert "the test split is male only" in report.warnings
    assert len(report.clean) == 83_924 + 41_960
