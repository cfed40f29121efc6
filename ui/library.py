"""The library: the documents in the index, uploads with a progress bar, and deletion.

Saving, ingesting and deleting are `app.corpus` functions, which check the user's role themselves
and write the audit log; this page draws their results, shows who added each document (`app.audit`),
and offers the upload and delete forms only to editors and admins.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

import streamlit as st

from app import audit
from app.auth import LOCAL, Principal, Role
from app.corpus import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, add_uploads, delete_document
from rag.errors import RagError
from ui import render, state

READER_PAGE = "reader.py"
# The share of the progress bar for parsing; embedding takes the rest.
PARSE_SHARE = 0.3


def main() -> None:
    state.keep_settings()
    principal = state.signed_in()
    st.title("Library")
    _who_can_reach(principal)
    _show_last_result()
    engine = state.get_engine()
    if engine is not None:
        _documents_table(engine.index)
    if principal.role < Role.EDITOR:
        st.info(
            f"You are a {principal.role}: you may ask, read and export answers. Adding, replacing and deleting "
            "documents needs the editor role; the operator gives it in the roles file.",
            icon=":material/lock:",
        )
        return
    _upload(principal)
    if engine is not None:
        _delete(engine.index, principal)


def _who_can_reach(principal: Principal) -> None:
    """Without sign-in, say that the app is one person's, and warn when it listens beyond this machine."""
    if principal != LOCAL:
        return
    address = str(st.get_option("server.address") or "")
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if loopback:
        st.caption(
            f"paracite runs here for one local user, on {render.md_escape(address)}: there is no sign-in, "
            'and only this machine can connect. To share it with a team, see "Deploy for a team" in '
            "the README."
        )
    else:
        st.warning(
            f"paracite runs for one local user with no sign-in, but listens on "
            f"{render.md_escape(address or 'every address')}: anyone who can reach it may add and delete "
            'documents. Bind it to 127.0.0.1, or turn sign-in on (README, "Deploy for a team").',
            icon=":material/warning:",
        )


def _documents_table(index) -> None:
    added = audit.added_by(state.audit_path())
    rows = []
    for d in index.documents:
        at = index.ingested_at(d.doc_id)
        entry = added.get(d.doc_id)
        by = (
            entry.get("email") or ("local user" if entry.get("user") == LOCAL.user else entry.get("user"))
            if entry
            else None
        )
        rows.append(
            {
                "title": d.title,
                "doc_id": d.doc_id,
                "added by": by or "not recorded",
                "ingested": datetime.fromtimestamp(at) if at else None,
                "kind": d.kind,
                "format": d.format,
                "pages": d.pages,
                "paragraphs": len(index.paragraphs(d.doc_id)),
            }
        )
    st.dataframe(
        rows,
        hide_index=True,
        key="documents",
        column_config={"ingested": st.column_config.DatetimeColumn("ingested", format="YYYY-MM-DD HH:mm")},
    )
    with st.container(horizontal=True, gap="small"):
        for d in index.documents:
            st.page_link(READER_PAGE, label=d.doc_id, icon=":material/menu_book:", query_params={"doc": d.doc_id})


def _upload(principal: Principal) -> None:
    st.subheader("Add documents")
    n = st.session_state.setdefault("upload_round", 0)
    types = [e.lstrip(".") for e in ALLOWED_EXTENSIONS]
    files = st.file_uploader(
        f"PDF, TXT, Markdown or HTML, up to {MAX_UPLOAD_BYTES // 2**20} MB each. A file with the same name "
        "replaces the earlier version.",
        type=types,
        accept_multiple_files=True,
        key=f"uploads-{n}",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,
    )
    if not st.button("Add to library", disabled=not files, type="primary", key="add"):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(stage: str, done: int, total: int) -> None:
        share = done / max(total, 1)
        value = PARSE_SHARE * share if stage == "parse" else PARSE_SHARE + (1 - PARSE_SHARE) * share
        label = {"parse": "Parsing", "embed sentences": "Embedding sentences"}.get(stage, "Embedding")
        bar.progress(min(value, 1.0), text=f"{label} {done}/{total}")

    try:
        result = add_uploads(
            [(f.name, f.getvalue()) for f in files],
            state.corpus_dir(),
            state.index_dir(),
            state.get_embedder(),
            progress=progress,
            principal=principal,
            audit_log=state.audit_path(),
        )
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
        st.success(
            f"Added or updated: {render.md_escape(', '.join(result['added']))}. {result['summary']}",
            icon=":material/check:",
        )
    elif not result.get("errors"):
        st.info(render.md_escape(result["summary"]))


def _delete(index, principal: Principal) -> None:
    st.subheader("Delete a document")
    ids = [d.doc_id for d in index.documents]
    doc_id = st.selectbox("Document to delete", ids, index=None, placeholder="Choose a document", key="delete-doc")
    sure = st.checkbox(
        "Yes, delete it from the index (and its file, if it was uploaded into the corpus folder)",
        key="delete-sure",
        disabled=doc_id is None,
    )
    if st.button("Delete", disabled=not (doc_id and sure), key="delete"):
        try:
            _, removed_file = delete_document(
                state.index_dir(),
                state.get_embedder(),
                doc_id,
                state.corpus_dir(),
                principal=principal,
                audit_log=state.audit_path(),
            )
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
