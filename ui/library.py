"""The library: the documents in the index, uploads with a progress bar, and deletion.

Saving, ingesting and deleting are `app.corpus` functions, which check the user's role themselves
and write the audit log; this page draws their results, shows who added each document (`app.audit`),
and offers the upload and delete forms only to editors and admins.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from urllib.parse import quote

import streamlit as st

from app import audit
from app.auth import LOCAL, Principal, Role
from app.corpus import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, add_uploads, delete_document
from rag.errors import RagError
from ui import render, state

READER_PATH = "reader"  # the Reader's address, relative to this page's (both sit at the app's root)
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
                "read": f"{READER_PATH}?doc={quote(d.doc_id)}",  # shown as the doc id (display_text)
                "added by": by or "not recorded",
                "ingested": datetime.fromtimestamp(at) if at else None,
                "kind": d.kind,
                "format": f"{d.format}, {d.pages} pp." if d.pages else d.format,
                "paragraphs": len(index.paragraphs(d.doc_id)),
            }
        )
    st.dataframe(
        rows,
        hide_index=True,
        key="documents",
        width="stretch",
        column_config={
            "title": st.column_config.TextColumn("title", width=265),
            "read": st.column_config.LinkColumn(
                "read", width=205, display_text=r"doc=([^&]+)", help="Open the document in the Reader"
            ),
            "added by": st.column_config.TextColumn("added by", width=90),
            "ingested": st.column_config.DatetimeColumn("ingested", format="YYYY-MM-DD HH:mm", width=122),
            "kind": st.column_config.TextColumn("kind", width=82),
            "format": st.column_config.TextColumn("format", width=72),
            "paragraphs": st.column_config.NumberColumn("paragraphs", width=78),
        },
    )


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
            "summary": _upload_summary(report),
            "added": (report.added + report.updated) if report else [],
            "warnings": report.warnings if report else [],
        }
    bar.progress(1.0, text="Done")
    state.reload_engine()
    engine = state.get_engine()
    if engine is not None and st.session_state["library_result"].get("added"):
        counts = {d: len(engine.index.paragraphs(d)) for d in st.session_state["library_result"]["added"]}
        st.session_state["library_result"]["added"] = [
            f"{d} ({n} paragraph{'s' if n != 1 else ''})" for d, n in counts.items()
        ]
    st.session_state["upload_round"] = n + 1  # a fresh, empty uploader
    st.rerun()


def _upload_summary(report) -> str:
    """What an upload did, in a reader's words: what can be asked about now, and how long it took. (The
    ingest's own summary counts embedded passages and sentences, and "0 sentences embedded" reads as a
    failure when only the sentence vectors were already there.)"""
    if report is None:
        return "Nothing was added."
    if not (report.added or report.updated):
        return "Nothing changed: the library already holds these files as they are."
    return f"Ready to ask about on the Chat page; it took {report.seconds:.1f} s."


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
            f"Added or updated: {render.md_escape(', '.join(result['added']))}. {render.md_escape(result['summary'])}",
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
