"""File names of a pair's image: the placeholders every name pattern may use, declared once.

``released`` (a paper's published outputs) and ``pgpis evaluate --name-pattern`` (any folder of
images) both name a pair's file by a pattern such as ``{pid}.png`` or ``{src}___{tgt}_vis.jpg``.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import ConfigError

PLACEHOLDERS = {
    "src": "source image name with its extension",
    "tgt": "target image name with its extension",
    "src_stem": "source image name without extension",
    "tgt_stem": "target image name without extension",
    "pid": "pair id, {src_stem}_2_{tgt_stem}",
}
PLACEHOLDER_HELP = ", ".join(f"{{{k}}}" for k in PLACEHOLDERS)


def pair_fields(source: str, target: str) -> dict[str, str]:
    src, tgt = Path(source).stem, Path(target).stem
    return {"src": source, "tgt": target, "src_stem": src, "tgt_stem": tgt, "pid": f"{src}_2_{tgt}"}


def format_names(patterns: list[str] | tuple[str, ...], source: str, target: str, who: str) -> list[str]:
    """Each pattern filled in for the pair; a ConfigError naming ``who`` for a bad pattern."""
    fields = pair_fields(source, target)
    try:
        return [pattern.format(**fields) for pattern in patterns]
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"{who}: bad pattern in {list(patterns)!r} ({err}); use {PLACEHOLDER_HELP}"
        ) from None
