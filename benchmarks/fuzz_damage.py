"""The damage of ``python -m benchmarks.fuzz_readers``: where each layout keeps its files, and
the random changes (:data:`DAMAGES`) that an interrupted copy, a spreadsheet or a Mac or
Windows file browser make to a data set tree.

A change is drawn with a seeded generator, so a tree's changes follow from its seed;
:func:`damage_tree` makes 1 to 3 of them and says which file each touched, whether it may
cost frames and which defect its sequence must then show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Lengths of the ``.mat`` files that ``random_bytes_mat`` writes besides random ones.
SHORT_MAT_LENGTHS = (0, 1, 100, 127)
_OS_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Layout:
    """Where a data set kind keeps its files (globs relative to the root) and how a file's
    relative path names its sequence (``F001/T1`` in BP4D, ``SN001`` in DISFA)."""

    kind: str
    images: str
    labels: str
    landmarks: str
    sequence: re.Pattern

    def sequence_of(self, relative: str) -> str:
        """The sequence a file of the tree belongs to, ``""`` for none."""
        match = self.sequence.search(relative)
        return "/".join(g for g in match.groups() if g) if match else ""


LAYOUTS = {
    "bp4d": Layout(
        "bp4d",
        "2D+3D/*/*/*.jpg",
        "AUCoding/AU_OCC/*.csv",
        "2DFeatures/*.mat",
        re.compile(r"([FM]\d{3})[/_](T\d+)"),
    ),
    "disfa": Layout(
        "disfa",
        "img/*/*.jpg",
        "ActionUnit_Labels/*/*.txt",
        "Landmark_Points/*/tmp_frame_lm/*.mat",
        re.compile(r"(SN\d{3})()"),
    ),
}


@dataclass(frozen=True)
class Change:
    """One change to a tree: its kind, the file (relative path), whether it may cost frames
    (``harmful``) and the defect kind its sequence must then show (``expect``)."""

    kind: str
    path: str
    harmful: bool
    expect: str | None = None


# --------------------------------------------------------------------------- the damage


def _pick(root: Path, pattern: str, rng: np.random.Generator) -> Path | None:
    files = sorted(root.glob(pattern))
    return files[rng.integers(len(files))] if files else None


def _cut(path: Path, rng: np.random.Generator) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rng.integers(len(data))] if data else b"")


def _change_middle(path: Path, rng: np.random.Generator) -> None:
    data = bytearray(path.read_bytes())  # the middle only: the audit's quick check passes
    for at in rng.integers(len(data) // 4, len(data) - 16, rng.integers(1, 40)):
        data[at] = rng.integers(256)
    path.write_bytes(bytes(data))


def _change_bytes(path: Path, rng: np.random.Generator) -> None:
    data = bytearray(path.read_bytes())
    if data:
        for at in rng.integers(0, len(data), rng.integers(1, 5)):
            data[at] = rng.integers(256)
    path.write_bytes(bytes(data))


def _bad_line(path: Path, rng: np.random.Generator) -> None:
    lines = path.read_bytes().split(b"\n")
    garbage = bytes(rng.integers(32, 127, rng.integers(1, 30)).astype(np.uint8))
    short = lines[rng.integers(len(lines))][: rng.integers(1, 6)]
    lines.insert(rng.integers(len(lines) + 1), garbage if rng.random() < 0.5 else short)
    path.write_bytes(b"\n".join(lines))


def _random_bytes(path: Path, rng: np.random.Generator) -> None:
    lengths = (*SHORT_MAT_LENGTHS, int(rng.integers(128, 4000)))
    path.write_bytes(rng.bytes(lengths[rng.integers(len(lengths))]))


def _delete(path: Path, rng: np.random.Generator) -> None:
    path.unlink()


def _empty(path: Path, rng: np.random.Generator) -> None:
    path.write_bytes(b"")


def _crlf(path: Path, rng: np.random.Generator) -> None:
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _bom(path: Path, rng: np.random.Generator) -> None:
    data = path.read_bytes()
    path.write_bytes(data if data.startswith(b"\xef\xbb\xbf") else b"\xef\xbb\xbf" + data)


def _os_file(path: Path, rng: np.random.Generator) -> None:
    names = (*_OS_FILES, f"._{path.name}")  # the last: a Mac's AppleDouble twin
    (path.parent / names[rng.integers(len(names))]).write_bytes(rng.bytes(rng.integers(0, 4096)))


@dataclass(frozen=True)
class Damage:
    """A kind of change: the files it picks from (a :class:`Layout` field, ``"any"`` for the
    three), what it does to the file it picks, whether that may cost frames (``harmful``)
    and the defect kind the file's sequence must then show (``expect``)."""

    files: str
    apply: Callable[[Path, np.random.Generator], None]
    harmful: bool = True
    expect: str | None = None


#: Every kind of change, by name.
DAMAGES: dict[str, Damage] = {
    "truncated_image": Damage("images", _cut),
    "image_bytes_changed": Damage("images", _change_middle),
    "label_bytes_changed": Damage("labels", _change_bytes),
    "garbage_or_short_line": Damage("labels", _bad_line),
    "deleted_file": Damage("any", _delete),
    "random_bytes_mat": Damage("landmarks", _random_bytes, expect="bad_landmark_file"),
    "mat_cut_short": Damage("landmarks", _cut, expect="bad_landmark_file"),
    "empty_label_file": Damage("labels", _empty),
    "crlf_endings": Damage("labels", _crlf, harmful=False),
    "utf8_bom": Damage("labels", _bom, harmful=False),
    "os_file_beside": Damage("any", _os_file, harmful=False),
}


def damage_tree(root: Path, layout: Layout, rng: np.random.Generator) -> list[Change]:
    """Make 1 to 3 random changes of :data:`DAMAGES` to the tree at ``root``."""
    changes: list[Change] = []
    count = rng.integers(1, 4)
    while len(changes) < count:
        kind = list(DAMAGES)[rng.integers(len(DAMAGES))]
        damage = DAMAGES[kind]
        files = damage.files
        if files == "any":
            files = ("images", "labels", "landmarks")[rng.integers(3)]
        path = _pick(root, getattr(layout, files), rng)
        if path is None:
            continue
        damage.apply(path, rng)
        relative = path.relative_to(root).as_posix()
        changes.append(Change(kind, relative, damage.harmful, damage.expect))
    return changes
