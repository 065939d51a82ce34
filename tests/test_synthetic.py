"""SynthBP4D: determinism, the BP4D layout, planted defects, ground truth, learnability."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.align import alignment_matrix
from aufacs.data.audit import audit
from aufacs.data.bp4d import read_bp4d
from aufacs.data.synthetic import (
    SynthConfig,
    SynthManifest,
    SynthTruth,
    generate_synthetic,
    plan,
    preview_grid,
    warp_masks,
)
from aufacs.data.synthetic.planning import DEFECT_FIELDS, labels_of
from aufacs.data.synthetic.proof import LEARNABILITY_CONFIG, learnability, locality
from aufacs.data.synthetic.sequences import BP4D_RATES
from aufacs.data.table import DEFECT_KINDS, landmarks_of
from aufacs.data.table import labels_of as table_labels

#: A tiny data set with one planted defect of each kind.
TINY = SynthConfig(
    subjects=2,
    tasks=2,
    frames_per_task=8,
    frame_width=130,
    frame_height=174,
    seed=3,
    missing_images=1,
    unlabelled_images=1,
    unknown_label_rows=1,
    truncated_images=1,
    missing_landmarks=1,
    nan_landmarks=1,
    duplicate_frames=1,
)
#: The same without defects.
CLEAN = dataclasses.replace(TINY, **dict.fromkeys(DEFECT_FIELDS.values(), 0))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthManifest]:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    return root, generate_synthetic(root, TINY, progress=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "clean"
    generate_synthetic(root, CLEAN, progress=False)
    return root


def test_every_config_field_has_help_text() -> None:
    assert all(f.metadata.get("help") for f in dataclasses.fields(SynthConfig))


def test_the_same_seed_gives_the_same_frames(tmp_path: Path) -> None:
    config = dataclasses.replace(CLEAN, subjects=1, tasks=1, frames_per_task=3)
    generate_synthetic(tmp_path / "a", config, progress=False)
    generate_synthetic(tmp_path / "b", config, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert files and all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )


def test_a_subject_does_not_change_when_more_subjects_are_generated() -> None:
    _, few = plan(dataclasses.replace(CLEAN, subjects=2))
    _, more = plan(dataclasses.replace(CLEAN, subjects=4))
    assert few[0].params == more[0].params


def test_a_non_empty_folder_is_refused_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AufacsError, match="not empty"):
        generate_synthetic(tmp_path, CLEAN, progress=False)


def test_overwrite_replaces_an_earlier_data_set_and_keeps_other_files(tmp_path: Path) -> None:
    generate_synthetic(tmp_path, dataclasses.replace(CLEAN, frames_per_task=4), progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    generate_synthetic(
        tmp_path, dataclasses.replace(CLEAN, frames_per_task=2), overwrite=True, progress=False
    )
    assert len(list(tmp_path.rglob("*.jpg"))) == 2 * 2 * 2
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_bad_config_is_refused_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(AufacsError, match="tasks must be between 1 and 8"):
        generate_synthetic(tmp_path, dataclasses.replace(CLEAN, tasks=9), progress=False)


def test_the_folder_reads_back_as_bp4d_with_the_generated_labels(clean: Path) -> None:
    table = read_bp4d(clean)
    _, sequences = plan(CLEAN)
    expected = np.concatenate([labels_of(s.params) for s in sequences])
    frames = table.frames.sort_values(["subject", "task", "frame"])
    assert len(frames) == len(expected)
    np.testing.assert_array_equal(table_labels(frames, table.aus), expected)


def test_the_written_landmarks_are_the_drawn_ones(clean: Path) -> None:
    table = read_bp4d(clean)
    truth = SynthTruth(clean)
    row = table.frames.iloc[5]
    drawn = truth.render(row["subject"], row["task"], row["frame"])
    np.testing.assert_allclose(landmarks_of(table.frames.iloc[[5]])[0], drawn.landmarks, atol=1e-6)


def test_a_stored_frame_can_be_redrawn_from_its_parameters(clean: Path) -> None:
    row = read_bp4d(clean).frames.iloc[3]
    written = cv2.cvtColor(cv2.imread(row["image_path"]), cv2.COLOR_BGR2RGB).astype(float)
    drawn = SynthTruth(clean).render(row["subject"], row["task"], row["frame"]).image
    assert np.abs(written - drawn).mean() < 2.0


def test_the_manifest_counts_each_planted_defect_kind(tiny: tuple[Path, SynthManifest]) -> None:
    root, manifest = tiny
    assert manifest.defect_counts == dict.fromkeys(manifest.defect_counts, 1)
    assert set(manifest.defect_counts) <= set(DEFECT_KINDS)
    assert SynthManifest.read(root).defect_counts == manifest.defect_counts


def test_the_audit_finds_exactly_the_planted_defects(tiny: tuple[Path, SynthManifest]) -> None:
    root, manifest = tiny
    found = audit(read_bp4d(root)).defects
    assert _defect_keys(found) == _defect_keys(manifest.defects)


def _defect_keys(defects) -> set[tuple[str, ...]]:
    """(kind, subject, task, frame) of every row of a defects table, as strings."""
    keys = defects[["kind", "subject", "task", "frame"]].astype(str)
    return set(keys.itertuples(index=False, name=None))


def test_the_occurrence_rates_are_near_bp4d() -> None:
    _, sequences = plan(SynthConfig(subjects=40, tasks=8, frames_per_task=40, seed=1))
    rates = np.concatenate([labels_of(s.params) for s in sequences]).mean(axis=0)
    np.testing.assert_allclose(rates, BP4D_RATES, atol=0.05)


@pytest.mark.parametrize("pair", [(6, 12), (1, 2), (4, 7), (17, 24), (17, 23)])
def test_facs_partners_co_occur_more_than_by_chance(pair: tuple[int, int]) -> None:
    _, sequences = plan(SynthConfig(subjects=20, tasks=4, frames_per_task=40, seed=2))
    labels = np.concatenate([labels_of(s.params) for s in sequences])
    a, b = (labels[:, BP4D_AUS.index(au)] for au in pair)
    assert np.corrcoef(a, b)[0, 1] > 0.2


def test_au_activity_is_smooth_in_time() -> None:
    _, sequences = plan(SynthConfig(subjects=10, tasks=2, frames_per_task=60, seed=4))
    labels = np.stack([labels_of(s.params) for s in sequences])  # (S, T, 12)
    changes = (labels[:, 1:] != labels[:, :-1]).mean()
    rate = labels.mean(axis=(0, 1))
    independent = (2 * rate * (1 - rate)).mean()
    assert changes < 0.4 * independent


def test_head_roll_stays_within_15_degrees() -> None:
    _, sequences = plan(SynthConfig(subjects=10, tasks=4, frames_per_task=30, seed=5))
    rolls = np.array([p.roll for s in sequences for p in s.params])
    assert np.abs(rolls).max() <= np.deg2rad(15) + 1e-9 and np.abs(rolls).max() > np.deg2rad(5)


def test_each_au_changes_the_frame_mostly_inside_its_region() -> None:
    shares = locality()
    assert shares.min(axis=0).min() >= 0.9, shares.min(axis=0).round(3)


def test_aligned_region_masks_are_the_frame_masks_aligned(clean: Path) -> None:
    truth = SynthTruth(clean)
    subject, task, frame = truth.frames.index[2]
    frame_masks = truth.region_masks(subject, task, frame)
    landmarks = truth.renderer(subject).landmarks(truth.params(subject, task, frame))
    expected = warp_masks(frame_masks, alignment_matrix(landmarks), (200, 200))
    aligned = truth.region_masks(subject, task, frame, aligned=True)
    overlap = (aligned & expected).sum(axis=(1, 2)) / (aligned | expected).sum(axis=(1, 2))
    assert aligned.shape == (12, 200, 200) and overlap.min() > 0.8


def test_region_masks_for_a_frame_table_stack_one_per_row(clean: Path) -> None:
    truth = SynthTruth(clean)
    rows = read_bp4d(clean).frames.iloc[:3]
    masks = truth.region_masks_for(rows, aligned=True, size=64)
    assert masks.shape == (3, 12, 64, 64) and masks.any(axis=(2, 3)).all()


def test_an_unknown_frame_is_refused_with_a_sentence(clean: Path) -> None:
    with pytest.raises(AufacsError, match="no synthetic frame F001/T1/99999"):
        SynthTruth(clean).region_masks("F001", "T1", 99999)


def test_the_preview_is_a_png_grid(tmp_path: Path) -> None:
    out = preview_grid(tmp_path / "grid.png", CLEAN, n=2)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 400


@pytest.fixture(scope="module")
def learned():
    return learnability(LEARNABILITY_CONFIG)


def test_hog_logistic_regression_reaches_f1_075_on_held_out_subjects(learned) -> None:
    assert learned.f1.mean() >= 0.75, learned.f1.round(2)


def test_shuffled_labels_stay_at_chance(learned) -> None:
    assert learned.shuffled_f1.mean() <= learned.chance_f1.mean(), learned.shuffled_f1.round(2)
