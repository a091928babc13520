"""Draw a synthetic person at a real pose: identities (colours, patterns, garment shapes) and rendering.

A person is painted from the 18 keypoints alone: legs and arms as thick segments, the torso as a
polygon over shoulders and hips, the head as a skin disc with hair. Clothes carry the identity's
colours and a stripes/checks/dots pattern, so a method must move appearance from the source to the
target pose; copying the source image leaves the colours in the wrong places.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from bench.data.deepfashion import FRAME as ANNOTATION_FRAME

SKIN_TONES = (
    (236, 200, 170),
    (224, 172, 135),
    (198, 140, 100),
    (160, 105, 70),
    (110, 72, 50),
    (245, 215, 190),
)
HAIR_COLOURS = ((30, 25, 20), (70, 45, 25), (120, 80, 40), (200, 170, 110), (150, 60, 30), (90, 90, 90))
PATTERNS = ("stripes", "checks", "dots")
ONE_PIECE = ("Dresses", "Rompers_Jumpsuits")
LONG_SLEEVES = ("Jackets_Coats", "Jackets_Vests", "Cardigans", "Sweaters", "Sweatshirts_Hoodies", "Suiting")
SHORT_SLEEVES = ("Tees_Tanks", "Graphic_Tees")
CATEGORIES = {
    "WOMEN": (
        "Blouses_Shirts", "Cardigans", "Denim", "Dresses", "Graphic_Tees", "Jackets_Coats", "Leggings",
        "Pants", "Rompers_Jumpsuits", "Shorts", "Skirts", "Sweaters", "Sweatshirts_Hoodies", "Tees_Tanks",
    ),
    "MEN": (
        "Denim", "Jackets_Vests", "Pants", "Shirts_Polos", "Shorts", "Suiting", "Sweaters",
        "Sweatshirts_Hoodies", "Tees_Tanks",
    ),
}  # fmt: skip

# COCO-18 indices used below.
NOSE, NECK, RSHO, RELB, RWRI, LSHO, LELB, LWRI, RHIP, RKNE, RANK, LHIP, LKNE, LANK = range(14)
HEAD_POINTS = (0, 14, 15, 16, 17)
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate antialiased drawing


@dataclass(frozen=True)
class Identity:
    """Everything that fixes one person's appearance; the same identity looks the same in every pose."""

    gender: str
    category: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_long: bool
    top: tuple[int, int, int]
    top_alt: tuple[int, int, int]
    top_pattern: str
    top_period: int
    bottom: tuple[int, int, int]
    bottom_alt: tuple[int, int, int]
    bottom_pattern: str
    bottom_period: int
    bottom_kind: str  # pants | shorts | skirt | dress
    long_sleeves: bool
    shoes: tuple[int, int, int]

    def to_dict(self) -> dict:
        return asdict(self)


