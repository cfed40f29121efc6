"""Does a paragraph say what the question is about? The names and years a question sets, checked in a text.

A near-topic question the documents cannot answer ("How many vehicles did South Korea export to
Russia in 2023?") retrieves paragraphs that share most of its words but not all of its subject:
one gives Korea's exports, another Russia's imports from China. `constraints(question)` lists what
a paragraph must name to answer it: each named thing (a proper noun, an acronym, a place, in any
form `rag.names` knows: a country's name, codes, demonym or capital, an acronym the corpus defines or spells out)
and each year (but not the region a question asking "which country" names). `uncovered(constraints,
text)` lists those a text does not name. A question in several parts ("…in 2023, and how does it
compare with Japan?") has constraints per part (`question_parts`), and a text that names all of one
part covers it (`covers`). The extractive answerer asks this of each candidate sentence's paragraph,
its heading and its document's title (evals/abstention.md).

Not handled: a name that opens the question (its first word is capitalised anyway), names spelled
differently than the forms known ("Volkswagen" against "Wolfsburg's carmaker", "EV" where no document
defines or spells it out), measures
("profit", "share"), which a paragraph often states without the word ("17%" for a share), and
relative periods ("last year").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.question import AnswerType, frame, spans, years_in
from rag.names import Names, spelled_out
from rag.terms import QUESTION_WORDS

# Capitalised words that name no particular thing in a question: the question words, and more small words.
GENERIC_CAPITALISED = QUESTION_WORDS | {
    "or",
    "as",
    "at",
    "from",
    "with",
    "before",
    "after",
    "since",
    "during",
    "between",
    "roughly",
    "about",
    "apart",
    "once",
    "if",
    "than",
    "that",
    "this",
    "these",
    "those",
    "it",
    "its",
    "per",
    "besides",
    "beyond",
    "over",
    "under",
    "while",
    "now",
    "then",
    "also",
    "still",
    "yet",
    "so",
    "but",
    # the parts of a document, which a question names to say where to look ("in Table 2", "Section 3.1")
    "table",
    "tables",
    "section",
    "figure",
    "fig",
    "chart",
    "page",
    "appendix",
    "exhibit",
    "chapter",
    "part",
    "item",
    "note",
    "slide",
}
# Words of a company's legal name that text often leaves out ("Geely Holding Group" is "Geely").
_NAME_SUFFIXES = frozenset(
    {"group", "holdings", "holding", "co", "corp", "corporation", "inc", "incorporated", "ltd", "company", "limited"}
    | {"plc", "llc", "ag", "sa", "se", "nv"}
)
_CALENDAR = frozenset(
    {
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    }
)
_JOINERS = frozenset({"of", "and", "&", "for", "de", "du", "der", "von", "van"})  # inside a name of several words
_NAME = re.compile(r"[A-Z][\w&'’.]*(?:-[A-Za-z]\w*)*|\d{4}")
# How reports name a period: "FY2018", "FY18", "Q2", "2Q24", "Q3'23", "H1", "YTD". A period is a year to
# cover (a column headed "2018" covers "FY2018"), never a name: no paragraph writes "FY2018" beside its figure.
_PERIOD_WORD = re.compile(
    r"(?:FY|CY|Q[1-4]|H[12]|[1-4]Q|[12]H)?['’]?(\d{2}|\d{4})|FY|CY|Q[1-4]|H[12]|YTD|TTM|LTM", re.IGNORECASE
)
# A sentence that tells the answerer how to answer ("Answer in USD millions.", "Give a response by relying on
# the cash flow statement.", "Round to two decimals.") names nothing the answer must be about.
_INSTRUCTION = re.compile(
    r"^\W*(?:please\s+)?(?:answer|give|provide|respond|reply|round|express|report|use|base|rely|"
    r"assume|state|show|return|write|format|keep|include|present|note|consider|limit|ignore|"
    r"do\s+not|don['’]t)\b",
    re.IGNORECASE,
)
_SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
# "(in USD millions)", "(in thousands)", "(as a percentage)": the units of the answer, not its subject.
_UNITS_ASIDE = re.compile(
    r"\((?:in|as|expressed\s+in|measured\s+in)\b[^()]*\)|"
    r"\([^()]*\b(?:millions?|billions?|thousands?|lakhs?|lacs|crores?|percent|percentage|%|rupees?|dollars?|"
    r"euros?|usd|eur|gbp|inr)\b[^()]*\)",
    re.IGNORECASE,
)
_PREFIX = 5  # a name and its demonym share their first letters: Japan/Japanese, Korea/Korean, Hungary/Hungarian


@dataclass(frozen=True)
class Constraints:
    """What a paragraph must name to answer a question."""

    names: tuple[tuple[str, ...], ...]  # each as words ("South", "Africa"): named as a phrase, or word by word
    years: frozenset[str]


# Where a question in several parts splits: "..., and how does...", "...; ...", or a new sentence.
_PART_BREAK = re.compile(
    r",?\s+and\s+(?=(?:how|what|why|when|where|which|who|whose|does|did|do|is|are|was|were|has|"
    r"have|had|can|could|will|would)\b)|;\s+|(?<=[.?!])\s+(?=[A-Z])"
)


def question_parts(asked: str) -> tuple[Constraints, ...]:
    """The constraints of each part of a question that names something; a paragraph answering one part is covered
    (`covers`). The caller passes `Query.asked`: words a follow-up's rewrite carried over from the previous question
    (`Query.carried`) set none, since they guess at what "it" means, and the previous question's place or year need
    not hold for this one.

    >>> [c.names for c in question_parts("How many vehicles did China export in 2023, and how does its share "
    ...                                   "compare with Japanese makers?")]
    [(('China',),), (('Japanese',),)]
    >>> question_parts("And its Brazilian plant?")[0].names
    (('Brazilian',),)
    """
    parts = [constraints(p) for p in _PART_BREAK.split(without_instructions(asked)) if p.strip()]
    named = tuple(c for c in parts if c.names or c.years)
    return named or (Constraints((), frozenset()),)


def without_instructions(question: str) -> str:
    """The question less its sentences of instructions; a question that is one instruction ("List the risks.") stays.

    >>> without_instructions("What was the FY2018 capex (in USD millions) of 3M? Answer briefly. Round to 2 decimals.")
    'What was the FY2018 capex of 3M?'
    """
    sentences = [s for s in _SENTENCE_BREAK.split(question) if s.strip()]
    asked = [s for s in sentences if not _INSTRUCTION.match(s)]
    return " ".join(_UNITS_ASIDE.sub("", " ".join(asked) if asked else question).split())


def period_years(word: str) -> set[str]:
    """The years a period word names: "FY2018" and "FY18" -> 2018, "Q3'23" -> 2023; none for "Q2".

    >>> sorted(period_years("FY18")), sorted(period_years("2Q2024")), sorted(period_years("Q2"))
    (['2018'], ['2024'], [])
    """
    m = _PERIOD_WORD.fullmatch(word)
    if not m or not m.group(1) or m.group(0).isdigit() and len(m.group(0)) == 2:
        return set()
    digits = m.group(1)
    return {digits if len(digits) == 4 else f"20{digits}"}


def covers(parts: tuple[Constraints, ...], text: str, names: Names | None = None) -> bool:
    """True when `text` names everything one part of the question names (in any form `names` knows).

    >>> q = question_parts("How many vehicles did China export in 2023, and how does that compare with Japan?")
    >>> covers(q, "Japanese makers built 17.5 million vehicles abroad."), covers(q, "Korea exported 2.8 million.")
    (True, False)
    """
    names = names or Names()
    return any(not uncovered(c, text, names) for c in parts)


def constraints(question: str) -> Constraints:
    """
    >>> c = constraints("How many Chinese-made cars did South Africa's dealers sell in 2023?")
    >>> c.names, sorted(c.years)
    ((('Chinese',), ('South', 'Africa')), ['2023'])
    >>> constraints("What did Geely Holding Group report?").names
    (('Geely',),)
    >>> constraints("In which country of Southeast Asia did BYD build a plant?").names
    (('BYD',),)
    """
    names: list[tuple[str, ...]] = []
    current: list[str] = []
    years = set(years_in(question))
    if _shouted(question):  # "WHAT IS THE 2ND OBJECTIVE?": capitals that say nothing of names
        return Constraints((), frozenset(years))
    words = question.split()
    for i, raw in enumerate(words):
        word = raw.strip("?!,;:()\"“”'‘’")
        word = re.sub(r"['’]s$", "", word)
        period = bool(word) and bool(_PERIOD_WORD.fullmatch(word)) and not word.isdigit()
        years |= period_years(word) if period else set()
        keep = (
            bool(word)
            and bool(_NAME.fullmatch(word))
            and i > 0
            and word.lower() not in GENERIC_CAPITALISED | _CALENDAR
            and not word.isdigit()
            and not period
        )
        joins = (  # "Institute of Metrology", "Quillon & Barrow": one name
            raw in _JOINERS and bool(current) and i + 1 < len(words) and words[i + 1][:1].isupper()
        )
        if joins:
            current.append(raw)
            continue
        if keep:
            part = word.split("-")[0] if "-" in word and not word.isupper() else word  # "Chinese-made" -> "Chinese"
            if part[:1].isupper() and part.lower() not in _NAME_SUFFIXES and len(part.strip(".")) > 1:
                current.append(part.rstrip("."))
        if not keep or raw.rstrip().endswith((",", "?", ";", ":", "'s", "’s")) or raw != raw.rstrip('"”)'):
            if current:
                names.append(tuple(current))
            current = []
    if current:
        names.append(tuple(current))
    names = [n[: max(i for i, w in enumerate(n) if w not in _JOINERS) + 1] for n in names]
    if frame(question).answer_type is AnswerType.PLACE:
        # "Which country in Southeast Asia…": the answer names a place within the region, not the region
        names = [n for n in names if spans(" ".join(n), AnswerType.PLACE) != [" ".join(n)]]
    return Constraints(tuple(dict.fromkeys(names)), frozenset(years))


def _form_named(form: str, text: str, low: str) -> bool:
    """Is `form` written in `text`? A short acronym only in capitals ("US" is not the pronoun "us"); a longer word
    also as the start of a word ("Japan" in "Japanese"), a short one only whole ("Li" is not in "lithium")."""
    if form.isupper() and len(form) <= 3:
        return bool(re.search(rf"(?<![\w-]){re.escape(form)}s?(?![\w-])", text))
    key = form.lower()
    return bool(re.search(rf"(?<![\w-]){re.escape(key)}" + (r"(?![\w-])" if len(key) < 4 else ""), low))


def _shouted(question: str) -> bool:
    """Is the question written in capitals (most of its words), so that a capital marks no name?

    >>> _shouted("WHAT IS THE 2nd OBJECTIVE OF REGULATORY EFFICIENCY?"), _shouted("What did the EU and BYD agree?")
    (True, False)
    """
    words = re.findall(r"[^\W\d_]{2,}", question)
    return len(words) >= 3 and sum(w.isupper() for w in words) >= 0.8 * len(words)


def _misspelt(key: str, words: set[str]) -> bool:
    """A name of five letters or more written with one slip (a letter left out, added, changed or two swapped;
    two slips from ten letters): "Neflix" and "Netfilx" name Netflix."""
    if len(key) < 5:
        return False
    allowed = 2 if len(key) >= 10 else 1
    return any(
        abs(len(w) - len(key)) <= allowed and _edits(key, w, allowed) <= allowed for w in words if w[:1] == key[:1]
    )


def _edits(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring), cut at limit+1."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return prev[-1]


def _named(word: str, text: str, low: str, words: set[str], names: Names) -> bool:
    if re.fullmatch(r"[A-Z]{2,}s", word) or word in names.counted:
        return True  # "EVs", "NEVs": kinds of things, the question's topic, not a name (`rag.load.aliases`)
    if any(_form_named(form, text, low) for form in names.forms(word)):
        return True
    if re.fullmatch(r"[A-Z]{2,5}", word) and spelled_out(word, text):
        return True  # "WTO" by "World Trade Organization", "EV" by "electric vehicles", where no document defined it
    key = word.lower()
    if len(key) >= _PREFIX and not word.isupper():
        stem = key[:_PREFIX]
        return any(w.startswith(stem) for w in words) or _misspelt(key, words)
    return False


def _phrase_named(name: tuple[str, ...], text: str, low: str, words: set[str], names: Names) -> bool:
    phrase = " ".join(name)
    if len(name) > 1 and any(_form_named(form, text, low) for form in names.forms(phrase)):
        return True
    return all(_named(w, text, low, words, names) for w in name if w not in _JOINERS)


def uncovered(c: Constraints, text: str, names: Names | None = None) -> list[str]:
    """The constraints `text` does not name: names as written in the question, then years.

    >>> q = constraints("How many vehicles did South Korea export to Russia in 2023?")
    >>> uncovered(q, "In 2023 Korean makers exported 2.76 million vehicles to 196 countries.")
    ['Russia']
    >>> uncovered(constraints("What did Washington levy on Tesla's EVs?"), "The United States set 100% on Tesla's electric vehicles.")
    []
    >>> uncovered(constraints("How many NEVs were sold?"), "Global NEV sales exceeded 19 million.")
    []
    """
    low = text.lower()
    words = set(re.findall(r"[^\W\d_][\w-]*", low))
    names = names or Names()
    missing = [" ".join(name) for name in c.names if not _phrase_named(name, text, low, words, names)]
    if c.years and not c.years & years_in(text):
        missing.extend(sorted(c.years))
    return missing
