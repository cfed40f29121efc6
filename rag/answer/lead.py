"""The lead line and the sources-disagree note, both read from the sentences an answer quotes.

`lead(frame, sentence, citation)`: where the question asks for a figure, a date, a name or a
place, the span of that kind in the best sentence, verbatim, with a short context ("CAAM, 2023").
Among several spans it takes the one next to the year the question asks about, of the unit the
question asks for (a share wants a percent, a cost wants money, "how many" wants a count), and
whose clause names the measure asked (exports, imports, production, sales) or none. A question
asking which country gets a country: a province ("Rayong") gives way to its country's name
("Thailand") where a quoted sentence writes it.

`disagreements(frame, quoted)`: quoted sentences from different documents that give different
figures for the same measure and period. Same measure: the same unit, both sentences on the
question's side of every qualifier it sets, each naming what the question names (a BYD figure is
no rival to a Chery one), and each sentence among the answer's. Same period:
the figure sits by the same year in both (the year asked, when the question names one). Figures
within 2% of each other are the same figure rounded. A bare number ("196 countries", "HS code 8708")
is a count or a code, and a figure whose clause names another measure ("produced 4,243,597" for a
question about exports) counts something else: neither is a figure to compare.

Not handled: disagreements about dates or names, or between two sentences of one document (a
briefing that reports two agencies' counts says so itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.answer.measure import (
    asked_measure,
    clause,
    counted,
    measures_in,
    named,
    question_terms,
    same_measure,
    segment,
)
from rag.answer.question import (
    DOCUMENT_KIND,
    UNIT,
    AnswerType,
    Frame,
    country_code,
    spans,
    unit_of,
    value_of,
    wanted_unit,
    words_in,
    years_in,
)
from rag.documents import Citation, Disagreement, DisagreementValue, Lead
from rag.names import Names
from rag.terms import content_terms

SAME_FIGURE = 0.02  # relative difference below which two figures are one figure, rounded
_SOURCE = re.compile(
    r"\b(?:according to|reported by|data from|figures from|says|said)\s+((?:the\s+)?[A-Z][\w&.'’-]*"
    r"(?:\s+(?:of\s+)?[A-Z][\w&.'’-]*)*)|\b([A-Z]{2,}[A-Za-z]*)\s+(?:reported|counted|said|says|data)\b"
)
_LEAD_TYPES = (AnswerType.QUANTITY, AnswerType.DATE, AnswerType.PLACE, AnswerType.ORGANISATION, AnswerType.PERSON)


def pick_span(frame: Frame, question: str, sentence: str, names: Names | None = None) -> str:
    """The span of the asked kind in `sentence` that best fits the question, or ''.

    A span the question itself names is never the answer ("Who is SAIC's partner?" is not "SAIC").
    Among the rest it takes the one closest to a year or name of the question in the sentence (or
    to its other words, when the sentence has none of those), then the first.

    >>> from rag.answer.question import frame as read
    >>> q = "What provisional duty did the EU impose on SAIC in 2024?"
    >>> pick_span(read(q), q, "In July 2024 the rates were 17.4% for BYD, 19.9% for Geely and 37.6% for SAIC.")
    '37.6%'
    >>> q = "How many vehicles did Korea export in 2023?"
    >>> pick_span(read(q), q, "Korea exported 2.76 million vehicles to 196 countries in 2023.")
    '2.76 million vehicles'
    """
    found = [s for s in spans(sentence, frame.answer_type) if s.lower() not in question.lower()]
    if frame.answer_type is AnswerType.QUANTITY:
        unit = wanted_unit(question)
        modifiers, head = asked_measure(question)
        # A share wants a percent and a cost money: a figure of another unit is another measure (no lead beats a
        # wrong one). A count takes counts, and the unit the question counts in ("how many years").
        if unit in ("percent", "money"):
            found = [s for s in found if unit_of(s) == unit]
        elif unit == "count":
            found = [s for s in found if unit_of(s) == "count" or unit_of(s) in content_terms(head) | {head.lower()}]
        if UNIT.fullmatch(head):  # "how many years": a figure in years, not "six million vehicles"
            found = [s for s in found if unit_of(s) == unit_of(f"1 {head}")]
        # "How many new-energy vehicles": a figure whose clause does not name the kind asked counts all vehicles.
        found = [s for s in found if all(named(m, head, clause(sentence, s), names) for m in modifiers)]
        # A figure counts what the words after it name: "196 countries" is no answer to "how many vehicles", nor
        # "13 overseas bases" to "how many vehicles ... at overseas plants".
        asked = re.search(r"\bhow many ((?:[\w-]+\s+){0,2}?[\w-]+s)\b", question, re.IGNORECASE)
        terms = content_terms(asked.group(1) if asked else question)
        found = [s for s in found if not (what := counted(s, sentence)) or content_terms(what) & terms] or found
        # A figure whose clause says another measure ("produced 4,243,597") is no answer to "how many exported".
        found = [s for s in found if same_measure(question, sentence, s)] or found
    if frame.years and frame.answer_type is not AnswerType.DATE:
        # a figure whose clause names only other years than the one asked is of another period
        found = [s for s in found if not (said := years_in(clause(sentence, s))) or said & frame.years]
    if frame.answer_type in (AnswerType.ORGANISATION, AnswerType.PERSON):
        titles = [m.span() for m in re.finditer(r"[\"“][^\"”]+[\"”]", sentence)]
        found = [
            s
            for s in found
            if not any(a <= sentence.find(s) < b for a, b in titles)
            and not DOCUMENT_KIND.match(sentence[sentence.find(s) :])
        ]
    if frame.answer_type is AnswerType.DATE and frame.years:
        found = [s for s in found if not years_in(s) <= frame.years] or found
    if len(found) <= 1:
        return found[0] if found else ""
    low = sentence.lower()
    # The question's years and names pin a figure ("37.6% for SAIC", "937,148 in 2023"); its other words only
    # when the sentence holds neither.
    anchors = {y for y in frame.years if y in sentence} | {n.lower() for n in _names(question) if n.lower() in low}
    anchors = anchors or {w for w in _words(question) if w in low}
    # Where a sentence sets two sources or periods against each other ("CAAM counted X, while customs data ...
    # places it at Y"), the part that names more of the question holds its figure.
    asked = question_terms(question, names)
    return min(
        found,
        key=lambda s: (
            -len(asked & content_terms(segment(sentence, s))),
            _distance(sentence, s, anchors),
            sentence.find(s),
        ),
    )


def _names(question: str) -> set[str]:
    """Capitalised words after the first: the company, country or agency a question is about."""
    names = {re.sub(r"['’]s$", "", w.strip("?,.;:")) for w in question.split()[1:] if w[:1].isupper()}
    return names - {""}


_QUESTION_WORDS = {
    "how",
    "many",
    "much",
    "what",
    "which",
    "when",
    "where",
    "who",
    "did",
    "does",
    "was",
    "were",
    "the",
    "and",
    "for",
    "from",
    "with",
    "into",
    "that",
    "this",
    "have",
    "has",
    "its",
    "their",
    "any",
    "are",
}


def _words(question: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z-]{2,}", question.lower()) if w not in _QUESTION_WORDS}


def _distance(sentence: str, span: str, anchors: set[str]) -> int:
    """Characters from the span to the nearest anchor in the sentence. An anchor before the span counts four
    times: a figure usually comes just before what it belongs to ("37.6% for SAIC", "937,148 in 2023"), while
    the sentence's subject opens it ("Chery exported 451,337 vehicles in 2022, 937,148 in 2023")."""
    at = sentence.find(span)
    low = sentence.lower()
    places = [m.start() for a in anchors for m in re.finditer(re.escape(a.lower()), low)]
    if at < 0 or not places:
        return 10_000
    end = at + len(span)
    # a figure written right after a name, or in brackets after it, is that name's ("Kia 1,435,762", "the EU (12
    # million)")
    after = [m.end() for a in anchors for m in re.finditer(re.escape(a.lower()), low) if m.end() <= at]
    if any(re.fullmatch(r"['’]?s?\s*[(:]?\s*", low[e:at]) for e in after):
        return 0
    return min(p - end if p >= end else (0 if p >= at else 4 * (at - p)) for p in places)


