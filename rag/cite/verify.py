"""Check a generated answer sentence by sentence against the paragraphs it was given.

Steps (`verify_answer`):
1. Move markers that follow a sentence's full stop ("... rose. [a para. 2]") before it, then
   split the text into sentences.
2. Parse each sentence's markers. A marker naming a paragraph that was not in the context is
   invented: it is removed and counted, and the sentence keeps its other citations.
3. Judge each sentence against its cited paragraphs with `rag.cite.support.check_support` (the
   method the evals use). A sentence with no valid citation is unsupported. Nothing is dropped:
   unsupported sentences stay in the answer, flagged.
4. The refusal phrase (`rag.prompts.REFUSAL`) makes the answer an abstention when no other
   sentence is supported.

Not handled: whether the answer addresses the question (only whether its sentences are backed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.cite.markers import MARKER, format_marker, make_citation, parse_markers, strip_markers
from rag.cite.support import check_support
from rag.documents import Hit, SentenceClaim, Support
from rag.embed.embedder import Embedder
from rag.prompts import REFUSAL
from rag.sentences import split_sentences

# One or more markers right after terminal punctuation: "... 2023. [a para. 2][b para. 1]"
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*" + MARKER.pattern + r")+)", re.IGNORECASE)


@dataclass(frozen=True)
class SupportCounts:
    supported: int
    partial: int
    unsupported: int

    @property
    def sentences(self) -> int:
        return self.supported + self.partial + self.unsupported

    def summary(self) -> str:
        """
        >>> SupportCounts(2, 1, 0).summary()
        '2 of 3 sentences supported'
        """
        return f"{self.supported} of {self.sentences} sentences supported"


@dataclass(frozen=True)
class Verification:
    claims: tuple[SentenceClaim, ...]
    invented: tuple[str, ...]  # labels of markers removed because their paragraph was not in the context
    refused: bool  # the model replied with the refusal phrase
    counts: SupportCounts

    @property
    def any_supported(self) -> bool:
        return self.counts.supported > 0


def count_support(claims: Sequence[SentenceClaim]) -> SupportCounts:
    return SupportCounts(
        sum(c.support is Support.SUPPORTED for c in claims),
        sum(c.support is Support.PARTIAL for c in claims),
        sum(c.support in (Support.UNSUPPORTED, Support.UNCHECKED) for c in claims),
    )


def split_cited_sentences(text: str) -> list[tuple[str, list]]:
    """Sentences with the markers that belong to them; a marker after the full stop belongs before it.

    >>> [(s, [m.paras for m in ms]) for s, ms in split_cited_sentences("A rose. [a para. 2] B fell [b para. 1].")]
    [('A rose.', [(2,)]), ('B fell.', [(1,)])]
    """
    text = _TRAILING_MARKERS.sub(lambda m: m.group(2).strip() + m.group(1), " ".join(text.split()))
    out: list[tuple[str, list]] = []
    for raw in split_sentences(text):
        markers = parse_markers(raw)
        clean = strip_markers(raw)
        if not re.search(r"\w", clean):  # markers on their own: they cite the previous sentence
            if out:
                out[-1][1].extend(markers)
            continue
        out.append((clean, markers))
    return out


def is_refusal(sentence: str) -> bool:
    """The refusal phrase standing alone (give or take a few words), not a sentence that merely contains it.

    >>> is_refusal("Not found in the documents."), is_refusal("Sorry: not found in the documents.")
    (True, True)
    >>> is_refusal("The 2024 total is not found in the documents, but 2023 exports were 4.9 million.")
    False
    """

    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^a-z ]", " ", s.lower()).split())

    refusal, said = norm(REFUSAL), norm(sentence)
    return refusal in said and len(said.split()) <= len(refusal.split()) + 3


def verify_answer(text: str, hits: Sequence[Hit], embedder: Embedder, titles: dict[str, str]) -> Verification:
    context = {(h.paragraph.doc_id, h.paragraph.para): h.paragraph for h in hits}
    claims: list[SentenceClaim] = []
    invented: list[str] = []
    refused = False
    for sentence, markers in split_cited_sentences(text):
        if not markers and is_refusal(sentence):
            refused = True
            continue
        cited = []
        for m in markers:
            for para in m.paras:
                key = (m.doc_id, para)
                if key not in context:
                    invented.append(format_marker(m.doc_id, [para]))
                elif context[key] not in cited:
                    cited.append(context[key])
        if not cited:
            claims.append(SentenceClaim(sentence, (), Support.UNSUPPORTED, None))
            continue
        result = check_support(embedder, sentence, [p.text for p in cited])
        citations = tuple(make_citation(p, titles.get(p.doc_id, ""), quote) for p, quote in zip(cited, result.quotes))
        claims.append(SentenceClaim(sentence, citations, result.support, round(result.score, 4)))
    return Verification(tuple(claims), tuple(invented), refused, count_support(claims))
