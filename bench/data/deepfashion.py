"""Readers for the standard DeepFashion pose-transfer split (PATN/DPTN/CFLD files).

Formats are fixed by ``shared/reference/deepfashion.md`` §3-4:
- pairs CSV: comma-separated, header ``from,to``, one flattened source and target name per row;
- annotation CSV: ``:``-separated, header ``name:keypoints_y:keypoints_x``; each row holds the y
  list then the x list, 18 ints each, -1 = missing, in the 256x176 frame;
- ``train.lst``/``test.lst``: one flattened name per line.

The parsers are hand-written rather than ``pandas.read_csv`` so that every malformed row can be
reported with its file and line number (pandas would give a generic tokenizer error or silently
produce NaN), and so that 100k rows still parse in well under a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import DataError

if TYPE_CHECKING:  # torch is imported where an image is loaded: synth/prepare/fetch never pay for it
    import torch
    from PIL import Image

NUM_KEYPOINTS = 18
FRAME: tuple[int, int] = (256, 176)  # the annotation frame (H, W); equals bench.api.ANNOTATION_FRAME
PAIRS_HEADER = ("from", "to")
ANNOTATION_HEADER = ("name", "keypoints_y", "keypoints_x")
SPLITS = ("train", "test")

# The inverse of the flattening rule (deepfashion.md §4); all 52,712 real names match it.
FLAT_NAME_RE = re.compile(r"^fashion(MEN|WOMEN)([A-Za-z_]+)id(\d{8})(\d{2})_(\d+)([a-z]+)\.jpg$")
_FILE_RE = re.compile(r"^(\d{2})_(\d+)_([a-z]+)\.jpg$")

# Every failure to read a split file says where the files come from.
_REMEDY = (
    "get the split with `pgpis fetch deepfashion --out ROOT` (or make a synthetic one with `pgpis synth`)"
)


def pairs_file(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"fasion-resize-pairs-{split}.csv"


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"fasion-resize-annotation-{split}.csv"


def list_file(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"{split}.lst"


def image_dir(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"{split}_highres"


def _read_lines(path: str | os.PathLike, what: str) -> list[str]:
    """All lines of a text file without line endings (LF or CRLF); a clear error if unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (spreadsheet export) is not part of the header
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; {_REMEDY}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read {what} ({err}); replace the file with a fresh copy") from None
    # Blank lines (a final newline, a trailing empty line) are tolerated by the callers, never data.
    return text.splitlines()


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Headers of an index column written by pandas.to_csv(index=True) (empty, or "Unnamed: 0" once re-saved).
_INDEX_HEADERS = ("", "unnamed: 0", "index")


def _looks_like_image(field: str) -> bool:
    return _unquote(field).lower().endswith(_IMAGE_SUFFIXES)


def _unquote(field: str) -> str:
    """A field without surrounding whitespace and the double quotes a spreadsheet may add."""
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        field = field[1:-1].strip()
    return field


def canonical_name(raw: str, path: Path, lineno: int) -> str:
    """An image name as the split files use it: the flat form.

    Copies of the split circulate with names in In-shop path form (``fashion/WOMEN/Dresses/id_00000035/
    04_7_additional.jpg``, also with ``img/`` or ``img_highres/`` as root or with Windows separators);
    they are flattened (deepfashion.md §4). A name with a separator that is not an In-shop path is refused.
    """
    name = _unquote(raw)
    if not name:
        raise DataError(f"{path}: line {lineno}: the image name is empty")
    if "/" in name or "\\" in name:
        try:
            return flatten_name(name.replace("\\", "/"))
        except DataError:
            raise DataError(
                f"{path}: line {lineno}: {name!r} is neither a flat name like "
                "fashionWOMENDressesid0000003504_7additional.jpg nor an In-shop path "
                "<root>/<GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg"
            ) from None
    return name


