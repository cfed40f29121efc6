"""Length caps on what a visitor sends, shared by the chat UI and the HTTP API (`rag serve`).

The cap on a question is the API's: the UI refuses a longer one with a message, as the API refuses it
with a 422. Earlier turns sent for rewriting a follow-up are capped too (`cap_history`): otherwise a
long earlier question becomes the standalone question, around the cap.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_QUESTION_CHARS = 2000  # one question, typed in the chat or sent to POST /ask
MAX_HISTORY_TURNS = 50  # earlier turns sent with a question
MAX_HISTORY_TURN_CHARS = MAX_QUESTION_CHARS  # each of them; the rewriter needs the gist, not a whole answer


def cap_history(turns: Sequence[dict]) -> list[dict]:
    """The most recent `MAX_HISTORY_TURNS` turns, each cut to `MAX_HISTORY_TURN_CHARS` characters.

    >>> capped = cap_history([{"role": "user", "content": "x" * 5000}] * 60)
    >>> len(capped), len(capped[-1]["content"])
    (50, 2000)
    """
    return [{**t, "content": str(t.get("content", ""))[:MAX_HISTORY_TURN_CHARS]} for t in turns[-MAX_HISTORY_TURNS:]]


def question_too_long(question: str) -> str | None:
    """The message for a question over the cap, or None when it is within it."""
    if len(question) <= MAX_QUESTION_CHARS:
        return None
    return (f"This question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask it in fewer words, or split it into several questions.")
