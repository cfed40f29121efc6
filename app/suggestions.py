"""Suggested questions for an empty chat, drawn from the documents themselves and checked by answering them.

No list of questions is written for any corpus. Candidates come from what every document carries:
- a sentence that states a figure for a year ("China's vehicle exports reached 3.11 million in 2022")
  becomes "What were China's vehicle exports in 2022?" (its subject, the year);
- else a section heading becomes "What does the <title> say about <heading>?".
Each candidate is then asked of the engine's own answerer, and kept only when the answer is not a
refusal and cites the paragraph the candidate came from (so a suggestion is one the answerer has
answered, with a citation, from the right place). One suggestion per document first, in the library's
order, then more until `count`. It costs one answer per candidate tried (about 20-50 ms each,
extractive); callers cache the result per index generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bm25s.stopwords import STOPWORDS_EN

from rag.engine import Engine
from rag.sentences import split_sentences
from rag.terms import QUESTION_WORDS

COUNT = 4
PER_DOCUMENT = 2  # candidates tried per document, at most
_VERB = r"(?:reached|passed|hit|rose to|fell to|grew to|dropped to|was|were|totalled|totaled|stood at|exceeded|topped)"
_HEDGE = r"(?:a record |about |around |over |more than |nearly |almost |just over |just under |some |roughly )?"
_AMOUNT = r"[$€£¥]?\d[\d.,]*(?: ?(?:million|billion|trillion|%|per cent|percent))?"
FIGURE = re.compile(
    rf"^(?P<subject>[A-Z][\w'’ -]{{3,60}}?) (?P<verb>{_VERB}) {_HEDGE}{_AMOUNT}\b[^.;]*? in (?P<year>(?:19|20)\d\d)\b"
)
_NAMELESS = frozenset(STOPWORDS_EN) | QUESTION_WORDS | {"earlier", "later", "both", "each", "others", "another", "such"}
# Headings that name a part of a document, not a topic: no question is drawn from them.
_STRUCTURE = {"overview", "introduction", "summary", "digest", "commentary", "conclusion", "conclusions"}
_STRUCTURE |= {"background", "abstract", "contents", "notes", "appendix", "sources", "references"}
_PREPOSITION = re.compile(r" (?:by|of|in|for|from|to|at|on|with)\b")


@dataclass(frozen=True)
class Suggestion:
    question: str
    doc_id: str
    para: int  # the paragraph it was drawn from, which its answer cites


def _subject(subject: str, text: str) -> str | None:
    """The subject as it reads inside a question: its first word lowercased when the document also writes it
    lowercased (not a name or an acronym); None when it names nothing ("That", "Earlier rises") or is one word.

    >>> _subject("Global electric car sales", "in global terms")
    'global electric car sales'
    >>> _subject("China's vehicle exports", "exports of China's carmakers"), _subject("That year", "")
    ("China's vehicle exports", None)
    """
    first, _, rest = subject.partition(" ")
    if first.lower() in _NAMELESS or not rest:
        return None
    return _inline(subject, text)


def _inline(phrase: str, text: str) -> str:
    """`phrase` with its first word lowercased when it is a function word, or when `text` also writes it
    lowercased (so it is not a name)."""
    first, _, rest = phrase.partition(" ")
    if first.lower() in _NAMELESS or not first.isupper() and re.search(rf"\b{re.escape(first.lower())}\b", text):
        first = first.lower()
    return f"{first} {rest}".strip()


def _agree(verb: str, subject: str) -> str:
    """'was' or 'were' for the subject: the sentence's own when it has one, else by its head noun (the last
    word before a preposition), plural when it ends in s.

    >>> _agree("reached", "China's vehicle exports"), _agree("passed", "Overseas production by 12 makers")
    ('were', 'was')
    """
    if verb in ("was", "were"):
        return verb
    head = _PREPOSITION.split(subject, maxsplit=1)[0].split()[-1]
    return "were" if head.endswith("s") and not head.endswith(("ss", "'s", "’s")) else "was"


def candidates(engine: Engine) -> list[Suggestion]:
    """Questions drawn from each document, up to PER_DOCUMENT each, in the library's order."""
    out: list[Suggestion] = []
    for doc in engine.index.documents:
        paragraphs = [p for p in engine.index.paragraphs(doc.doc_id) if p.table is None and not p.is_reference]
        text = " ".join(p.text for p in paragraphs)
        found: list[Suggestion] = []
        seen: set[str] = set()
        for p in paragraphs:
            for sentence in split_sentences(p.text):
                m = FIGURE.match(sentence)
                subject = _subject(m["subject"], text) if m else None
                if subject is None or subject.lower() in seen:
                    continue
                seen.add(subject.lower())
                found.append(
                    Suggestion(f"What {_agree(m['verb'], subject)} {subject} in {m['year']}?", doc.doc_id, p.para)
                )
        if not found:
            headings: dict[str, int] = {}
            for p in paragraphs:
                if p.heading and p.heading != doc.title and p.heading.lower() not in _STRUCTURE:
                    headings.setdefault(p.heading, p.para)
            short = doc.title.split(":")[0].strip()
            found = [
                Suggestion(f"What does “{short}” say about {_inline(h, text)}?", doc.doc_id, para)
                for h, para in headings.items()
            ]
        out += found[:PER_DOCUMENT]
    return out


def answered(engine: Engine, s: Suggestion) -> bool:
    """The answerer answers it (no refusal), citing the paragraph it was drawn from."""
    answer = engine.ask(s.question)
    return not answer.abstained and any(c.doc_id == s.doc_id and c.para == s.para for c in answer.citations)


def suggest(engine: Engine, count: int = COUNT) -> list[Suggestion]:
    """Up to `count` questions the engine answers with a citation: one per document first, then more."""
    pool = candidates(engine)
    firsts = {}
    for s in pool:
        firsts.setdefault(s.doc_id, s)
    chosen: list[Suggestion] = []
    for s in [*firsts.values(), *(s for s in pool if firsts[s.doc_id] is not s)]:
        if len(chosen) >= count:
            break
        if answered(engine, s):
            chosen.append(s)
    return chosen
