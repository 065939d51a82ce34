"""Checkpoints: one file per finished epoch, written atomically, with RNG states to resume."""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aufacs.core.console import say
from aufacs.core.errors import AufacsError, error_gist
from aufacs.core.io import atomic_write

CHECKPOINT_FOLDER = "checkpoints"
#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1
_CHECKPOINT_NAME = re.compile(r"epoch_(\d+)\.pt")


class UnreadableCheckpoint(AufacsError):
    """A checkpoint file that torch cannot read: truncated, damaged or not a checkpoint."""


def checkpoint_path(run: Path | str, epoch: int) -> Path:
    """``<run>/checkpoints/epoch_NNN.pt``: the state after ``epoch`` (1-based)."""
    return Path(run) / CHECKPOINT_FOLDER / f"epoch_{epoch:03d}.pt"


def checkpoint_paths(run: Path | str) -> dict[int, Path]:
    """Every complete checkpoint of a run: epoch -> path, in epoch order."""
    folder = Path(run) / CHECKPOINT_FOLDER
    found = {}
    for path in folder.glob("epoch_*.pt") if folder.is_dir() else []:
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically: to a temporary file beside ``path``, then renamed."""
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: tensors and plain containers only.

    A file that holds other pickled objects is refused with AufacsError, as is one that is
    not an aufacs checkpoint; a file torch cannot read, whatever the damage (cut short,
    random bytes, bytes changed), raises :class:`UnreadableCheckpoint`.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        damage = unpickling_damage(error)
        if damage:
            raise _unreadable(path, damage) from None
        raise AufacsError(
            f"checkpoint {path} holds arbitrary pickled objects, which aufacs refuses to load; "
            "only checkpoints of tensors and plain containers (as aufacs writes them) are accepted"
        ) from None
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever torch raises, the file is damaged
        raise _unreadable(path, error_gist(error)) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise AufacsError(
            f"checkpoint {path} is not an aufacs training checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return state


def unpickling_damage(error: pickle.UnpicklingError) -> str:
    """Why torch's weights-only unpickler refused a file, when the file is damaged (random
    or changed bytes: the gist of the error); ``""`` when it holds pickled objects other
    than tensors and plain containers, which aufacs refuses on purpose."""
    if "Unsupported global" in str(error):
        return ""
    found = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(error))
    return found.group(1) if found else error_gist(error)


def _unreadable(path: Path | str, reason: str) -> UnreadableCheckpoint:
    return UnreadableCheckpoint(
        f"checkpoint {path} cannot be read (a truncated or damaged file: {reason})"
    )


def set_aside_unreadable(run: Path | str) -> list[Path]:
    """Move the run's unreadable last checkpoints aside (``epoch_NNN.pt.unreadable``), each
    with a warning, until the last one reads; returns where they went. Training then resumes
    from the last good checkpoint, so a damaged file costs the epochs after it, no more."""
    moved = []
    for path in reversed(checkpoint_paths(run).values()):
        try:
            load_checkpoint(path)
        except UnreadableCheckpoint as error:
            aside = path.with_name(path.name + ".unreadable")
            os.replace(path, aside)
            say(f"warning: {error}; moved it to {aside} and resume from the one before it")
            moved.append(aside)
            continue
        break
    return moved


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), NumPy and Python RNG states as tensors and plain values."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, words, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_position": int(position),
        "numpy_gauss": [int(has_gauss), float(gauss)],
        "python": torch.tensor(words, dtype=torch.int64),
        "python_version": int(version),
        "python_gauss": python_gauss,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    has_gauss, gauss = state["numpy_gauss"]
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_position"], has_gauss, gauss))
    words = tuple(state["python"].tolist())
    random.setstate((state["python_version"], words, state["python_gauss"]))
