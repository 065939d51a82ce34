"""The fold that published weights' own file and folder names imply, and the refusal of weights
imported for another fold.

aufacs's fold k tests part 4 - k and trains on the other two (:mod:`aufacs.data.splits`); the
official repositories name the same folds differently:

- JAA-Net names a snapshot folder by its training list: ``*combine_1_2*`` (parts 1 + 2, tests
  part 3) is fold 1, ``*combine_1_3*`` fold 2, ``*combine_2_3*`` fold 3;
- ME-GraphAU's released ``MEFARG_*_fold{k}.pth`` and ``train_stage1.py``'s
  ``epoch{E}_model_fold{k}.pth`` / ``cur_model_fold{k}.pth`` are fold k;
- ``train_stage2.py`` saves ``--fold k`` as ``*_model_fold{k+1}.pth``: its ``fold{k}`` is fold
  k - 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aufacs.core.errors import AufacsError
from aufacs.data.splits import N_FOLDS, check_fold
from aufacs.engine.published_formats import Weights

_COMBINE = re.compile(r"combine_(?P<a>[1-3])_(?P<b>[1-3])")
_RELEASED = re.compile(r"MEFARG_.*_fold(?P<fold>\d+)\.pth?")
_TRAINER = re.compile(r"(?:epoch\d+|cur)_model_fold(?P<fold>\d+)\.pth?")
_FOLD = re.compile(r"fold_?(?P<fold>\d+)")


@dataclass(frozen=True)
class NamedFold:
    """The aufacs ``fold`` that the file or folder ``name`` implies, and ``why`` in a few
    words (the naming rule of the repository that wrote it)."""

    fold: int
    name: str
    why: str


def train_parts(fold: int) -> tuple[int, int]:
    """The two parts fold ``fold`` trains on (the third, ``4 - fold``, is its test part)."""
    test = N_FOLDS + 1 - fold
    first, second = (part for part in range(1, N_FOLDS + 1) if part != test)
    return first, second


def named_fold(weights: Weights) -> NamedFold | None:
    """The fold ``weights``' file names (or, for JAA-Net's module files, their snapshot
    folder's name) imply, or None when they name no fold."""
    if not weights.official:
        return None
    if weights.model == "jaa_net":
        return _jaa_named_fold(weights.files)
    name = weights.files[0].name
    if match := _RELEASED.fullmatch(name):
        return _valid(int(match["fold"]), name, "ME-GraphAU's released files carry their fold")
    if match := _TRAINER.fullmatch(name):
        if weights.options.get("stage") == 2:
            why = "ME-GraphAU's train_stage2.py names its files one higher than its --fold"
            return _valid(int(match["fold"]) - 1, name, why)
        return _valid(int(match["fold"]), name, "ME-GraphAU's train_stage1.py names its --fold")
    if match := _FOLD.search(name):
        return _valid(int(match["fold"]), name, "the name says so")
    return None


def _jaa_named_fold(files: Sequence[Path]) -> NamedFold | None:
    """JAA-Net's training-list name ``combine_<a>_<b>`` in the snapshot folder's name."""
    for folder in dict.fromkeys(path.absolute().parent.name for path in files):
        match = _COMBINE.search(folder)
        if match and match["a"] != match["b"]:
            test = 6 - int(match["a"]) - int(match["b"])  # the part it did not train on
            why = "JAA-Net names a snapshot folder by its training list, combine_<a>_<b>"
            return NamedFold(N_FOLDS + 1 - test, folder, why)
    return None


def _valid(fold: int, name: str, why: str) -> NamedFold | None:
    return NamedFold(fold, name, why) if 1 <= fold <= N_FOLDS else None


def checked_fold(named: NamedFold | None, fold: int | None) -> int:
    """The fold to import for: ``fold`` (None: the ``named`` one, else 1). Refuses, in one
    sentence, a ``fold`` other than the one the names imply."""
    if fold is None:
        return named.fold if named else 1
    check_fold(fold)
    if named is not None and named.fold != fold:
        a, b = train_parts(named.fold)
        raise AufacsError(
            f"{named.name} is named for fold {named.fold} ({named.why}), so its weights "
            f"trained on parts {a} and {b}, and fold {fold} would test them on part "
            f"{N_FOLDS + 1 - fold}, frames they learnt from; import it as fold {named.fold}"
        )
    return fold


def requested_folds(folds: Sequence[str], count: int) -> list[int | None]:
    """``--folds`` as one fold per set of weights: ``auto`` (None each: the fold the names
    imply) or ``count`` fold numbers, each once."""
    if list(folds) == ["auto"]:
        return [None] * count
    if not all(str(k).isdigit() and 1 <= int(k) <= N_FOLDS for k in folds):
        raise AufacsError(
            f"--folds takes 'auto' or fold numbers 1-{N_FOLDS}, got {' '.join(map(str, folds))}"
        )
    numbers = [int(k) for k in folds]
    if len(numbers) != count:
        raise AufacsError(
            f"--folds names {len(numbers)} folds for {count} sets of weights; give one fold "
            "per weight file or folder, or 'auto'"
        )
    return numbers