def _fields(line: str, sep: str) -> list[str]:
    """The separated fields of a line, without the empty trailing cells a spreadsheet export appends."""
    fields = line.split(sep)
    while len(fields) > 1 and not fields[-1].strip():
        fields.pop()
    return fields


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a pairs CSV into ``[(source, target), ...]`` (flat names) in file order.

    Accepted forms, all read to the same pairs: the header ``from,to`` (pandas ``to_csv(index=False)``),
    no header (e.g. AttentionGAN's copy), an index column (``,from,to`` / ``0,a.jpg,b.jpg``, pandas'
    default), names in flat or In-shop path form, a BOM, CRLF, spaces or quotes around names, empty
    trailing cells. A repeated pair is refused with both line numbers.
    """
    path = Path(path)
    lines = _read_lines(path, "pairs file")
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DataError(
            f"{path}: the pairs file is empty (expected the header 'from,to' and one pair per row)"
        )
    first_no, first = numbered[0]
    head = [_unquote(f).lower() for f in _fields(first, ",")]
    index_column = False
    if head == list(PAIRS_HEADER):
        numbered = numbered[1:]
    elif len(head) == 3 and head[0] in _INDEX_HEADERS and head[1:] == list(PAIRS_HEADER):
        numbered, index_column = numbered[1:], True
    elif len(head) == 2 and all(_looks_like_image(f) for f in head):
        pass  # no header: the first line is already a pair
    elif len(head) == 3 and head[0].isdigit() and all(_looks_like_image(f) for f in head[1:]):
        index_column = True  # index column without a header
    else:
        raise DataError(
            f"{path}: line {first_no}: expected the comma-separated header 'from,to' (or a first pair of image "
            f"names), found {first[:80]!r}; a pairs file must be written like pandas.to_csv(index=False) with "
            "columns from,to"
        )
    pairs: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    width = 3 if index_column else 2
    for lineno, line in numbered:
        fields = _fields(line, ",")
        if len(fields) != width or not all(_unquote(f) for f in fields):
            form = "index,from,to" if index_column else "from,to"
            raise DataError(
                f"{path}: line {lineno}: expected {width} comma-separated fields '{form}', found {line[:120]!r}"
            )
        if index_column:
            fields = fields[1:]
        pair = (canonical_name(fields[0], path, lineno), canonical_name(fields[1], path, lineno))
        if pair in seen:
            raise DataError(f"{path}: line {lineno}: the pair {pair[0]},{pair[1]} repeats line {seen[pair]}")
        seen[pair] = lineno
        pairs.append(pair)
    if not pairs:
        raise DataError(f"{path}: the pairs file has a header but no pairs")
    return pairs


def _parse_int_list(text: str, path: Path, lineno: int, column: str) -> list[int]:
    text = _unquote(text)
    if not (text.startswith("[") and text.endswith("]")):
        raise DataError(
            f"{path}: line {lineno}: {column} must be a list like [y0, ..., y17], found {text[:60]!r}"
        )
    body = text[1:-1].strip()
    try:
        values = [int(v) for v in body.split(",")] if body else []
    except ValueError:
        raise DataError(
            f"{path}: line {lineno}: {column} holds a value that is not an integer: {text[:120]!r}"
        ) from None
    if len(values) != NUM_KEYPOINTS:
        raise DataError(
            f"{path}: line {lineno}: {column} has {len(values)} values, expected {NUM_KEYPOINTS} "
            "(one per OpenPose COCO-18 keypoint, -1 for missing)"
        )
    return values


def _annotation_fields(line: str) -> list[str]:
    # A row saved through a spreadsheet may be quoted whole or padded with empty cells after the x list.
    line = _unquote(line.strip())
    if "]" in line:
        line = line[: line.rindex("]") + 1] + line[line.rindex("]") + 1 :].rstrip(", \t")
    return line.split(":")


def read_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an annotation CSV into ``{flat name: int32 array (18, 2) of (y, x)}``; -1 marks a missing point.

    Accepted forms, all read to the same keypoints: the original writer's ``name: [..]: [..]`` and the
    unspaced form, the header ``name:keypoints_y:keypoints_x`` (also padded with empty cells, as
    Step-Network's copy) or none, names in flat or In-shop path form, a BOM, CRLF, any spacing in the
    lists, rows padded with empty cells.
    """
    path = Path(path)
    lines = _read_lines(path, "annotation file")
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DataError(
            f"{path}: the annotation file is empty (expected the header 'name:keypoints_y:keypoints_x')"
        )
    first_no, first = numbered[0]
    header = tuple(_unquote(f) for f in _fields(first.rstrip(", \t"), ":"))
    if header == ANNOTATION_HEADER:
        numbered = numbered[1:]
    elif not (len(header) == 3 and "[" in first):  # not a headerless first row either
        raise DataError(
            f"{path}: line {first_no}: expected the ':'-separated header 'name:keypoints_y:keypoints_x', "
            f"found {first[:80]!r} (wrong separator or columns?)"
        )
    out: dict[str, np.ndarray] = {}
    for lineno, line in numbered:
        name, kps = parse_annotation_row(line, path, lineno)
        if name in out:
            raise DataError(f"{path}: line {lineno}: image {name} is annotated twice")
        out[name] = kps
    return out


