"""What a question asks for, read without a model: the answer type, the years, the qualifiers, and the spans that answer.

`frame(question)` gives a `Frame`: the kind of answer wanted (a quantity, a date, a place, an
organisation, a person, a reason), the years it names, and the qualifiers it sets ("final"
against "provisional", "exports" against "imports", "net" against "gross"). `spans(text,
kind)` finds the verbatim spans of a kind in a sentence, for the lead line and for
disagreements: quantities with their units ("4.91 million", "17.0%", "$150 billion"), dates
("5 July 2024", "2023"), and places (ISO country and subdivision names from `pycountry`, countries'
other names and capitals from `countryinfo`, and world regions: `rag.names`).

Not handled: relative periods ("last year", "the first half") beyond the years they name,
spelled-out numbers ("four million"), person names beyond capitalised word pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from rag.names import Country, countries, country, regions
from rag.terms import STOPWORDS, content_terms


class AnswerType(str, Enum):
    QUANTITY = "quantity"
    DATE = "date"
    PLACE = "place"
    ORGANISATION = "organisation"
    PERSON = "person"
    REASON = "reason"
    OTHER = "other"


_W = r"(?:[\w'’.-]+ ){0,3}"  # up to three words between "which"/"what" and the noun that names the answer
_MEASURES = (
    r"share|percentage|proportion|number|value|rate|rates|price|prices|capacity|amount|total|figure|level|"
    r"size|volume|tariffs?|dut(?:y|ies)|cost|costs|investment|penetration|growth|sales|exports|imports|"
    r"output|production|tax|taxes|fee|fees|target|targets|revenue|profit|margin|count|forecast|projection"
)
_TYPE_RULES: tuple[tuple[AnswerType, re.Pattern], ...] = tuple(
    (t, re.compile(p, re.IGNORECASE))
    for t, p in (
        (
            AnswerType.REASON,
            r"^\s*(why|how come)\b|\bwhat (reasons?|drove|drives|caused|causes|explains|led)\b|\bwhy\b",
        ),
        (AnswerType.DATE, rf"^\s*when\b|\b(what|which) {_W}(year|date|month|day)\b|\bsince when\b|\bby when\b"),
        (
            AnswerType.PLACE,
            rf"^\s*where\b|\b(which|what) {_W}(countr(y|ies)|cit(y|ies)|markets?|regions?|nations?|"
            rf"destinations?|provinces?|states?|places?|locations?)\b(?!\s+(?:{_MEASURES})\b)",
        ),
        (
            AnswerType.PERSON,
            rf"\b(which|what) {_W}(person|executive|chairman|ceo|founder|minister|president|analyst)\b|"
            r"^\s*who (is|was) the (chairman|ceo|president|founder|head|chief)\b|"
            r"^\s*who (announced|said|inaugurated|opened|signed|launched|led)\b",
        ),
        (
            AnswerType.ORGANISATION,
            rf"\b(which|what) {_W}(compan(y|ies)|\w*makers?|brands?|firms?|"
            r"manufacturers?|organi[sz]ations?|agenc(y|ies)|bod(y|ies)|groups?|associations?|"
            r"institutions?|sources?|exporters?|banks?|governments?|ministr(y|ies))\b|^\s*who\b",
        ),
        (
            AnswerType.QUANTITY,
            rf"\bhow (many|much|large|big|fast|high|low|far)\b|\bby how\b|\bwhat {_W}({_MEASURES})\b|"
            r"\bwhat did\b.*\bcost\b|\b(percent|percentage|%)\b|\bhow did\b.*\bcompare\b",
        ),
    )
)

# Qualifier pairs: a question naming one side wants sentences about it, not the other.
_QUALIFIERS: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a), frozenset(b))
    for a, b in (
        ({"final", "definitive", "definitively"}, {"provisional", "provisionally", "preliminary", "pre-disclosure"}),
        ({"provisional", "provisionally", "preliminary"}, {"final", "definitive", "definitively"}),
        ({"net"}, {"gross"}),
        ({"gross"}, {"net"}),
        ({"import", "imports", "imported"}, {"export", "exports", "exported"}),
        ({"export", "exports", "exported"}, {"import", "imports", "imported"}),
    )
)

_YEAR = re.compile(r"(?<![\d.,])(?:19[5-9]\d|20[0-4]\d)(?!\d|,\d|\.\d)")
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}} (?:{_MONTHS})\.? (?:19|20)\d\d|(?:{_MONTHS})\.? \d{{1,2}},? (?:19|20)\d\d|"
    rf"(?:{_MONTHS})\.? (?:19|20)\d\d|(?:early |late |mid-)?(?:19|20)\d\d(?:s\b)?)"
)
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = r"(?:million|billion|trillion|thousand|bn|mn|m|k)\b"
# A figure general English writes in words, always with its scale: "nearly six million", "two billion euros".
_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {w: 10 * i for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)}
_WORD_NUMBER = rf"(?:{'|'.join(sorted(_WORD_NUMBERS, key=len, reverse=True))})(?=\s(?:million|billion|trillion)\b)"
# Units general English writes after a figure: percentages, energy, money, time and multiples.
_UNIT = (
    r"(?:%|per ?cent\b|percentage points?\b|basis points?\b|bps?\b|pp\b|[kMGT]Wh\b|/kWh|[kMG]W\b|"
    r"dollars?\b|euros?\b|pounds?\b|yuan\b|yen\b|won\b|rupees?\b|francs?\b|pesos?\b|reais\b|rand\b|"
    r"years?\b|months?\b|weeks?\b|days?\b|hours?\b|times\b|fold\b|units?\b)"
)
UNIT = re.compile(_UNIT, re.IGNORECASE)
# What a figure counts, as the words after it write it: a plural noun, perhaps with one modifier before it
# ("6.4 million vehicles", "1.2 million new-energy cars", "34 plants"); never a word of grammar ("2023 was").
_GRAMMAR = "|".join(sorted((w for w in STOPWORDS if len(w) > 1), key=len, reverse=True))
_COUNTED = rf"(?:\s+(?!(?:{_GRAMMAR})\b)[a-z][a-z-]*)?\s+(?!(?:{_GRAMMAR})\b)[a-z][a-z-]*[^\Wsu]s\b"
_QUANTITY = re.compile(
    rf"(?<![/\w.])(?:(?:about|around|over|more than|nearly|almost|some|up to|above|below|less than|roughly|at least|"
    rf"just over|just under|close to|approximately)\s+)?"
    rf"(?:US\$|[$€¥£])?\s?(?:{_NUMBER}|{_WORD_NUMBER})(?:\s?{_SCALE})?(?:\s?(?:{_UNIT})|(?-i:{_COUNTED}))?(?![/\d])",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def country_code(place: str) -> tuple[str, bool] | None:
    """(ISO alpha-2 code, whether the place is the country itself) for a country or a province, state or region of
    one (pycountry's subdivisions), or None (a region such as "Southeast Asia", or a name several countries share).

    >>> country_code("Thailand"), country_code("Rayong"), country_code("Russia"), country_code("Southeast Asia")
    (('TH', True), ('TH', False), ('RU', True), None)
    """
    import pycountry

    known = country(place)  # "Russia", "South Korea", "the UK", "U.S.": countryinfo's names and other spellings
    if known and known.code and known.demonym.lower() != place.lower():
        return known.code, True
    try:
        return pycountry.countries.lookup(place).alpha_2, True
    except LookupError:
        pass
    codes = {s.country_code for s in pycountry.subdivisions if s.name == place}
    return (codes.pop(), False) if len(codes) == 1 else None


def _place_form(form: str, place: Country) -> bool:
    """A country's name or capital as a place in text: not its demonym, and not a two-letter code unless it is the
    initials of the name ("US", "UK"; "IN" or "IT" would match capitalised headings)."""
    if form == place.demonym:
        return False
    initials = "".join(w[0] for w in place.name.split() if w[:1].isupper())
    return len(form) > 2 or form == initials


@lru_cache(maxsize=1)
def _places() -> re.Pattern:
    import pycountry  # ISO 3166 names: a maintained list beats one we would type

    names = set(regions())
    names.update(form for c in countries().values() for form in c.forms if _place_form(form, c))
    for c in pycountry.countries:
        names.update(getattr(c, a) for a in ("name", "common_name", "official_name") if hasattr(c, a))
    names.update(s.name for s in pycountry.subdivisions if len(s.name) > 3)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")


_ORG = re.compile(r"\b(?:[A-Z]{2,}[A-Za-z&-]*|[A-Z][a-z]+(?:[ -][A-Z][A-Za-z&]+)+|[A-Z][a-z]*[A-Z]\w*)\b")
_REASON = re.compile(
    r"\b(because|due to|as a result|owing to|since|driven by|thanks to|reasons?|so that|in order to|"
    r"aim(?:s|ed)? to|to avoid|to get around|to bypass|to qualify|to cut|to reduce|helped|allow(?:s|ed)?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Frame:
    """What a question asks for."""

    text: str
    answer_type: AnswerType
    years: frozenset[str]
    qualifiers: tuple[tuple[frozenset[str], frozenset[str]], ...]  # (asked side, opposite side) pairs it sets
    terms: frozenset[str]


def frame(question: str) -> Frame:
    """
    >>> f = frame("What definitive duty did the EU set for BYD in 2024?")
    >>> f.answer_type.value, sorted(f.years), [sorted(a)[0] for a, _ in f.qualifiers]
    ('quantity', ['2024'], ['definitive'])
    """
    answer_type = next((t for t, rule in _TYPE_RULES if rule.search(question)), AnswerType.OTHER)
    words = {w.lower().strip(".,?!;:'’") for w in question.split()}
    qualifiers = tuple((asked, opposite) for asked, opposite in _QUALIFIERS if words & asked and not words & opposite)
    return Frame(
        question,
        answer_type,
        frozenset(_YEAR.findall(question)),
        qualifiers,
        frozenset(content_terms(question)),
    )


# Words that say which document a question asks about ("according to the commentary", "does the report say",
# "as the Caixin piece claims"): they name where to look, not what, and no sentence of the document repeats them.
_DOC = (
    r"(?:commentary|piece|article|digest|briefing|report|author|document|paper|study|filing|source|text|op-ed|"
    r"column)s?"
)
_DOC_REF = rf"(?:[Tt]he |[Tt]his |[Tt]hat |[Tt]hese )?(?:[A-Z][\w&.'’-]* )?{_DOC}"
DOCUMENT_KIND = re.compile(rf"\b{_DOC_REF}\b")  # "the commentary", "the Caixin piece": a document named by its kind
_SAY = r"(?:say|says|said|claim|claims|note|notes|argue|argues|report|reports|state|states|write|writes)"
_ATTRIBUTION = re.compile(
    rf",?\s*\b(?i:according to|per|as|in) {_DOC_REF}(?: {_SAY})?\b,?|"
    rf"\b(?i:does|do|did) {_DOC_REF}(?: {_SAY}(?: that)?)?\b|"
    rf"^(?:[Tt]he )?(?:[A-Z][\w&.'’-]* )?{_DOC} {_SAY}\b"
)


def without_attribution(question: str) -> str:
    """The question less the words that name the document it asks about, to compare with sentences by meaning.

    >>> without_attribution("Which markets does the commentary say also feature prominently?")
    'Which markets also feature prominently?'
    >>> without_attribution("Did China ship six million vehicles in 2023, as the Caixin piece claims?")
    'Did China ship six million vehicles in 2023?'
    >>> without_attribution("According to the digest, how many vehicles did China export?")
    'how many vehicles did China export?'
    >>> without_attribution("Which report did BYD publish?")
    'Which report did BYD publish?'
    """
    text = " ".join(_ATTRIBUTION.sub(" ", question).split())
    return re.sub(r"\s+([,?.!;:])", r"\1", text).lstrip(", ") or question


def wanted_unit(question: str) -> str | None:
    """The unit a quantity question asks for, when its words say.

    >>> wanted_unit("What share of exports were electric?"), wanted_unit("How many cars?"), wanted_unit("Why?")
    ('percent', 'count', None)
    """
    q = question.lower()
    if re.search(r"\b(share|percent|percentage|proportion|rate|duty|duties|tariff|penetration|growth|margin)\b|%", q):
        return "percent"
    if re.search(r"\b(cost|price|invest|investment|worth|spend|revenue|profit|value|dollars?|euros?)\b", q):
        return "money"
    if re.search(r"\bhow many\b|\bnumber of\b|\b(sales|exports|imports|output|production|sold|exported|built)\b", q):
        return "count"
    return None


def years_in(text: str) -> set[str]:
    """
    >>> sorted(years_in("4.91 million in 2023, after 3.1 million in 2022 (1,234 units)"))
    ['2022', '2023']
    """
    return set(_YEAR.findall(text))


def words_in(text: str) -> set[str]:
    return {w.lower().strip(".,?!;:'’()\"") for w in text.split()}


def spans(text: str, answer_type: AnswerType) -> list[str]:
    """The verbatim spans of a kind in `text`, in order of appearance.

    >>> spans("Exports hit a record 4.91 million in 2023, up 57.9%, and $150 billion of parts.", AnswerType.QUANTITY)
    ['4.91 million', '57.9%', '$150 billion']
    >>> spans("CAAM counted nearly six million vehicles, not six cars.", AnswerType.QUANTITY)
    ['nearly six million vehicles']
    >>> spans("The duties started on 5 July 2024 and were final in October 2024.", AnswerType.DATE)
    ['5 July 2024', 'October 2024']
    >>> spans("BYD builds plants in Thailand, Hungary and Brazil.", AnswerType.PLACE)
    ['Thailand', 'Hungary', 'Brazil']
    """
    if answer_type is AnswerType.QUANTITY:
        dates = [m.span() for m in _DATE.finditer(text) if not _YEAR.fullmatch(m.group(0))]
        found = [m for m in _QUANTITY.finditer(text) if not any(a <= m.start() < b for a, b in dates)]
        return [m.group(0).strip() for m in found if _is_quantity(m.group(0).strip())]
    if answer_type is AnswerType.DATE:
        return [m.group(0) for m in _DATE.finditer(text)]
    if answer_type is AnswerType.PLACE:
        return [m.group(0) for m in _places().finditer(text)]
    if answer_type in (AnswerType.ORGANISATION, AnswerType.PERSON):
        places = set(spans(text, AnswerType.PLACE))
        first = text.split(" ", 1)[0]
        return [m.group(0) for m in _ORG.finditer(text) if m.group(0) not in places and m.group(0) != first]
    if answer_type is AnswerType.REASON:
        return [m.group(0) for m in _REASON.finditer(text)]
    return []


def _is_quantity(span: str) -> bool:
    """A number that is more than a year or a stray digit: a year with only a noun after it ("2023 vehicle") is a year.

    >>> _is_quantity("2023 vehicle"), _is_quantity("2,023 vehicles"), _is_quantity("$2023"), _is_quantity("7")
    (False, True, True, False)
    """
    if re.search(_WORD_NUMBER, span, re.IGNORECASE):
        return True
    number = re.search(_NUMBER, span)
    if not number:
        return False
    has_scale = re.search(rf"[$€¥£%]|{_SCALE}|per ?cent", span, re.IGNORECASE)
    if _YEAR.fullmatch(number.group(0)) and not has_scale:
        return False
    return bool(has_scale) or len(re.sub(r"\D", "", number.group(0))) >= 2 or "." in number.group(0)


_SCALES = {"million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12, "thousand": 1e3, "k": 1e3}
_SCALE_IN_SPAN = re.compile(r"(million|billion|trillion|thousand|bn|mn)\b|(?<=\d)\s?[mk]\b", re.IGNORECASE)
# A table's units line: "(In millions, except per-share amounts)", "in thousands of U.S. dollars", "($ in billions)".
_UNITS_LINE = re.compile(r"\bin\s+(?:\w+\s+)?(millions|billions|thousands|trillions)\b", re.IGNORECASE)


def value_of(span: str, units: str = "") -> float | None:
    """A quantity span as a number, for comparing two sources' figures; None when it has no number. A figure with
    no scale of its own takes its table's units line (`units`); the sign is left to `negative` ("(1,577)").

    >>> value_of("over 6 million"), value_of("5.221 million"), value_of("4,422,682 vehicles"), value_of("17.0%")
    (6000000.0, 5221000.0, 4422682.0, 17.0)
    >>> value_of("nearly six million vehicles")
    6000000.0
    >>> {value_of("(1,577)", "(In millions)"), value_of("$1,577 million"), value_of("1.577 billion")}
    {1577000000.0}
    """
    m = re.search(_NUMBER, span)
    word = None if m else re.search(_WORD_NUMBER, span, re.IGNORECASE)
    if not m and not word:
        return None
    number = float(m.group(0).replace(",", "")) if m else float(_WORD_NUMBERS[word.group(0).lower()])
    scale = _SCALE_IN_SPAN.search(span)
    if scale:
        return number * _SCALES[scale.group(0).strip().lower()]
    line = _UNITS_LINE.search(units)
    return number * _SCALES[line.group(1).lower().rstrip("s")] if line else number


def negative(span: str) -> bool:
    """Reports print a negative figure in parentheses or with a minus sign.

    >>> negative("(1,577)"), negative("$(12.5)"), negative("-3.2%"), negative("1,577")
    (True, True, True, False)
    """
    return bool(re.match(r"^\W*\(\s*[$€£¥]?\s*\d|^\s*[$€£¥]?\s*\(|^\s*[-−–]\s*[$€£¥]?\d", span))


def unit_of(span: str) -> str:
    """The kind of figure a span gives: percent, money, count (vehicles, units, plain numbers) or another unit.

    >>> unit_of("17.0%"), unit_of("$150 billion"), unit_of("4.91 million"), unit_of("40 GWh")
    ('percent', 'money', 'count', 'gwh')
    """
    low = span.lower()
    if "%" in low or "per cent" in low or "percent" in low:
        return "percent"
    if re.search(r"[$€¥£]|euro|dollar|yuan|yen|won\b|rupee|reais|peso", low):
        return "money"
    m = re.search(r"(gwh|kwh|mwh|years?|months?|days?|times|fold|plants?|workers?|jobs?|dealers?|models?)\b", low)
    return m.group(1).rstrip("s") if m else "count"
