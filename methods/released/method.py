"""``released``: a method's published test outputs, read through the same interface as a model.

Papers release their DeepFashion test images in their own layouts (../shared/reference/protocols.md,
section 7): ``<src>_2_<tgt>_vis.png`` at 256x256 (PIDM), JPEG strips of five 176-px panels
``[source | source pose | target | target pose | generated]`` named ``<src.jpg>___<tgt.jpg>_vis.jpg``
(ADGAN, PATN), 40-px white-padded 256x256 JPEGs (PISE), ... This method finds each pair's file in the
release (a folder, searched recursively, or a .zip read in place), cuts out the generated panel and
the configured crop, and hands the image to the engine, which writes it under our name and layout
with a manifest. Then every protocol scores it like any other run, and ``pgpis evaluate`` counts
what the release lacks. Nothing is random: the per-pair generators are not used.

``--checkpoint`` is the release (folder or .zip); ``--config`` a YAML of:
  patterns   file names to look for, first match wins; placeholders {src}/{tgt} (image names with
             their extension), {src_stem}/{tgt_stem}, {pid} (= {src_stem}_2_{tgt_stem})
  panels     [count, index]: the image is ``count`` equal panels side by side, take panel ``index``
             (0-based; -1 = last); default: the whole image
  crop       [left, top, right, bottom] box in pixels of the panel (PIL order); default: none
Presets for the known releases: methods/released/configs/. Keep the native size for emulation
protocols: ``pgpis generate --size`` equal to the image size after panel and crop (e.g. 256x256 for
PIDM under the ``pidm`` protocol), so the protocol, not the generation, does the resize.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from bench.api import (
    ConfigError,
    DataError,
    InputSpec,
    Method,
    MethodInfo,
    PairBatch,
    format_names,
    pair_fields,
)

DEFAULT_PATTERNS = ("{pid}.png", "{pid}.jpg")
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class ReleaseIndex:
    """File name -> where it is, in a folder (recursive) or a zip; built once, read per pair."""

    def __init__(self, location: str | os.PathLike) -> None:
        self.location = Path(location)
        self.zip: zipfile.ZipFile | None = None
        entries: dict[str, list[str]] = {}
        if self.location.is_file() and zipfile.is_zipfile(self.location):
            self.zip = zipfile.ZipFile(self.location)
            members = [m for m in self.zip.namelist() if not m.endswith("/")]
            for member in members:
                entries.setdefault(PurePosixPath(member).name, []).append(member)
        elif self.location.is_dir():
            for root, _dirs, files in os.walk(self.location):
                for name in files:
                    if name.lower().endswith(SUFFIXES):
                        entries.setdefault(name, []).append(str(Path(root, name)))
        else:
            raise DataError(
                f"{self.location}: released outputs not found; pass the unpacked release folder or its .zip "
                "as --checkpoint (where each release is published: methods/released/configs/*.yaml)"
            )
        self.entries = entries

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())

    def find(self, names: list[str]) -> str | None:
        for name in names:
            hits = self.entries.get(name)
            if hits:
                if len(hits) > 1:
                    raise DataError(
                        f"{self.location}: {name} is there {len(hits)} times ({', '.join(sorted(hits)[:3])}); "
                        "pass the one subfolder that holds the test outputs"
                    )
                return hits[0]
        return None

    def read(self, where: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB, decoded as the suite decodes every image (PIL, convert("RGB"))."""
        from PIL import Image, UnidentifiedImageError

        try:
            data = self.zip.read(where) if self.zip is not None else Path(where).read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                return np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zipfile.BadZipFile) as err:
            shown = f"{self.location}:{where}" if self.zip is not None else where
            raise DataError(f"{shown}: released image is corrupt or unreadable ({err})") from None


def _int_list(config: dict[str, Any], key: str, length: int) -> list[int] | None:
    value = config.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != length
        or not all(isinstance(v, int) for v in value)
    ):
        raise ConfigError(f"released: {key} must be a list of {length} integers, got {value!r}")
    return list(value)


