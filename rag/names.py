"""The forms one name takes in text, from general knowledge and from the corpus itself, never a list of ours.

- Countries (the `countryinfo` package): the name, its codes and other spellings, the demonym and the
  capital, which news writes for the government ("Washington imposed", "Beijing says"); "Korea" for
  "South Korea". So "US" is named by "United States", "Japanese" by "Japan", "Türkiye" by "Turkey".
- Acronyms a document defines or spells out (`rag.load.aliases`, stored in each document's metadata at
  ingest): "CAAM" is named by "China Association of Automobile Manufacturers", and the other way round.

`Names.forms(name)` gives every form of a name, itself included; `rag.answer.coverage` asks whether a
text holds any of them.

Not handled: regions and blocs that are no country ("the EU" is known only where a document spells it
out), cities other than capitals, and people's names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Regions everyday English names that no country grouping above spells so (general geography, not a corpus's).
_EVERYDAY_REGIONS = ("Latin America", "South America", "Central America", "Middle East", "Caribbean", "Scandinavia")
_COMPASS = re.compile(r"^(?:North|South|East|West)\s+(.+)$")
_LATIN = re.compile(r"^[A-Za-z .,'’&()-]+$")


@dataclass(frozen=True)
class Country:
    name: str
    demonym: str
    forms: frozenset[str]  # the name, codes, other spellings, demonym and capitals, as written
    code: str = ""  # ISO 3166 alpha-2


@functools.cache
def countries() -> dict[str, Country]:
    """Lower-cased form -> its country. Loaded once: static data.

    "Korea" (a compass name's bare part) is a country of its own here, with the demonym "Korean", so that a
    follow-up "And Korea?" after "Japanese makers" reads "Korean makers".
    """
    from countryinfo import all_countries

    table: dict[str, Country] = {}

    def add(name: str, demonym: str, forms: set[str], code: str) -> None:
        forms = {f for f in forms if f and _LATIN.match(f) and "," not in f}
        record = Country(name, demonym, frozenset(forms), code)
        for form in forms:
            table.setdefault(form.lower(), record)

    # where two countries share a form ("American": the United States, the Northern Mariana Islands), the more
    # populous one keeps it
    infos = sorted((c.info() for c in all_countries()), key=lambda i: -(i.get("population") or 0))
    for info in infos:
        name, demonym = info.get("name") or "", info.get("demonym") or ""
        capital = info.get("capital") or ()
        capitals = [capital] if isinstance(capital, str) else list(capital)  # some countries have several
        forms = {name, *(info.get("altSpellings") or ()), demonym, *capitals}
        forms |= {f.removesuffix(" D.C.") for f in forms}
        code = (info.get("ISO") or {}).get("alpha2", "")
        if m := _COMPASS.match(name):  # "South Korea" is often just "Korea", its people "Korean"
            bare, bare_demonym = m.group(1), _COMPASS.sub(r"\1", demonym)
            forms |= {bare, bare_demonym}
            add(bare, bare_demonym, forms, code)
        add(name, demonym, forms, code)
    return table


def country(form: str) -> Country | None:
    """The country a word names, in any of its forms ("the US", "U.S.", "Japanese", "Seoul").

    >>> country("U.S.").name, country("American").name, country("Seoul").name
    ('United States', 'United States', 'Korea')
    """
    key = form.lower().removeprefix("the ")
    if re.fullmatch(r"(?:[a-z]\.){2,}", key):
        key = key.replace(".", "")  # "U.S." is "US"
    return countries().get(key)


@functools.cache
def regions() -> frozenset[str]:
    """The world's regions as `countryinfo` groups countries ("Asia", "Western Europe", "South-eastern Asia"), with
    their everyday compass spellings ("Southeast Asia")."""
    from countryinfo import all_countries

    found = set()
    for c in all_countries():
        info = c.info()
        found.update(r for r in (info.get("region"), info.get("subregion")) if r)
    for r in list(found):
        everyday = re.sub(
            r"^(North|South)-?(east|west)ern ", lambda m: m.group(1) + m.group(2).lower() + " ", r, flags=re.IGNORECASE
        )
        everyday = re.sub(r"^(North|South|East|West|Central)ern ", r"\1 ", everyday)
        found.add(everyday[:1].upper() + everyday[1:])
    return frozenset(found | set(_EVERYDAY_REGIONS))


class Names:
    """The forms of a name, from countries and from the acronyms a corpus defines (`aliases`: acronym -> long forms)."""

    def __init__(self, aliases: Mapping[str, Iterable[str]] | None = None, counted: Iterable[str] = ()):
        self.counted = frozenset(counted)  # acronyms of kinds of things ("EV"): a topic, not a name to cover
        self._aliases: dict[str, set[str]] = {}
        for acronym, long_forms in (aliases or {}).items():
            group = {acronym, *long_forms}
            for form in group:
                self._aliases.setdefault(form.lower(), set()).update(group)

    def forms(self, name: str) -> frozenset[str]:
        """Every form of `name`, itself included.

        >>> sorted(Names({"CAAM": ["China Association of Automobile Manufacturers"]}).forms("CAAM"))
        ['CAAM', 'China Association of Automobile Manufacturers']
        >>> {"United States", "American", "USA"} <= Names().forms("US")
        True
        """
        place = country(name)
        return frozenset({name, *(place.forms if place else ()), *self._aliases.get(name.lower(), ())})


SKIPPABLE = frozenset({"of", "and", "the", "for", "on", "in", "de", "du", "&", "a", "an", "to"})


def spells(words: list[str], letters: str) -> bool:
    """Do the words' initials spell `letters` (lower case), hyphenated parts apart, skipping small words?

    >>> spells("China Association of Automobile Manufacturers".split(), "caam"), spells(["every"], "ev")
    (True, False)
    """
    parts = [p for w in words for p in w.split("-") if p]

    def match(i: int, j: int) -> bool:
        if j == len(letters):
            return i == len(parts)
        if i == len(parts):
            return False
        p = parts[i].lower()
        if p[:1] == letters[j] and match(i + 1, j + 1):
            return True
        return p in SKIPPABLE and match(i + 1, j)

    return len(parts) <= 2 * len(letters) + 2 and match(0, 0)


def spelled_out(acronym: str, text: str) -> bool:
    """Does `text` write out `acronym` as consecutive words whose initials spell it?

    >>> spelled_out("WTO", "China took the case to the World Trade Organization."), spelled_out("EU", "Europe")
    (True, False)
    """
    letters = acronym.lower()
    words = re.findall(r"[\w&'’]+", text)  # hyphenated parts apart: "battery-electric vehicles" spells EV
    longest = 2 * len(letters) + 2
    for start, word in enumerate(words):
        if word[:1].lower() != letters[0] or word.lower() in SKIPPABLE:
            continue
        for n in range(1, longest + 1):
            run = words[start : start + n]
            if len(run) < n:
                break
            if run[-1].lower() not in SKIPPABLE and spells(run, letters):
                return True
    return False


def corpus_names(metas: Iterable[Mapping]) -> Names:
    """The names a corpus's documents taught at ingest (`meta["aliases"]`, `meta["counted_acronyms"]`)."""
    metas = list(metas)
    return Names(merged_aliases(metas), {a for meta in metas for a in meta.get("counted_acronyms") or ()})


def merged_aliases(metas: Iterable[Mapping]) -> dict[str, list[str]]:
    """The acronyms of every document's metadata (`meta["aliases"]`), merged."""
    out: dict[str, list[str]] = {}
    for meta in metas:
        for acronym, long_forms in (meta.get("aliases") or {}).items():
            known = out.setdefault(acronym, [])
            known.extend(f for f in long_forms if f not in known)
    return out
