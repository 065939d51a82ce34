"""A picture of SynthBP4D: aligned synthetic faces with their active AUs.

``aufacs preview --out docs/img/synth_grid.png`` (or :func:`preview_grid`) draws the frames
in memory from a :class:`~aufacs.data.synthetic.planning.SynthConfig` (nothing is written
but the PNG), aligns them as the cache does and titles each with its subject, task and
active AUs (weak ones, intensity below :data:`WEAK`, in parentheses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aufacs.core.aus import BP4D_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.align import align_face
from aufacs.data.synthetic.planning import DEFAULT_CONFIG, SynthConfig, plan
from aufacs.data.synthetic.render import SubjectRenderer

#: Intensity below which an active AU is marked weak in the titles.
WEAK = 0.35
COLUMNS = 4
DPI = 100
#: Range of active-AU counts preferred for the pictured frames (clear, not crowded).
FEW_AUS = (2, 5)


def au_title(intensities: np.ndarray) -> str:
    """Active AUs of an intensity vector (12,), e.g. ``"AU 6 12 (14)"`` or ``"no AU"``."""
    active = [
        f"({au})" if a < WEAK else str(au)
        for au, a in zip(BP4D_AUS, intensities, strict=True)
        if a > 0
    ]
    return "AU " + " ".join(active) if active else "no AU"


def preview_grid(out_png: Path | str, config: SynthConfig = DEFAULT_CONFIG, n: int = 12) -> Path:
    """Draw ``n`` aligned faces of ``config``'s data set into a PNG grid; returns its path.

    The faces come from ``n`` sequences spread over the subjects and tasks; each shows the
    sequence's most intense frame among those with :data:`FEW_AUS` active AUs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n < 1:
        raise AufacsError(f"n must be at least 1 face, got {n}")
    faces, sequences = plan(config)
    renderers = {face.subject: SubjectRenderer(face, config.frame_size) for face in faces}
    picks = [sequences[i * len(sequences) // n % len(sequences)] for i in range(n)]
    rows = int(np.ceil(n / COLUMNS))
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(2.2 * COLUMNS, 2.45 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, sequence in zip(axes.ravel(), picks, strict=False):
        params = sequence.params[_telling_frame(sequence.params)]
        drawn = renderers[sequence.subject].render(params)
        crop, _ = align_face(drawn.image, drawn.landmarks)
        ax.imshow(crop)
        ax.set_title(
            f"{sequence.subject} {sequence.task}\n{au_title(np.array(params.intensities))}",
            fontsize=8,
        )
    figure.tight_layout()
    figure.set_dpi(DPI)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    plt.close(figure)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the PNG small enough for the repository.
    Image.fromarray(pixels).quantize(colors=256).save(out_png, optimize=True)
    return out_png


def _telling_frame(params: list) -> int:
    """Index of the most intense frame with :data:`FEW_AUS` active AUs (any frame if none)."""
    intensities = np.array([p.intensities for p in params])  # (T, 12)
    active = (intensities > 0).sum(axis=1)
    fits = (active >= FEW_AUS[0]) & (active <= FEW_AUS[1])
    strength = intensities.sum(axis=1) + np.where(fits, 100.0, 0.0)
    return int(np.argmax(strength))
