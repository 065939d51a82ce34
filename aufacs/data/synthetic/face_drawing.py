"""Drawing a subject's face: :class:`FaceModel`, its static layers, its features and shading.

:class:`FaceModel` holds what does not change from frame to frame (head outline, hair, ears,
neck, skin, the head's height field) and draws one frame's face from its landmarks, the AU
marks (creases and bumps from :mod:`aufacs.data.synthetic.aus_motion`), the light and the
gaze. Shading is Lambertian on a height field: ``h`` (face units) is a smooth dome with a
nose, brow ridge, eye sockets, cheeks, lips and chin, plus the frame's AU bumps. Coordinates
are face units (see :mod:`aufacs.data.synthetic.draw`); the face's geometry comes from
:mod:`aufacs.data.synthetic.face`.
"""

from __future__ import annotations

import cv2
import numpy as np

from aufacs.data.synthetic.draw import (
    Canvas,
    add_bump,
    catmull_rom,
    ellipse_polygon,
    paint,
    shape_alpha,
    stroke_layer,
)
from aufacs.data.synthetic.face import (
    BROWS,
    EYES,
    INNER_LIP,
    LIP_LINE,
    NOSTRILS,
    OUTER_LIP,
    UPPER_LIDS,
    FaceParams,
    Marks,
    head_outline,
    neutral_landmarks,
)

#: Skin height (face units) where the dome is at its top; the nose adds to it.
DOME_DEPTH = 0.55


