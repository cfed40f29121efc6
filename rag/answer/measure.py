"""What a question measures, read from its words, and where a sentence says the same.

- `asked_measure`: the noun a "how many" question counts and the words that narrow it ("new-energy vehicles").
- `named`: whether a text names such a word, itself or through a form a document defines ("NEV").
- `question_terms`: the question's content terms, with those of the forms the documents define for its names.
- `counted`: what a figure counts, as the words after it say ("196 countries").
- `measures_in` and `same_measure`: exports are not production, nor sales, nor imports.
- `clause` and `segment`: the part of a sentence that holds a figure: between commas and joining words, or
  between the contrasts that set two sources or periods apart ("..., while customs data ...").

General English only: the forms of names come from the documents (`rag.names.Names`).
Not handled: synonyms ("cars" for "vehicles"), and narrowing words after the noun ("vehicles with batteries").
"""

from __future__ import annotations

import re

from rag.answer.question import UNIT
from rag.names import Names
from rag.terms import content_terms

_CLAUSE = re.compile(r"[,;:()]|\s(?:and|while|whereas|but|against|compared with|of which)\s")


_ASKED = re.compile(
    r"\bhow many ((?:[\w'’-]+\s+){0,3}?[\w'’-]+?)\s+(?:did|do|does|were|was|are|is|have|has|had|will|would|could|can|"
    r"should|may|might|in|at|on|of|from|to|for)\b",
    re.IGNORECASE,
)


def asked_measure(question: str) -> tuple[tuple[str, ...], str]:
    """(the words that narrow what a "how many" question counts, the noun it counts); ((), '') for other questions.
    An acronym that is the noun itself narrows too ("NEVs" are a kind of vehicle).

    >>> asked_measure("How many new-energy vehicles did China export?")
    (('new-energy',), 'vehicles')
    >>> asked_measure("How many NEVs were sold?"), asked_measure("How many cars did Chery ship abroad?")
    ((('NEVs',), 'NEVs'), ((), 'cars'))
    >>> asked_measure("For how many years running has China led?")
    ((), 'years')
    """
    m = _ASKED.search(question)
    if not m:
        return (), ""
    words = m.group(1).split()
    # the counted noun is the last plural ("how many years running": years)
    plural = [i for i, w in enumerate(words) if re.search(r"[^s]s$", w)]
    words = words[: plural[-1] + 1] if plural else words
    head = words[-1]
    modifiers = [w for w in words[:-1] if content_terms(w)]
    if re.fullmatch(r"[A-Z]{2,}s?", head):
        modifiers.append(head)
    return tuple(modifiers), head


def named(word: str, head: str, text: str, names: Names | None = None) -> bool:
    """Whether `text` names `word` (a modifier of `head` in the question), itself or through a form the documents
    define for it ("new-energy vehicles" is "NEV" where a document writes "new-energy vehicles (NEVs)").

    >>> n = Names({"NEV": ["new-energy vehicles"]})
    >>> named("new-energy", "vehicles", "NEV exports neared 1.3 million units", n)
    True
    >>> named("new-energy", "vehicles", "China exported over 6 million vehicles", n)
    False
    """
    terms = content_terms(text)
    forms = {word}
    if names is not None:
        singular = re.sub(r"s$", "", head)
        for phrase in (f"{word} {head}", f"{word} {singular}", word, re.sub(r"s$", "", word)):
            forms |= names.forms(phrase)
    return any((t := content_terms(f)) and t <= terms for f in forms)


def question_terms(question: str, names: Names | None = None) -> set[str]:
    """The question's content terms, with those of every form the documents define for a name in it (so a
    question's "China Association of Automobile Manufacturers" finds a sentence's "CAAM")."""
    terms = content_terms(question)
    if names is not None:
        words = re.findall(r"[\w'’&.-]+", question)
        for n in range(1, 6):
            for i in range(len(words) - n + 1):
                phrase = " ".join(words[i : i + n]).strip(".'’")
                for form in names.forms(phrase) - {phrase}:
                    terms |= content_terms(form)
    return terms


