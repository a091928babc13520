"""One self-contained HTML report: the banner, one table per protocol (the same cells, caption and
footnotes as the Markdown), the paper-reported numbers, the protocol-sensitivity table and the
figures, embedded as data URIs so the file can be mailed, attached to MLflow or opened from anywhere
without broken links. Laid out for a 1280 px laptop screen: tables scroll inside their box rather
than being cut, long metric names wrap at their underscores."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from bench.report.document import Document, value_text
from bench.report.tables import NOT_COMPUTED, Table, layout

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1240px;margin:auto;padding:0 12px;color:#222}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
    "th{background:#f3f3f3;font-weight:600}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "img{max-width:100%;height:auto}.small{font-size:12px;color:#555}"
    ".banner{border:2px solid #c0392b;background:#fdecea;padding:8px 12px;margin:12px 0;border-radius:4px}"
    ".banner code{background:#fff;padding:1px 4px}"
    "details{margin:4px 0 12px}summary{cursor:pointer;font-size:13px}"
    "td.settings{max-width:900px}td.missing{color:#c0392b;font-style:italic}"
)


def _code(text: str) -> str:
    """Escaped text with `backticks` as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _header(text: str) -> str:
    # A break opportunity after each underscore: ssim_g15_dr_pad40 wraps instead of widening the table.
    return html.escape(text).replace("_", "_<wbr>")


def table_html(table: Table, with_ci: bool = False, note_prefix: str = "") -> str:
    lay = layout(table, with_ci)
    first_numeric = len(lay.header) - lay.numeric
    head = "".join(f"<th>{_header(h)}</th>" for h in lay.header)
    body = []
    for row in lay.rows:
        cells = []
        for col, (text, numbers) in enumerate(row):
            refs = "".join(f'<sup><a href="#note{note_prefix}{n}">{n}</a></sup>' for n in numbers)
            css = ' class="num"' if col >= first_numeric else ""
            if text == NOT_COMPUTED:
                css = ' class="num missing"'  # red: a gap the banner names, not a value
            cells.append(f"<td{css}>{html.escape(text)}{refs}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts = [
        f"<p>{_code(lay.caption)}</p>",
        f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>',
    ]
    if lay.notes:
        items = "".join(f'<li id="note{note_prefix}{n}">{_code(text)}</li>' for text, n in lay.notes.items())
        parts.append(f'<ol class="small">{items}</ol>')
    if lay.settings:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td class='settings'>{html.escape(v)}</td></tr>"
            for k, v in lay.settings
        )
        parts.append(
            f"<details><summary>Protocol settings ({len(lay.settings)})</summary>"
            f'<div class="scroll"><table>{rows}</table></div></details>'
        )
    return "\n".join(parts)


def banner_html(doc: Document) -> str:
    if not doc.missing:
        return ""
    items = "".join(
        f"<li><code>{html.escape(m.metric)}</code> ({html.escape(', '.join(m.protocols))}; "
        f"{len(m.runs)} run(s)): {_code(m.reason)}</li>"
        for m in doc.missing
    )
    fix = f"<p><b>Fix:</b> <code>{html.escape(doc.fix)}</code></p>" if doc.fix else ""
    names = ", ".join(f"<code>{html.escape(m.metric)}</code>" for m in doc.missing)
    return (
        f'<div class="banner"><p><b>Not computed:</b> {names}.</p><ul class="small">{items}</ul>{fix}</div>'
    )


def paper_html(doc: Document, protocol: str) -> str:
    rows = doc.papers.get(protocol) or []
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(c.run)}</td><td>{html.escape(c.paper_method)}</td><td>{_header(c.metric)}</td>"
        f"<td class='num'>{value_text(c.metric, c.published)}</td>"
        f"<td class='num'>{value_text(c.metric, c.reproduced)}</td>"
        f"<td class='small'>{html.escape(c.source)}</td><td>{html.escape(c.status)}"
        f"{'<br><b>' + html.escape(c.note) + '</b>' if c.note else ''}</td></tr>"
        for c in rows
    )
    return (
        "<p class='small'>Paper-reported beside reproduced: published values measured under each paper's own "
        "protocol on DeepFashion; comparable only for that method's release on DeepFashion.</p>"
        "<div class='scroll'><table><tr><th>Run</th><th>Paper</th><th>Metric</th><th>Paper-reported</th>"
        f"<th>Reproduced</th><th>Source</th><th>Status</th></tr>{body}</table></div>"
    )


def sensitivity_html(doc: Document) -> str:
    if not doc.sensitivity:
        return ""
    protocols = list(doc.tables)
    head = "".join(f"<th>{html.escape(p)}</th>" for p in protocols)
    body = []
    for run, metric, values in doc.sensitivity:
        known = [v for v in values.values() if v is not None]
        spread = value_text(metric, max(known) - min(known)) if len(known) >= 2 else ""
        cells = "".join(
            f"<td class='num'>{value_text(metric, values[p]) if values[p] is not None else '–'}</td>"
            for p in protocols
        )
        body.append(
            f"<tr><td>{html.escape(run)}</td><td>{_header(metric)}</td>{cells}<td class='num'>{spread}</td></tr>"
        )
    return (
        "<h2>Protocol sensitivity</h2><p>The same run's number under each protocol, side by side "
        "(spread = largest minus smallest).</p>"
        f"<div class='scroll'><table><tr><th>Run</th><th>Metric</th>{head}<th>Spread</th></tr>{''.join(body)}"
        "</table></div>"
    )


FIGURE_TITLES = {
    "comparison": "Comparison grid",
    "metrics": "Metrics with 95% intervals",
    "gallery": "Best and worst pairs",
}


def report_html(doc: Document, figures: list[Path], title: str = "Metrics", with_ci: bool = False) -> str:
    """The whole page; ``figures`` are PNG files, embedded in the given order under their names."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        banner_html(doc),
    ]
    for protocol, table in doc.tables.items():
        parts += [
            f"<h2>Protocol <code>{html.escape(protocol)}</code></h2>",
            table_html(table, with_ci, f"{protocol}-"),
        ]
        parts.append(paper_html(doc, protocol))
    parts.append(sensitivity_html(doc))
    for path in figures:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = html.escape(path.name)
        kind = FIGURE_TITLES.get(path.stem.split("_", 1)[0], "")
        heading = f"{kind}: {name}" if kind else name
        parts.append(f'<h2>{heading}</h2><img src="data:image/png;base64,{data}" alt="{name}">')
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)
