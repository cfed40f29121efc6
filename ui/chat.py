"""The chat page: ask, read a cited answer, check any citation in one click.

The conversation lives in `st.session_state.messages` as typed turns (a question string, then
its `Answer`), so answers and their citations survive reruns; it is saved under the conversation
id in the URL (`app.transcript`), so it survives a page reload too. Answering is `Engine.stream`
in the library; what to show is `rag.present.view`; this page only draws.

Conversations belong to the signed-in user: they are saved in that user's folder
(`app.transcript.user_folder`) and listed in the sidebar, where the open one can be renamed or
deleted. A URL carrying the id of a conversation another user holds is refused (and logged): the
page starts a new conversation instead and says why.

Two tabs on one conversation: each save is committed on top of the revision this session read; when
another tab saved in between (`ConversationConflict`), the page reloads the newer turns, puts its own
new turns after them, and says so, so neither tab's turns are lost. Every string a visitor or a
document can influence is escaped before Streamlit renders it (`ui.render`).

A question over the API's cap (`app.limits.QUESTION_MAX_CHARS`) is refused with a message, and the
earlier turns sent for rewriting a follow-up are capped (`app.limits.fit_history`).
"""

from __future__ import annotations

import time

import streamlit as st

from app import audit
from app.auth import Principal
from app.limits import fit_history, question_too_long
from app.transcript import (
    MISSING,
    OK,
    Turn,
    answer_status,
    commit_conversation,
    conversation_path,
    delete_conversation,
    held_elsewhere,
    history,
    list_conversations,
    neighbours,
    new_conversation_id,
    read_conversation,
    rename_conversation,
)
from rag.documents import Answer, Citation, Hit
from rag.errors import ConversationConflict, RagError
from rag.present import conversation_markdown, view
from ui import render, state

READER_PAGE = "reader.py"
SAVE_TRIES = 3  # another tab would have to save between our reload and our save this many times in a row
MERGED_NOTE = (
    "Another tab added to this conversation while you were asking; its turns are shown before yours, "
    "and nothing was lost."
)
NOT_YOURS_NOTE = (
    "That conversation belongs to another user, so it was not opened; this is a new conversation of your own."
)
NOT_CLEARED_NOTE = (
    "Another tab added to this conversation, so it was reloaded rather than cleared; "
    "clear it again if you still want to."
)
WORD_DELAY_S = 0.012  # the typewriter pace of an answer that arrives whole
SUPPORT_COLOURS = {"supported": "green", "partial": "orange", "unsupported": "red"}


def main() -> None:
    state.keep_settings()
    principal = state.signed_in()
    folder = state.conversations_dir(principal)
    settings = state.sidebar_settings(principal)
    turns, conversation_id = _conversation(principal, folder)
    with st.sidebar:
        if st.button("Clear conversation", disabled=not turns, key="clear"):
            if _save(folder, conversation_id, [], clearing=True):
                turns.clear()
            st.rerun()

    st.title("Ask the documents")
    refused = st.session_state.pop("conversation_refused", None)
    if refused:
        st.error(refused, icon=":material/block:")
    note = st.session_state.pop("conversation_note", None)
    if note:
        st.info(note, icon=":material/sync:")
    engine = state.get_engine()
    index = engine.index if engine else None
    if not turns:
        st.caption("Every sentence of an answer is quoted from a paragraph. Click its chip to check it.")

    for i, turn in enumerate(turns):
        draw_turn(turn, i, index)

    question = st.chat_input("Ask a question about the documents", disabled=engine is None)
    # Not max_chars: Streamlit would cut a longer question silently, and answer another question than was asked.
    too_long = question_too_long(question) if question else None
    if too_long:
        st.error(too_long, icon=":material/block:")
    elif question and question.strip() and engine is not None:
        turns.append(question)
        draw_turn(question, len(turns) - 1, index)
        answerer = state.get_answerer(engine, settings)
        earlier = fit_history(history(turns[:-1]))  # a long earlier turn would become the standalone question
        if answerer.chat_model is not None:
            # Tokens as the LLM writes them; then the verified answer, with badges, replaces the draft.
            draft = st.empty()
            with draft.container(), st.chat_message("assistant"):
                with st.spinner("Searching…"):
                    stream = engine.stream(
                        question, history=earlier, top_k=settings.top_k, mode=settings.mode, answerer=answerer
                    )
                st.write_stream(render.md_escape_token(token) for token in stream)
            answer = stream.result()
            draft.empty()
            paced = False
        else:
            with st.spinner("Searching…"):
                answer = engine.ask(
                    question, history=earlier, top_k=settings.top_k, mode=settings.mode, answerer=answerer
                )
            paced = True
        turns.append(answer)
        if not _save(folder, conversation_id, turns, new=2):
            st.rerun()  # merged with another tab's turns: draw them in their order, with the note
        draw_turn(answer, len(turns) - 1, index, paced=paced)
    with st.sidebar:  # drawn last, so it holds the answer just given
        st.download_button(
            "Download conversation (Markdown)",
            conversation_markdown(turns),
            file_name="paracite-chat.md",
            mime="text/markdown",
            on_click="ignore",
            disabled=not turns,
            icon=":material/download:",
            key="download",
        )
        _conversations_sidebar(folder, conversation_id, bool(turns))