def clause(sentence: str, span: str) -> str:
    """The clause of `sentence` that holds `span`, between commas, semicolons, brackets and joining words."""
    return _between(sentence, span, _CLAUSE)


_SEGMENT = re.compile(r";|\s(?:while|whereas|but|against|compared with|versus|vs\.?)\s", re.IGNORECASE)


def segment(sentence: str, span: str) -> str:
    """The part of `sentence` holding `span` that a contrast sets apart ("..., while ...", "; ", "against")."""
    return _between(sentence, span, _SEGMENT)


def _between(sentence: str, span: str, breaks: re.Pattern) -> str:
    """The stretch of `sentence` around `span` between the nearest `breaks` on either side (all of it when the
    span is not in it)."""
    at = sentence.find(span)
    if at < 0:
        return sentence
    marks = list(breaks.finditer(sentence))
    start = max([0] + [m.end() for m in marks if m.end() <= at])
    end = min([m.start() for m in marks if m.start() >= at + len(span)] + [len(sentence)])
    return sentence[start:end]


_FIGURE = re.compile(r"^.*?\d[\d,.]*(?:\s?(?:million|billion|trillion|thousand|bn|mn|m|k)\b)?", re.IGNORECASE)


def counted(span: str, sentence: str) -> str:
    """The words naming what a figure counts: those the span ends with ("196 countries"), or for a bare number the
    two words after it in the sentence; '' when it says (a percentage, an amount of money, "2.76 million").

    >>> counted("196 countries", ""), counted("$4 billion dollars", ""), counted("906", "Section 906 of the Act")
    ('countries', '', 'of the')
    """
    if re.fullmatch(r"\d+", span):
        at = sentence.find(span)
        return " ".join(sentence[at + len(span) :].split()[:2]) if at >= 0 else ""
    m = _FIGURE.match(span)
    tail = span[m.end() :].strip() if m else ""
    return tail if re.fullmatch(r"[a-z][a-z -]*", tail) and not UNIT.fullmatch(tail) else ""


# What a figure counts, by the verb or noun beside it: exports are not production, nor sales, nor imports.
_MEASURE_WORDS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (name, re.compile(rf"\b(?:{words})\b", re.IGNORECASE))
    for name, words in (
        ("export", r"export(?:s|ed|ing|er|ers)?|ship(?:s|ped|ping)? abroad|shipments abroad"),
        ("import", r"import(?:s|ed|ing|er|ers)?"),
        ("production", r"produc(?:e|es|ed|ing|tion)|output|built|build(?:s|ing)?|manufactur(?:e|es|ed|ing)|assembled"),
        ("sales", r"sold|sales?|sell(?:s|ing)?|registrations?|registered|deliver(?:y|ies|ed)"),
    )
)


def measures_in(text: str) -> set[str]:
    """The measures a text names.

    >>> sorted(measures_in("the country produced 4.2 million vehicles and exported 2.8 million"))
    ['export', 'production']
    """
    return {name for name, words in _MEASURE_WORDS if words.search(text)}


def same_measure(question: str, sentence: str, span: str) -> bool:
    """False when the clause holding `span` names a measure (exports, production, sales, imports) and not the one
    the question asks about; True when either names none.

    >>> q = "How many vehicles did Korea export in 2023?"
    >>> s = "The country produced 4,243,597 vehicles in 2023, up 13%, and exported nearly 2.8 million."
    >>> same_measure(q, s, "4,243,597 vehicles"), same_measure(q, s, "nearly 2.8 million"), same_measure(q, s, "13%")
    (False, True, True)
    """
    asked = measures_in(question)
    if not asked or sentence.find(span) < 0:
        return True
    said = measures_in(clause(sentence, span))
    return not said or bool(said & asked)
