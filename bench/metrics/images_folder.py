"""A folder of generated images: which file is each pair's, in which format, at which size.

``pgpis generate`` writes ``<pair_id>.png``; other tools write JPEG or WebP, or name files their
own way. A file is found by a name pattern (placeholders of ``bench.pair_names``; default
``{pid}``) with or without an extension; a pattern without one matches ``.png``, ``.jpg``,
``.jpeg`` and ``.webp``. The folder is listed once, so a run over 8,570 pairs makes no per-pair
file-system calls. Refused, naming the files: two formats for one pair (which one was meant?),
and images whose size differs from the folder's majority size (the odd ones are named, never a
correct image). JPEG (and lossy WebP) input is counted, so the result says it was lossy.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DataError
from bench.pair_names import PLACEHOLDER_HELP, format_names, pair_fields

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_PATTERN = "{pid}"


@dataclass
class FolderPairs:
    present: list[tuple[str, str, str, Path]]  # (pair id, source, target, file), in pairs order
    missing: list[str]  # pair ids without a file, in pairs order
    formats: dict[str, int] = field(default_factory=dict)  # ".png" -> count of present files
    lossy: int = 0  # JPEG files and lossy WebP files among them


def _candidates(pattern: str, source: str, target: str) -> list[str]:
    (name,) = format_names([pattern], source, target, "--name-pattern")
    if name.lower().endswith(SUFFIXES):
        return [name]
    return [name + suffix for suffix in SUFFIXES]


def _webp_is_lossy(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return b"VP8L" not in head  # lossless WebP stores a VP8L chunk; lossy ones a "VP8 " chunk


def list_pairs(
    images_dir: Path, pairs: Sequence[tuple[str, str]], pattern: str = DEFAULT_PATTERN
) -> FolderPairs:
    """Each unique pair's file in ``images_dir`` (see the module docstring)."""
    try:
        names = {e.name for e in os.scandir(images_dir) if e.is_file()}
    except OSError as err:
        raise DataError(f"{images_dir}: cannot list the images folder ({err.strerror})") from None
    present, missing, seen = [], [], set()
    formats: Counter[str] = Counter()
    for src, tgt in pairs:
        pid = pair_fields(src, tgt)["pid"]
        if pid in seen:
            continue
        seen.add(pid)
        hits = [n for n in _candidates(pattern, src, tgt) if n in names]
        if len(hits) > 1:
            raise DataError(
                f"{images_dir}: pair {pid} has {len(hits)} files in different formats ({', '.join(hits)}); keep one "
                "(which one was scored would be a guess)"
            )
        if hits:
            present.append((pid, src, tgt, images_dir / hits[0]))
            formats[Path(hits[0]).suffix.lower()] += 1
        else:
            missing.append(pid)
    lossy = formats[".jpg"] + formats[".jpeg"]
    if formats[".webp"]:
        lossy += sum(1 for p in present if p[3].suffix.lower() == ".webp" and _webp_is_lossy(p[3]))
    if not present and pairs:
        raise DataError(_nothing_matches(images_dir, names, pairs[0], pattern, len(seen)))
    return FolderPairs(present, missing, dict(sorted(formats.items())), lossy)


def _nothing_matches(images_dir: Path, names: set[str], first: tuple[str, str], pattern: str, n: int) -> str:
    images = sorted(n for n in names if n.lower().endswith(SUFFIXES))
    expected = _candidates(pattern, *first)[0]
    if not images:
        found = "no .png/.jpg/.jpeg/.webp files at all"
    else:
        by_suffix = Counter(Path(n).suffix.lower() for n in images)
        kinds = ", ".join(f"{c:,} {s} files" for s, c in by_suffix.most_common())
        found = f"found {kinds} named like `{images[0]}`"
    return (
        f"{images_dir}: none of the {n:,} pairs has an image: {found}; expected `{expected}` for the first pair "
        f"(pattern `{pattern}`). Name the files with --name-pattern using {PLACEHOLDER_HELP}, e.g. "
        "--name-pattern '{pid}_vis.png'"
    )


def check_sizes(present: list[tuple[str, str, str, Path]]) -> tuple[int, int]:
    """The size (H, W) every generated image has; refuses, naming the odd files, when sizes differ.

    Reads only the headers. The expected size is the majority's, so the message blames the odd
    images whichever comes first.
    """
    from PIL import Image, UnidentifiedImageError

    sizes: dict[Path, tuple[int, int]] = {}
    for *_ids, path in present:
        try:
            with Image.open(path) as im:
                sizes[path] = (im.height, im.width)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise DataError(
                f"{path}: image is corrupt or unreadable ({err}); regenerate or replace it"
            ) from None
    counts = Counter(sizes.values())
    (expected, n_expected), *others = counts.most_common()
    if others:
        odd = [(p, s) for p, s in sizes.items() if s != expected]
        shown = "; ".join(f"{p}: wrong size {s[0]}x{s[1]}" for p, s in odd[:10])
        more = f" (and {len(odd) - 10} more)" if len(odd) > 10 else ""
        raise DataError(
            f"{shown}{more}. The folder's other {n_expected} images are {expected[0]}x{expected[1]}; regenerate the "
            "odd ones at the folder's size"
        )
    return expected
