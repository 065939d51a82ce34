"""Ground truth of a generated SynthBP4D folder: each frame's AU regions, and redrawing.

``SynthTruth(root)`` reads ``synthetic_manifest.json`` and ``synthetic_frames.csv`` and can,
for any generated frame (``subject``, ``task``, ``frame``):

* give every AU's region, (12, H, W) bool, in frame pixels or in the aligned crop (JAA-Net
  alignment from the frame's landmarks, as the cache does), to score attention heatmaps;
* draw the frame again, as written or with other AU intensities (e.g. one AU switched off).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aufacs.core.errors import AufacsError
from aufacs.data.align import ALIGNED_SIZE, BOX_ENLARGE, alignment_matrix
from aufacs.data.synthetic.manifest import FRAMES_FILE, SynthManifest, params_from_row
from aufacs.data.synthetic.render import FrameParams, RenderedFrame, SubjectRenderer


class SynthTruth:
    """The stored parameters of a generated folder ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.manifest = SynthManifest.read(self.root)
        path = self.root / FRAMES_FILE
        if not path.is_file():
            raise AufacsError(f"{path} does not exist; expected a folder made by aufacs synth")
        table = pd.read_csv(path, dtype={"subject": str, "task": str})
        self.frames = table.set_index(["subject", "task", "frame"]).sort_index()
        self._faces = {face.subject: face for face in self.manifest.faces}
        self._renderers: dict[str, SubjectRenderer] = {}

    def params(self, subject: str, task: str, frame: int) -> FrameParams:
        """The parameters frame ``frame`` of ``subject``/``task`` was drawn with."""
        key = (subject, task, int(frame))
        if key not in self.frames.index:
            raise AufacsError(f"{self.root} has no synthetic frame {subject}/{task}/{frame}")
        return params_from_row(self.frames.loc[key])

    def renderer(self, subject: str) -> SubjectRenderer:
        """The subject's renderer at the data set's frame size (built once)."""
        if subject not in self._renderers:
            self._renderers[subject] = SubjectRenderer(
                self._faces[subject], self.manifest.config.frame_size
            )
        return self._renderers[subject]

    def render(
        self, subject: str, task: str, frame: int, intensities: np.ndarray | None = None
    ) -> RenderedFrame:
        """Draw a frame again, optionally with other AU ``intensities`` (12,) in [0, 1]."""
        params = self.params(subject, task, frame)
        if intensities is not None:
            params = params.with_intensities(intensities)
        return self.renderer(subject).render(params)

    def region_masks(
        self,
        subject: str,
        task: str,
        frame: int,
        *,
        aligned: bool = False,
        size: int = ALIGNED_SIZE,
        box_enlarge: float = BOX_ENLARGE,
    ) -> np.ndarray:
        """Every AU's region in one frame, BP4D AU order.

        Returns (12, H, W) bool in frame pixels, or with ``aligned`` (12, size, size) in the
        aligned crop made by :func:`aufacs.data.align.align_face` with ``size`` and
        ``box_enlarge`` from the frame's landmarks.
        """
        params = self.params(subject, task, frame)
        renderer = self.renderer(subject)
        if not aligned:
            return renderer.region_masks(params)
        matrix = alignment_matrix(renderer.landmarks(params), box_enlarge, size)
        return renderer.region_masks(params, matrix, (size, size))

    def region_masks_for(self, frames: pd.DataFrame, **options) -> np.ndarray:
        """:meth:`region_masks` of every row (``subject``, ``task``, ``frame`` columns) of a
        frame table: (N, 12, H, W) bool; ``options`` as for :meth:`region_masks`."""
        keys = frames[["subject", "task", "frame"]].itertuples(index=False)
        return np.stack([self.region_masks(s, t, f, **options) for s, t, f in keys])
