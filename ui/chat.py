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

from datetime import datetime

import streamlit as st

from app import audit
from app.auth import Principal
from app.limits import fit_history, question_too_long
from app.suggestions import suggest
from app.transcript import (
    Turn,
    commit_conversation,
    conversation_path,
    delete_conversation,
    held_elsewhere,
    history,
    list_conversations,
    new_conversation_id,
    read_conversation,
    rename_conversation,
)
from rag.errors import ConversationConflict, RagError
from ui import export, panel, render, state
from ui.turn import CSS as TURN_CSS
from ui.turn import draw_turn

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
SUGGESTED = "suggested_question"  # a suggestion clicked on the empty chat, asked on this run


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

    refused = st.session_state.pop("conversation_refused", None)
    note = st.session_state.pop("conversation_note", None)
    engine = state.get_engine()
    index = engine.index if engine else None
    typed = st.chat_input("Ask a question about the documents", disabled=engine is None)  # pinned to the bottom
    question = typed or st.session_state.pop(SUGGESTED, None)
    # While a citation is open, the conversation and its panel sit side by side.
    chat, side = st.columns([1, 1.1], gap="medium") if panel.opened() else (st.container(), None)
    with chat:
        st.html(TURN_CSS)
        st.title("Ask the documents")
        if refused:
            st.error(refused, icon=":material/block:")
        if note:
            st.info(note, icon=":material/sync:")
        if not turns and not question and engine is not None:
            _welcome(engine)
        for i, turn in enumerate(turns):
            draw_turn(turn, i, index)

    # Not max_chars: Streamlit would cut a longer question silently, and answer another question than was asked.
    too_long = question_too_long(question) if question else None
    if too_long:
        with chat:
            st.error(too_long, icon=":material/block:")
    elif question and question.strip() and engine is not None:
        with chat:
            _answer(question, turns, engine, settings, folder, conversation_id, index)
    if side is not None:
        with side:
            panel.draw(index)
    with st.sidebar:  # drawn last, so it holds the answer just given
        saved = list_conversations(folder)
        saved_title = next((c.title for c in saved if c.conversation_id == conversation_id), None)
        title = export.title_of(turns, saved_title)
        now = datetime.now()
        st.download_button(
            "Download conversation (Markdown)",
            export.conversation_export(turns, title, _settings_line(settings), now) if turns else "",
            file_name=export.file_name(title, now),
            mime="text/markdown",
            on_click="ignore",
            disabled=not turns,
            icon=":material/download:",
            key="download",
        )
        _conversations_sidebar(folder, conversation_id, bool(turns), saved)


def _answer(question: str, turns: list[Turn], engine, settings, folder, conversation_id: str, index) -> None:
    """Ask, draw the answer, save the conversation. An LLM's tokens are drawn as they arrive; an extractive
    answer is drawn whole the moment it is ready (no typing effect), and its caption gives the real time."""
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
    else:
        with st.spinner("Searching…"):
            answer = engine.ask(question, history=earlier, top_k=settings.top_k, mode=settings.mode, answerer=answerer)
    turns.append(answer)
    if not _save(folder, conversation_id, turns, new=2):
        st.rerun()  # merged with another tab's turns: draw them in their order, with the note
    draw_turn(answer, len(turns) - 1, index)


def _settings_line(settings: state.Settings) -> dict[str, object]:
    return {"top-k": settings.top_k, "retrieval": settings.mode, "answerer": settings.answerer}


@st.cache_resource(show_spinner="Choosing questions the documents answer…", max_entries=4)
def _suggestions(_engine, generation: str) -> list[str]:
    # Once per index generation, shared by every session: each suggestion is answered once, here.
    return [s.question for s in suggest(_engine)]


def _welcome(engine) -> None:
    """An empty chat: what the library holds, and questions it answers (each already answered, with a citation)."""
    docs = engine.index.documents
    with st.container(key="welcome"):
        st.markdown(f"**{len(docs)} document{'s' if len(docs) != 1 else ''} in the library**")
        st.markdown("\n".join(f"- {render.md_escape(d.title)}" for d in docs))
        questions = _suggestions(engine, engine.index.generation)
        if questions:
            st.caption(
                "Try one of these; every sentence of an answer is quoted and numbered, click a number to check it."
            )
            for k, q in enumerate(questions):
                st.button(
                    render.md_escape(q),
                    key=f"suggest-{k}",
                    icon=":material/lightbulb:",
                    on_click=_ask_suggestion,
                    args=(q,),
                )
        else:
            st.caption("Every sentence of an answer is quoted from a paragraph. Click its number to check it.")


def _ask_suggestion(question: str) -> None:
    st.session_state[SUGGESTED] = question


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


def _conversations_sidebar(folder, conversation_id: str, has_turns: bool, saved) -> None:
    """The user's own conversations, newest first, each with the date of its last answer; the open one is
    marked (and can be renamed or deleted)."""
    st.subheader("Your conversations")
    if st.button("New conversation", icon=":material/add_comment:", key="new-conversation", disabled=not has_turns):
        st.query_params["c"] = new_conversation_id()
        st.rerun()
    for c in saved:
        is_open = c.conversation_id == conversation_id
        when = _when(c.updated)
        st.button(
            f"{render.md_escape(c.title)}  \n:small[:gray[{when}]]",
            key=f"open-{c.conversation_id}",
            type="secondary" if is_open else "tertiary",
            icon=":material/chat_bubble:" if is_open else ":material/chat_bubble_outline:",
            help="Open now" if is_open else f"Last answer {when}",
            on_click=_open_conversation,
            args=(c.conversation_id,),
            width="stretch",
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


def _when(timestamp: float) -> str:
    """A conversation's date as the list shows it: the time today, else the day."""
    at = datetime.fromtimestamp(timestamp)
    return at.strftime("today %H:%M") if at.date() == datetime.now().date() else at.strftime("%d %b %Y")


def _open_conversation(conversation_id: str) -> None:
    panel.close()
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


main()
