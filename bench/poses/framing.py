"""From a photo's pixel frame to the 256x176 annotation frame, the way the dataset's frame was made.

The DeepFashion keypoints (and every method trained on them) live in a 256x176 (H x W) frame of a
product photo in which the person stands, full height, in a portrait frame of that aspect:
- the low-resolution In-shop images are the person centred in a 256x256 square with white
  padding left and right; the split's 256x176 frame is that square with 40 columns cut from
  each side (PATN/ADGAN ``resize_annotations``: x' = x - 40, y' = y; deepfashion.md 3.3);
- the high-resolution images (750x1101, W x H) have nearly that aspect already; methods stretch
  them to 256x176 (CFLD resizes without crop or pad).

So a photo of any shape keeps its full height and gets the 176:256 width around the person:
- wider than 176:256: the columns ``[left, left + width)`` with ``width = round(H * 176 / 256)``,
  centred on the middle of the person's visible keypoints (the photo's centre without keypoints)
  and moved inside the photo where the centre is too close to an edge;
- narrower: white columns added on both sides (the extra column, for an odd count, on the right),
  as the dataset's own padding;
then the ``H x width`` image is scaled to 256x176: ``y' = y * 256 / H``, ``x' = (x - left) * 176 / width``.
Keypoints are rounded to whole pixels, as the dataset's are. A point that lands at exactly -1
(outside the frame) becomes -2, because -1 means "missing" in the annotation format; points outside
the frame are otherwise kept, as the dataset keeps them (its x runs from -31 to 205).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.data.keypoints import MISSING, NUM_KEYPOINTS

if TYPE_CHECKING:
    from PIL import Image

ANNOTATION_FRAME: tuple[int, int] = (256, 176)  # equals bench.api.ANNOTATION_FRAME (H, W)
PAD_COLOR: tuple[int, int, int] = (255, 255, 255)  # the white of the dataset's padding


@dataclass(frozen=True)
class Framing:
    """The columns ``[left, left + width)`` of a photo of ``size`` (H, W), full height, become ``frame``.

    ``left`` < 0 or ``left + width`` > W means white padding on that side.
    """

    size: tuple[int, int]
    left: int
    width: int
    frame: tuple[int, int] = ANNOTATION_FRAME

    @property
    def padded(self) -> bool:
        return self.left < 0 or self.left + self.width > self.size[1]

    def keypoints(self, yx: np.ndarray) -> np.ndarray:
        """(18, 2) (y, x) in the photo, -1 missing -> int32 (18, 2) (y, x) in ``frame``, -1 missing."""
        yx = np.asarray(yx, dtype=np.float64)
        if yx.shape != (NUM_KEYPOINTS, 2):
            raise ValueError(f"keypoints must have shape (18, 2), got {yx.shape}")
        missing = (yx[:, 0] == MISSING) | (yx[:, 1] == MISSING)
        y = np.rint(yx[:, 0] * self.frame[0] / self.size[0])
        x = np.rint((yx[:, 1] - self.left) * self.frame[1] / self.width)
        out = np.stack([y, x], axis=1)
        out[out == MISSING] = MISSING - 1  # a visible point must not read as "missing"
        out[missing] = MISSING
        return out.astype(np.int32)

    def image(self, image: Image.Image) -> Image.Image:
        """The photo cut (or padded with white) to these columns: an RGB ``H x width`` image."""
        from PIL import Image as PILImage

        h, w = self.size
        if image.size != (w, h):
            raise ValueError(f"framing made for a {w}x{h} (WxH) photo, got {image.size[0]}x{image.size[1]}")
        rgb = image.convert("RGB")
        if not self.padded:
            return rgb.crop((self.left, 0, self.left + self.width, h))
        canvas = PILImage.new("RGB", (self.width, h), PAD_COLOR)
        canvas.paste(rgb, (-self.left, 0))
        return canvas

    def describe(self) -> str:
        h, w = self.size
        how = "padded" if self.padded else "cropped"
        return (
            f"{w}x{h} (WxH) photo {how} to columns {self.left}..{self.left + self.width - 1}, "
            f"then scaled to {self.frame[1]}x{self.frame[0]}"
        )


def frame_for(
    size: tuple[int, int], yx: np.ndarray | None = None, frame: tuple[int, int] = ANNOTATION_FRAME
) -> Framing:
    """The :class:`Framing` of a photo of ``size`` (H, W) whose person has keypoints ``yx`` (-1 missing)."""
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"photo size must be positive, got {h}x{w} (HxW)")
    width = max(1, math.floor(h * frame[1] / frame[0] + 0.5))
    if width >= w:  # too narrow (or exact): pad both sides, the odd column on the right
        return Framing((h, w), -((width - w) // 2), width, frame)
    centre = w / 2.0
    if yx is not None:
        yx = np.asarray(yx, dtype=np.float64)
        visible = (yx[:, 0] != MISSING) & (yx[:, 1] != MISSING)
        if visible.any():
            xs = yx[visible, 1]
            centre = (xs.min() + xs.max()) / 2.0
    left = math.floor(centre - width / 2.0 + 0.5)
    return Framing((h, w), min(max(left, 0), w - width), width, frame)
