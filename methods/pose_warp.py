"""``pose-warp``: a non-learned baseline that moves the source's body parts onto the target pose.

Each body part is cut out of the source image and warped with its own affine transform from the
source keypoints to the target keypoints, then pasted onto a canvas filled with the source's
background colour (the median of its border pixels), back to front (legs, torso, head, arms),
like a painter. A part is drawn only where it was visible in the source *and* lies inside the
target's part shape, so a part missing from either pose leaves the background.

- torso: least-squares affine on neck, shoulders and hips (a similarity when those points are
  nearly collinear, e.g. a side view), shape = their convex hull, widened;
- limbs: for each bone, the affine that maps the source bone onto the target bone (stretching
  along the bone) while the width scales with the person's size, shape = a thick segment;
  forearms and shins are extended past the wrist/ankle to carry hands and feet;
- head: a similarity fitted on neck, nose, eyes and ears, shape = a disc around the face.

Everything is plain OpenCV on one image at a time, so the output is deterministic and does
not depend on batching; no random numbers are drawn.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from bench.api import InputSpec, Method, MethodInfo, PairBatch

# OpenPose COCO-18 indices used here (bench.api documents the order).
NOSE, NECK, R_SHO, R_ELB, R_WRI, L_SHO, L_ELB, L_WRI = 0, 1, 2, 3, 4, 5, 6, 7
R_HIP, R_KNE, R_ANK, L_HIP, L_KNE, L_ANK = 8, 9, 10, 11, 12, 13
FACE = (NECK, NOSE, 14, 15, 16, 17)
TORSO = (NECK, R_SHO, L_SHO, R_HIP, L_HIP)

# (joint a, joint b, width as a fraction of the torso length, extension past b as a fraction of the bone)
LEGS = (
    (R_HIP, R_KNE, 0.34, 0.0),
    (L_HIP, L_KNE, 0.34, 0.0),
    (R_KNE, R_ANK, 0.26, 0.2),
    (L_KNE, L_ANK, 0.26, 0.2),
)
ARMS = (
    (R_SHO, R_ELB, 0.25, 0.0),
    (L_SHO, L_ELB, 0.25, 0.0),
    (R_ELB, R_WRI, 0.21, 0.3),
    (L_ELB, L_WRI, 0.21, 0.3),
)

DEFAULTS: dict[str, Any] = {
    "image_size": (256, 176),  # (H, W) at which the source is loaded and the result is drawn
    "width_scale": 1.0,  # multiplies every limb width (tune for thinner/thicker bodies)
    "torso_margin": 0.12,  # torso hull dilation, fraction of the torso length
    "head_radius": 1.0,  # head disc radius, fraction of the neck-to-face distance
}


def _visible(kps: np.ndarray, idx: int) -> bool:
    return bool(kps[idx, 0] >= 0 and kps[idx, 1] >= 0)


def _xy(kps: np.ndarray, idx: int) -> np.ndarray:
    """Point ``idx`` as (x, y), the order OpenCV expects."""
    return np.array([kps[idx, 1], kps[idx, 0]], dtype=np.float64)


def _rescale(kps: np.ndarray, frame: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    out = kps.astype(np.float64).copy()
    missing = (kps[:, 0] < 0) | (kps[:, 1] < 0)
    out[:, 0] *= size[0] / frame[0]
    out[:, 1] *= size[1] / frame[1]
    out[missing] = -1.0
    return out


def _torso_length(kps: np.ndarray, height: int) -> float:
    """Neck to mid-hip distance: the person's scale. Falls back to 30% of the image height."""
    hips = [_xy(kps, i) for i in (R_HIP, L_HIP) if _visible(kps, i)]
    if _visible(kps, NECK) and hips:
        length = float(np.linalg.norm(np.mean(hips, axis=0) - _xy(kps, NECK)))
        if length > 0.05 * height:
            return length
    return 0.3 * height


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + isotropic scale + translation (as complex numbers), 2x3."""
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    a_mat = np.stack([s, np.ones_like(s)], axis=1)
    (a, b), *_ = np.linalg.lstsq(a_mat, d, rcond=None)
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def _affine(src: np.ndarray, dst: np.ndarray, min_spread: float) -> np.ndarray:
    """Least-squares affine; a similarity when the source points are nearly collinear."""
    centred = src - src.mean(axis=0)
    if len(src) >= 3 and np.linalg.svd(centred, compute_uv=False)[-1] > min_spread:
        a_mat = np.concatenate([src, np.ones((len(src), 1))], axis=1)
        m, *_ = np.linalg.lstsq(a_mat, dst, rcond=None)
        return m.T
    return _similarity(src, dst)


def _bone_affine(
    sa: np.ndarray, sb: np.ndarray, da: np.ndarray, db: np.ndarray, width_ratio: float
) -> np.ndarray:
    """Affine mapping source bone a->b onto the target bone, scaling across it by ``width_ratio``."""
    ds, dd = sb - sa, db - da
    ns = np.array([-ds[1], ds[0]]) / np.linalg.norm(ds)
    nd = np.array([-dd[1], dd[0]]) / np.linalg.norm(dd)
    src = np.stack([sa, sb, sa + 10.0 * ns]).astype(np.float32)
    dst = np.stack([da, db, da + 10.0 * width_ratio * nd]).astype(np.float32)
    return cv2.getAffineTransform(src, dst)


def _segment_mask(
    shape: tuple[int, int], a: np.ndarray, b: np.ndarray, width: float, extend: float
) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    b = b + extend * (b - a)
    pa, pb = tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b)
    cv2.line(mask, pa, pb, 255, thickness=max(1, int(round(width))), lineType=cv2.LINE_8)
    return mask


def _hull_mask(shape: tuple[int, int], pts: np.ndarray, margin: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    k = 2 * int(round(margin)) + 1
    if k > 1:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return mask


def _disc_mask(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, tuple(int(round(v)) for v in centre), max(1, int(round(radius))), 255, thickness=-1)
    return mask


def border_colour(image: np.ndarray) -> np.ndarray:
    """Median colour of the outermost pixel ring: the studio background in DeepFashion."""
    ring = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]], axis=0)
    return np.median(ring, axis=0).astype(np.float32)


class PoseWarp(Method):
    """Per-part affine warps of the source from source to target keypoints (no learning)."""

    info = MethodInfo(
        name="pose-warp",
        description="non-learned baseline: per-limb affine warps of the source onto the target pose",
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({**DEFAULTS, **(config or {})})
        size = self.config["image_size"]
        self.config["image_size"] = [int(size[0]), int(size[1])]

    @property
    def inputs(self) -> InputSpec:
        h, w = self.config["image_size"]
        return InputSpec(image_size=(h, w))

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        images = batch.source_image.detach().float().cpu().permute(0, 2, 3, 1).numpy()
        out = []
        for i in range(len(batch)):
            src_kps = batch.source_keypoints[i].detach().cpu().numpy()
            tgt_kps = batch.target_keypoints[i].detach().cpu().numpy()
            out.append(self.warp_one(np.ascontiguousarray(images[i]), src_kps, tgt_kps, batch.keypoint_frame))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()

    def warp_one(
        self, image: np.ndarray, src_kps: np.ndarray, tgt_kps: np.ndarray, frame: tuple[int, int]
    ) -> np.ndarray:
        """Warp one (H, W, 3) float image from ``src_kps`` to ``tgt_kps`` ((18, 2) (y, x) in ``frame``)."""
        h, w = image.shape[:2]
        src = _rescale(src_kps, frame, (h, w))
        tgt = _rescale(tgt_kps, frame, (h, w))
        canvas = np.empty_like(image)
        canvas[:] = border_colour(image)
        scale_s, scale_t = _torso_length(src, h), _torso_length(tgt, h)
        width_ratio = float(np.clip(scale_t / scale_s, 0.5, 2.0))
        widths = float(self.config["width_scale"])

        def paste(matrix: np.ndarray, src_mask: np.ndarray, tgt_mask: np.ndarray) -> None:
            warped = cv2.warpAffine(
                image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            moved = cv2.warpAffine(src_mask, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
            keep = (moved > 0) & (tgt_mask > 0)
            canvas[keep] = warped[keep]

        def limbs(bones: tuple[tuple[int, int, float, float], ...]) -> None:
            for a, b, frac, extend in bones:
                if not all(_visible(k, j) for k in (src, tgt) for j in (a, b)):
                    continue  # the bone is absent in one pose: leave the background
                sa, sb, da, db = _xy(src, a), _xy(src, b), _xy(tgt, a), _xy(tgt, b)
                if np.linalg.norm(sb - sa) < 2 or np.linalg.norm(db - da) < 2:
                    continue
                matrix = _bone_affine(sa, sb, da, db, width_ratio)
                paste(
                    matrix,
                    _segment_mask((h, w), sa, sb, frac * widths * scale_s, extend),
                    _segment_mask((h, w), da, db, frac * widths * scale_t, extend),
                )

        limbs(LEGS)
        torso = [j for j in TORSO if _visible(src, j) and _visible(tgt, j)]
        if len(torso) >= 3:
            s_pts = np.stack([_xy(src, j) for j in torso])
            t_pts = np.stack([_xy(tgt, j) for j in torso])
            margin = float(self.config["torso_margin"])
            paste(
                _affine(s_pts, t_pts, min_spread=0.05 * scale_s),
                _hull_mask((h, w), s_pts, margin * scale_s),
                _hull_mask((h, w), t_pts, margin * scale_t),
            )
        face = [j for j in FACE if _visible(src, j) and _visible(tgt, j)]
        if NECK in face and len(face) >= 2:
            s_pts = np.stack([_xy(src, j) for j in face])
            t_pts = np.stack([_xy(tgt, j) for j in face])
            radius = float(self.config["head_radius"])
            s_head, t_head = s_pts[1:].mean(axis=0), t_pts[1:].mean(axis=0)
            s_len, t_len = np.linalg.norm(s_head - s_pts[0]), np.linalg.norm(t_head - t_pts[0])
            if s_len >= 2 and t_len >= 2:
                # The disc sits a little beyond the face points, away from the neck, to take the hair.
                paste(
                    _similarity(s_pts, t_pts),
                    _disc_mask((h, w), s_head + 0.25 * (s_head - s_pts[0]), radius * s_len),
                    _disc_mask((h, w), t_head + 0.25 * (t_head - t_pts[0]), radius * t_len),
                )
        limbs(ARMS)
        return np.clip(canvas, 0.0, 1.0)