def source_of(sentence: str) -> str:
    """The source a sentence attributes its figure to ("according to CAAM"), or ''.

    >>> source_of("Exports hit 4.91 million in 2023, according to CAAM as reported by Shanghai Daily.")
    'CAAM'
    """
    m = _SOURCE.search(sentence)
    if not m:
        return ""
    name = (m.group(1) or m.group(2) or "").removeprefix("the ").strip().rstrip(".,;:")
    return re.sub(r"['’]s$", "", name)


_ASKS_COUNTRY = re.compile(r"\b(countr(?:y|ies)|nations?)\b", re.IGNORECASE)


def _as_country(
    question: str, span: str, sentence: str, citation: Citation, quoted: list[tuple[str, Citation]]
) -> tuple[str, str, Citation]:
    """For a question that asks which country: a province or state ("Rayong") gives way to its country's name
    ("Thailand") where a quoted sentence ties the two together ("Rayong, Thailand", "Rayong in Thailand",
    "Thailand's Rayong"), with that sentence's citation; else the span stays as it is. A sentence that only
    mentions the country elsewhere ("... according to Nation Thailand") supports no such claim.

    >>> c = Citation("d", 1, "t", "", "")
    >>> q = "In which country did BYD open its plant?"
    >>> _as_country(q, "Rayong", "BYD opened in Rayong.", c, [("GAC opened in Rayong, says Nation Thailand.", c)])[0]
    'Rayong'
    >>> _as_country(q, "Rayong", "BYD opened in Rayong.", c, [("BYD in Rayong, Thailand: 150,000 vehicles.", c)])[0]
    'Thailand'
    """
    code = country_code(span)
    if code is None or code[1]:
        return span, sentence, citation
    for other, cited in [(sentence, citation)] + quoted:
        for place in spans(other, AnswerType.PLACE):
            if (
                country_code(place) == (code[0], True)
                and place.lower() not in question.lower()
                and _ties(other, span, place)
            ):
                return place, other, cited
    return span, sentence, citation


