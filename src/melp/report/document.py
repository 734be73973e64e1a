"""The demo report as a document: blocks rendered to markdown and to one self-contained HTML file.

The HTML embeds every figure as a base64 PNG ``data:`` URI and carries its own CSS, so it opens
offline with nothing beside it; the markdown references the same PNGs written next to it.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from melp.report.alignment import SentenceLink
from melp.report.explain import GeneratedReport
from melp.report.results import Table

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1180px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #c33; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 9px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3em 0; }
.note { color: #666; font-size: 12px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 13px; }
.align { display: flex; gap: 1.2em; align-items: flex-start; }
.align .figs { flex: 3; min-width: 0; }
.sentences { flex: 1.2; list-style: none; padding: 0; margin: 0; }
.sentences li { border-left: 6px solid; padding: .25em .6em; margin-bottom: .6em; background: #fafafa; }
.sentences .beats { color: #555; font-size: 12px; }
.pairs td { text-align: left; vertical-align: top; max-width: 480px; }
"""


@dataclass
class Figure:
    """A PNG figure with a file name (for the markdown) and a caption."""

    name: str
    png: bytes
    caption: str


@dataclass
class Alignment:
    """The alignment figures (stacked) with the linked sentence list beside them."""

    figures: list[Figure]
    links: list[SentenceLink]


Block = str | Table | Figure | Alignment | list[GeneratedReport]


@dataclass
class Section:
    """A titled section: paragraphs (str), tables, figures, the alignment view, report pairs."""

    title: str
    blocks: list[Block] = field(default_factory=list)


def _link_text(link: SentenceLink) -> str:
    kinds = link.beat_types or ("",) * len(link.beat_numbers)
    beats = ", ".join(
        f"beat {n} ({kind + ', ' if kind not in ('', 'N') else ''}{t:.2f} s)"
        for n, t, kind in zip(link.beat_numbers, link.beat_times, kinds)
    )
    beats = beats or "no beat (attention within 1.05× uniform)"
    queries = ", ".join(f"q{q} ({w:.2f})" for q, w in link.top_queries)
    return f"attends to {beats}; peak {link.peak:.1f}× uniform; strongest beat queries {queries}"


def _md_table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return [*lines, ""]


def _md_block(block: Block, assets: Path, prefix: str) -> list[str]:
    if isinstance(block, str):
        return [block, ""]
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Figure):
        (assets / f"{block.name}.png").write_bytes(block.png)
        return [f"![{block.caption}]({prefix}/{block.name}.png)", "", f"_{block.caption}_", ""]
    if isinstance(block, Alignment):
        lines = [line for figure in block.figures for line in _md_block(figure, assets, prefix)]
        for link in block.links:
            lines.append(f'- <span style="color:{link.colour}">■</span> **{link.sentence}** — {_link_text(link)}')
        return [*lines, ""]
    lines = ["| record | reference report | generated report |", "|---|---|---|"]
    lines += [f"| {r.record_id} | {r.reference} | {r.generated} |" for r in block]
    return [*lines, ""]


def render_markdown(*, title: str, sections: list[Section], path: Path) -> None:
    """Write ``path`` (markdown) and its PNGs into ``<stem>_files/`` beside it."""
    assets = path.parent / f"{path.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _md_block(block, assets, assets.name)
    path.write_text("\n".join(lines), encoding="utf-8")


def _html_table(table: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{esc(table.note)}</p>' if table.note else ""
    return (
        f"<table><caption>{esc(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = html.escape(figure.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
    )


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, str):
        return f"<p>{esc(block)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        return _html_figure(block)
    if isinstance(block, Alignment):
        items = "".join(
            f'<li style="border-color:{link.colour}"><b style="color:{link.colour}">{esc(link.sentence)}</b>'
            f'<br><span class="beats">{esc(_link_text(link))}</span></li>'
            for link in block.links
        )
        figures = "".join(_html_figure(figure) for figure in block.figures)
        return f'<div class="align"><div class="figs">{figures}</div><ul class="sentences">{items}</ul></div>'
    rows = "".join(
        f"<tr><td>{esc(r.record_id)}</td><td>{esc(r.reference)}</td><td>{esc(r.generated)}</td></tr>" for r in block
    )
    return (
        '<table class="pairs"><thead><tr><th>record</th><th>reference report</th><th>generated report</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_html(*, title: str, sections: list[Section], path: Path) -> None:
    """Write one self-contained HTML file (inline CSS, figures as data URIs, no external resources)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(_html_block(block) for block in section.blocks)
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