def parse_annotation_row(line: str, path: str | os.PathLike, lineno: int) -> tuple[str, np.ndarray]:
    """One annotation row ``name:[y0, ..., y17]:[x0, ..., x17]`` (any circulating form) -> (flat name,
    int32 (18, 2) of (y, x))."""
    path = Path(path)
    fields = _annotation_fields(line)
    if len(fields) != 3:
        raise DataError(
            f"{path}: line {lineno}: expected 3 ':'-separated fields 'name:[y list]:[x list]', "
            f"found {len(fields)}: {line[:120]!r}"
        )
    name = canonical_name(fields[0], path, lineno)
    ys = _parse_int_list(fields[1], path, lineno, "keypoints_y")
    xs = _parse_int_list(fields[2], path, lineno, "keypoints_x")
    return name, np.array([ys, xs], dtype=np.int32).T.copy()


def read_list(path: str | os.PathLike) -> list[str]:
    """Read ``train.lst``/``test.lst``: one image name per line (flat or In-shop path form), no header."""
    path = Path(path)
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path, "image list"), start=1):
        if not line.strip():
            continue
        name = canonical_name(line, path, lineno)
        if name in seen:
            raise DataError(f"{path}: line {lineno}: {name} is listed twice (first on line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise DataError(f"{path}: the image list is empty (expected one image name per line)")
    return names


def flatten_name(path: str | os.PathLike) -> str:
    """Map an In-shop path ``[root/]<GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg`` to its flat name.

    Only the last four components count; the archive root (``img``, ``img_highres`` or
    ``fashion``) always becomes ``fashion``, as in CFLD's ``generate_fashion_datasets.py``.
    """
    parts = Path(path).as_posix().split("/")
    if len(parts) < 4:
        raise DataError(
            f"{path}: not an In-shop image path <GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg"
        )
    gender, category, item, filename = parts[-4:]
    match = _FILE_RE.match(filename)
    if (
        gender not in ("MEN", "WOMEN")
        or not re.fullmatch(r"[A-Za-z_]+", category)
        or not re.fullmatch(r"id_\d{8}", item)
        or match is None
    ):
        raise DataError(
            f"{path}: not an In-shop image path <GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg"
        )
    look, k, view = match.groups()
    # Drop the underscore of id_ and every underscore of the file name but the first.
    return f"fashion{gender}{category}id{item[3:]}{look}_{k}{view}.jpg"


def unflatten_name(name: str, root: str = "fashion") -> str:
    """Inverse of :func:`flatten_name`: ``<root>/<GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg``."""
    match = FLAT_NAME_RE.match(name)
    if match is None:
        raise DataError(f"{name!r} is not a flattened DeepFashion name (pattern {FLAT_NAME_RE.pattern})")
    gender, category, item, look, k, view = match.groups()
    return f"{root}/{gender}/{category}/id_{item}/{look}_{k}_{view}.jpg"


def pair_id(src: str, tgt: str) -> str:
    """The file stem of a generated image: ``<src stem>_2_<tgt stem>``."""
    return f"{Path(src).stem}_2_{Path(tgt).stem}"


def load_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Load an image as a float32 (3, H, W) RGB tensor in [0, 1], optionally resized to ``size`` (H, W).

    Exactly CFLD's pipeline: ``PIL.Image.open(...).convert("RGB")`` (grayscale is replicated,
    an alpha channel is dropped, not composited, as CFLD does), then
    ``transforms.Resize(size, BICUBIC, antialias=True)`` on the PIL image (PIL's bicubic, which
    always antialiases; aspect not kept), then ``ToTensor``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not inside a worker
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise DataError(
            f"{path}: image not found; rerun `pgpis prepare` (real data) or `pgpis synth`"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path}: image is corrupt or truncated ({err}); replace it with a fresh copy from the original archive"
        ) from None
    return image_tensor(rgb, size)