def _ties(sentence: str, part: str, country: str) -> bool:
    """Whether the sentence writes the place as part of the country: "Rayong, Thailand", "Rayong (Thailand)",
    "Rayong in Thailand", "Thailand's Rayong"."""
    p, c = re.escape(part), re.escape(country)
    return bool(re.search(rf"\b{p}(?: province)?(?:\s*,\s*|\s*\(\s*|\s+in\s+){c}\b|\b{c}['’]s\s+{p}\b", sentence))


# "Which countries", "the top destinations": a question whose answer is several places
_PLURAL_PLACES = re.compile(
    r"\b(?:which|what)\s+(?:[\w'’-]+\s+){0,3}?(?:countries|cities|markets|regions|nations|destinations|provinces|"
    r"states|places|locations)\b",
    re.IGNORECASE,
)


def _listed(question: str, sentences: list[tuple[str, Citation]]) -> Lead | None:
    """All the places the question does not name, from the first sentence that lists two or more (best first).

    >>> c = Citation("d", 1, "t", "", "")
    >>> _listed("Which countries raised tariffs?", [("Canada and Turkey added surtaxes, as did Brazil.", c)]).span
    'Canada, Turkey, Brazil'
    """
    for sentence, citation in sentences:
        places = list(dict.fromkeys(p for p in spans(sentence, AnswerType.PLACE) if p.lower() not in question.lower()))
        if len(places) >= 2:
            return Lead(", ".join(places), citation, source_of(sentence))
    return None


def lead(
    frame: Frame,
    question: str,
    quoted: list[tuple[str, Citation]],
    more: list[tuple[str, Citation]] = (),
    names: Names | None = None,
) -> Lead | None:
    """The lead from the first quoted sentence (best first) that holds a span of the asked kind and measure, else
    from the first of `more` (sentences not quoted, best first; the answerer then quotes it), else None."""
    if frame.answer_type not in _LEAD_TYPES:
        return None
    if frame.answer_type is AnswerType.PLACE and _PLURAL_PLACES.search(question):
        listed = _listed(question, [*quoted, *more])
        if listed:
            return listed
    for sentence, citation in [*quoted, *more]:  # noqa: B007 - the one that breaks the loop is cited below
        span = pick_span(frame, question, sentence, names)
        if span:
            break
    else:
        return None
    if frame.answer_type is AnswerType.PLACE and _ASKS_COUNTRY.search(question):
        span, sentence, citation = _as_country(question, span, sentence, citation, quoted)
    context = [source_of(sentence)]
    if frame.answer_type is not AnswerType.DATE:
        context += sorted(frame.years & years_in(sentence))
    return Lead(span, citation, ", ".join(c for c in context if c))


def _year_by(sentence: str, span: str) -> str:
    """The year written nearest the figure in its sentence ('' when the sentence names none)."""
    years = sorted(years_in(sentence))
    if not years:
        return ""
    return min(years, key=lambda y: _distance(sentence, span, {y}))


