"""The reader: one document, every paragraph numbered and anchored (`#para-N`).

Opened from a citation's "Open in document" (query parameters `doc` and `para`), it scrolls to
and marks that paragraph.
"""

from __future__ import annotations

import streamlit as st

from ui import render, state


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
    doc = docs[doc_id]
    paragraphs = index.paragraphs(doc_id)
    try:
        target = int(st.query_params.get("para", "")) if doc_id == wanted else None
    except ValueError:
        target = None
    pages = f" · {doc.pages} pages" if doc.pages else ""
    st.caption(
        f"{render.md_escape(doc.kind)} · {doc.format}{pages} · {len(paragraphs)} paragraphs · sha256 {doc.sha256[:12]}…"
    )
    if target is not None and not index.has_paragraph(doc_id, target):
        st.warning(f"This document has no paragraph {target}; it has paragraphs 1 to {len(paragraphs)}.")
        target = None
    st.html(render.reader_html(doc, paragraphs, target))
    if target is not None:
        st.html(render.scroll_to(f"para-{target}"), unsafe_allow_javascript=True)


main()
