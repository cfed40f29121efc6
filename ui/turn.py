"""One turn of the conversation as the chat page draws it: a question, or an answer with numbered citations.

An answer reads top down: the lead, at most `SHOWN` quoted sentences (the rest under "More from the
documents"), where the sources disagree, then the numbered sources. Every citation is a small number
([1], [2]) that opens the side panel (`ui.panel`); the number is the source's place in the list under the
answer, and hovering it shows the quoted sentence. Retrieval scores and timings are under "Details",
closed by default. An extractive answer is drawn whole, as soon as it is ready: it is not typed out.
This module draws nothing when imported.
"""

from __future__ import annotations

import streamlit as st

from app.transcript import MISSING, OK, Turn, answer_status
from rag.documents import Answer, Citation, Hit
from rag.present import view
from ui import panel, render

SHOWN = 3  # quoted sentences shown under the lead; the rest wait under "More from the documents"
SUPPORT_COLOURS = {"supported": "green", "partial": "orange", "unsupported": "red"}
# A sentence keeps its numbers on its own line (the text wraps, they do not), and a source reads left to right.
CSS = """<style>
[class*="st-key-claim-"], [class*="st-key-lead-"] { flex-wrap: nowrap !important; }
[class*="st-key-claim-"] > div, [class*="st-key-lead-"] > div { min-width: 0; }
[class*="st-key-claim-"] [class*="st-key-chip-"], [class*="st-key-lead-"] [class*="st-key-leadchip-"] { flex-shrink: 0; }
[class*="st-key-src-"] button { justify-content: flex-start; text-align: left; min-height: 1.8rem; padding: 0; }
[class*="st-key-src-"] button p { text-align: left; }
</style>"""


def draw_turn(turn: Turn, i: int, index) -> None:
    if isinstance(turn, str):
        with st.chat_message("user"):
            st.markdown(render.md_escape(turn))
        return
    v = view(turn)
    statuses = answer_status(turn, index)
    numbers = {c.label: n for n, c in enumerate(v.sources, 1)}
    with st.chat_message("assistant"):
        if v.searched_as:
            st.caption(f"Searched as: {render.md_escape(v.searched_as)}")
        if v.lead is not None:
            with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"lead-{i}"):
                st.markdown(render.lead_markdown(v.lead), width="content")
                _chip(v.lead.citation, numbers, statuses, f"leadchip-{i}")
        for j, claim in enumerate(v.claims[:SHOWN]):
            _claim(claim, i, j, numbers, statuses)
        if len(v.claims) > SHOWN:
            with st.expander(f"More from the documents ({len(v.claims) - SHOWN})", expanded=False):
                for j, claim in enumerate(v.claims[SHOWN:], SHOWN):
                    _claim(claim, i, j, numbers, statuses)
        _disagreements(turn, i, numbers, statuses)
        if v.abstained:
            if v.others:
                st.caption("The closest paragraphs, in case one of them helps:")
                st.html(render.hits_html(v.others, turn.documents, scores=False))
                _open_buttons(v.others, turn, statuses, i, "near")
        else:
            _sources(v.sources, statuses, i)
            if v.others:
                with st.expander(f"Also relevant ({len(v.others)})", expanded=False):
                    st.html(render.hits_html(v.others, turn.documents, scores=False))
                    _open_buttons(v.others, turn, statuses, i, "rel")
        for note in v.notes:
            st.caption(render.md_escape(note))
        if turn.retrieved or turn.timings_ms:
            with st.expander("Details", expanded=False, icon=":material/tune:"):
                st.html(render.details_html(turn))
        st.caption(render.md_escape(v.caption))


def _claim(claim, i: int, j: int, numbers: dict[str, int], statuses: dict[str, str]) -> None:
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"claim-{i}-{j}"):
        st.markdown(render.md_escape(claim.text), width="stretch")  # its numbers beside it, not wrapped under
        for c in claim.citations:
            _chip(c, numbers, statuses, f"chip-{i}-{j}-{c.label}")
        if claim.badge:
            st.badge(claim.badge, color=SUPPORT_COLOURS.get(claim.badge, "gray"))


def _disagreements(answer: Answer, i: int, numbers: dict[str, int], statuses: dict[str, str]) -> None:
    """ "Sources disagree": the measure and period, then each value with its own numbered citation."""
    for k, d in enumerate(answer.disagreements):
        with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"disagree-{i}-{k}"):
            st.badge("Sources disagree", icon=":material/compare_arrows:", color="orange")
            period = f" \\({render.md_escape(d.period)}\\)" if d.period else ""
            st.markdown(f"on {render.md_escape(d.measure)}{period}:", width="content")
            for m, value in enumerate(d.values):
                sep = ";" if m < len(d.values) - 1 else ""
                st.markdown(f"**{render.md_escape(value.value)}**", width="content")
                _chip(value.citation, numbers, statuses, f"dchip-{i}-{k}-{m}")
                if sep:
                    st.markdown(sep, width="content")


def _sources(sources: tuple[Citation, ...], statuses: dict[str, str], i: int) -> None:
    """The numbered sources under an answer, each a button that opens it in the panel."""
    st.caption("Sources")
    for n, c in enumerate(sources, 1):
        status = statuses.get(c.label, MISSING)
        extra = render.where(c.page, c.source_paras)
        flag = {"changed": " (document changed since)", "missing": " (document removed since)"}.get(status, "")
        label = f"[{n}] {c.title} · {render.chip_label(c.label)}{', ' + extra if extra else ''}{flag}"
        st.button(
            render.md_escape(label),
            key=f"src-{i}-{n}",
            type="tertiary",
            icon=":material/description:",
            help=render.md_escape(render.preview(c.quote or c.text)),
            on_click=panel.open_citation,
            args=(c, status),
        )


def _open_buttons(hits: tuple[Hit, ...], answer: Answer, statuses: dict[str, str], i: int, kind: str) -> None:
    with st.container(horizontal=True, gap="small"):
        for h in hits:
            p = h.paragraph
            ref = answer.documents.get(p.doc_id)
            cite = Citation(p.doc_id, p.para, ref.title if ref else "", "", p.text, p.page, p.source_paras)
            st.button(
                render.chip_label(p.label),
                key=f"{kind}-{i}-{p.label}",
                type="secondary",
                icon=":material/article:",
                help=render.md_escape(render.preview(p.text)),
                on_click=panel.open_citation,
                args=(cite, statuses.get(p.label, MISSING)),
            )


def _chip(cite: Citation, numbers: dict[str, int], statuses: dict[str, str], key: str) -> None:
    """A numbered citation: hover shows the quoted sentence, a click opens the panel."""
    status = statuses.get(cite.label, MISSING)
    label = f"\\[{numbers.get(cite.label, '?')}\\]"
    if status == OK:
        tip = render.md_escape(f"{render.preview(cite.quote or cite.text)} ({render.chip_label(cite.label)})")
    else:
        label += " (changed)" if status != MISSING else " (removed)"
        tip = "This document has changed since the answer was given; click to see the text as it was quoted."
    st.button(
        label, key=key, help=tip, type="tertiary", on_click=panel.open_citation, args=(cite, status), width="content"
    )