def _pair_id(source: str, target: str) -> str:
    """The engine's pair id (``PairBatch.pair_ids``): ``<src stem>_2_<tgt stem>``."""
    return pair_fields(source, target)["pid"]


class Released(Method):
    """Published outputs of a method, one image per pair, cut out of the release's layout."""

    info = MethodInfo(
        name="released",
        description="scores a method's published test outputs (folder or zip; panels, crops, names configurable)",
    )

    def __init__(self, config: dict[str, Any] | None = None, release: str | None = None) -> None:
        super().__init__(config)
        unknown = set(self.config) - {"patterns", "panels", "crop", "source", "notes"}
        if unknown:
            raise ConfigError(
                f"released: unknown config key(s) {', '.join(sorted(unknown))}; see `methods/released/method.py`"
            )
        patterns = self.config.get("patterns", list(DEFAULT_PATTERNS))
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(
                f"released: patterns must be a non-empty list of file-name patterns, got {patterns!r}"
            )
        self.patterns = patterns
        self.panels = _int_list(self.config, "panels", 2)
        self.crop = _int_list(self.config, "crop", 4)
        if release is None:
            raise ConfigError(
                "method 'released' needs the release: --checkpoint <folder or .zip of the outputs>"
            )
        self.release = str(release)
        self.index = ReleaseIndex(release)

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        device: str | torch.device = "cpu",
    ) -> Released:
        return cls(config, checkpoint)

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(image_size=(64, 44))  # the source image is not used: load it small

    def settings(self) -> dict[str, Any]:
        return {
            "method": self.info.name,
            "config": self.config,
            "release": self.release,
            "files": len(self.index),
        }

    def names(self, source: str, target: str) -> list[str]:
        return format_names(self.patterns, source, target, "released")

    def cut(self, image: np.ndarray, where: str) -> np.ndarray:
        """The generated panel, then the crop box."""
        if self.panels is not None:
            count, index = self.panels
            if count < 1 or image.shape[1] % count:
                raise DataError(
                    f"{where}: width {image.shape[1]} does not split into {count} equal panels (config panels)"
                )
            width = image.shape[1] // count
            index = index % count
            image = image[:, index * width : (index + 1) * width]
        if self.crop is not None:
            left, top, right, bottom = self.crop
            if not (0 <= left < right <= image.shape[1] and 0 <= top < bottom <= image.shape[0]):
                raise DataError(
                    f"{where}: crop {self.crop} does not fit a {image.shape[1]}x{image.shape[0]} (WxH) panel"
                )
            image = image[top:bottom, left:right]
        return image

    def unavailable(self, pairs: list[tuple[str, str]]) -> dict[str, str]:
        """The pairs the release has no file for; if it has none at all, the patterns are wrong."""
        lacking = {}
        for source, target in pairs:
            names = self.names(source, target)
            if self.index.find(names) is None:
                lacking[_pair_id(source, target)] = f"not in the release (looked for {', '.join(names)})"
        if pairs and len(lacking) == len(pairs):
            example = ", ".join(self.names(*pairs[0]))
            raise DataError(
                f"{self.release}: none of the {len(pairs)} pairs has a file here (e.g. looked for {example}); "
                "check the config's patterns against the release's file names"
            )
        return lacking

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        images = []
        for pid, source, target in zip(batch.pair_ids, batch.source_names, batch.target_names):
            names = self.names(source, target)
            where = self.index.find(names)
            if where is None:  # the engine asked unavailable() first; the release changed since
                raise DataError(
                    f"{self.release}: no released image for pair {pid} (looked for {', '.join(names)})"
                )
            image = self.cut(self.index.read(where), where)
            if images and image.shape != images[0].shape:
                raise DataError(
                    f"{where}: {image.shape[1]}x{image.shape[0]} (WxH) after panel and crop, but other images of the "
                    f"release are {images[0].shape[1]}x{images[0].shape[0]}; set the config's panels/crop to match"
                )
            images.append(image)
        stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return stacked.float().div(255)
