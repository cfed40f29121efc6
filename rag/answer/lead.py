"""The lead line and the sources-disagree note, both read from the sentences an answer quotes.

`lead(frame, sentence, citation)`: where the question asks for a figure, a date, a name or a
place, the span of that kind in the best sentence, verbatim, with a short context ("CAAM, 2023").
Among several spans it takes the one next to the year the question asks about, of the unit the
question asks for (a share wants a percent, a cost wants money, "how many" wants a count).

`disagreements(frame, quoted)`: quoted sentences from different documents that give different
figures for the same measure and period. Same measure: the same unit, both sentences on the
question's side of every qualifier it sets, and each sentence among the answer's. Same period:
the figure sits by the same year in both (the year asked, when the question names one). Figures
within 2% of each other are the same figure rounded.

Not handled: disagreements about dates or names, or two figures for one measure in one document.
"""

from __future__ import annotations

import re

from rag.answer.question import AnswerType, Frame, spans, unit_of, value_of, wanted_unit, words_in, years_in
from rag.documents import Citation, Disagreement, DisagreementValue, Lead

SAME_FIGURE = 0.02  # relative difference below which two figures are one figure, rounded
_SOURCE = re.compile(r"\b(?:according to|reported by|data from|figures from|says|said)\s+((?:the\s+)?[A-Z][\w&.'’-]*"
                     r"(?:\s+(?:of\s+)?[A-Z][\w&.'’-]*)*)|\b([A-Z]{2,}[A-Za-z]*)\s+(?:reported|counted|said|says|data)\b")
_LEAD_TYPES = (AnswerType.QUANTITY, AnswerType.DATE, AnswerType.PLACE, AnswerType.ORGANISATION, AnswerType.PERSON)


def pick_span(frame: Frame, question: str, sentence: str) -> str:
    """The span of the asked kind in `sentence` that best fits the question, or ''."""
    found = spans(sentence, frame.answer_type)
    if frame.answer_type is AnswerType.QUANTITY:
        unit = wanted_unit(question)
        typed = [s for s in found if unit_of(s) == unit] if unit else []
        found = typed or found
    if not found:
        return ""
    anchors = set(frame.years) or {n for n in _names(question) if n in sentence}
    if anchors and frame.answer_type is not AnswerType.DATE:
        return min(found, key=lambda s: (_distance_to_year(sentence, s, frozenset(anchors)), sentence.find(s)))
    if frame.answer_type is AnswerType.DATE and frame.years:
        others = [s for s in found if not years_in(s) <= frame.years]
        return (others or found)[0]
    return found[0]


def _names(question: str) -> set[str]:
    """Capitalised words after the first: the company, country or agency a question is about."""
    return {w.strip("?,.'’s") for w in question.split()[1:] if w[:1].isupper()} - {""}


def _distance_to_year(sentence: str, span: str, years: frozenset[str]) -> int:
    """Characters between the span and the nearest anchor (a year, or a name) in the sentence."""
    at = sentence.find(span)
    places = [m.start() for y in years for m in re.finditer(re.escape(y), sentence)]
    if at < 0 or not places:
        return 10_000
    end = at + len(span)
    return min(abs(p - end) if p >= end else abs(at - p) for p in places)


def source_of(sentence: str) -> str:
    """The source a sentence attributes its figure to ("according to CAAM"), or ''.

    >>> source_of("Exports hit 4.91 million in 2023, according to CAAM as reported by Shanghai Daily.")
    'CAAM'
    """
    m = _SOURCE.search(sentence)
    return (m.group(1) or m.group(2) or "").removeprefix("the ").strip() if m else ""


def lead(frame: Frame, question: str, sentence: str, citation: Citation) -> Lead | None:
    if frame.answer_type not in _LEAD_TYPES:
        return None
    span = pick_span(frame, question, sentence)
    if not span:
        return None
    context = [source_of(sentence)]
    years = sorted(frame.years & years_in(sentence)) if frame.years else []
    if frame.answer_type is not AnswerType.DATE:
        context += years
    return Lead(span, citation, ", ".join(c for c in context if c))


def _year_by(sentence: str, span: str) -> str:
    """The year written nearest the figure in its sentence ('' when the sentence names none)."""
    years = sorted(years_in(sentence))
    if not years:
        return ""
    return min(years, key=lambda y: _distance_to_year(sentence, span, frozenset([y])))


def disagreements(frame: Frame, question: str, quoted: list[tuple[str, Citation]]) -> tuple[Disagreement, ...]:
    """Where the quoted sentences of different documents give different figures for one measure and period."""
    if frame.answer_type is not AnswerType.QUANTITY or len({c.doc_id for _, c in quoted}) < 2:
        return ()
    figures = []
    for sentence, citation in quoted:
        words = words_in(sentence)
        if any(words & opposite and not words & asked for asked, opposite in frame.qualifiers):
            continue  # another measure: "provisional" when the question asks for "final"
        span = pick_span(frame, question, sentence)
        value = value_of(span) if span else None
        if value is None:
            continue
        period = _year_by(sentence, span)
        if frame.years and period not in frame.years:
            continue
        figures.append((span, value, unit_of(span), period, citation))
    found = []
    for unit in sorted({f[2] for f in figures}):
        for period in sorted({f[3] for f in figures if f[2] == unit}):
            group = [f for f in figures if f[2] == unit and f[3] == period]
            distinct: list[tuple] = []
            for f in group:
                if not any(abs(f[1] - g[1]) <= SAME_FIGURE * max(abs(f[1]), abs(g[1])) for g in distinct):
                    distinct.append(f)
            if len(distinct) > 1 and len({f[4].doc_id for f in distinct}) > 1:
                measure = _measure(question)
                found.append(Disagreement(measure, period, tuple(DisagreementValue(f[0], f[4]) for f in distinct)))
    return tuple(found)


_STOP_LEAD = re.compile(r"^\s*(how many|how much|what (was|were|is|are)( the)?|what|which|did|does|do)\s+", re.IGNORECASE)


def _measure(question: str) -> str:
    """The question, shortened to name what is measured.

    >>> _measure("How many vehicles did China export in 2023?")
    'vehicles did China export'
    """
    text = _STOP_LEAD.sub("", question.strip().rstrip("?"))
    return " ".join(re.sub(r"\b(in|for|during)\s+(19|20)\d\d\b", "", text).split())
