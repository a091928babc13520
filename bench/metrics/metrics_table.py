"""The README's metrics and views tables, generated from the registry (a test keeps README.md equal).

``python -m bench.metrics.metrics_table`` prints them (installed plugins included);
``--write FILE`` replaces the block between the markers in FILE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import ConfigError
from bench.metrics import registry
from bench.metrics.views import VIEWS

START, END = (
    "<!-- metrics-table:start (generated: python -m bench.metrics.metrics_table --write) -->",
    "<!-- metrics-table:end -->",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(load_plugins: bool = True) -> str:
    lines = [
        "| name | results key | kind | reads | better | weights | definition | reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in registry.all_metrics(load_plugins).values():
        if m.kind == registry.SET_LEVEL:
            key, reads = f"`{m.name}_<split>`", f"`{m.extractor}` features ({m.needs})"
        else:
            lpips = m.consumes == registry.LPIPS
            key = f"`{m.name}`" + ("" if lpips else " + view suffix")
            reads = "the protocol's network view" if lpips else "the protocol's image view"
        settings = ", ".join(f"{k}={v}" for k, v in m.defaults.items())
        definition = m.description + (f" (defaults: {settings})" if settings else "")
        weights = ", ".join(f"`{w}`" for w in m.weights) or "none"
        better = "higher ↑" if m.direction == registry.HIGHER else "lower ↓"
        cells = [f"`{m.name}`", key, m.kind, reads, better, weights, definition, m.reference]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "| view | results-name suffix | what the metric sees |", "|---|---|---|"]
    lines += [
        f"| `{v.name}` | `{v.suffix}` | {_cell(v.description)} |"
        if v.suffix
        else f"| `{v.name}` | none | {_cell(v.description)} |"
        for v in VIEWS.values()
    ]
    return "\n".join([START, *lines, END])


def replace_block(text: str, block: str, path: Path) -> str:
    if START not in text or END not in text:
        raise ConfigError(f"{path}: no generated metrics-table block ({START} ... {END})")
    head, rest = text.split(START, 1)
    return head + block + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, default=None, metavar="FILE", help="replace the block in FILE")
    args = ap.parse_args(argv)
    block = markdown()
    if args.write is None:
        print(block)
        return 0
    args.write.write_text(
        replace_block(args.write.read_text(encoding="utf-8"), block, args.write), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