def _conversation(principal: Principal, folder) -> tuple[list[Turn], str]:
    """This chat's turns and id. The id rides in the URL (`?c=...`) and the turns are saved under
    it after every answer, so a page reload, which starts a new Streamlit session, finds them again.
    An id another user's folder holds is refused and logged, and a new conversation starts."""
    cid = st.query_params.get("c") or st.session_state.get("conversation_id") or new_conversation_id()
    try:
        conversation_path(folder, cid)
    except RagError:
        cid = new_conversation_id()  # a hand-edited URL: start afresh rather than fail
    if st.session_state.get("conversation_id") != cid and held_elsewhere(state.conversations_root(), folder, cid):
        audit.record(
            state.audit_path(),
            principal,
            "open conversation",
            outcome=audit.REFUSED,
            detail=f"conversation {cid} belongs to another user",
        )
        st.session_state.conversation_refused = NOT_YOURS_NOTE
        cid = new_conversation_id()
    if st.session_state.get("conversation_id") != cid:
        saved = read_conversation(folder, cid)
        st.session_state.messages = saved.turns
        st.session_state.conversation_revision = saved.revision
        st.session_state.conversation_id = cid
    if st.query_params.get("c") != cid:
        st.query_params["c"] = cid
    return st.session_state.messages, cid


def _conversations_sidebar(folder, conversation_id: str, has_turns: bool) -> None:
    """The user's own conversations, newest first; the open one can be renamed or deleted."""
    st.subheader("Your conversations")
    if st.button("New conversation", icon=":material/add_comment:", key="new-conversation", disabled=not has_turns):
        st.query_params["c"] = new_conversation_id()
        st.rerun()
    saved = list_conversations(folder)
    for c in saved:
        is_open = c.conversation_id == conversation_id
        st.button(
            render.md_escape(c.title),
            key=f"open-{c.conversation_id}",
            type="tertiary",
            disabled=is_open,
            icon=":material/chat_bubble:" if is_open else ":material/chat_bubble_outline:",
            on_click=_open_conversation,
            args=(c.conversation_id,),
        )
    if not any(c.conversation_id == conversation_id for c in saved):
        return
    with st.expander("Rename or delete this conversation"):
        title = st.text_input(
            "Title", key=f"title-{conversation_id}", max_chars=80, placeholder="Blank: its first question"
        )
        if st.button("Rename", key="rename-conversation"):
            try:
                rename_conversation(folder, conversation_id, title)
            except RagError as e:
                state.show_error(e)
            else:
                st.rerun()
        if st.button("Delete conversation", key="delete-conversation", icon=":material/delete:"):
            delete_conversation(folder, conversation_id)
            st.session_state.messages = []
            st.query_params["c"] = new_conversation_id()
            st.rerun()


def _open_conversation(conversation_id: str) -> None:
    st.query_params["c"] = conversation_id  # the next run loads it (`_conversation`), as a URL would


def _save(folder, conversation_id: str, turns: list[Turn], new: int = 0, clearing: bool = False) -> bool:
    """Commit `turns` on top of the revision this session read. True when saved as they are; False when
    another tab had saved first: then the session's turns become the saved ones plus its `new` last ones
    (or, when `clearing`, just the saved ones), and a note for the next run says so."""
    mine = list(turns[len(turns) - new :]) if new else []
    merged = False
    for _ in range(SAVE_TRIES):
        try:
            st.session_state.conversation_revision = commit_conversation(
                folder, conversation_id, turns, st.session_state.get("conversation_revision", 0)
            )
            return not merged
        except ConversationConflict:
            saved = read_conversation(folder, conversation_id)
            st.session_state.conversation_revision = saved.revision
            st.session_state.messages[:] = saved.turns + ([] if clearing else mine)
            st.session_state.conversation_note = NOT_CLEARED_NOTE if clearing else MERGED_NOTE
            if clearing:
                return False  # the newer turns are already on disk; nothing of ours to add
            turns, merged = st.session_state.messages, True
        except RagError as e:  # a bad limit setting, say: the chat goes on, unsaved, and says why
            state.show_error(e)
            return not merged
    return False


