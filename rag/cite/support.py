"""Does a cited paragraph support a sentence? Decided without an LLM judge.

Method (shared by answer verification and the evals):
1. Similarity: the highest cosine (all-MiniLM-L6-v2) between the sentence and any sentence
   of its cited paragraphs, or the whole paragraph.
2. Numbers: every number in the sentence must appear in at least one cited paragraph
   ("6.4" in "6.4 million"; thousands separators ignored).
3. supported: similarity >= SUPPORTED_AT and every number found;
   partial: similarity >= PARTIAL_AT and every number found, or similarity >= SUPPORTED_AT
   with some number missing;
   unsupported: otherwise, or when nothing is cited.

What it can detect: citations to an off-topic paragraph, and figures the cited text does not
contain. What it cannot: negation or a reversed relation ("exports fell" against "exports
rose" scores high), a number attached to the wrong thing, or claims true but from
another paragraph. The thresholds are calibrated in evals/support.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.documents import Support
from rag.embed.embedder import Embedder
from rag.sentences import split_sentences
from rag.terms import numbers_in

SUPPORTED_AT = 0.64
PARTIAL_AT = 0.44


@dataclass(frozen=True)
class SupportResult:
    support: Support
    score: float
    missing_numbers: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()  # per cited paragraph, its sentence closest to the claim


def judge(similarity: float, missing_numbers: tuple[str, ...], cited: bool = True) -> Support:
    """The decision rule of step 3, on its own so it can be tested exactly.

    >>> judge(0.8, ()).value, judge(0.8, ("6.4",)).value, judge(0.6, ()).value, judge(0.6, ("9",)).value
    ('supported', 'partial', 'partial', 'unsupported')
    """
    if not cited:
        return Support.UNSUPPORTED
    if similarity >= SUPPORTED_AT:
        return Support.SUPPORTED if not missing_numbers else Support.PARTIAL
    if similarity >= PARTIAL_AT and not missing_numbers:
        return Support.PARTIAL
    return Support.UNSUPPORTED


def check_support(embedder: Embedder, sentence: str, cited_paragraphs: list[str]) -> SupportResult:
    if not cited_paragraphs or not sentence.strip():
        return SupportResult(Support.UNSUPPORTED, 0.0)
    per_paragraph = [split_sentences(p) or [p] for p in cited_paragraphs]
    units = [u for p, sentences in zip(cited_paragraphs, per_paragraph) for u in [p, *sentences]]
    vectors = embedder.encode_queries([sentence, *units])
    sims = vectors[1:] @ vectors[0]
    similarity = float(np.max(sims))
    # The quote of each cited paragraph: its sentence closest to the claim (what a reader should see highlighted).
    quotes, start = [], 0
    for sentences in per_paragraph:
        own = sims[start + 1 : start + 1 + len(sentences)]
        quotes.append(sentences[int(np.argmax(own))])
        start += 1 + len(sentences)
    available = set().union(*(numbers_in(p) for p in cited_paragraphs))
    missing = tuple(sorted(n for n in numbers_in(sentence) if n not in available))
    return SupportResult(judge(similarity, missing), similarity, missing, tuple(quotes))