def _colour(rng: np.random.Generator, light: bool = False) -> tuple[int, int, int]:
    hue = int(rng.integers(0, 180))
    sat = int(rng.integers(90, 230))
    val = int(rng.integers(170, 240)) if light else int(rng.integers(60, 200))
    rgb = cv2.cvtColor(np.uint8([[[hue, sat, val]]]), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(int(c) for c in rgb)


def _contrast(rng: np.random.Generator, base: tuple[int, int, int]) -> tuple[int, int, int]:
    """A pattern colour clearly different from ``base`` (light on dark, dark on light)."""
    other = _colour(rng, light=sum(base) < 380)
    if sum(abs(a - b) for a, b in zip(base, other)) < 150:
        other = tuple(255 - c for c in base)
    return other


def sample_identity(rng: np.random.Generator) -> Identity:
    gender = "WOMEN" if rng.random() < 0.8 else "MEN"  # DeepFashion is ~85% WOMEN
    category = str(rng.choice(CATEGORIES[gender]))
    if category in ONE_PIECE:
        bottom_kind = "dress"
    elif category == "Skirts":
        bottom_kind = "skirt"
    elif category == "Shorts":
        bottom_kind = "shorts"
    elif category in ("Pants", "Leggings", "Denim", "Suiting"):
        bottom_kind = "pants"
    else:
        bottom_kind = str(
            rng.choice(("pants", "shorts", "skirt") if gender == "WOMEN" else ("pants", "shorts"))
        )
    long_sleeves = category in LONG_SLEEVES or (category not in SHORT_SLEEVES and bool(rng.random() < 0.5))
    top = _colour(rng)
    top_alt = _contrast(rng, top)
    bottom = top if bottom_kind == "dress" else _colour(rng)
    bottom_alt = top_alt if bottom_kind == "dress" else _contrast(rng, bottom)
    top_pattern = str(rng.choice(PATTERNS))
    top_period = int(rng.integers(8, 18))
    return Identity(
        gender=gender,
        category=category,
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        hair_long=bool(rng.random() < (0.7 if gender == "WOMEN" else 0.1)),
        top=top,
        top_alt=top_alt,
        top_pattern=top_pattern,
        top_period=top_period,
        bottom=bottom,
        bottom_alt=bottom_alt,
        bottom_pattern=top_pattern if bottom_kind == "dress" else str(rng.choice(PATTERNS)),
        bottom_period=top_period if bottom_kind == "dress" else int(rng.integers(8, 18)),
        bottom_kind=bottom_kind,
        long_sleeves=long_sleeves,
        shoes=tuple(int(c) for c in rng.integers(10, 90, 3)),
    )


def view_of(kps: np.ndarray) -> str:
    """DeepFashion-style view name from the shoulders: the person's right shoulder is on the image left
    when they face the camera."""
    (ry, rx), (ly, lx) = kps[RSHO], kps[LSHO]
    hip_y = (kps[RHIP, 0] + kps[LHIP, 0]) / 2
    torso = max(abs(hip_y - (ry + ly) / 2), 1.0)
    dx = lx - rx
    if abs(dx) < 0.3 * torso:
        return "side"
    if dx < 0:
        return "back"
    return "full" if kps[RANK, 0] >= 0 and kps[LANK, 0] >= 0 else "front"


def background(rng: np.random.Generator) -> tuple[int, int, int]:
    """A plain light studio background with mild per-image variation."""
    base = np.array([232, 230, 226]) + rng.integers(-10, 11, 3)
    return tuple(int(c) for c in np.clip(base, 0, 255))


def _texture(size: tuple[int, int], base, alt, pattern: str, period: int) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    if pattern == "stripes":
        on = (yy // period) % 2 == 0
    elif pattern == "checks":
        on = ((yy // period) + (xx // period)) % 2 == 0
    else:  # dots
        cy, cx = (yy % period) - period / 2, (xx % period) - period / 2
        on = cy * cy + cx * cx < (period * 0.3) ** 2
    out = np.empty((h, w, 3), np.float32)
    out[:] = base
    out[on] = alt
    return out


class _Canvas:
    """Float RGB image plus antialiased mask painting in pixel coordinates."""

    def __init__(self, size: tuple[int, int], bg: tuple[int, int, int]) -> None:
        self.size = size
        self.img = np.empty((*size, 3), np.float32)
        self.img[:] = bg
        self.vertical = np.linspace(-6, 6, size[0], dtype=np.float32)[:, None, None]  # soft studio light
        self.img += self.vertical

    def _fp(self, p: np.ndarray) -> tuple[int, int]:
        return int(round(p[1] * (1 << _SHIFT))), int(round(p[0] * (1 << _SHIFT)))  # (x, y) fixed point

    def mask(self) -> np.ndarray:
        return np.zeros(self.size, np.uint8)

    def line(self, m: np.ndarray, a: np.ndarray, b: np.ndarray, thickness: float) -> None:
        cv2.line(m, self._fp(a), self._fp(b), 255, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)

    def disc(self, m: np.ndarray, c: np.ndarray, radius: float) -> None:
        cv2.circle(m, self._fp(c), int(round(radius * (1 << _SHIFT))), 255, -1, cv2.LINE_AA, _SHIFT)

    def ellipse(self, m: np.ndarray, c: np.ndarray, axes: tuple[float, float], start: int, end: int) -> None:
        ax = (int(round(axes[0] * (1 << _SHIFT))), int(round(axes[1] * (1 << _SHIFT))))
        cv2.ellipse(m, self._fp(c), ax, 0, start, end, 255, -1, cv2.LINE_AA, _SHIFT)

    def poly(self, m: np.ndarray, pts: list[np.ndarray]) -> None:
        arr = np.array([self._fp(p) for p in pts], np.int32)
        cv2.fillPoly(m, [arr], 255, cv2.LINE_AA, _SHIFT)

    def paint(self, m: np.ndarray, fill) -> None:
        """Blend ``fill`` (an RGB triple or an HxWx3 texture) where the mask is set."""
        alpha = (m.astype(np.float32) / 255.0)[..., None]
        self.img += alpha * (np.asarray(fill, np.float32) - self.img)

    def result(self) -> np.ndarray:
        return np.clip(np.rint(self.img), 0, 255).astype(np.uint8)


def render_person(
    identity: Identity,
    kps: np.ndarray,
    size: tuple[int, int] = ANNOTATION_FRAME,
    bg: tuple[int, int, int] = (232, 230, 226),
    frame: tuple[int, int] = ANNOTATION_FRAME,
) -> np.ndarray:
    """Render ``identity`` at keypoints ``kps`` ((18, 2) (y, x) in ``frame``, -1 missing) as HxWx3 uint8 RGB.

    Needs the four torso points (2, 5, 8, 11) visible, like the pairs of the real split.
    """
    kps = np.asarray(kps)
    visible = kps[:, 0] >= 0
    if not visible[[RSHO, LSHO, RHIP, LHIP]].all():
        raise ValueError("render_person needs keypoints 2, 5, 8 and 11 (shoulders and hips) visible")
    scale = np.array([size[0] / frame[0], size[1] / frame[1]], np.float64)
    p = kps.astype(np.float64) * scale
    c = _Canvas(size, bg)
    shoulders = (p[RSHO] + p[LSHO]) / 2
    hips = (p[RHIP] + p[LHIP]) / 2
    unit = max(np.linalg.norm(hips - shoulders), 0.15 * size[0])  # torso length sets every thickness
    top_tex = _texture(size, identity.top, identity.top_alt, identity.top_pattern, identity.top_period)
    bottom_tex = _texture(
        size, identity.bottom, identity.bottom_alt, identity.bottom_pattern, identity.bottom_period
    )

    def seg(m, a, b, t):
        if visible[a] and visible[b]:
            c.line(m, p[a], p[b], t)

    # Legs: skin first, clothes over them, shoes at the ankles.
    leg_t = 0.26 * unit
    legs = c.mask()
    for hip, knee, ankle in ((RHIP, RKNE, RANK), (LHIP, LKNE, LANK)):
        seg(legs, hip, knee, leg_t)
        seg(legs, knee, ankle, leg_t * 0.85)
    c.paint(legs, identity.skin)
    bottom = c.mask()
    if identity.bottom_kind == "pants":
        c.paint(legs, bottom_tex)
    elif identity.bottom_kind == "shorts":
        for hip, knee in ((RHIP, RKNE), (LHIP, LKNE)):
            if visible[knee]:
                c.line(bottom, p[hip], p[hip] + 0.5 * (p[knee] - p[hip]), leg_t * 1.1)
    else:  # skirt or dress: a trapezoid from the hips to the knees (or one torso length down)
        down = np.array([unit * 0.9, 0.0])
        knees = [p[k] if visible[k] else p[h] + down for h, k in ((RHIP, RKNE), (LHIP, LKNE))]
        flare = (p[LHIP] - p[RHIP]) * 0.25
        c.poly(bottom, [p[RHIP] - flare * 0.3, p[LHIP] + flare * 0.3, knees[1] + flare, knees[0] - flare])
    c.line(bottom, p[RHIP], p[LHIP], leg_t * 1.2)
    c.paint(bottom, bottom_tex)
    shoes = c.mask()
    for ankle in (RANK, LANK):
        if visible[ankle]:
            c.disc(shoes, p[ankle] + np.array([0.04 * unit, 0.0]), 0.14 * unit)
    c.paint(shoes, identity.shoes)

    # Long hair falls behind the neck and shoulders, so it goes under the torso.
    head_c = _head_centre(p, visible, shoulders, unit)
    if identity.hair_long:
        back_hair = c.mask()
        r = 0.24 * unit
        c.ellipse(back_hair, head_c + np.array([0.7 * r, 0.0]), (1.25 * r, 1.5 * r), 0, 360)
        c.paint(back_hair, identity.hair)

    # Neck and torso.
    neck = c.mask()
    c.line(neck, shoulders, head_c, 0.2 * unit)
    c.paint(neck, identity.skin)
    torso = c.mask()
    inset = (p[LSHO] - p[RSHO]) * 0.05
    c.poly(torso, [p[RSHO] - inset, p[LSHO] + inset, p[LHIP], p[RHIP]])
    c.line(torso, p[RSHO], p[LSHO], 0.2 * unit)
    c.paint(torso, bottom_tex if identity.bottom_kind == "dress" else top_tex)

    # Arms: sleeves over skin, hands as skin discs.
    arm_t = 0.19 * unit
    skin_arms, sleeves, hands = c.mask(), c.mask(), c.mask()
    for sho, elb, wri in ((RSHO, RELB, RWRI), (LSHO, LELB, LWRI)):
        seg(skin_arms, sho, elb, arm_t)
        seg(skin_arms, elb, wri, arm_t * 0.85)
        if visible[elb]:
            end = p[elb] if identity.long_sleeves else p[sho] + 0.6 * (p[elb] - p[sho])
            c.line(sleeves, p[sho], end, arm_t * 1.1)
            if identity.long_sleeves:
                seg(sleeves, elb, wri, arm_t * 0.95)
        if visible[wri]:
            c.disc(hands, p[wri], 0.1 * unit)
    c.paint(skin_arms, identity.skin)
    c.paint(sleeves, top_tex)
    c.paint(hands, identity.skin)

    _draw_head(c, identity, p, visible, head_c, unit)
    return c.result()


def _head_centre(p: np.ndarray, visible: np.ndarray, shoulders: np.ndarray, unit: float) -> np.ndarray:
    pts = [p[i] for i in HEAD_POINTS if visible[i]]
    if pts:
        return np.mean(pts, axis=0)
    base = p[NECK] if visible[NECK] else shoulders
    return base - np.array([0.35 * unit, 0.0])


def _draw_head(c: _Canvas, ident: Identity, p: np.ndarray, visible: np.ndarray, centre, unit: float) -> None:
    r = 0.24 * unit
    facing_away = p[RSHO, 1] > p[LSHO, 1] + 0.3 * unit and not (visible[14] or visible[15])
    face = c.mask()
    c.disc(face, centre, r)
    c.paint(face, ident.skin)
    hair = c.mask()
    if facing_away:
        c.disc(hair, centre, r * 1.05)  # the back of the head
    else:
        c.ellipse(hair, centre - np.array([0.25 * r, 0.0]), (1.05 * r, 0.85 * r), 180, 360)
    c.paint(hair, ident.hair)
    eyes = c.mask()
    for eye in (14, 15):
        if visible[eye] and not facing_away:
            c.disc(eyes, p[eye], max(0.8, 0.035 * unit))
    c.paint(eyes, (40, 30, 30))
