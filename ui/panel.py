"""The citation side panel: opened by a numbered citation or a source, beside the conversation, not over it.

A click stores the citation in `st.session_state[OPEN]` (a callback, so the same run draws it), and the
chat page lays itself out in two columns while one is open. The panel shows the paragraph as indexed
(quote marked, neighbours dimmed, a table drawn with its row marked) and, for a PDF whose file is still
the one ingested, the page it was printed on with the quote's boxes highlighted (`ui.pdf_page`).
Drawing only; this module draws nothing when imported.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app.transcript import MISSING, OK, neighbours
from rag.documents import Citation, Document, Paragraph
from ui import pdf_page, render, state

OPEN = "open_citation"
READER_PAGE = "reader.py"
PANEL_KEY = "citation-panel"
# The panel stays in view while the conversation scrolls beside it.
STICKY_CSS = f"""<style>
[data-testid="stColumn"]:has(.st-key-{PANEL_KEY}) {{ position: sticky; top: 3.75rem; align-self: flex-start; }}
</style>"""


@dataclass(frozen=True)
class Opened:
    cite: Citation
    status: str  # app.transcript's citation status: ok, changed or missing


def open_citation(cite: Citation, status: str) -> None:
    """A button's callback: open `cite` in the panel."""
    st.session_state[OPEN] = Opened(cite, status)


def close() -> None:
    st.session_state.pop(OPEN, None)


def opened() -> Opened | None:
    value = st.session_state.get(OPEN)
    return value if isinstance(value, Opened) else None


def original_file(doc: Document) -> Path | None:
    """The document's file as it was ingested: its recorded path (or that path under the corpus folder),
    when its bytes still hash to the document's sha256; else None."""
    path = Path(doc.source_path)
    candidates = [path] if path.is_absolute() else [state.corpus_dir() / path, path]
    for candidate in candidates:
        if candidate.is_file() and pdf_page.file_matches(candidate, doc.sha256):
            return candidate
    return None


@st.cache_data(show_spinner=False, max_entries=64)
def _page(path: str, sha256: str, first: int, last: int, wanted: tuple[str, ...]) -> pdf_page.PageView:
    # Keyed on the file's sha256 too, so a replaced file is drawn afresh.
    return pdf_page.quote_page(Path(path), first, last, list(wanted))


def quoted_text(cite: Citation, paragraph: Paragraph | None) -> tuple[list[str], int | None]:
    """What to find on the page, and the table row quoted (an index into `table.rows`) when it is a table:
    a row is printed as its cells, not as the sentence the index quotes."""
    if paragraph is not None and paragraph.table is not None:
        row = render.quoted_row(paragraph.table, cite.quote)
        if row is not None:
            return [" ".join(paragraph.table.rows[row])], row
    return ([cite.quote] if cite.quote else []), None


PAGE_CSS = (
    "<style>.pc-clip{position:relative;overflow:hidden;border:1px solid #ddd;border-radius:4px}"
    ".pc-page{position:relative;line-height:0}.pc-page img{width:100%;height:auto;display:block}"
    ".pc-box{position:absolute;background:rgba(255,213,0,.35);outline:2px solid rgba(224,168,0,.9);"
    "border-radius:2px}</style>"
)


def page_html(view: pdf_page.PageView, title: str, whole: bool = False) -> str:
    """The rendered page with the quote's boxes laid over it (`pc-box`), at the panel's width: the stretch
    of the page that holds them (`band`), or the whole page when `whole`. All sizes are relative, so the
    boxes stay on their words at any width."""
    img = base64.b64encode(view.png).decode("ascii")
    boxes = "".join(
        f'<div class="pc-box" style="left:{b.left:.2f}%;top:{b.top:.2f}%;width:{b.width:.2f}%;height:{b.height:.2f}%"></div>'
        for b in view.boxes
    )
    top, bottom = (0.0, 100.0) if whole else view.band()
    left, right = (0.0, 100.0) if whole else view.columns()
    zoom = 100 / (right - left)  # the page's width over the clip's
    clip = f"aspect-ratio:{view.width * (right - left):.1f}/{view.height * (bottom - top):.1f}"
    # Margins in % are of the clip's width: the page's own % scaled by the zoom (and, vertically, its shape).
    shift = f"width:{zoom * 100:.2f}%;margin-left:-{left * zoom:.3f}%;margin-top:-{top * zoom * view.height / view.width:.3f}%"
    return (
        f'{PAGE_CSS}<div class="pc-clip" style="{clip}">'
        f'<div class="pc-page" data-page="{view.page}" style="{shift}">'
        f'<img alt="page {view.page} of {render.esc(title)}" src="data:image/png;base64,{img}">{boxes}</div></div>'
    )


def draw(index) -> None:
    """The open citation's panel (nothing when none is open)."""
    current = opened()
    if current is None:
        return
    cite, status = current.cite, current.status
    st.html(STICKY_CSS)
    with st.container(key=PANEL_KEY, border=True, height=640):  # fits under the top bar, above the chat box
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"**Source** · {render.md_escape(render.chip_label(cite.label))}", width="stretch")
            st.button("Close", icon=":material/close:", key="close-panel", on_click=close, type="tertiary")
        paragraph = before = after = None
        if status == OK and index is not None and index.has_paragraph(cite.doc_id, cite.para):
            paragraph = index.paragraph(cite.doc_id, cite.para)
            before, after = neighbours(index, cite.doc_id, cite.para)
        table = paragraph.table if paragraph is not None else None
        wanted, row = quoted_text(cite, paragraph)
        _page_of(cite, paragraph, index, wanted, row)
        st.html(render.panel_html(cite, status, before, after, table))
        if status != MISSING:
            params = {"doc": cite.doc_id, "para": str(cite.para)}
            if row is not None:
                params["row"] = str(row)
            if st.button("Open in document", icon=":material/menu_book:", key="open-in-doc"):
                st.switch_page(READER_PAGE, query_params=params)


def _page_of(cite: Citation, paragraph: Paragraph | None, index, wanted: list[str], row: int | None) -> None:
    """For a PDF: the page as printed, the quote's boxes highlighted, above the clean paragraph."""
    doc = next((d for d in index.documents if d.doc_id == cite.doc_id), None) if index is not None else None
    if paragraph is None or doc is None or doc.format != "pdf" or not paragraph.page:
        return
    path = original_file(doc)
    if path is None:
        st.caption("The original PDF is not on this server any more, so its page cannot be shown.")
        return
    table = paragraph.table
    last = max(table.pages) if table is not None and table.pages else paragraph.page + 1
    view = _page(str(path), doc.sha256, paragraph.page, last, tuple(wanted))
    found = "the quoted row" if row is not None else "the quoted sentence"
    st.caption(
        f"As printed on page {view.page} of the PDF, {found} highlighted"
        if view.boxes
        else f"Page {view.page} of the PDF (the quote could not be located on it)"
    )
    st.html(page_html(view, doc.title, whole=not view.boxes))
    if view.boxes:
        with st.expander(f"Whole page {view.page}", expanded=False):
            st.html(page_html(view, doc.title, whole=True))
    st.caption("The paragraph as indexed:")
