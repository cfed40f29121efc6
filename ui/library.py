"""The library: the documents in the index, uploads with a progress bar, and deletion.

Saving, ingesting and deleting are `rag.corpus` functions; this page draws their results.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from rag.corpus import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, add_uploads, delete_document
from rag.errors import RagError
from ui import render, state

READER_PAGE = "reader.py"
# The share of the progress bar for parsing; embedding takes the rest.
PARSE_SHARE = 0.3


def main() -> None:
    state.keep_settings()
    st.title("Library")
    _show_last_result()
    engine = state.get_engine()
    if engine is not None:
        _documents_table(engine.index)
    _upload()
    if engine is not None:
        _delete(engine.index)


def _documents_table(index) -> None:
    rows = []
    for d in index.documents:
        at = index.ingested_at(d.doc_id)
        rows.append({"title": d.title, "doc_id": d.doc_id, "kind": d.kind, "format": d.format,
                     "pages": d.pages, "paragraphs": len(index.paragraphs(d.doc_id)),
                     "ingested": datetime.fromtimestamp(at) if at else None})
    st.dataframe(rows, hide_index=True, key="documents",
                 column_config={"ingested": st.column_config.DatetimeColumn("ingested", format="YYYY-MM-DD HH:mm")})
    with st.container(horizontal=True, gap="small"):
        for d in index.documents:
            st.page_link(READER_PAGE, label=d.doc_id, icon=":material/menu_book:", query_params={"doc": d.doc_id})


def _upload() -> None:
    st.subheader("Add documents")
    n = st.session_state.setdefault("upload_round", 0)
    types = [e.lstrip(".") for e in ALLOWED_EXTENSIONS]
    files = st.file_uploader(
        f"PDF, TXT, Markdown or HTML, up to {MAX_UPLOAD_BYTES // 2**20} MB each. A file with the same name "
        "replaces the earlier version.", type=types, accept_multiple_files=True, key=f"uploads-{n}",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    if not st.button("Add to library", disabled=not files, type="primary", key="add"):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(stage: str, done: int, total: int) -> None:
        share = done / max(total, 1)
        value = PARSE_SHARE * share if stage == "parse" else PARSE_SHARE + (1 - PARSE_SHARE) * share
        bar.progress(min(value, 1.0), text=f"{'Parsing' if stage == 'parse' else 'Embedding'} {done}/{total}")

    try:
        result = add_uploads([(f.name, f.getvalue()) for f in files], state.corpus_dir(), state.index_dir(),
                             state.get_embedder(), progress=progress)
    except RagError as e:
        st.session_state["library_result"] = {"errors": [str(e)], "summary": "Nothing was added."}
    else:
        report = result.report
        st.session_state["library_result"] = {
            "errors": result.errors,
            "summary": report.summary() if report else "Nothing was added.",
            "added": (report.added + report.updated) if report else [],
            "warnings": report.warnings if report else [],
        }
    bar.progress(1.0, text="Done")
    state.reload_engine()
    st.session_state["upload_round"] = n + 1  # a fresh, empty uploader
    st.rerun()


def _show_last_result() -> None:
    result = st.session_state.pop("library_result", None)
    if not result:
        return
    for line in result.get("errors", []):
        st.error(render.md_escape(line), icon=":material/error:")
    for line in result.get("warnings", []):
        st.warning(render.md_escape(line))
    if result.get("added"):
        st.success(f"Added or updated: {render.md_escape(', '.join(result['added']))}. {result['summary']}",
                   icon=":material/check:")
    elif not result.get("errors"):
        st.info(render.md_escape(result["summary"]))


def _delete(index) -> None:
    st.subheader("Delete a document")
    ids = [d.doc_id for d in index.documents]
    doc_id = st.selectbox("Document to delete", ids, index=None, placeholder="Choose a document", key="delete-doc")
    sure = st.checkbox("Yes, delete it from the index (and its file, if it was uploaded into the corpus folder)",
                       key="delete-sure", disabled=doc_id is None)
    if st.button("Delete", disabled=not (doc_id and sure), key="delete"):
        try:
            _, removed_file = delete_document(state.index_dir(), state.get_embedder(), doc_id, state.corpus_dir())
        except RagError as e:
            st.session_state["library_result"] = {"errors": [str(e)]}
        else:
            where = f" and removed {removed_file.name} from the corpus folder" if removed_file else ""
            st.session_state["library_result"] = {"summary": f"Deleted {doc_id} from the index{where}."}
        state.reload_engine()
        for key in ("delete-doc", "delete-sure"):
            st.session_state.pop(key, None)
        st.rerun()


main()
