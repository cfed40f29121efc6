"""Split clean paragraph text into sentences.

A rule-based splitter tuned for news and report prose: it does not break after common
abbreviations ("U.S.", "e.g.", "Inc."), inside decimal numbers ("6.4 million"), or after
an initial ("J. Smith"). It does not handle quotations that end mid-sentence or text
without terminal punctuation (that comes back as one sentence).

A line break always ends a sentence: a table paragraph (`rag.load.table_text`) is one line per row,
with no terminal punctuation, and each row is a sentence ("iPhone — 2023: $ 51,334"). Prose
paragraphs hold no line breaks (`rag.load.paragraphs.clean_text` joins their lines).

Linear time: the abbreviation test looks only at the word before each candidate break, not at
the whole text since the last break (which made `"e.g. A " * n` quadratic).

>>> split_sentences("Exports rose to 6.4 million in the U.S. market. EVs grew too.")
['Exports rose to 6.4 million in the U.S. market.', 'EVs grew too.']
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "u.s",
    "u.k",
    "e.g",
    "i.e",
    "etc",
    "vs",
    "inc",
    "ltd",
    "co",
    "corp",
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "no",
    "fig",
    "approx",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "para",
    "paras",
    "u.s.a",
    "e.u",
    "p",
    "pp",
    "vol",
    "est",
}
# A candidate break: terminal punctuation, optional closing quote/bracket, whitespace, then a
# character that can start a sentence.
_BREAK = re.compile(r"""([.!?])(["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """
    >>> split_sentences("Caption\\nNet sales — 2023: $ 94,836\\niPhone — 2023: $ 51,334")
    ['Caption', 'Net sales — 2023: $ 94,836', 'iPhone — 2023: $ 51,334']
    """
    if "\n" in text:
        return [s for line in text.split("\n") for s in _split_line(line)]
    return _split_line(text)


def _split_line(text: str) -> list[str]:
    text = " ".join(text.split())
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BREAK.finditer(text):
        end = m.end(2)
        if m.group(1) == "." and _is_abbreviation(_last_word(text, start, m.start(1))):
            continue
        sentences.append(text[start:end].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def _last_word(text: str, start: int, end: int) -> str:
    """The last word of `text[start:end]`, in a text whose whitespace is single spaces.

    >>> _last_word("It rose. See e.g", 9, 16)
    'e.g'
    """
    while end > start and text[end - 1] == " ":
        end -= 1
    return text[max(text.rfind(" ", start, end) + 1, start) : end]


def _is_abbreviation(word: str) -> bool:
    word = word.lstrip("(\"'“‘[").lower()
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # A single capital initial such as "J." in "J. Smith".
    return len(word) == 1 and word.isalpha()