def draw_turn(turn: Turn, i: int, index, paced: bool = False) -> None:
    if isinstance(turn, str):
        with st.chat_message("user"):
            st.markdown(render.md_escape(turn))
        return
    v = view(turn)
    statuses = answer_status(turn, index)
    with st.chat_message("assistant"):
        if v.searched_as:
            st.caption(f"Searched as: {render.md_escape(v.searched_as)}")
        if v.lead is not None:
            with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"lead-{i}"):
                st.markdown(render.lead_markdown(v.lead), width="content")
                _chip(v.lead.citation, turn, statuses, f"leadchip-{i}")
        for j, claim in enumerate(v.claims):
            with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"claim-{i}-{j}"):
                if paced:
                    st.write_stream(_paced(render.stream_words(claim.text)))
                else:
                    st.markdown(render.md_escape(claim.text), width="content")
                for c in claim.citations:
                    _chip(c, turn, statuses, f"chip-{i}-{j}-{c.label}")
                if claim.badge:
                    st.badge(claim.badge, color=SUPPORT_COLOURS.get(claim.badge, "gray"))
        for line in v.disagreements:
            st.badge("Sources disagree", icon=":material/compare_arrows:", color="orange")
            st.caption(render.md_escape(line))
        if v.abstained:
            if v.others:
                st.caption("The closest paragraphs, in case one of them helps:")
                st.html(render.hits_html(v.others, turn.documents))
                _open_buttons(v.others, turn, statuses, i, "near")
        else:
            st.caption("Sources")
            st.html(render.sources_html(v.sources, statuses))
            if v.others:
                with st.expander(f"Also relevant ({len(v.others)})", expanded=False):
                    st.html(render.hits_html(v.others, turn.documents))
                    _open_buttons(v.others, turn, statuses, i, "rel")
        for note in v.notes:
            st.caption(render.md_escape(note))
        st.caption(render.md_escape(v.caption))


def _open_buttons(hits: tuple[Hit, ...], answer: Answer, statuses: dict[str, str], i: int, kind: str) -> None:
    with st.container(horizontal=True, gap="small"):
        for h in hits:
            p = h.paragraph
            if st.button(
                render.chip_label(p.label),
                key=f"{kind}-{i}-{p.label}",
                type="secondary",
                icon=":material/article:",
                help=render.md_escape(render.preview(p.text)),
            ):
                cite = Citation(p.doc_id, p.para, _title(answer, p.doc_id), "", p.text, p.page, p.source_paras)
                citation_dialog(cite, statuses.get(p.label, MISSING))


def _chip(cite: Citation, answer: Answer, statuses: dict[str, str], key: str) -> None:
    status = statuses.get(cite.label, MISSING)
    label = render.chip_label(cite.label)
    if status == OK:
        tip = render.md_escape(render.preview(cite.text))
    else:
        label += " (changed)" if status != MISSING else " (removed)"
        tip = "This document has changed since the answer was given; click to see the text as it was quoted."
    if st.button(label, key=key, help=tip, type="secondary", icon=":material/format_quote:"):
        citation_dialog(cite, status)


def _title(answer: Answer, doc_id: str) -> str:
    ref = answer.documents.get(doc_id)
    return ref.title if ref else ""


def _index():
    engine = state.get_engine()
    return engine.index if engine else None


@st.dialog("Citation", width="large")
def citation_dialog(cite: Citation, status: str) -> None:
    index = _index()
    before = after = table = None
    if status == OK and index is not None:
        before, after = neighbours(index, cite.doc_id, cite.para)
        table = index.paragraph(cite.doc_id, cite.para).table if index.has_paragraph(cite.doc_id, cite.para) else None
    st.html(render.panel_html(cite, status, before, after, table))
    if status != MISSING:
        if st.button("Open in document", icon=":material/menu_book:", key="open-in-doc"):
            st.switch_page(READER_PAGE, query_params={"doc": cite.doc_id, "para": str(cite.para)})


def _paced(pieces):
    for piece in pieces:
        yield piece
        time.sleep(WORD_DELAY_S)


main()
