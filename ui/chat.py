"""The chat page: ask, read a cited answer, check any citation in one click.

Messages live in `st.session_state.messages` as plain dicts (see `rag.transcript`), so answers
and their citations survive reruns, and are saved under the conversation id in the URL, so they
survive a page reload too. Retrieval and answering happen in the library
(`Engine.ask`); this page only draws.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from rag.answer import NOT_FOUND
from rag.errors import RagError
from rag.transcript import (MISSING, OK, answer_record, citation_status, conversation_path, load_conversation,
                            neighbours, new_conversation_id, save_conversation, to_markdown)
from ui import render, state

READER_PAGE = "reader.py"
WORD_DELAY_S = 0.012  # the typewriter pace of a streamed answer
SUPPORT_COLOURS = {"supported": "green", "partial": "orange", "unsupported": "red"}


def main() -> None:
    state.keep_settings()
    settings = state.sidebar_settings()
    messages, conversation_id = _conversation()
    with st.sidebar:
        if st.button("Clear conversation", disabled=not messages, key="clear"):
            messages.clear()
            save_conversation(state.conversations_dir(), conversation_id, messages)
            st.rerun()

    st.title("Ask the documents")
    engine = state.get_engine()
    index = engine.index if engine else None
    if not messages:
        st.caption("Every sentence of an answer is quoted from a paragraph. Click its chip to check it.")

    for i, message in enumerate(messages):
        draw_message(message, i, index)

    question = st.chat_input("Ask a question about the documents", disabled=engine is None)
    if question and question.strip() and engine is not None:
        messages.append({"role": "user", "content": question})
        draw_message(messages[-1], len(messages) - 1, index)
        answerer = state.get_answerer(engine, settings)
        history = _history(messages[:-1])
        if hasattr(answerer, "stream_answer"):
            # Tokens as the LLM writes them; then the verified answer, with badges, replaces the draft.
            draft = st.empty()
            with draft.container(), st.chat_message("assistant"):
                with st.spinner("Searching…"):
                    stream = engine.stream(question, answerer, top_k=settings.top_k, mode=settings.mode,
                                           history=history)
                st.write_stream(render.md_escape_token(token) for token in stream)
            answer = stream.result()
            draft.empty()
            stream_final = False
        else:
            with st.spinner("Searching…"):
                answer = engine.ask(question, top_k=settings.top_k, mode=settings.mode, answerer=answerer,
                                    history=history)
            stream_final = True
        messages.append(answer_record(answer, engine.index))
        save_conversation(state.conversations_dir(), conversation_id, messages)
        draw_message(messages[-1], len(messages) - 1, index, stream=stream_final)
    with st.sidebar:  # drawn last, so it holds the answer just given
        st.download_button("Download conversation (Markdown)", to_markdown(messages), file_name="paracite-chat.md",
                           mime="text/markdown", on_click="ignore", disabled=not messages,
                           icon=":material/download:", key="download")


def _conversation() -> tuple[list[dict[str, Any]], str]:
    """This chat's messages and id. The id rides in the URL (`?c=...`) and the messages are saved under
    it after every answer, so a page reload, which starts a new Streamlit session, finds them again."""
    cid = st.query_params.get("c") or st.session_state.get("conversation_id") or new_conversation_id()
    try:
        conversation_path(state.conversations_dir(), cid)
    except RagError:
        cid = new_conversation_id()  # a hand-edited URL: start afresh rather than fail
    if st.session_state.get("conversation_id") != cid:
        st.session_state.messages = load_conversation(state.conversations_dir(), cid)
        st.session_state.conversation_id = cid
    if st.query_params.get("c") != cid:
        st.query_params["c"] = cid
    return st.session_state.messages, cid


def _history(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Earlier turns as `{"role", "content"}`, so a follow-up question can be rewritten before retrieval."""
    return [{"role": "user", "content": m["content"]} if m["role"] == "user" else
            {"role": "assistant", "content": " ".join(c["text"] for c in m["claims"])} for m in messages]


