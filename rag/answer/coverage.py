"""Does a paragraph say what the question is about? The names and years a question sets, checked in a text.

A near-topic question the documents cannot answer ("How many vehicles did South Korea export to
Russia in 2023?") retrieves paragraphs that share most of its words but not all of its subject:
one gives Korea's exports, another Russia's imports from China. `constraints(question)` lists what
a paragraph must name to answer it: each named thing (a proper noun, an acronym, a place, in any
form the corpus writes it: "EV" or "electric vehicle", "Japanese" or "Japan", "Brussels" or "EU")
and each year (but not the region a question asking "which country" names). `uncovered(constraints,
text)` lists those a text does not name. A question in several parts ("…in 2023, and how does it
compare with Japan?") has constraints per part (`question_parts`), and a text that names all of one
part covers it (`covers`). The extractive answerer asks this of each candidate sentence's paragraph,
its heading and its document's title (evals/abstention.md).

Not handled: a name that opens the question (its first word is capitalised anyway), names spelled
differently than by these rules ("Volkswagen" against "Wolfsburg's carmaker"), measures
("profit", "share"), which a paragraph often states without the word ("17%" for a share), and
relative periods ("last year").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.question import AnswerType, frame, spans, years_in
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
}
# Words of a company's name that the documents often leave out ("Geely Automobile" is "Geely").
_NAME_SUFFIXES = frozenset(
    {
        "motor",
        "motors",
        "automobile",
        "automotive",
        "auto",
        "group",
        "holdings",
        "co",
        "corp",
        "corporation",
        "inc",
        "ltd",
        "company",
        "limited",
    }
)
# Other ways the documents write a name: acronyms spelled out, demonyms, and capitals that stand for their
# government ("Brussels decided", "Ottawa imposed"). Each key is covered by itself or by any of its forms.
_FORMS: dict[str, tuple[str, ...]] = {
    "ev": (
        "electric vehicle",
        "electric car",
        "electric-vehicle",
        "electric-car",
        "battery-electric",
        "nev",
        "new-energy vehicle",
    ),
    "evs": ("electric vehicle", "electric car", "battery-electric", "nev", "new-energy"),
    "bev": ("battery-electric", "battery electric"),
    "bevs": ("battery-electric", "battery electric"),
    "nev": ("new-energy", "new energy", "electric vehicle", "electric car"),
    "nevs": ("new-energy", "new energy", "electric vehicle", "electric car"),
    "phev": ("plug-in hybrid", "plug-in"),
    "phevs": ("plug-in hybrid", "plug-in"),
    "eu": ("european union", "european commission", "brussels", "europe"),
    "us": ("united states", "america", "american", "washington", "u.s"),
    "usa": ("united states", "america", "american"),
    "uk": ("united kingdom", "britain", "british"),
    "iea": ("international energy agency",),
    "caam": ("china association of automobile manufacturers",),
    "wto": ("world trade organization",),
    "gm": ("general motors",),
    "vw": ("volkswagen",),
    "china": ("chinese",),
    "chinese": ("china",),
    "france": ("french",),
    "french": ("france",),
    "britain": ("british", "uk", "united kingdom"),
    "british": ("britain", "uk", "united kingdom"),
    "turkey": ("turkish", "türkiye"),
    "turkish": ("turkey", "türkiye"),
    "spain": ("spanish",),
    "spanish": ("spain",),
    "netherlands": ("dutch",),
    "dutch": ("netherlands",),
    "sweden": ("swedish",),
    "swedish": ("sweden",),
    "thailand": ("thai",),
    "thai": ("thailand",),
    "america": ("united states", "american", "us", "u.s"),
    "american": ("united states", "america", "us", "u.s"),
    "europe": ("european", "eu"),
    "european": ("europe", "eu"),
    "brussels": ("eu", "european union", "european commission"),
    "washington": ("us", "united states", "america"),
    "ottawa": ("canada", "canadian"),
    "beijing": ("china", "chinese"),
    "tokyo": ("japan", "japanese"),
    "seoul": ("korea", "korean"),
    "london": ("uk", "britain", "british"),
    "berlin": ("germany", "german"),
    "paris": ("france", "french"),
    "moscow": ("russia", "russian"),
    "delhi": ("india", "indian"),
    "ankara": ("turkey", "turkish"),
    "bangkok": ("thailand", "thai"),
    "jakarta": ("indonesia", "indonesian"),
    "canberra": ("australia", "australian"),
    "brasília": ("brazil", "brazilian"),
    "brasilia": ("brazil", "brazilian"),
}
# Names of several words the documents also write shorter.
_PHRASE_FORMS: dict[str, tuple[str, ...]] = {
    "south korea": ("korea",),
    "republic of korea": ("korea",),
    "united states": ("us", "america"),
    "united kingdom": ("uk", "britain"),
}
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
_UNITS_ASIDE = re.compile(r"\((?:in|as|expressed\s+in|measured\s+in)\b[^()]*\)", re.IGNORECASE)
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


def covers(parts: tuple[Constraints, ...], text: str) -> bool:
    """True when `text` names everything one part of the question names.

    >>> q = question_parts("How many vehicles did China export in 2023, and how does that compare with Japan?")
    >>> covers(q, "Japanese makers built 17.5 million vehicles abroad."), covers(q, "Korea exported 2.8 million.")
    (True, False)
    """
    return any(not uncovered(c, text) for c in parts)


def constraints(question: str) -> Constraints:
    """
    >>> c = constraints("How many Chinese-made cars did South Africa's dealers sell in 2023?")
    >>> c.names, sorted(c.years)
    ((('Chinese',), ('South', 'Africa')), ['2023'])
    >>> constraints("What did Geely Automobile report?").names
    (('Geely',),)
    >>> constraints("In which country of Southeast Asia did BYD build a plant?").names
    (('BYD',),)
    """
    names: list[tuple[str, ...]] = []
    current: list[str] = []
    years = set(years_in(question))
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
    if frame(question).answer_type is AnswerType.PLACE:
        # "Which country in Southeast Asia…": the answer names a place within the region, not the region
        names = [n for n in names if spans(" ".join(n), AnswerType.PLACE) != [" ".join(n)]]
    return Constraints(tuple(dict.fromkeys(names)), frozenset(years))


def _named(word: str, text: str, low: str, words: set[str]) -> bool:
    if re.fullmatch(r"[A-Z]{2,}s", word):
        word = word[:-1]  # "NEVs" is the plural of "NEV"
    key = word.lower()
    if word.isupper() and len(word) <= 3:
        found = re.search(rf"(?<![\w-]){re.escape(word)}s?(?![\w-])", text)  # "US" is not the pronoun "us"
    else:  # a prefix, so "Japan" is named by "Japanese" (but "Li" is not named by "lithium")
        found = re.search(rf"(?<![\w-]){re.escape(key)}" + (r"(?![\w-])" if len(key) < 4 else ""), low)
    if found:
        return True
    if any(re.search(rf"(?<![\w-]){re.escape(form)}", low) for form in _FORMS.get(key, ())):
        return True
    if len(key) >= _PREFIX and not word.isupper():
        stem = key[:_PREFIX]
        return any(w.startswith(stem) for w in words)
    return False


def _phrase_named(name: tuple[str, ...], text: str, low: str, words: set[str]) -> bool:
    phrase = " ".join(name).lower()
    if len(name) > 1 and (
        phrase in low or any(re.search(rf"(?<![\w-]){re.escape(f)}", low) for f in _PHRASE_FORMS.get(phrase, ()))
    ):
        return True
    return all(_named(w, text, low, words) for w in name)


def uncovered(c: Constraints, text: str) -> list[str]:
    """The constraints `text` does not name: names as written in the question, then years.

    >>> q = constraints("How many vehicles did South Korea export to Russia in 2023?")
    >>> uncovered(q, "In 2023 Korean makers exported 2.76 million vehicles to 196 countries.")
    ['Russia']
    >>> uncovered(constraints("What did Brussels levy on Tesla's EVs?"), "The EU set 7.8% for Tesla's electric cars.")
    []
    >>> uncovered(constraints("How many NEVs were sold?"), "Global NEV sales exceeded 19 million.")
    []
    """
    low = text.lower()
    words = set(re.findall(r"[^\W\d_][\w-]*", low))
    missing = [" ".join(name) for name in c.names if not _phrase_named(name, text, low, words)]
    if c.years and not c.years & years_in(text):
        missing.extend(sorted(c.years))
    return missing
