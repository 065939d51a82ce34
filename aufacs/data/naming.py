"""Zero-padded or not: the frame-name style each sequence uses, decided by majority.

Copies of BP4D name a frame ``0643.jpg`` (zero-padded to four digits) or ``643.jpg``; a stray
file of the other style must not change how the rest of its sequence is read. Both helpers
here count the names of a sequence and follow the majority: :func:`unpadded_sequences` for
the BP4D reader (which name a missing frame should have), :func:`odd_names` for the audit
(which of two files of one frame to keep).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

#: Frames below this number have two names in a BP4D copy (``0643.jpg`` and ``643.jpg``).
PADDED_BELOW = 1000


def is_padded(stems: pd.Series) -> pd.Series:
    """Which name stems (``"0643"``, ``"643"``) carry leading zeros."""
    return stems.str.match(r"0\d")


def unpadded_sequences(images: pd.DataFrame) -> set[tuple[str, str]]:
    """The (subject, task) sequences of ``images`` (columns ``subject``, ``task``,
    ``frame``, ``padded``) whose names are mostly unpadded (``643.jpg``), counting the
    frames below 1000, whose two names differ; a tie counts as padded."""
    short = images[images["frame"] < PADDED_BELOW]
    votes = pd.Series(np.where(short["padded"], -1, 1), index=short.index)
    balance = votes.groupby([short["subject"], short["task"]]).sum()
    return set(balance.index[balance > 0])


def odd_names(frames: pd.DataFrame) -> pd.Series:
    """Which rows of a frame table have an image named against the style of their sequence.

    A name votes padded when its stem has leading zeros, unpadded when it has none and is
    shorter than the longest name of its sequence (padding would change it); other names
    (``1200.jpg``, ``0.png``) tell nothing. Only existing images vote. A row is odd when its
    name votes against the majority of its (subject, task); without a majority none is.
    """
    stems = frames["image_path"].map(lambda path: os.path.splitext(os.path.basename(path))[0])
    sequence = [frames["subject"], frames["task"]]
    exists = frames["has_image"].astype(bool)
    length = stems.str.len()
    longest = length.where(exists).groupby(sequence).transform("max")
    padded = is_padded(stems)
    mine = padded.astype(int) - (~padded & (length < longest)).astype(int)
    style = np.sign(mine.where(exists, 0).groupby(sequence).transform("sum"))
    return (mine != 0) & (style != 0) & (mine != style)
