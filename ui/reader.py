"""The reader: one document, every paragraph numbered and anchored (`#para-N`), each page of a PDF marked.

Opened from a citation's "Open in document" (query parameters `doc` and `para`, and `row` for a table's
quoted row), it scrolls to and marks that paragraph, or only that row of a table. The original file
downloads from here, when it is still the one that was ingested.
"""

from __future__ import annotations

import streamlit as st

from ui import panel, render, state


def main() -> None:
    state.keep_settings()
    state.signed_in()
    st.title("Reader")
    engine = state.get_engine()
    if engine is None:
        return
    index = engine.index
    docs = {d.doc_id: d for d in index.documents}
    wanted = st.query_params.get("doc")
    ids = list(docs)
    start = ids.index(wanted) if wanted in docs else 0
    if wanted and wanted not in docs:
        st.warning(f"No document '{render.md_escape(wanted)}' in the index; it may have been deleted.")
    doc_id = st.selectbox(
        "Document", ids, index=start, format_func=lambda d: f"{docs[d].title} ({d})", key=f"reader-doc-{wanted or ''}"
    )
    if doc_id != wanted:
        st.query_params["doc"] = doc_id
        st.query_params.pop("para", None)
        st.query_params.pop("row", None)
    doc = docs[doc_id]
    paragraphs = index.paragraphs(doc_id)
    target = _number("para") if doc_id == wanted else None
    row = _number("row") if target is not None else None
    pages = f" · {doc.pages} pages" if doc.pages else ""
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(
            f"{render.md_escape(doc.kind)} · {doc.format}{pages} · {len(paragraphs)} paragraphs · "
            f"sha256 {doc.sha256[:12]}…",
            width="stretch",
        )
        original = panel.original_file(doc)
        if original is not None:
            st.download_button(
                f"Original file ({original.suffix.lstrip('.').upper() or doc.format})",
                original.read_bytes(),
                file_name=original.name,
                mime="application/pdf" if doc.format == "pdf" else None,
                icon=":material/download:",
                on_click="ignore",
                key="original",
            )
    if target is not None and not index.has_paragraph(doc_id, target):
        st.warning(f"This document has no paragraph {target}; it has paragraphs 1 to {len(paragraphs)}.")
        target = None
    st.html(render.reader_html(doc, paragraphs, target, row))
    if target is not None:
        st.html(render.scroll_to(f"para-{target}"), unsafe_allow_javascript=True)


def _number(name: str) -> int | None:
    try:
        return int(st.query_params.get(name, ""))
    except ValueError:
        return None


main()
