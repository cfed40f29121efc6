"""Content terms of a text: lowercased words, English stopwords removed, Snowball-stemmed.

Used where a lexical check complements embeddings (sentence scoring, support checks,
follow-up rewriting). Numbers are kept as terms ("6.4", "2023"). Not handled: synonyms.

>>> sorted(content_terms("Exports of vehicles rose in 2023"))
['2023', 'export', 'rose', 'vehicl']
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?")
_STOP = frozenset(STOPWORDS_EN) | {"s", "t"}
STOPWORDS = _STOP  # English words of grammar, lower case
# Words that open or join a question and name nothing, even capitalised: question words, auxiliaries, the commonest
# prepositions and articles. The follow-up rules skip them; the answerer's lists of words that name nothing extend them.
QUESTION_WORDS = frozenset(
    {
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "has",
        "have",
        "had",
        "according",
        "and",
        "in",
        "on",
        "by",
        "for",
        "the",
        "a",
        "an",
        "of",
        "to",
        "i",
    }
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def content_terms(text: str) -> set[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in words if w not in _STOP and (len(w) > 1 or w.isdigit())]
    return set(_stemmer().stemWords(words))


NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> set[str]:
    """Numbers as written, without thousands separators: "6,400" and "6400" match.

    >>> sorted(numbers_in("over 6.4 million (6,400,000) in 2023, up 5%"))
    ['2023', '5', '6.4', '6400000']
    """
    return {n.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+", n) else n for n in NUMBER.findall(text)}
