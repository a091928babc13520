"""The report as GitHub Markdown: banner, one table per protocol with its settings and the
paper-reported numbers, then the protocol-sensitivity table."""

from __future__ import annotations

from bench.report.document import Document, value_text
from bench.report.tables import _cell, to_markdown


def banner_lines(doc: Document) -> list[str]:
    if not doc.missing:
        return []
    lines = ["> **Not computed:** " + ", ".join(f"`{m.metric}`" for m in doc.missing) + "."]
    for m in doc.missing:
        lines.append(f"> - `{m.metric}` ({', '.join(m.protocols)}; {len(m.runs)} run(s)): {m.reason}")
    if doc.fix:
        lines.append(f"> **Fix:** `{doc.fix}`")
    return [*lines, ""]


def paper_lines(doc: Document, protocol: str) -> list[str]:
    rows = doc.papers.get(protocol) or []
    if not rows:
        return []
    lines = [
        "Paper-reported beside reproduced (published values measured under each paper's own protocol "
        "on DeepFashion; comparable only for that method's release on DeepFashion):",
        "",
        "| Run | Paper | Metric | Paper-reported | Reproduced | Source | Status |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for c in rows:
        lines.append(
            f"| {_cell(c.run)} | {_cell(c.paper_method)} | {c.metric} | {value_text(c.metric, c.published)} | "
            f"{value_text(c.metric, c.reproduced)} | {_cell(c.source)} | {c.status}{'; ' + c.note if c.note else ''} |"
        )
    return [*lines, ""]


def sensitivity_lines(doc: Document) -> list[str]:
    if not doc.sensitivity:
        return []
    protocols = list(doc.tables)
    lines = [
        "## Protocol sensitivity",
        "",
        "The same run's number under each protocol, side by side (spread = largest minus smallest).",
        "",
        "| Run | Metric | " + " | ".join(f"`{p}`" for p in protocols) + " | Spread |",
        "|---|---|" + "---:|" * (len(protocols) + 1),
    ]
    for run, metric, values in doc.sensitivity:
        known = [v for v in values.values() if v is not None]
        spread = value_text(metric, max(known) - min(known)) if len(known) >= 2 else ""
        cells = [value_text(metric, values[p]) if values[p] is not None else "–" for p in protocols]
        lines.append(f"| {_cell(run)} | {metric} | " + " | ".join(cells) + f" | {spread} |")
    return [*lines, ""]


def document_markdown(doc: Document, title: str = "Metrics", with_ci: bool = False) -> str:
    out = [f"# {title}", "", *banner_lines(doc)]
    for protocol, table in doc.tables.items():
        section = (
            to_markdown(table, title=f"Protocol `{protocol}`", with_ci=with_ci, note_prefix=f"{protocol}-")
            .rstrip("\n")
            .split("\n")
        )
        # The paper comparison sits right under the table, before its settings and footnotes.
        at = next((i for i, line in enumerate(section) if line == "Protocol settings:"), len(section))
        out += [*section[:at], "", *paper_lines(doc, protocol), *section[at:], ""]
    out += sensitivity_lines(doc)
    return "\n".join(out).rstrip() + "\n"
