"""Temporal AU activity and per-frame nuisances of a synthetic sequence.

AU activity is a thresholded Gaussian process. Each AU has a latent score ``z`` (T,) with a
standard normal marginal, built from

* five shared *expression drivers* (smile, surprise, frown, sadness, lip press), smooth in
  time; their loadings (:data:`LOADINGS`) give BP4D's co-occurrences: AU6 + AU12 (+AU7,
  AU10, AU14), AU1 + AU2, AU4 + AU7, AU17 + AU23 / AU24, AU1 + AU4 + AU15 + AU17;
* the AU's own smooth process;
* per-subject offsets of the drivers and of the AU's own process (some subjects smile
  more), weight :data:`SUBJECT_SHARE`.

The AU is present where ``z`` exceeds the threshold that gives its BP4D occurrence rate
(:data:`BP4D_RATES`), so the expected rates are BP4D's whatever the size. Its intensity rises
from ``min_intensity`` at the threshold towards 1 as ``z`` climbs: onsets and offsets are
weak, hence hard, as in real data.

The nuisances (head pose, gaze, speech, light, exposure, blur, noise) are smooth processes
too, around per-sequence values.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtr, ndtri

from aufacs.data.synthetic.aus_motion import MAX_OPENING
from aufacs.data.synthetic.face import FaceParams
from aufacs.data.synthetic.render import FrameParams

#: BP4D occurrence rates (training list of a published subset), in BP4D AU order
#: (1 2 4 6 7 10 12 14 15 17 23 24).
BP4D_RATES = (0.23, 0.17, 0.20, 0.50, 0.60, 0.61, 0.61, 0.47, 0.19, 0.35, 0.18, 0.15)
DRIVERS: tuple[str, ...] = ("smile", "surprise", "frown", "sadness", "press")
#: Loading of each AU (rows, BP4D order) on each driver (columns, :data:`DRIVERS` order).
LOADINGS = np.array(
    [
        [0.00, 0.85, 0.00, 0.35, 0.00],  # AU1
        [0.00, 0.90, 0.00, 0.00, 0.00],  # AU2
        [0.00, 0.00, 0.85, 0.30, 0.00],  # AU4
        [0.90, 0.00, 0.25, 0.00, 0.00],  # AU6
        [0.45, 0.00, 0.65, 0.00, 0.00],  # AU7
        [0.55, 0.00, 0.40, 0.00, 0.00],  # AU10
        [0.95, 0.00, 0.00, 0.00, 0.00],  # AU12
        [0.35, 0.00, 0.00, 0.00, 0.45],  # AU14
        [-0.30, 0.00, 0.00, 0.70, 0.30],  # AU15
        [0.00, 0.00, 0.00, 0.45, 0.70],  # AU17
        [0.00, 0.00, 0.00, 0.00, 0.75],  # AU23
        [0.00, 0.00, 0.00, 0.00, 0.80],  # AU24
    ]
)
#: Share of each driver's and AU process's variance that is the subject's constant offset.
SUBJECT_SHARE = 0.15


def smooth_noise(rng: np.random.Generator, count: int, length: int, sigma: float) -> np.ndarray:
    """``count`` independent smooth processes of ``length`` steps: (count, length) float64.

    Gaussian-filtered white noise (``sigma`` steps), rescaled so that every value is
    standard normal.
    """
    pad = int(np.ceil(4 * sigma)) + 1
    white = rng.standard_normal((count, length + 2 * pad))
    if sigma <= 0:
        return white[:, pad : pad + length]
    impulse = np.zeros(2 * pad + 1)
    impulse[pad] = 1.0
    gain = np.sqrt(np.sum(gaussian_filter1d(impulse, sigma, mode="constant") ** 2))
    return gaussian_filter1d(white, sigma, axis=1, mode="constant")[:, pad : pad + length] / gain


def au_thresholds(rates: tuple[float, ...] = BP4D_RATES) -> np.ndarray:
    """Latent-score thresholds (12,) that give each AU its occurrence rate."""
    return ndtri(1.0 - np.asarray(rates))  # the standard normal quantile, as norm.ppf


def subject_offsets(rng: np.random.Generator) -> np.ndarray:
    """A subject's constant offsets of the drivers and of the AUs' own processes:
    (5 + 12,) standard normal."""
    return rng.standard_normal(len(DRIVERS) + len(BP4D_RATES))


def au_intensities(
    rng: np.random.Generator,
    length: int,
    offsets: np.ndarray,
    *,
    smoothness: float,
    min_intensity: float,
    rates: tuple[float, ...] = BP4D_RATES,
) -> np.ndarray:
    """AU intensities of one sequence: (length, 12) float64 in [0, 1], 0 where absent.

    ``offsets``: the subject's (5 + 12,) offsets from :func:`subject_offsets`;
    ``smoothness``: time scale of the activity in frames (Gaussian sigma);
    ``min_intensity``: intensity at onset.
    """
    processes = smooth_noise(rng, len(DRIVERS) + len(rates), length, smoothness)  # (17, T)
    latent = np.sqrt(1 - SUBJECT_SHARE) * processes + np.sqrt(SUBJECT_SHARE) * offsets[:, None]
    drivers, own = latent[: len(DRIVERS)], latent[len(DRIVERS) :]
    own_share = np.sqrt(np.clip(1.0 - np.sum(LOADINGS**2, axis=1), 0.0, None))[:, None]
    score = LOADINGS @ drivers + own_share * own  # (12, T), standard normal
    threshold = au_thresholds(rates)[:, None]
    excess = score - threshold
    # Mean excess over the threshold of a standard normal (inverse Mills ratio minus t).
    # (scipy.stats.norm's pdf and sf, computed as it computes them, without its slow import.)
    density = np.exp(-(threshold**2) / 2.0) / np.sqrt(2 * np.pi)
    scale = density / ndtr(-threshold) - threshold
    rise = 1.0 - np.exp(-np.maximum(excess, 0.0) / scale)
    intensity = np.where(excess > 0, min_intensity + (1 - min_intensity) * rise, 0.0)
    return intensity.T


def sequence_params(
    rng: np.random.Generator,
    face: FaceParams,
    intensities: np.ndarray,
    *,
    smoothness: float,
    max_roll: float = np.deg2rad(15.0),
) -> list[FrameParams]:
    """The :class:`FrameParams` of every frame of one sequence.

    ``intensities``: (T, 12) from :func:`au_intensities`. Head roll stays within
    ``max_roll`` radians (BP4D's +-15 degrees by default).
    """
    length = len(intensities)
    wave = smooth_noise(rng, 9, length, smoothness)  # (9, T)
    roll = np.clip(
        rng.uniform(-0.5, 0.5) * max_roll + 0.3 * max_roll * wave[0], -max_roll, max_roll
    )
    yaw = np.clip(rng.uniform(-0.25, 0.25) + 0.12 * wave[1], -0.5, 0.5)
    scale = rng.uniform(0.92, 1.08) + 0.025 * wave[2]
    shift = rng.uniform(-0.03, 0.03, 2)[:, None] + 0.01 * wave[3:5]
    gaze = np.clip(0.4 * wave[5:7], -1.0, 1.0)
    speech = rng.uniform(0.0, 1.0)
    opening = np.minimum(0.1 * np.clip(wave[7] + speech - 0.6, 0.0, None), MAX_OPENING)
    azimuth = face.light_azimuth + rng.normal(0, 0.15) + 0.04 * wave[8]
    elevation = face.light_elevation + rng.normal(0, 0.08)
    exposure = rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.03, 3))
    params = []
    for t in range(length):
        params.append(
            FrameParams(
                intensities=tuple(float(a) for a in intensities[t]),
                opening=float(opening[t]),
                gaze=(float(gaze[0, t]), float(gaze[1, t])),
                roll=float(roll[t]),
                yaw=float(yaw[t]),
                scale=float(scale[t]),
                shift=(float(shift[0, t]), float(shift[1, t])),
                light=(float(azimuth[t]), float(elevation)),
                gain=tuple(float(g) for g in exposure * rng.uniform(0.97, 1.03)),
                blur=float(rng.uniform(0.3, 1.1)),
                noise=float(rng.uniform(1.0, 4.0)),
                noise_seed=int(rng.integers(2**31)),
            )
        )
    return params