def _smoothstep(value: np.ndarray) -> np.ndarray:
    t = np.clip(value, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _normalise(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def light_vector(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector (3,) towards the light: azimuth to the image right, elevation upwards (rad)."""
    return _normalise(
        np.array(
            [
                np.sin(azimuth) * np.cos(elevation),
                -np.sin(elevation),
                np.cos(azimuth) * np.cos(elevation),
            ]
        )
    )


def lambert(gx: np.ndarray, gy: np.ndarray, light: np.ndarray, ambient: float = 0.4) -> np.ndarray:
    """Diffuse shading of a height field from its gradient (per face unit), (H, W) float32.

    Normalised so that a flat surface facing the camera has shade 1.
    """
    lx, ly, lz = (np.float32(v) for v in light)
    dot = (lz - gx * lx - gy * ly) / np.sqrt(1.0 + gx * gx + gy * gy)
    top = np.float32(ambient + (1 - ambient) * max(float(lz), 0.2))
    return (np.float32(ambient) + np.float32(1 - ambient) * np.maximum(dot, 0.0)) / top


class FaceModel:
    """A subject's face, drawn at ``ppu`` canvas pixels per face unit.

    Built once per subject (the static layers take a few milliseconds); :meth:`draw` then
    draws one frame's face.
    """

    def __init__(self, face: FaceParams, ppu: float) -> None:
        self.face = face
        self.canvas = Canvas(ppu)
        self.neutral = neutral_landmarks(face)
        self._rng = np.random.default_rng(face.texture_seed)
        self._skin = np.asarray(face.skin, dtype=np.float32)
        (rows, cols), outline = shape_alpha(self.canvas, [head_outline(face)])
        self.face_alpha = np.zeros(self.canvas.shape, dtype=np.float32)
        self.face_alpha[rows, cols] = outline
        gy, gx = np.gradient(self._base_height(), 1.0 / ppu)
        self._grad = (gx.astype(np.float32), gy.astype(np.float32))
        self._albedo = self._base_albedo()
        hair_rgb, hair_alpha = self._hair_layer()
        under_rgb, under_alpha = self._under_layer()
        # Total alpha, where the face's own colour shows, and what shows behind / over it.
        self.alpha = 1 - (1 - under_alpha) * (1 - self.face_alpha) * (1 - hair_alpha)
        self._face_cover = self.face_alpha * (1 - hair_alpha)
        keep = ((1 - self.face_alpha) * (1 - hair_alpha))[..., None]
        self._behind = under_rgb * keep + hair_rgb

    # ----------------------------------------------------------------- static layers
    def _base_height(self) -> np.ndarray:
        """The neutral face's height field (H, W) float32, face units."""
        canvas, face, n = self.canvas, self.face, self.neutral
        dome = cv2.GaussianBlur(self.face_alpha, (0, 0), 0.35 * canvas.ppu)
        height = dome * np.float32(DOME_DEPTH)
        for k, point in enumerate(n[10:14]):
            add_bump(height, canvas, point, (0.09 * face.nose_width, 0.14), 0.05 + 0.025 * k)
        add_bump(height, canvas, n[13] + (0, 0.02), (0.09 * face.nose_width, 0.08), 0.07)
        for side in (-1, 1):
            add_bump(
                height, canvas, (side * 0.17 * face.nose_width, n[14, 1] - 0.04), (0.06, 0.05), 0.06
            )
            add_bump(height, canvas, (side * 0.5, 0.02), (0.2, 0.13), -0.09)
            add_bump(height, canvas, (side * 0.5, -0.3), (0.3, 0.08), 0.05)
            add_bump(height, canvas, (side * 0.62, 0.45), (0.2, 0.18), 0.06)
        mouth = n[31:43].mean(axis=0)
        add_bump(height, canvas, mouth, (0.32, 0.14), 0.06)
        add_bump(height, canvas, (0.0, face.chin_y - 0.22), (0.18, 0.12), 0.05)
        return height

    def _base_albedo(self) -> np.ndarray:
        """Skin colour with a faint texture and warm cheeks: (H, W, 3) float32."""
        canvas = self.canvas
        albedo = np.empty((*canvas.shape, 3), dtype=np.float32)
        albedo[:] = self._skin
        warmth = np.zeros(canvas.shape, dtype=np.float32)
        for side in (-1, 1):
            add_bump(warmth, canvas, (side * 0.6, 0.55), (0.2, 0.15), 0.07)
        albedo *= 1 - warmth[..., None] * np.float32([0.0, 0.6, 0.5])
        texture = self._rng.normal(0.0, 0.025, canvas.shape).astype(np.float32)
        albedo *= 1 + cv2.GaussianBlur(texture, (0, 0), 0.6)[..., None]
        return albedo

    def _hair_texture(self) -> np.ndarray:
        """Streaky multiplicative hair texture (H, W) float32 around 1."""
        noise = self._rng.normal(0.0, 1.0, self.canvas.shape).astype(np.float32)
        streaks = cv2.GaussianBlur(noise, (0, 0), sigmaX=0.6, sigmaY=4.0)
        return 1 + 0.6 * streaks

    def _under_layer(self) -> tuple[np.ndarray, np.ndarray]:
        """What lies behind the face (long hair, neck, ears), premultiplied RGB and alpha."""
        canvas, face = self.canvas, self.face
        rgb = np.zeros((*canvas.shape, 3), dtype=np.float32)
        alpha = np.zeros(canvas.shape, dtype=np.float32)
        _, y = canvas.grid
        if face.hair_long:
            w = face.head_width * face.hair_volume
            length = face.chin_y + 0.4
            side = np.array(
                [[1.02 * w, -0.15], [1.12 * w, 0.6], [1.18 * w, length - 0.2], [0.8 * w, length]]
            )
            back = np.concatenate([side * (-1, 1), side[::-1]])
            shape = [
                np.concatenate([catmull_rom(back, closed=False), self._hair_cap_outline()[::-1]])
            ]
            self._over(rgb, alpha, shape, np.float32(face.hair) * 0.75, texture=True)
        neck_w = 0.55 * face.jaw_width + 0.12
        neck = np.array(
            [
                [-neck_w, 1.0],
                [-neck_w - 0.05, 2.4],
                [-neck_w - 0.4, 3.1],
                [neck_w + 0.4, 3.1],
                [neck_w + 0.05, 2.4],
                [neck_w, 1.0],
            ]
        )
        shadow = 0.55 + 0.3 * _smoothstep((y - face.chin_y + 0.1) / 0.9)
        self._over(rgb, alpha, [neck], self._skin[None, None] * shadow[..., None])
        ears = [
            ellipse_polygon((s * (face.head_width - 0.02), 0.28), (0.13, 0.27), -s * 0.12)
            for s in (-1, 1)
        ]
        self._over(rgb, alpha, ears, self._skin * 0.85)
        return rgb, alpha

    def _hair_cap_outline(self) -> np.ndarray:
        """The top of the hair (an arc over the crown), face units, left to right."""
        face = self.face
        w, top = (
            face.head_width * face.hair_volume,
            -0.15 - (-0.15 - face.crown_y) * face.hair_volume,
        )
        angles = np.linspace(np.pi, 0.0, 15)
        return np.stack([w * np.cos(angles) * 1.02, -0.15 + (top + 0.15) * np.sin(angles)], 1)

    def _hair_layer(self) -> tuple[np.ndarray, np.ndarray]:
        """The hair in front of the head (cap down to the hairline), premultiplied RGB, alpha."""
        canvas, face = self.canvas, self.face
        w = face.head_width
        x = np.linspace(-w * 1.05, w * 1.05, 25)
        temple = 0.3 if face.hair_long else -0.25
        ramp = _smoothstep((np.abs(x) - 0.8 * w) / (0.22 * w))
        hairline = face.hairline_y + 0.15 * (x / w) ** 2 + (temple - face.hairline_y) * ramp
        front = np.stack([x, hairline], 1)
        cap = self._hair_cap_outline()
        shape = [np.concatenate([front, cap[::-1]])]
        rgb = np.zeros((*canvas.shape, 3), dtype=np.float32)
        alpha = np.zeros(canvas.shape, dtype=np.float32)
        self._over(rgb, alpha, shape, np.float32(face.hair), texture=True)
        return rgb, alpha

    def _over(
        self,
        rgb: np.ndarray,
        alpha: np.ndarray,
        polygons: list[np.ndarray],
        colour: np.ndarray,
        *,
        texture: bool = False,
    ) -> None:
        """Composite filled polygons over a premultiplied layer, in place."""
        (rows, cols), cover = shape_alpha(self.canvas, polygons)
        colour = np.broadcast_to(np.asarray(colour, dtype=np.float32), (*self.canvas.shape, 3))
        paint_rgb = colour[rows, cols]
        if texture:
            paint_rgb = paint_rgb * self._hair_texture()[rows, cols, None]
        rgb[rows, cols] = rgb[rows, cols] * (1 - cover[..., None]) + paint_rgb * cover[..., None]
        alpha[rows, cols] = alpha[rows, cols] * (1 - cover) + cover

    # ----------------------------------------------------------------- per frame
    def draw(
        self,
        landmarks: np.ndarray,
        marks: Marks,
        light: np.ndarray,
        gaze: tuple[float, float] = (0.0, 0.0),
    ) -> np.ndarray:
        """Draw the head for one frame.

        ``landmarks``: (49, 2) face units (the neutral ones moved by the AUs); ``marks``: the
        AU creases and bumps; ``light``: (3,) unit vector towards the light; ``gaze``: iris
        offset in units of the iris radius. Returns the canvas (H, W, 4) float32: RGB in
        [0, 1] premultiplied by the alpha, then the alpha.
        """
        canvas = self.canvas
        bumps = np.zeros(canvas.shape, dtype=np.float32)
        for centre, sigma, height in marks.bumps:
            add_bump(bumps, canvas, centre, sigma, height)
        gy, gx = np.gradient(bumps, np.float32(1.0 / canvas.ppu))
        shade = lambert(self._grad[0] + gx, self._grad[1] + gy, light)
        shade *= 1 - 0.55 * stroke_layer(canvas, marks.creases, 0.022)
        shade *= self._face_cover
        albedo = self._albedo.copy()
        self._draw_features(albedo, landmarks, gaze)
        rgba = np.empty((*canvas.shape, 4), dtype=np.float32)
        np.multiply(albedo, shade[..., None], out=rgba[..., :3])
        rgba[..., :3] += self._behind
        rgba[..., 3] = self.alpha
        return rgba

    def _draw_features(
        self, rgb: np.ndarray, points: np.ndarray, gaze: tuple[float, float]
    ) -> None:
        """Brows, eyes, nostrils and lips onto the albedo ``rgb``, in place."""
        canvas, face = self.canvas, self.face
        skin, hair = self._skin, np.float32(face.hair)
        brow_colour = np.minimum(hair * 0.8 + 0.03, skin * 0.55)
        for brow in BROWS:
            paint(rgb, canvas, brow_colour, [self._brow_polygon(points[list(brow)])], opacity=0.9)
        for eye, lid in zip(EYES, UPPER_LIDS, strict=True):
            contour = catmull_rom(points[list(eye)], closed=True)
            (rows, cols), opening = shape_alpha(canvas, [contour])
            clip = np.zeros(canvas.shape, dtype=np.float32)
            clip[rows, cols] = opening
            paint(rgb, canvas, np.float32([0.9, 0.87, 0.84]), [contour])
            corner_mid = 0.5 * (points[eye[0]] + points[eye[3]])
            radius = 0.105 * face.eye_scale
            centre = corner_mid + np.multiply(gaze, radius * 0.6) + (0.0, -0.01)
            iris = ellipse_polygon(centre, (radius, radius))
            paint(rgb, canvas, np.float32(face.iris), [iris], clip=clip)
            pupil = ellipse_polygon(centre, (0.42 * radius, 0.42 * radius), points=16)
            paint(rgb, canvas, np.float32([0.03, 0.03, 0.03]), [pupil], clip=clip)
            upper = catmull_rom(points[list(lid)], closed=False)
            lash = np.minimum(hair, 0.2) * 0.5
            paint(rgb, canvas, lash, [], lines=[upper], width=0.03, opacity=0.9)
            paint(rgb, canvas, skin * 0.7, [], lines=[upper + (0, -0.085)], width=0.02, opacity=0.5)
            lower = catmull_rom(points[[eye[3], eye[4], eye[5], eye[0]]], closed=False)
            paint(rgb, canvas, skin * 0.6, [], lines=[lower], width=0.015, opacity=0.7)
        for a, b in NOSTRILS:
            centre = 0.5 * (points[a] + points[b]) + (0.0, -0.025)
            angle = -0.35 if a == 14 else 0.35
            nostril = ellipse_polygon(centre, (0.05 * face.nose_width, 0.022), angle, 16)
            paint(rgb, canvas, skin * 0.3, [nostril], opacity=0.9)
        lip_colour = np.float32(face.lips)
        outer = catmull_rom(points[list(OUTER_LIP)], closed=True)
        paint(rgb, canvas, lip_colour, [outer])
        inner = catmull_rom(points[list(INNER_LIP)], closed=True, samples=6)
        (rows, cols), cavity = shape_alpha(canvas, [inner])
        if cavity.max() > 0:
            clip = np.zeros(canvas.shape, dtype=np.float32)
            clip[rows, cols] = cavity
            paint(rgb, canvas, np.float32([0.22, 0.07, 0.07]), [inner])
            upper = catmull_rom(points[[31, 43, 44, 45, 37]], closed=False)
            teeth = np.concatenate([upper, upper[::-1] + (0.0, 0.07)])
            paint(rgb, canvas, np.float32([0.88, 0.86, 0.78]), [teeth], clip=clip)
        line = catmull_rom(points[list(LIP_LINE)], closed=False)
        paint(rgb, canvas, lip_colour * 0.45, [], lines=[line], width=0.018, opacity=0.9)

    def _brow_polygon(self, centre_line: np.ndarray) -> np.ndarray:
        """A tapered brow around its centre line (5, 2), outer end first: (N, 2) face units."""
        line = catmull_rom(centre_line, closed=False, samples=6)
        tangent = np.gradient(line, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        along = np.linspace(0.0, 1.0, len(line))
        half = (
            0.5
            * self.face.brow_thickness
            * (0.45 + 0.55 * np.sin(np.pi * np.minimum(along * 0.75 + 0.2, 1)))
        )
        upper = line + normal * half[:, None] * np.sign(normal[:, 1:2]) * -1
        lower = line - (upper - line)
        return np.concatenate([upper, lower[::-1]])
