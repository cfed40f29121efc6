"""How long a question and its history may be: one set of numbers for the HTTP API and the chat UI.

A follow-up is rewritten from the earlier user turns (`rag.query`), so an earlier turn can become
the standalone question: without a cap on the history, a 20,000-character "earlier question" gets
around the cap on the question. The rewrite reads only the last few turns, so older ones cost
without helping; the UI sends the most recent turns that fit (`fit_history`), and the API refuses a
request over any limit, naming it (`history_problem`).

>>> history_problem([{"role": "user", "content": "x" * 2001}])
'history turn 1 (user) has 2,001 characters: an earlier question may have at most 2,000 (QUESTION_MAX_CHARS)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

QUESTION_MAX_CHARS = 2_000  # a question, and every earlier user turn (each was once a question)
HISTORY_MAX_TURNS = 50  # earlier turns, user and assistant together
HISTORY_TURN_MAX_CHARS = 8_000  # one earlier assistant turn (an answer's sentences)
HISTORY_MAX_CHARS = 32_000  # all earlier turns together


def turn_max_chars(role: str) -> int:
    """The cap on one earlier turn: a user turn was a question, so it has the question's cap."""
    return QUESTION_MAX_CHARS if role == "user" else HISTORY_TURN_MAX_CHARS


def history_problem(history: Sequence[Mapping[str, object]]) -> str | None:
    """What is over a limit in `history` (`[{"role", "content"}]`), in words naming the limit; None when it fits."""
    if len(history) > HISTORY_MAX_TURNS:
        return (
            f"history has {len(history):,} turns; at most {HISTORY_MAX_TURNS:,} are accepted "
            f"(HISTORY_MAX_TURNS): send the most recent ones"
        )
    total = 0
    for n, turn in enumerate(history, start=1):
        role, size = str(turn.get("role", "user")), len(str(turn.get("content", "")))
        cap = turn_max_chars(role)
        if size > cap:
            what, name = (
                ("an earlier question", "QUESTION_MAX_CHARS")
                if role == "user"
                else ("an earlier answer", "HISTORY_TURN_MAX_CHARS")
            )
            return f"history turn {n} ({role}) has {size:,} characters: {what} may have at most {cap:,} ({name})"
        total += size
    if total > HISTORY_MAX_CHARS:
        return (
            f"history has {total:,} characters in all; at most {HISTORY_MAX_CHARS:,} are accepted "
            f"(HISTORY_MAX_CHARS): send fewer or shorter turns"
        )
    return None


def fit_history(history: Sequence[Mapping[str, object]]) -> list[dict]:
    """The most recent turns of `history` that fit every limit, oldest first; a turn over its own cap is cut.

    >>> [t["content"] for t in fit_history([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])]
    ['a', 'b']
    """
    kept: list[dict] = []
    total = 0
    for turn in reversed(history[-HISTORY_MAX_TURNS:]):
        role = str(turn.get("role", "user"))
        content = str(turn.get("content", ""))[: turn_max_chars(role)]
        if total + len(content) > HISTORY_MAX_CHARS:
            break
        total += len(content)
        kept.append({**turn, "content": content})
    return kept[::-1]


def question_too_long(question: str) -> str | None:
    """The message for a question over the cap, or None when it is within it (the chat's wording of the API's 422)."""
    if len(question) <= QUESTION_MAX_CHARS:
        return None
    return (
        f"This question is {len(question):,} characters long; the limit is {QUESTION_MAX_CHARS:,}. "
        "Ask it in fewer words, or split it into several questions."
    )
