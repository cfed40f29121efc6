"""The acronyms a document defines for itself, learned from its own text at ingest and stored with it.

Two ways a document ties an acronym to its long form:
1. It defines it: "China Association of Automobile Manufacturers (CAAM)", "new-energy vehicles (NEVs)",
   "Johnson & Johnson (“J&J”)", or the other way round, "CAAM (China Association of ...)".
2. It uses the acronym and, somewhere, writes out a capitalised phrase whose initials spell it
   ("EU" and "European Union" in one briefing).

A long form's initials are those of its words, hyphenated parts counted apart ("new-energy vehicles" ->
n, e, v), with "of", "and", "the", "for", "&" and the like skipped when they do not spell a letter. The
answerer treats an acronym and its long forms as one name (`rag.answer.coverage`).

Not handled: acronyms whose letters are not word initials ("GmbH"), or expansions written only in
lower case without a definition in brackets (too easy to match by chance: "every vehicle" for "EV").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.names import SKIPPABLE, spells

_ACRONYM = r"[A-Z][A-Za-z&]{0,2}[A-Z&][A-Z&0-9]{0,6}s?"
_QUOTES = "\"'“”‘’"
# "Long Form (ACR)" or "Long Form (“ACR”)"; the long form is read back from just before the bracket.
_DEFINED = re.compile(rf"\(\s*[{_QUOTES}]?({_ACRONYM})[{_QUOTES}]?\s*\)")
# "ACR (Long Form)"
_DEFINES = re.compile(rf"\b({_ACRONYM})\s*\(([^()]{{4,120}})\)")
_USED = re.compile(rf"(?<![\w&-])({_ACRONYM})(?![\w&-])")
_CAPITALISED_RUN = re.compile(
    r"(?:[A-Z][\w'’.-]*|&|of|and|the|for|on|in|de|du)(?:\s+(?:[A-Z][\w'’.-]*|&|of|and|the|for|on|in|de|du))+"
)
MAX_ALIASES = 200  # per document: a budget, so a pathological text cannot bloat its metadata


def counted_acronyms(texts: Iterable[str]) -> list[str]:
    """Acronyms the text writes in the plural ("EVs", "SUVs", "IPOs"): names of kinds of things, which are counted,
    not of one thing; a question's "EV" is its topic, not a name a paragraph must repeat.

    >>> counted_acronyms(["Sales of EVs and SUVs rose.", "The EU and BYD acted; one EV."])
    ['EV', 'SUV']
    """
    found = {m.group(1) for text in texts for m in re.finditer(r"(?<![\w&-])([A-Z]{2,6})s(?![\w&-])", text)}
    return sorted(found)[:MAX_ALIASES]


def _letters(acronym: str) -> str:
    core = acronym[:-1] if acronym.endswith("s") and acronym[:-1].isupper() else acronym
    return "".join(ch for ch in core.lower() if ch.isalpha())


def _long_form_before(text: str, end: int, letters: str) -> str | None:
    """The shortest run of words ending at `end` whose initials spell `letters`."""
    words = text[:end].split()
    for n in range(1, min(len(words), 2 * len(letters) + 2) + 1):
        tail = [w.strip(",;:") for w in words[-n:]]
        if tail and tail[0].lower() not in SKIPPABLE and spells(tail, letters):
            return " ".join(tail)
    return None


def learn_aliases(texts: Iterable[str]) -> dict[str, list[str]]:
    """Acronym -> its long forms, as this document writes them.

    >>> learn_aliases(["The China Association of Automobile Manufacturers (CAAM) counts exports.",
    ...                "Sales of new-energy vehicles (NEVs) rose.", "The EU acted.", "The European Union said."])
    {'CAAM': ['China Association of Automobile Manufacturers'], 'NEV': ['new-energy vehicles'], 'EU': ['European Union']}
    """
    texts = list(texts)
    found: dict[str, list[str]] = {}

    def add(acronym: str, long_form: str) -> None:
        key = acronym[:-1] if acronym.endswith("s") and acronym[:-1].isupper() else acronym
        forms = found.setdefault(key, [])
        if long_form not in forms and len(found) <= MAX_ALIASES:
            forms.append(long_form)

    for text in texts:
        for m in _DEFINED.finditer(text):
            long_form = _long_form_before(text, m.start(), _letters(m.group(1)))
            if long_form:
                add(m.group(1), long_form)
        for m in _DEFINES.finditer(text):
            inside = m.group(2).strip()
            if spells(inside.split(), _letters(m.group(1))):
                add(m.group(1), inside)
    used = {_letters(a): a for text in texts for a in _USED.findall(text) if len(_letters(a)) >= 2}
    for text in texts:
        for m in _CAPITALISED_RUN.finditer(text):
            words = re.sub(r"['’]s\b", "", m.group(0)).split()  # "European Union's" -> "European Union"
            while words and words[-1].lower() in SKIPPABLE:
                words.pop()
            while words and words[0].lower() in SKIPPABLE:
                words.pop(0)
            initials = "".join(w[0].lower() for w in words if w.lower() not in SKIPPABLE)
            acronym = used.get(initials)
            if acronym and len(words) >= 2 and spells(words, initials):
                add(acronym, " ".join(words))
    return {k: v for k, v in found.items() if v}
