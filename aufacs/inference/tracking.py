"""Face identities across the frames of a video, by box overlap (:class:`FaceTracker`).

Each predicted frame's boxes are matched to the tracks of the frames before, greedily by
intersection over union (IoU), highest first; a box that overlaps no track by at least
:data:`MIN_IOU` starts a new track with the next free id (0, 1, 2, ... per video). A track
that finds no box for more than ``patience`` predicted frames is forgotten, so a face that
comes back after that gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The least IoU between a box and a track's last box for the box to continue the track.
MIN_IOU = 0.3
#: How many predicted frames in a row a track may miss its face before it is forgotten.
PATIENCE = 5


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box of ``first`` (A, 4) with every box of ``second`` (B, 4), boxes as
    ``x0 y0 x1 y1`` pixel edges. Returns (A, B) float64 in [0, 1]."""
    a = np.asarray(first, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(second, dtype=np.float64).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class FaceTracker:
    """Gives the faces of successive frames of one video their track ids (module docstring)."""

    min_iou: float = MIN_IOU
    patience: int = PATIENCE
    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    missed: dict[int, int] = field(default_factory=dict)
    next_id: int = 0

    def assign(self, boxes: np.ndarray) -> list[int]:
        """The track id of each box (F, 4) of the next predicted frame (module docstring)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = list(self.boxes)
        overlap = box_iou(boxes, np.array([self.boxes[i] for i in ids]).reshape(-1, 4))
        found: dict[int, int] = {}
        for flat in np.argsort(-overlap, axis=None, kind="stable"):
            row, column = np.unravel_index(flat, overlap.shape)
            if overlap[row, column] < self.min_iou:
                break
            if row not in found and ids[column] not in found.values():
                found[int(row)] = ids[column]
        for row in range(len(boxes)):
            if row not in found:
                found[row] = self.next_id
                self.next_id += 1
        self._update(boxes, found)
        return [found[row] for row in range(len(boxes))]

    def _update(self, boxes: np.ndarray, found: dict[int, int]) -> None:
        """Move the matched tracks to their new boxes; age and forget the others."""
        seen = set(found.values())
        for track in list(self.boxes):
            if track not in seen:
                self.missed[track] += 1
                if self.missed[track] > self.patience:
                    del self.boxes[track], self.missed[track]
        for row, track in found.items():
            self.boxes[track] = boxes[row]
            self.missed[track] = 0
