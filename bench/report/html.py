"""One self-contained HTML report: the metrics table (the same cells, caption and footnotes as the
Markdown table) and the figures, embedded as data URIs so the file can be mailed, attached to
MLflow or opened from anywhere without broken links."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from bench.report.tables import Table, layout

STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
    "img{max-width:100%}.small{font-size:12px;color:#555}"
)


def _code(text: str) -> str:
    """Escaped text with `backticks` as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def table_html(table: Table, with_ci: bool = False) -> str:
    lay = layout(table, with_ci)
    first_numeric = len(lay.header) - lay.numeric
    head = "".join(f"<th>{html.escape(h)}</th>" for h in lay.header)
    body = []
    for row in lay.rows:
        cells = []
        for col, (text, numbers) in enumerate(row):
            refs = "".join(f'<sup><a href="#note{n}">{n}</a></sup>' for n in numbers)
            css = ' class="num"' if col >= first_numeric else ""
            cells.append(f"<td{css}>{html.escape(text)}{refs}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts = [f"<p>{_code(lay.caption)}</p>", f"<table><tr>{head}</tr>{''.join(body)}</table>"]
    if lay.settings:
        parts.append(f'<p class="small">Protocol settings: <code>{html.escape(lay.settings)}</code></p>')
    if lay.notes:
        items = "".join(f'<li id="note{n}">{html.escape(text)}</li>' for text, n in lay.notes.items())
        parts.append(f'<ol class="small">{items}</ol>')
    return "\n".join(parts)


def report_html(table: Table, figures: list[Path], title: str = "Metrics", with_ci: bool = False) -> str:
    """The whole page; ``figures`` are PNG files, embedded in the given order under their names."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        table_html(table, with_ci),
    ]
    for path in figures:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = html.escape(path.name)
        parts.append(f'<h2>{name}</h2><img src="data:image/png;base64,{data}" alt="{name}">')
    parts.append("</body></html>\n")
    return "\n".join(parts)