def draw_message(message: dict[str, Any], i: int, index, stream: bool = False) -> None:
    if message["role"] == "user":
        with st.chat_message("user"):
            st.markdown(render.md_escape(message["content"]))
        return
    with st.chat_message("assistant"):
        searched = message.get("standalone_question", "")
        if searched and searched != message.get("question"):
            st.caption(f"Searched as: {render.md_escape(searched)}")
        if message["abstained"]:
            _draw_abstention(message, i, index, stream)
        else:
            _draw_answer(message, i, index, stream)
        for note in message.get("notes", []):
            st.caption(render.md_escape(note))


def _draw_answer(message: dict[str, Any], i: int, index, stream: bool) -> None:
    cites = message["citations"]
    # Extractive sentences are quotes, supported by construction; generated ones carry their verification.
    verified = not message.get("answerer", "extractive").startswith("extractive")
    statuses = {key: citation_status(c, index) for key, c in cites.items()}
    for j, claim in enumerate(message["claims"]):
        with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"claim-{i}-{j}"):
            if stream:
                st.write_stream(_paced(render.stream_words(claim["text"])))
            else:
                st.markdown(render.md_escape(claim["text"]), width="content")
            for key in claim["cites"]:
                _chip(cites[key], statuses[key], f"chip-{i}-{j}-{key}")
            if verified:
                st.badge(claim["support"], color=SUPPORT_COLOURS.get(claim["support"], "gray"))
    st.caption("Sources")
    st.html(render.sources_html(cites, statuses))
    others = [h for h in message["retrieved"] if not h["cited"]]
    if others:
        with st.expander(f"Also relevant ({len(others)})", expanded=False):
            st.html(render.hits_html(others))
            _open_buttons(others, i, "rel")
    timings = message.get("timings_ms", {})
    if "total" in timings:
        st.caption(f"{message.get('answerer', '')} · answered in {timings['total'] / 1000:.2f} s")


def _draw_abstention(message: dict[str, Any], i: int, index, stream: bool) -> None:
    text = message["claims"][0]["text"] if message["claims"] else NOT_FOUND
    if stream:
        st.write_stream(_paced(render.stream_words(text)))
    else:
        st.markdown(render.md_escape(text))
    closest = message["retrieved"][:3]
    if closest:
        st.caption("The closest paragraphs, in case one of them helps:")
        st.html(render.hits_html(closest))
        _open_buttons(closest, i, "near")


def _open_buttons(hits: list[dict[str, Any]], i: int, kind: str) -> None:
    with st.container(horizontal=True, gap="small"):
        for h in hits:
            record = {**h, "quote": None}
            key = f"{kind}-{i}-{h['doc_id']}-{h['para']}"
            if st.button(render.chip_label(h["doc_id"], h["para"]), key=key, type="secondary", icon=":material/article:",
                         help=render.md_escape(render.preview(h["text"]))):
                citation_dialog(record, citation_status(record, _index()))


def _chip(cite: dict[str, Any], status: str, key: str) -> None:
    label = render.chip_label(cite["doc_id"], cite["para"])
    if status == OK:
        tip = render.md_escape(render.preview(cite["text"]))
    else:
        label += " (changed)" if status != MISSING else " (removed)"
        tip = "This document has changed since the answer was given; click to see the text as it was quoted."
    if st.button(label, key=key, help=tip, type="secondary", icon=":material/format_quote:"):
        citation_dialog(cite, status)


def _index():
    engine = state.get_engine()
    return engine.index if engine else None


@st.dialog("Citation", width="large")
def citation_dialog(cite: dict[str, Any], status: str) -> None:
    index = _index()
    before = after = None
    if status == OK and index is not None:
        before, after = neighbours(index, cite["doc_id"], cite["para"])
    st.html(render.panel_html(cite, status, before, after))
    if status != MISSING:
        if st.button("Open in document", icon=":material/menu_book:", key="open-in-doc"):
            st.switch_page(READER_PAGE, query_params={"doc": cite["doc_id"], "para": str(cite["para"])})


def _paced(pieces):
    for piece in pieces:
        yield piece
        time.sleep(WORD_DELAY_S)


main()
