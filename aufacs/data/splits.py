"""Subject-exclusive train / test splits: the standard 3-fold protocols, custom splits, leakage.

BP4D and DISFA are evaluated with 3-fold subject-exclusive cross-validation: the subjects are
cut into three parts (the lists shipped in ``aufacs/data/folds/``, the same in JAA-Net and
ME-GraphAU), and fold k trains on two parts and tests on the third:

====  ===========  =========
fold  train parts  test part
====  ===========  =========
1     1 + 2        3 (JAA-Net's ``combine_1_2`` / ``part3``)
2     1 + 3        2
3     2 + 3        1
====  ===========  =========

For any other subject list (the synthetic data set, a custom copy), :func:`subject_folds`
makes a deterministic, sex-balanced partition with the same fold numbering.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from aufacs.core.errors import AufacsError
from aufacs.data.table import sex_of

#: Data set kinds with a standard protocol in ``aufacs/data/folds/``.
STANDARD_KINDS: tuple[str, ...] = ("bp4d", "disfa")
#: Number of folds of the standard protocols.
N_FOLDS = 3


def check_fold(fold: int) -> int:
    """``fold`` as an int when it is one of 1 ... :data:`N_FOLDS`; otherwise (another number,
    a bool, a float, a string) :class:`AufacsError` in one sentence naming the valid folds."""
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 1 <= fold <= N_FOLDS:
        folds = ", ".join(str(k) for k in range(1, N_FOLDS + 1))
        raise AufacsError(f"fold must be one of {folds}, got {fold!r}")
    return int(fold)


@dataclass(frozen=True)
class Split:
    """A train / test split by subject. ``train`` and ``test`` are sorted subject IDs."""

    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]

    @property
    def subjects(self) -> tuple[str, ...]:
        """Every subject of the split, sorted, once each."""
        return tuple(sorted(set(self.train) | set(self.test)))

    def subjects_of(self, role: str) -> tuple[str, ...]:
        """The subjects of ``role`` (``"train"`` or ``"test"``)."""
        if role == "train":
            return self.train
        if role == "test":
            return self.test
        raise AufacsError(f"unknown split role {role!r}; expected 'train' or 'test'")

    def role_of(self, subject: str) -> str:
        """``"train"``, ``"test"``, ``"both"`` (leakage) or ``"unused"`` for a subject ID."""
        in_train, in_test = subject in self.train, subject in self.test
        if in_train and in_test:
            return "both"
        if in_train:
            return "train"
        return "test" if in_test else "unused"


def standard_parts(kind: str) -> tuple[tuple[str, ...], ...]:
    """The three subject parts of a standard protocol (``kind``: ``"bp4d"`` or ``"disfa"``)."""
    if kind not in STANDARD_KINDS:
        raise AufacsError(
            f"no standard folds for data set kind {kind!r}; expected one of {list(STANDARD_KINDS)}"
            " (use split_subjects for other subject lists)"
        )
    folder = resources.files("aufacs.data").joinpath("folds")
    return tuple(
        tuple(folder.joinpath(f"{kind}_part{part}.txt").read_text().split())
        for part in range(1, N_FOLDS + 1)
    )


def standard_fold(kind: str, fold: int) -> Split:
    """Fold ``fold`` (1, 2 or 3) of the standard protocol of ``kind``, named ``<kind>_fold<k>``."""
    return _fold_of_parts(standard_parts(kind), fold, f"{kind}_fold{fold}")


def subject_folds(subjects: Iterable[str], n_folds: int = N_FOLDS) -> list[tuple[str, ...]]:
    """Partition subjects into ``n_folds`` parts, deterministically and balanced by sex.

    The subjects, once each, are ordered by sex (``F``, ``M``, then unknown; see
    :func:`aufacs.data.table.sex_of`) and ID, then dealt to the parts in turn, so the parts
    differ by at most one subject overall and by at most one of each sex. Returns
    ``n_folds`` sorted tuples; needs at least ``n_folds`` subjects.
    """
    unique = sorted(set(_checked_ids(subjects, "subjects")))
    if n_folds < 2:
        raise AufacsError(f"n_folds must be at least 2, got {n_folds}")
    if len(unique) < n_folds:
        raise AufacsError(
            f"cannot split {len(unique)} subjects into {n_folds} subject-exclusive folds; "
            f"need at least {n_folds} subjects"
        )
    sex_order = {"F": 0, "M": 1}
    ordered = sorted(unique, key=lambda s: (sex_order.get(sex_of(s), 2), s))
    return [tuple(sorted(ordered[part::n_folds])) for part in range(n_folds)]


def split_subjects(
    subjects: Iterable[str], fold: int, n_folds: int = N_FOLDS, name: str | None = None
) -> Split:
    """Fold ``fold`` (1-based) of the :func:`subject_folds` partition of ``subjects``.

    Fold k tests on part ``n_folds + 1 - k`` and trains on the others, as the standard
    protocols do. ``name`` defaults to ``"fold<k>"``.
    """
    return _fold_of_parts(subject_folds(subjects, n_folds), fold, name or f"fold{fold}")


def custom_split(train: Iterable[str], test: Iterable[str], name: str = "custom") -> Split:
    """A split from explicit subject lists. Overlap is allowed here; :func:`leakage` finds it."""
    return Split(
        name=name,
        train=tuple(sorted(set(_checked_ids(train, "train")))),
        test=tuple(sorted(set(_checked_ids(test, "test")))),
    )


def leakage(split: Split) -> tuple[str, ...]:
    """Subjects in both the training and the test side of ``split``, sorted."""
    return tuple(sorted(set(split.train) & set(split.test)))


def _fold_of_parts(parts: Sequence[Sequence[str]], fold: int, name: str) -> Split:
    """Fold ``fold`` of ``parts``: test on part ``len(parts) + 1 - fold``, train on the rest."""
    n_folds = len(parts)
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 1 <= fold <= n_folds:
        raise AufacsError(f"fold must be one of {list(range(1, n_folds + 1))}, got {fold!r}")
    test_index = n_folds - fold
    train = [s for index, part in enumerate(parts) if index != test_index for s in part]
    return Split(name=name, train=tuple(sorted(train)), test=tuple(sorted(parts[test_index])))


def _checked_ids(subjects: Iterable[str], parameter: str) -> list[str]:
    """Subject IDs as a non-empty list of non-blank strings; AufacsError names ``parameter``."""
    if isinstance(subjects, str):
        raise AufacsError(f"{parameter} must be a list of subject IDs, not the string {subjects!r}")
    ids = [str(s).strip() for s in subjects]
    if not ids or not all(ids):
        raise AufacsError(f"{parameter} must be a non-empty list of non-blank subject IDs")
    return ids