def image_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """An RGB PIL image as :func:`load_image` returns a file: resized to ``size`` (H, W) with PIL's
    bicubic (antialiased), aspect not kept, then a float32 (3, H, W) tensor in [0, 1]."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    rgb = image.convert("RGB") if image.mode != "RGB" else image
    if size is not None:
        rgb = TF.resize(rgb, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.to_tensor(rgb)


def split_file_problems(
    pairs: str | os.PathLike | None, annotations: str | os.PathLike | None, listing: str | os.PathLike | None
) -> list[str]:
    """Cross-check the split files of one split that exist (``None`` = absent); a file that does not
    parse raises DataError with its line. Returns the problems: pair images not annotated or not listed,
    and pairs that would write the same output. Used before split files are accepted into a dataset
    root (`fetch`, `prepare`); :func:`validate_dataset` applies the same rules to a root."""
    problems: list[str] = []
    if pairs is None:
        for path in (annotations, listing):
            if path is not None:  # still must parse
                (read_annotations if path == annotations else read_list)(path)
        return problems
    pair_rows = read_pairs(pairs)
    used = list(dict.fromkeys(n for pair in pair_rows for n in pair))
    for path, reader, what in (
        (annotations, read_annotations, "annotation file"),
        (listing, read_list, "list file"),
    ):
        if path is None:
            continue
        known = set(reader(path))
        missing = [n for n in used if n not in known]
        if missing:
            problems.append(
                f"{len(missing)} image(s) of {pairs} are not in {what} {path}, e.g. " + ", ".join(missing[:5])
            )
    by_id: dict[str, tuple[str, str]] = {}
    for pair in pair_rows:
        other = by_id.setdefault(pair_id(*pair), pair)
        if other != pair:
            problems.append(
                f"pairs {other[0]},{other[1]} and {pair[0]},{pair[1]} of {pairs} would write the same image "
                f"{pair_id(*pair)}.png; remove one"
            )
    return problems


class DeepFashionDataset:
    """One split (``train`` or ``test``) of a dataset root in DeepFashion's on-disk format."""

    def __init__(self, root: str | os.PathLike, split: str = "test") -> None:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found; {_REMEDY}")
        self.pairs_path = pairs_file(self.root, split)
        self.annotations_path = annotation_file(self.root, split)
        self.images_dir = image_dir(self.root, split)
        self.pairs: list[tuple[str, str]] = read_pairs(self.pairs_path)
        self.annotations: dict[str, np.ndarray] = read_annotations(self.annotations_path)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"DeepFashionDataset(root={str(self.root)!r}, split={self.split!r}, pairs={len(self.pairs)})"

    def image_path(self, name: str) -> Path:
        return self.images_dir / name

    def keypoints(self, name: str) -> np.ndarray:
        try:
            return self.annotations[name]
        except KeyError:
            raise DataError(
                f"{self.annotations_path}: image {name} (used by a pair) has no annotation row"
            ) from None

    def pair_names(self) -> list[str]:
        """Distinct image names used by the pairs, in first-use order."""
        return list(dict.fromkeys(name for pair in self.pairs for name in pair))

    def unannotated(self) -> list[str]:
        return [name for name in self.pair_names() if name not in self.annotations]

    def validate(self, decode: bool = False) -> None:
        """Raise one DataError listing every problem: unannotated or missing pair images, list mismatches.

        ``decode=True`` also opens every pair image, to find corrupt or truncated files (slow on
        the real set: thousands of JPEG decodes).
        """
        problems: list[str] = []
        names = self.pair_names()
        unannotated = self.unannotated()
        if unannotated:
            problems.append(
                f"{len(unannotated)} pair image(s) have no row in {self.annotations_path}: "
                + ", ".join(unannotated)
            )
        if not self.images_dir.is_dir():
            problems.append(
                f"image folder {self.images_dir} is missing; run `pgpis prepare` or `pgpis synth`"
            )
        else:
            present = {entry.name for entry in os.scandir(self.images_dir)}
            missing = [name for name in names if name not in present]
            if missing:
                problems.append(
                    f"{len(missing)} pair image(s) missing from {self.images_dir}: " + ", ".join(missing)
                )
            elif decode:
                from tqdm import tqdm

                bad = []
                for name in tqdm(names, desc=f"decode {self.split} images", unit="img"):
                    try:
                        load_image(self.image_path(name))
                    except DataError as err:
                        bad.append(str(err))
                if bad:
                    problems.append(f"{len(bad)} unreadable image(s):\n  " + "\n  ".join(bad))
        lst = list_file(self.root, self.split)
        if lst.exists():
            listed = set(read_list(lst))
            unlisted = [name for name in names if name not in listed]
            if unlisted:
                problems.append(f"{len(unlisted)} pair image(s) not in {lst}: " + ", ".join(unlisted))
        by_id: dict[str, tuple[str, str]] = {}
        for pair in self.pairs:
            other = by_id.setdefault(pair_id(*pair), pair)
            if other != pair:
                problems.append(
                    f"pairs {other[0]},{other[1]} and {pair[0]},{pair[1]} of {self.pairs_path} would write the "
                    f"same image {pair_id(*pair)}.png; remove one"
                )
        if problems:
            raise DataError(f"dataset {self.root} ({self.split}) is not usable:\n- " + "\n- ".join(problems))


def validate_dataset(
    root: str | os.PathLike, split: str = "test", decode: bool = False
) -> DeepFashionDataset:
    """Open one split of a dataset root and check it: the one rule set of every command that reads a dataset.

    `generate`, `evaluate`, `figures`, `user-study` and `prepare` call this, so a split one of them
    refuses is refused by all: every split file parses (in any of the forms :func:`read_pairs`,
    :func:`read_annotations` and :func:`read_list` accept), every pair image is annotated, listed
    and present, and no two pairs write the same output. Raises one DataError listing every problem.
    """
    dataset = DeepFashionDataset(root, split)
    dataset.validate(decode=decode)
    return dataset
