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

_COMPASS = re.compile(r"^(?:North|South|East|West)\s+(.+)$")
_LATIN = re.compile(r"^[A-Za-z .,'’&()-]+$")


@dataclass(frozen=True)
class Country:
    name: str
    demonym: str
    forms: frozenset[str]  # the name, codes, other spellings, demonym and capitals, as written


@functools.cache
def countries() -> dict[str, Country]:
    """Lower-cased form -> its country. Loaded once: static data.

    "Korea" (a compass name's bare part) is a country of its own here, with the demonym "Korean", so that a
    follow-up "And Korea?" after "Japanese makers" reads "Korean makers".
    """
    from countryinfo import all_countries

    table: dict[str, Country] = {}

    def add(name: str, demonym: str, forms: set[str]) -> None:
        forms = {f for f in forms if f and _LATIN.match(f) and "," not in f}
        record = Country(name, demonym, frozenset(forms))
        for form in forms:
            table.setdefault(form.lower(), record)

    for country in all_countries():
        info = country.info()
        name, demonym = info.get("name") or "", info.get("demonym") or ""
        capital = info.get("capital") or ()
        capitals = [capital] if isinstance(capital, str) else list(capital)  # some countries have several
        forms = {name, *(info.get("altSpellings") or ()), demonym, *capitals}
        forms |= {f.removesuffix(" D.C.") for f in forms}
        if m := _COMPASS.match(name):  # "South Korea" is often just "Korea", its people "Korean"
            bare, bare_demonym = m.group(1), _COMPASS.sub(r"\1", demonym)
            forms |= {bare, bare_demonym}
            add(bare, bare_demonym, forms)
        add(name, demonym, forms)
    return table


def country(form: str) -> Country | None:
    """The country a word names, in any of its forms ("the US", "Japanese", "Seoul")."""
    return countries().get(form.lower().removeprefix("the "))


class Names:
    """The forms of a name, from countries and from the acronyms a corpus defines (`aliases`: acronym -> long forms)."""

    def __init__(self, aliases: Mapping[str, Iterable[str]] | None = None):
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


def merged_aliases(metas: Iterable[Mapping]) -> dict[str, list[str]]:
    """The acronyms of every document's metadata (`meta["aliases"]`), merged."""
    out: dict[str, list[str]] = {}
    for meta in metas:
        for acronym, long_forms in (meta.get("aliases") or {}).items():
            known = out.setdefault(acronym, [])
            known.extend(f for f in long_forms if f not in known)
    return out
