"""The conversation as a Markdown file: its title, when and with which settings, and every answer's citations.

Built on `rag.present.to_markdown` (one answer, every string escaped); this adds what a reader of the
file needs and the answer alone does not carry: the date, the settings the answers were given with,
and the question each follow-up was searched as. The file is named from the conversation's title.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from app.transcript import Turn
from rag.present import md_text, to_markdown


def title_of(turns: Iterable[Turn], saved_title: str | None = None) -> str:
    """The conversation's title: the one it was saved under, else its first question.

    >>> title_of(["How many cars?", "..."]), title_of([], None), title_of(["Q"], "Exports")
    ('How many cars?', 'paracite conversation', 'Exports')
    """
    if saved_title:
        return saved_title
    first = next((t for t in turns if isinstance(t, str)), "")
    return " ".join(first.split())[:80] or "paracite conversation"


def file_name(title: str, when: datetime) -> str:
    """A file name from the title and the date, safe on every system.

    >>> file_name("How many vehicles did China export in 2023?", datetime(2026, 3, 20, 9, 5))
    'how-many-vehicles-did-china-export-in-2023-2026-03-20.md'
    >>> file_name("../../etc/passwd", datetime(2026, 3, 20))
    'etc-passwd-2026-03-20.md'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].rstrip("-") or "paracite-conversation"
    return f"{slug}-{when:%Y-%m-%d}.md"


def conversation_export(turns: Iterable[Turn], title: str, settings: dict[str, object], when: datetime) -> str:
    """The whole conversation as one Markdown document.

    >>> print(conversation_export(["Q?"], "Exports", {"top-k": 5, "answerer": "extractive"}, datetime(2026, 3, 20, 9, 5)))
    # Exports
    <BLANKLINE>
    _Exported 2026-03-20 09:05 · top-k 5 · answerer extractive_
    <BLANKLINE>
    ## Question
    <BLANKLINE>
    Q?
    <BLANKLINE>
    """
    shown = " · ".join(f"{md_text(k)} {md_text(v)}" for k, v in settings.items())
    out = [f"# {md_text(title)}", "", f"_Exported {when:%Y-%m-%d %H:%M}{' · ' + shown if shown else ''}_", ""]
    for turn in turns:
        if isinstance(turn, str):
            out += ["## Question", "", md_text(turn), ""]
            continue
        if turn.standalone_question and turn.standalone_question != turn.question:
            out += [f"_Searched as: {md_text(turn.standalone_question)}_", ""]
        out += [to_markdown(turn), ""]
    return "\n".join(out).rstrip() + "\n"
