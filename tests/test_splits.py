"""Tests of aufacs.data.splits: standard folds, generated folds, custom splits and leakage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aufacs.core.errors import AufacsError
from aufacs.data.splits import (
    Split,
    check_fold,
    custom_split,
    leakage,
    split_subjects,
    standard_fold,
    standard_parts,
    subject_folds,
)
from aufacs.data.table import sex_of


def subjects_in_path_list(path: Path) -> set[str]:
    """Subject folders of a JAA-Net ``*_path.txt`` list (``BP4D/<subject>/...``)."""
    return {line.split("/")[1] for line in path.read_text().split()}


@pytest.mark.parametrize("kind", ["bp4d", "disfa"])
def test_standard_parts_equal_the_subjects_of_the_official_path_lists(shared_fixtures, kind):
    folder = shared_fixtures / "bp4d_folds"
    for number, part in enumerate(standard_parts(kind), start=1):
        expected = subjects_in_path_list(folder / f"{kind.upper()}_part{number}_path.txt")
        assert set(part) == expected


def test_standard_parts_hold_41_bp4d_and_27_disfa_subjects_once_each():
    for kind, count in (("bp4d", 41), ("disfa", 27)):
        subjects = [s for part in standard_parts(kind) for s in part]
        assert len(subjects) == len(set(subjects)) == count


def test_fold_1_trains_on_parts_1_and_2_and_tests_on_part_3():
    part1, part2, part3 = standard_parts("bp4d")
    fold = standard_fold("bp4d", 1)
    assert set(fold.train) == set(part1) | set(part2) and set(fold.test) == set(part3)


def test_fold_3_tests_on_part_1():
    assert set(standard_fold("disfa", 3).test) == set(standard_parts("disfa")[0])


def test_every_standard_fold_is_subject_exclusive():
    for kind in ("bp4d", "disfa"):
        for fold in (1, 2, 3):
            assert leakage(standard_fold(kind, fold)) == ()


def test_an_unknown_kind_is_refused_with_the_valid_kinds():
    with pytest.raises(AufacsError, match="'bp4d', 'disfa'"):
        standard_fold("ck+", 1)


def test_an_unknown_fold_is_refused_with_the_valid_folds():
    with pytest.raises(AufacsError, match=r"\[1, 2, 3\]"):
        standard_fold("bp4d", 4)


def test_check_fold_accepts_1_2_and_3_and_refuses_anything_else_in_one_sentence():
    assert [check_fold(k) for k in (1, 2, 3)] == [1, 2, 3]
    assert type(check_fold(np.int64(2))) is int
    for bad in (0, 4, -1, True, False, 2.0, "1", None):
        with pytest.raises(AufacsError, match=r"^fold must be one of 1, 2, 3, got "):
            check_fold(bad)
    with pytest.raises(AufacsError, match=r"^fold must be one of 1, 2, 3, got True$"):
        check_fold(True)


def test_subject_folds_are_exclusive_and_cover_every_subject():
    subjects = [f"F{i:03d}" for i in range(1, 8)] + [f"M{i:03d}" for i in range(1, 6)]
    folds = subject_folds(subjects)
    flat = [s for fold in folds for s in fold]
    assert sorted(flat) == sorted(subjects)


def test_subject_folds_balance_size_and_sex():
    subjects = [f"F{i:03d}" for i in range(1, 8)] + [f"M{i:03d}" for i in range(1, 6)]
    for sex in ("F", "M"):
        counts = [sum(sex_of(s) == sex for s in fold) for fold in subject_folds(subjects)]
        assert max(counts) - min(counts) <= 1
    assert {len(fold) for fold in subject_folds(subjects)} == {4}


def test_subject_folds_do_not_depend_on_input_order_or_repeats():
    subjects = ["M002", "F001", "F003", "M001", "F002", "M003"]
    assert subject_folds(subjects) == subject_folds(sorted(subjects) + subjects)


def test_split_subjects_tests_on_the_last_part_for_fold_1():
    subjects = ["F001", "F002", "F003", "M001", "M002", "M003"]
    split = split_subjects(subjects, fold=1)
    assert split.test == subject_folds(subjects)[2] and leakage(split) == ()


def test_too_few_subjects_for_the_folds_are_refused():
    with pytest.raises(AufacsError, match="at least 3"):
        subject_folds(["F001", "M001"])


def test_custom_split_sorts_and_deduplicates_subjects():
    split = custom_split(["M001", "F001", "M001"], ["F002"], name="mine")
    assert split == Split("mine", ("F001", "M001"), ("F002",))


def test_custom_split_refuses_an_empty_side():
    with pytest.raises(AufacsError, match="test"):
        custom_split(["F001"], [])


def test_leakage_lists_subjects_on_both_sides():
    assert leakage(custom_split(["F001", "M005"], ["M005", "M006"])) == ("M005",)


def test_role_of_tells_train_test_both_and_unused():
    split = custom_split(["F001", "M005"], ["M005", "M006"])
    roles = [split.role_of(s) for s in ("F001", "M006", "M005", "F099")]
    assert roles == ["train", "test", "both", "unused"]


def test_subjects_of_refuses_an_unknown_role():
    with pytest.raises(AufacsError, match="'train' or 'test'"):
        standard_fold("bp4d", 1).subjects_of("validation")


def test_seed_replication_split_leaks_m005_and_tests_on_men_only(shared_fixtures):
    folder = shared_fixtures / "seed_subset"
    split = custom_split(
        subjects_in_path_list(folder / "BP4D_combine_1_2_path.txt"),
        subjects_in_path_list(folder / "BP4D_part3_path.txt"),
    )
    assert leakage(split) == ("M005",)
    assert {sex_of(s) for s in split.test} == {"M"}
