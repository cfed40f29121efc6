"""Escaping and HTML for document text. Every string from a document passes through here.

Two rules, because Streamlit renders two languages:
- HTML (`st.html`): every document string goes through `html.escape`, and only our own tags
  wrap it, so `<script>` shows as text.
- Markdown (`st.markdown`, `st.write_stream`, button labels and help tooltips): `md_escape`
  backslash-escapes every ASCII punctuation mark, so `**`, `[x](y)`, `$`, `:red[...]` and `<b>`
  show as typed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from rag.documents import Answer, Citation, DocRef, Document, Hit, Lead, Paragraph, Table
from rag.load.table_text import row_lines
from rag.present import MD_SPECIAL, md_escape, where  # noqa: F401  (md_escape and where are used by the pages too)

CSS = """
<style>
.pc-panel { font-size: 0.95rem; line-height: 1.55; }
.pc-meta { color: #555; font-size: 0.85rem; margin-bottom: 0.4rem; }
.pc-ctx { opacity: 0.45; font-size: 0.9rem; margin: 0.4rem 0; }
.pc-main { border-left: 3px solid #e0a800; padding-left: 0.7rem; margin: 0.6rem 0; }
.pc-main mark { background: #ffe58a; padding: 0 0.1rem; }
.pc-warn { background: #fff3cd; border: 1px solid #e0a800; padding: 0.5rem 0.7rem; border-radius: 4px; }
.pc-refs { color: #444; font-size: 0.85rem; margin-top: 0.5rem; }
.pc-num { display: inline-block; min-width: 2.2rem; color: #888; font-size: 0.8rem; text-decoration: none; }
.pc-para { margin: 0 0 0.8rem 0; scroll-margin-top: 4rem; }
.pc-para.pc-target { background: #fff7d6; border-left: 3px solid #e0a800; padding-left: 0.5rem; }
.pc-heading { font-weight: 600; margin: 1.2rem 0 0.4rem 0; }
.pc-hits { margin: 0; padding-left: 1.1rem; font-size: 0.9rem; }
.pc-hits li { margin-bottom: 0.45rem; }
.pc-score { color: #777; font-size: 0.8rem; }
.pc-table { border-collapse: collapse; font-size: 0.85rem; margin: 0.3rem 0; }
.pc-table caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
.pc-table th, .pc-table td { border-bottom: 1px solid #e3e3e3; padding: 0.15rem 0.5rem; vertical-align: top; }
.pc-table thead th { text-align: center; border-bottom: 1px solid #bbb; }
.pc-table tbody th { text-align: left; font-weight: normal; }
.pc-table td { text-align: right; white-space: nowrap; }
.pc-table tr.pc-group th { font-weight: 600; }
.pc-table tr.pc-quoted th, .pc-table tr.pc-quoted td { background: #ffe58a; }
.pc-wide { overflow-x: auto; }
.pc-pagemark { color: #888; font-size: 0.75rem; letter-spacing: 0.04em; text-transform: uppercase;
  border-top: 1px dashed #ccc; margin: 1rem 0 0.5rem 0; padding-top: 0.2rem; scroll-margin-top: 4rem; }
.pc-para.pc-target-row { border-left: 3px solid #e0a800; padding-left: 0.5rem; }
.pc-details td { text-align: left; white-space: normal; }
</style>
"""


def md_escape_token(token: Any) -> str:
    """One streamed token, Markdown-escaped but with its spaces kept (tokens often start with one).

    >>> print("".join(md_escape_token(t) for t in ["The", " *exports*", " rose"]))
    The \\*exports\\* rose
    """
    return MD_SPECIAL.sub(r"\\\1", str(token))


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def preview(text: str, chars: int = 280) -> str:
    """The first lines of a paragraph, for a hover tooltip (plain text; escape for where it goes)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars].rsplit(" ", 1)[0] + " …"


def stream_words(text: str) -> Iterator[str]:
    """Markdown-escaped pieces of a sentence, word by word, for `st.write_stream`."""
    words = text.split()
    for i, word in enumerate(words):
        yield md_escape(word) + (" " if i < len(words) - 1 else "")


def chip_label(label: str) -> str:
    """A citation label on a button: the doc id and the paragraph, with a dot between for the eye.

    >>> chip_label("caixin-commentary para. 4")
    'caixin-commentary · para. 4'
    """
    return label.replace(" para. ", " · para. ", 1)


def lead_markdown(lead: Lead) -> str:
    """The lead line: the span in bold, its context after it (the citation chip sits beside it)."""
    context = f" ({md_escape(lead.context)})" if lead.context else ""
    return f"**{md_escape(lead.span)}**{context}"


def highlighted(text: str, quote: str | None) -> str:
    """The paragraph as HTML with the quoted sentence in <mark>; all of it escaped."""
    if quote:
        at = text.find(quote)
        if at >= 0:
            return f"{esc(text[:at])}<mark>{esc(quote)}</mark>{esc(text[at + len(quote) :])}"
    return esc(text)


def quoted_row(table: Table, quote: str | None) -> int | None:
    """The index of the row (in `table.rows`) whose line of text holds the quote, or that the quote holds."""
    if not quote:
        return None
    flat = " ".join(quote.split())
    for i, line in row_lines(table):
        if flat == line or (len(flat) >= 8 and (flat in line or line in flat)):
            return i
    return None


def _spans(row: tuple[str, ...]) -> list[tuple[str, int]]:
    """A header row's cells with their colspans: a label repeated over neighbouring columns is drawn once."""
    out: list[tuple[str, int]] = []
    for k, cell in enumerate(row):
        if k > 1 and out and cell and out[-1][0] == cell:
            out[-1] = (cell, out[-1][1] + 1)
        else:
            out.append((cell, 1))
    return out


def table_html(table: Table, quote: str | None = None, row: int | None = None) -> str:
    """A table paragraph as an HTML table: its caption, the header rows (a spanning label once, over its
    columns), the row labels as row headers, and the row the quote was taken from marked (`pc-quoted`);
    `row` marks that row (an index into `table.rows`) instead."""
    marked = row if row is not None else quoted_row(table, quote)
    width = table.columns
    parts = ['<div class="pc-wide"><table class="pc-table">']
    if table.caption:
        parts.append(f"<caption>{esc(table.caption)}</caption>")
    if table.header:
        parts.append("<thead>")
        for row in table.header:
            cells = "".join(
                f'<th scope="col"{f" colspan={n}" if n > 1 else ""}>{esc(c)}</th>'
                for c, n in _spans(tuple(row) + ("",) * (width - len(row)))
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</thead>")
    parts.append("<tbody>")
    for i, row in enumerate(table.rows):
        row = tuple(row) + ("",) * (width - len(row))
        classes = [c for c, on in (("pc-group", not any(row[1:])), ("pc-quoted", i == marked)) if on]
        cls = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(f"<td>{esc(c)}</td>" for c in row[1:])
        parts.append(f'<tr{cls}><th scope="row">{esc(row[0])}</th>{cells}</tr>')
    parts.append("</tbody></table></div>")
    return "".join(parts)


def panel_html(
    cite: Citation,
    status: str,
    before: Paragraph | None = None,
    after: Paragraph | None = None,
    table: Table | None = None,
) -> str:
    """The citation panel: title, paragraph number and page, the paragraph with its quote marked,
    its neighbours dimmed, and the original-article references. `status` is from
    `app.transcript.citation_status`; when the document changed, only the text stored at answer
    time is shown, marked as such. A cited table (`table`, the paragraph's structure) is drawn as a
    table under the quoted row, which is marked in it."""
    head = esc(chip_label(cite.label))
    if cite.page:
        head += f" · page {esc(cite.page)}"
    parts = [
        CSS,
        '<div class="pc-panel">',
        f'<div class="pc-title"><strong>{esc(cite.title)}</strong></div>',
        f'<div class="pc-meta">{head}</div>',
    ]
    if status != "ok":
        what = (
            "has changed since this answer was given (its content hash differs)"
            if status == "changed"
            else "is no longer in the index"
        )
        parts.append(
            f'<div class="pc-warn">This document {what}. Below is the paragraph as it read when the '
            f"answer was given; the current text may differ.</div>"
        )
    elif before is not None:
        parts.append(f'<p class="pc-ctx" title="previous paragraph">{before.para}. {esc(before.text)}</p>')
    if table is not None and status == "ok":
        quote = f"<p><mark>{esc(cite.quote)}</mark></p>" if cite.quote else ""
        parts.append(f'<div class="pc-main">{quote}{table_html(table, cite.quote)}</div>')
    else:
        parts.append(f'<p class="pc-main">{highlighted(cite.text, cite.quote)}</p>')
    if status == "ok" and after is not None:
        parts.append(f'<p class="pc-ctx" title="next paragraph">{after.para}. {esc(after.text)}</p>')
    if cite.source_paras:
        refs = ", ".join(str(int(n)) for n in cite.source_paras)
        parts.append(f'<div class="pc-refs">Original article: para. {refs}</div>')
    parts.append("</div>")
    return "\n".join(parts)


def score_line(h: Hit) -> str:
    """A hit's fused score and each retriever's, for the "Details" view.

    >>> from rag.documents import Paragraph
    >>> score_line(Hit(Paragraph("d", 1, "t"), 1.60734, 1, {"bm25": 1.75, "dense": 0.2049}))
    'score 1.6073 · bm25 1.750 · dense 0.205'
    """
    line = f"score {h.score:.4f}"
    if h.scores_by_retriever:
        line += " · " + " · ".join(f"{k} {v:.3f}" for k, v in sorted(h.scores_by_retriever.items()))
    return line


def hits_html(
    hits: tuple[Hit, ...] | list[Hit], documents: dict[str, DocRef], chars: int = 220, scores: bool = True
) -> str:
    """A list of retrieved paragraphs, with their scores (fused, and per retriever) when `scores`."""
    items = []
    for h in hits:
        p = h.paragraph
        page = f", page {esc(p.page)}" if p.page else ""
        title = documents[p.doc_id].title if p.doc_id in documents else ""
        shown = f' <span class="pc-score">({esc(score_line(h))})</span>' if scores else ""
        items.append(
            f"<li><strong>{esc(chip_label(p.label))}</strong>{page} "
            f"<em>{esc(title)}</em>{shown}<br>"
            f"{esc(preview(p.text, chars))}</li>"
        )
    return CSS + '<ul class="pc-hits">' + "".join(items) + "</ul>"


def details_html(answer: Answer) -> str:
    """What a curious reader may open under an answer: each retrieved paragraph's scores, and the timings."""
    rows = "".join(
        f"<tr><td>{h.rank}</td><td>{esc(chip_label(h.paragraph.label))}</td><td>{esc(score_line(h))}</td></tr>"
        for h in answer.retrieved
    )
    timings = " · ".join(f"{esc(k)} {v:.0f} ms" for k, v in answer.timings_ms.items())
    table = f'<table class="pc-table pc-details"><tbody>{rows}</tbody></table>' if rows else ""
    return (
        CSS
        + f'<div class="pc-score">Retrieved paragraphs and their scores</div>{table}'
        + (f'<div class="pc-score">Timings: {timings}</div>' if timings else "")
    )


def sources_html(cites: tuple[Citation, ...] | list[Citation], statuses: dict[str, str]) -> str:
    """The sources an answer cites, one line each."""
    items = []
    for c in cites:
        extra = where(c.page, c.source_paras)
        flag = {"changed": " — document changed since", "missing": " — document removed since"}.get(
            statuses.get(c.label, "missing"), ""
        )
        items.append(
            f"<li><strong>{esc(chip_label(c.label))}</strong> {esc(c.title)}"
            f'{" (" + esc(extra) + ")" if extra else ""}<span class="pc-score">{esc(flag)}</span></li>'
        )
    return CSS + '<ul class="pc-hits">' + "".join(items) + "</ul>"


def reader_html(doc: Document, paragraphs: list[Paragraph], target: int | None = None, row: int | None = None) -> str:
    """The whole document with a numbered anchor (`id="para-N"`) on every paragraph, and a marker
    (`id="page-N"`) where each page of a PDF begins. `target` is marked; when it is a table and `row`
    names its quoted row, that row is marked rather than the whole table."""
    out = [CSS, f'<div class="pc-reader" data-doc="{esc(doc.doc_id)}">']
    heading = ""
    page = None
    for p in paragraphs:
        if p.page and p.page != page:
            page = p.page
            out.append(f'<div class="pc-pagemark" id="page-{page}">Page {page}</div>')
        if p.heading and p.heading != heading:
            heading = p.heading
            out.append(f'<div class="pc-heading">{esc(heading)}</div>')
        meta = where(p.page, p.source_paras)
        tip = f' title="{esc(meta)}"' if meta else ""
        if p.table is not None:
            marks_row = p.para == target and row is not None and 0 <= row < len(p.table.rows)
            cls = "pc-para" + (" pc-target-row" if marks_row else " pc-target" if p.para == target else "")
            out.append(
                f'<div class="{cls}" id="para-{p.para}"{tip}><a class="pc-num" href="#para-{p.para}">'
                f"{p.para}</a>{table_html(p.table, row=row) if marks_row else table_html(p.table)}</div>"
            )
            continue
        cls = "pc-para pc-target" if p.para == target else "pc-para"
        out.append(
            f'<p class="{cls}" id="para-{p.para}"{tip}><a class="pc-num" href="#para-{p.para}">'
            f"{p.para}</a>{esc(p.text)}</p>"
        )
    out.append("</div>")
    return "\n".join(out)


def scroll_to(anchor: str) -> str:
    """A script (ours, no document text) that scrolls the reader to `anchor`."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "", anchor)
    return (
        f"<script>setTimeout(function(){{var e=document.getElementById('{safe}');"
        f"if(e){{e.scrollIntoView({{block:'start'}});}}}}, 300);</script>"
    )
