"""Which documents a question names, from their metadata: a document-level prior for ranking paragraphs.

A question about filings names its document the way people do: "Apple", "Q2 2023", "the second
quarter of 2023", "the latest 10-Q". Paragraph text rarely repeats those words (a table row says
"Total net sales; 117,154"), so `DocumentMatcher.scores(question)` matches the question against
each document's card instead: its title, kind, file name, and what `rag.load.cover` read off the
cover (company, ticker, form, period, date, running heads). Steps:
1. Card terms: lower-case words of the card, "second quarter" written as "q2", English stopwords and
   legal forms ("Inc.", "Corporation") dropped.
2. Question terms: the same, kept only where the question names something: a word written with a
   capital, a figure, or a quarter. Topical words ("exports", "revenue") are the paragraphs' business.
3. The prior applies only when a question term names an issuer or a report (company, ticker or form,
   as the cover gave them); then a document scores the IDF (over the documents) of the question terms
   its card holds, so a term every document shares ("10-Q") counts for nothing.
4. "latest" / "most recent": among the documents that match best (all of one company's filings),
   the newest by `meta["date"]` (else the file's creation date) gains as much as the rarest term.
5. Scores are divided by the best, so the named document gets 1.0; none named, no prior.
`rag.retrieve.hybrid.HybridRetriever` adds `DOCUMENT_WEIGHT` times this to a paragraph's fused score.

Not handled: synonyms and nicknames ("Big Blue"), fiscal-year arithmetic (the quarter labels a
document carries come from its file name and running heads), relative dates ("last year").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bm25s.stopwords import STOPWORDS_EN

from rag.documents import Document

_ORDINALS = {
    "first": "q1",
    "second": "q2",
    "third": "q3",
    "fourth": "q4",
    "1st": "q1",
    "2nd": "q2",
    "3rd": "q3",
    "4th": "q4",
}
_QUARTER = re.compile(r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter\b", re.IGNORECASE)
_LATEST = re.compile(r"\b(latest|most\s+recent|newest)\b", re.IGNORECASE)
# Words that name no particular document: legal forms and the vocabulary of report titles.
_GENERIC = frozenset(STOPWORDS_EN) | {
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "company",
    "co",
    "ltd",
    "limited",
    "plc",
    "llc",
    "lp",
    "group",
    "holdings",
    "form",
    "report",
    "document",
    "filed",
    "period",
    "ended",
    "quarterly",
    "annual",
    "part",
    "item",
    "table",
    "contents",
    "page",
}
_CARD_FIELDS = ("company", "ticker", "form", "period", "date", "running_heads", "file_title", "subject")
# The fields that name a document's issuer and report (`rag.load.cover`): a question must match one of them for
# the prior to apply. A title's topical words ("China's Vehicle Exports") and a year name content as often as a
# document: matching on them alone cost the shipped corpus 0.06 hit@1.
_NAME_FIELDS = ("company", "ticker", "form")


def terms(text: str) -> list[str]:
    """Lower-case words with quarters written as q1-q4, without stopwords and legal forms.

    >>> terms("Apple Inc.'s Form 10-Q for the second quarter of 2023")
    ['apple', '10', 'q2', '2023']
    """
    text = _QUARTER.sub(lambda m: _ORDINALS[m.group(1).lower()], text)
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _GENERIC and (len(w) > 1 or w.isdigit())]


def naming_terms(question: str) -> list[str]:
    """The question's terms that name something: capitalised words, figures and quarters (each once).

    >>> naming_terms("How did Apple's operating expenses for Q1 2023 compare to its revenue?")
    ['how', 'apple', 'q1', '2023']
    """
    question = _QUARTER.sub(lambda m: _ORDINALS[m.group(1).lower()].upper(), question)
    named = [
        w for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9.&-]*", question) if w[:1].isupper() or any(c.isdigit() for c in w)
    ]
    return list(dict.fromkeys(t for w in named for t in terms(w)))


def card(document: Document) -> str:
    """The text a document is matched by: title, kind, file name and cover metadata."""
    parts = [document.title, document.kind, Path(document.source_path).stem]
    parts += [str(document.meta.get(f, "")) for f in _CARD_FIELDS]
    return " ".join(p for p in parts if p)


class DocumentMatcher:
    """Scores documents by how well a question names them (see the module docstring).

    >>> docs = [Document("2023-q1-aapl", "Apple Inc. Form 10-Q", "quarterly report", "/d/2023 Q1 AAPL.pdf", "",
    ...                  "pdf", meta={"company": "Apple Inc.", "date": "2022-12-31"}),
    ...         Document("2023-q2-aapl", "Apple Inc. Form 10-Q", "quarterly report", "/d/2023 Q2 AAPL.pdf", "",
    ...                  "pdf", meta={"company": "Apple Inc.", "date": "2023-04-01"}),
    ...         Document("2023-q2-msft", "Microsoft Corporation Form 10-Q", "quarterly report", "/d/2023 Q2 MSFT.pdf",
    ...                  "", "pdf", meta={"company": "Microsoft Corporation", "date": "2023-03-31"})]
    >>> m = DocumentMatcher(docs)
    >>> {d: round(s, 2) for d, s in m.scores("What was Apple's gross margin in Q2 2023?").items()}
    {'2023-q1-aapl': 0.5, '2023-q2-aapl': 1.0, '2023-q2-msft': 0.5}
    >>> max(m.scores("Apple's latest 10-Q: gross margin?").items(), key=lambda kv: kv[1])[0]
    '2023-q2-aapl'
    >>> m.scores("What is a gross margin?"), m.scores("What was the gross margin in Q2 2023?")
    ({}, {})
    """

    def __init__(self, documents: Sequence[Document]):
        self.doc_ids = [d.doc_id for d in documents]
        self.cards = [set(terms(card(d))) for d in documents]
        self.names = [set(terms(" ".join(str(d.meta.get(f, "")) for f in _NAME_FIELDS))) for d in documents]
        self.dates = [str(d.meta.get("date") or d.meta.get("created") or "") for d in documents]
        df = Counter(t for c in self.cards for t in c)
        n = len(documents)
        self.idf = {t: math.log(n / k) for t, k in df.items()}

    def scores(self, question: str) -> dict[str, float]:
        """Each named document's prior in (0, 1], the best 1.0; empty when the question names none."""
        wanted = [t for t in naming_terms(question) if self.idf.get(t, 0.0) > 0]
        if not any(t in names for names in self.names for t in wanted):
            return {}  # the question names no issuer or report: leave the ranking alone
        raw = [sum(self.idf[t] for t in wanted if t in c) for c in self.cards]
        if _LATEST.search(question):
            best = max(raw, default=0.0)
            group = [i for i, s in enumerate(raw) if s == best and self.dates[i]]
            if group:
                newest = max(self.dates[i] for i in group)
                bonus = max(self.idf.values())
                raw = [s + bonus if i in group and self.dates[i] == newest else s for i, s in enumerate(raw)]
        top = max(raw, default=0.0)
        if top <= 0:
            return {}
        return {d: s / top for d, s in zip(self.doc_ids, raw) if s > 0}
