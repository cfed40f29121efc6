"""Turn a follow-up question into a standalone one, from the recent chat history: a `Query` record.

A `Query` carries the question as typed, the question after rewriting, the words the carry-over rule
guessed from the previous question (apart, so that no later stage has to parse them back out of a
string), and the method. `Query.standalone` is what retrieval sees; `Query.asked` is the rewritten
question without the guessed words, what the answerer holds the documents to.

Two methods:
- `llm`: the configured chat model rewrites it (prompt `rag.prompts.REWRITE_SYSTEM`); a reply that
  is empty or rambles falls back to the rules.
- `rules` (the non-LLM default, for the extractive answerer), applied to the previous user
  question, itself resolved first so chains of follow-ups work:
  1. slot: "And what about Korea?", "How about 2024?", "And for Tesla?": the new item replaces the
     item of the same kind in the previous question (a year for a year, a country for a country or
     its adjective, else the first name). With no such slot, it is appended to the previous question.
  2. carry-over: a follow-up with a pronoun ("When did it open?") or a short one naming nothing
     ("Which plant was first?") carries the previous question's content words (`Query.carried`).
  3. otherwise the question is already standalone and is kept as typed.

Not handled by the rules: references to the assistant's answer ("the second one"), negation
("not Japan, Korea"), a follow-up that switches two slots at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.names import country
from rag.prompts import rewrite_messages
from rag.terms import QUESTION_WORDS, content_terms

HISTORY_TURNS = 6  # the LLM sees at most this many recent turns

_LEAD = re.compile(
    r"^\s*(?:and\s+)?(?:(?:what|how)\s+(?:about|of)|as\s+for|(?:and\s+)?the\s+same\s+for|same\s+for)\s+"
    r"|^\s*and\s+(?:for\s+|in\s+|with\s+)?",
    re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|there|he|she|his|her|"
    r"the same|the latter|the former|then)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_NAME = re.compile(r"\b[A-Z][\w&.-]*(?:['’]s)?(?:\s+[A-Z][\w&.-]*(?:['’]s)?)*")


@dataclass(frozen=True)
class Query:
    """A question on its way to retrieval and the answerer.

    >>> Query("When did it open?", "When did it open?", ("Hyundai", "plant"), "carry-over").standalone
    'When did it open? (about: Hyundai plant)'
    >>> Query.plain("Who?").asked
    'Who?'
    """

    typed: str  # as the user typed it
    asked: str  # after rewriting, without the carried words: what the user's own words ask
    carried: tuple[str, ...] = ()  # the previous question's content words, a guess at what "it" means
    method: str = "unchanged"  # unchanged, slot, carry-over, llm

    @classmethod
    def plain(cls, question: str) -> Query:
        """A question with no history: nothing rewritten."""
        return cls(question, question)

    @property
    def standalone(self) -> str:
        """What retrieval and the answerer's ranking see: the question with the carried words after it."""
        return f"{self.asked} (about: {' '.join(self.carried)})" if self.carried else self.asked


def rewrite_followup(question: str, history: Sequence[dict] | None, chat_model=None) -> Query:
    """The standalone form of `question` given earlier turns `[{"role": "user"|"assistant", "content": str}]`."""
    history = [t for t in (history or []) if t.get("content")]
    if not any(t.get("role") == "user" for t in history):
        return Query.plain(question)
    if chat_model is not None:
        rewritten = _llm_rewrite(question, history[-HISTORY_TURNS:], chat_model)
        if rewritten:
            return Query(question, rewritten, method="llm" if rewritten != question else "unchanged")
    return rule_rewrite(question, [t["content"] for t in history if t.get("role") == "user"])


def rule_rewrite(question: str, previous_questions: Sequence[str]) -> Query:
    """The non-LLM method on the user's earlier questions (oldest first).

    >>> rule_rewrite("And what about Korea?", ["How many vehicles did Japanese makers build overseas in 2023?"]).standalone
    'How many vehicles did Korean makers build overseas in 2023?'
    >>> rule_rewrite("When did it open?", ["Where is Hyundai's first US plant?"]).standalone
    'When did it open? (about: Hyundai first US plant)'
    """
    if not previous_questions:
        return Query.plain(question)
    # Resolve the chain oldest first (each follow-up against the one before), over recent turns only.
    recent = list(previous_questions[-HISTORY_TURNS:])
    prev = recent[0]
    for earlier in recent[1:]:
        prev = _rewrite_one(earlier, prev).standalone
    return _rewrite_one(question, prev)


def _rewrite_one(question: str, prev: str) -> Query:
    """`question` against one standalone previous question."""
    q = " ".join(question.split())
    lead = _LEAD.match(q)
    item = q[lead.end() :].rstrip(" ?.!") if lead else ""
    if lead and item and len(item.split()) <= 5 and not _PRONOUN.search(item):
        prep = re.search(r"\b(for|in|with)\s*$", lead.group(0), re.IGNORECASE)
        return Query(question, _fill_slot(prev, item, prep.group(1).lower() if prep else "and"), method="slot")
    if _PRONOUN.search(q) or (len(q.split()) <= 6 and not _names(q) and not _YEAR.search(q)):
        carried = _carried_words(prev, q)
        if carried:
            return Query(question, q, tuple(carried), "carry-over")
    return Query.plain(question)


def _fill_slot(prev: str, item: str, joiner: str = "and") -> str:
    body = prev.rstrip(" ?.!")
    if _YEAR.fullmatch(item) and _YEAR.search(body):
        return _YEAR.sub(item, body, count=1) + "?"
    names = _names(body)
    place = country(item)
    if place:
        for name in names:
            bare = re.sub(r"['’]s$", "", name)
            other = country(bare)
            if other and bare.lower() != other.demonym.lower():  # a country's name: replaced by the new one
                if re.search(rf"\bthe {re.escape(bare)}", body):
                    bare = f"the {bare}"
                return body.replace(bare, item, 1) + "?"
            if other:  # its adjective ("Japanese makers"): replaced by the new one's ("Korean makers")
                return body.replace(bare, place.demonym or item, 1) + "?"
    if item[:1].isupper() and names:
        bare = re.sub(r"['’]s$", "", names[0])
        return body.replace(bare, item, 1) + "?"
    return f"{body}, {joiner} {item}?"


def _names(text: str) -> list[str]:
    """Capitalised words and runs of them, without the question words that start a sentence."""
    out = []
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        while words and words[0].lower() in QUESTION_WORDS:
            words = words[1:]
        if words:
            out.append(" ".join(words))
    return out


def _carried_words(prev: str, question: str) -> list[str]:
    have = content_terms(question)
    words = []
    for w in re.findall(r"[\w&.-]+(?:['’]s)?", prev):
        w = re.sub(r"['’]s$", "", w).strip(".")
        terms = content_terms(w)
        if (
            terms
            and not terms & have
            and w.lower() not in QUESTION_WORDS
            and not _PRONOUN.fullmatch(w)
            and w not in words
        ):
            words.append(w)
    return words


def _llm_rewrite(question: str, history: Sequence[dict], chat_model) -> str:
    try:
        reply = str(chat_model.invoke(rewrite_messages(question, history)).content)
    except Exception:
        return ""  # an unreachable backend: the rules still give a usable question
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE).strip(" \"'`")
    if not line or len(line) > 3 * max(len(question), 60):
        return ""
    return line