_COMPARISON = re.compile(
    r"\b(compare[sd]?|comparison|larger|smaller|bigger|higher|lower|more|less|fewer|"
    r"difference|differ|versus|vs\.?|than)\b",
    re.IGNORECASE,
)
SAME_MEASURE_SIMILARITY = 0.6  # cosine two sentences need to be read as stating one measure


def disagreements(
    frame: Frame, question: str, quoted: list[tuple[str, Citation]], similar: Callable[[int, int], float] | None = None
) -> tuple[Disagreement, ...]:
    """Where the quoted sentences of different documents give different figures for one measure and period.

    `similar(i, j)` is the cosine between quoted sentences i and j: two figures are rivals only when
    their sentences say nearly the same thing (13.9 million EVs sold is no rival to 25.8 million
    vehicles built)."""
    if frame.answer_type is not AnswerType.QUANTITY or len({c.doc_id for _, c in quoted}) < 2:
        return ()
    # Same subject: a figure counts only from a sentence naming everything the question names that the
    # sentences name at all (a BYD figure is no rival to a Chery one).
    named = {n for n in _names(question) if any(n.lower() in s.lower() for s, _ in quoted)}
    if len(named) > 1 or _COMPARISON.search(question):
        return ()  # "How much larger is the US market than the EU's?" asks for two measures, not one
    figures = []
    figures_seen: list[str] = []
    position = {id(c): i for i, (_, c) in enumerate(quoted)}
    for sentence, citation in quoted:
        words = words_in(sentence)
        if any(words & opposite and not words & asked for asked, opposite in frame.qualifiers):
            continue  # another measure: "provisional" when the question asks for "final"
        if not all(n.lower() in sentence.lower() for n in named):
            continue
        span = pick_span(frame, question, sentence)
        value = value_of(span) if span else None
        if value is None or re.fullmatch(r"\d+", span) or not same_measure(question, sentence, span):
            # a bare number ("196 countries", "HS code 8708") is a count or a code, and "produced 4,243,597" is
            # another measure than exports: no rival figure
            continue
        period = _year_by(sentence, span)
        if frame.years and period not in frame.years:
            continue
        figures.append((span, value, unit_of(span), period, citation, len(figures_seen)))
        figures_seen.append(sentence)
    found = []
    for unit in sorted({f[2] for f in figures}):
        periods = {f[3] for f in figures if f[2] == unit}
        # A figure with no year joins the one year its rivals name, when the question names none.
        dated = periods - {""}
        for period in sorted(dated or periods):
            group = [f for f in figures if f[2] == unit and (f[3] == period or (f[3] == "" and len(dated) == 1))]
            distinct: list[tuple] = []
            for f in group:
                if any(abs(f[1] - g[1]) <= SAME_FIGURE * max(abs(f[1]), abs(g[1])) for g in distinct):
                    continue
                if (
                    similar
                    and distinct
                    and not all(
                        similar(position[id(f[4])], position[id(g[4])]) >= SAME_MEASURE_SIMILARITY
                        for g in distinct
                        if g[4].doc_id != f[4].doc_id
                    )
                ):
                    continue
                distinct.append(f)
            if len(distinct) > 1 and len({f[4].doc_id for f in distinct}) > 1:
                measure = measure_words([(f[0], figures_seen[f[5]]) for f in distinct])
                found.append(Disagreement(measure, period, tuple(DisagreementValue(f[0], f[4]) for f in distinct)))
    return tuple(found)


_MEASURE_NOUNS = {"export": "exports", "import": "imports", "production": "production", "sales": "sales"}


def measure_words(figures: list[tuple[str, str]]) -> str:
    """What rival figures measure, in their sentences' words: the noun the figures count, where one says it, and
    the measure their clauses share (exports, imports, production, sales); '' when they say neither.

    >>> measure_words([("5.221 million vehicles", "Customs counted 5.221 million vehicles exported in 2023."),
    ...                ("4.91 million", "Vehicle exports hit 4.91 million in 2023, according to CAAM.")])
    'vehicles, exports'
    >>> measure_words([("$53.3 billion", "Parts worth $53.3 billion."), ("$40 billion", "Parts: $40 billion.")])
    ''
    """
    nouns = [n.split()[-1] for n in (counted(span, sentence) for span, sentence in figures) if n]
    shared = set.intersection(
        *(measures_in(clause(sentence, span)) or measures_in(sentence) for span, sentence in figures)
    )
    words = [max(set(nouns), key=nouns.count)] if nouns else []
    return ", ".join(words + [_MEASURE_NOUNS[m] for m in sorted(shared)])
