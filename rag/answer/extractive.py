"""The extractive answerer: grounded by construction, every sentence is a cited sentence of the corpus.

Steps:
1. Split the retrieved paragraphs into sentences and embed them with the question.
2. Score each sentence: cosine to the question, plus a share of the question's content terms
   it contains, plus a small bonus for numbers when the question asks for a quantity.
3. Abstain when the evidence is weak (see `Thresholds`, calibrated in evals/abstention.md):
   the answer then says so and still lists the closest paragraphs as `retrieved`.
4. Pick up to `max_sentences` sentences greedily: each close enough to the best score, and
   not a near-duplicate (cosine >= `redundancy`) of one already picked.
5. Order them as in the documents (documents by their best rank, then paragraph, then
   sentence) and cite each with its paragraph.

It does not paraphrase, merge sentences, or compute answers (a difference of two figures is
shown as the sentences that state them).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from rag.answer import AnswerStream, finished_stream
from rag.citations import make_citation, render_claims
from rag.documents import Answer, Hit, SentenceClaim, Support
from rag.embedding import Embedder
from rag.prompts import REFUSAL
from rag.sentences import split_sentences
from rag.terms import content_terms, numbers_in

_QUANTITY_QUESTION = re.compile(r"\b(how (many|much|large|big|fast)|what (share|percentage|proportion|number|value)|"
                                r"by how|figure|percent|%|total|number of)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Thresholds:
    """When to abstain; values calibrated in evals/abstention.md.

    - `min_similarity`: the best sentence's cosine to the question must reach this (off-topic questions don't).
    - `entity_similarity`: when the question names something (a proper noun, acronym or number) that no
      retrieved paragraph mentions, the best sentence must be at least this similar instead.
    - `confident_similarity`: between `min_similarity` and this, the answer is given with a note that no
      sentence matches the question closely; near-topic questions the documents cannot answer mostly
      land below 0.68 (evals/abstention.md), as do about a quarter of the answerable ones (mostly paraphrases).
    """

    min_similarity: float = 0.52
    entity_similarity: float = 0.61
    confident_similarity: float = 0.68

    def abstains(self, similarity: float, missing_entities: float) -> bool:
        """The abstention rule, the one place it is written (the answerer and the calibration sweep call it).

        >>> Thresholds().abstains(0.50, 0), Thresholds().abstains(0.58, 1), Thresholds().abstains(0.58, 0)
        (True, True, False)
        """
        if similarity < self.min_similarity:
            return True
        return missing_entities > 0 and similarity < self.entity_similarity


LOW_CONFIDENCE = ("No sentence in the documents matches this question closely; these are the closest statements. "
                  "Check the citations before relying on them.")


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    index: int  # sentence position in its paragraph
    text: str
    score: float = 0.0
    similarity: float = 0.0


class ExtractiveAnswerer:
    name = "extractive"
    chat_model = None  # follow-ups are rewritten by rules (`rag.rewrite`)

    def __init__(self, embedder: Embedder, titles: dict[str, str], max_sentences: int = 4,
                 thresholds: Thresholds = Thresholds(), redundancy: float = 0.85, keep_within: float = 0.12):
        self.embedder = embedder
        self.titles = titles
        self.max_sentences = max_sentences
        self.thresholds = thresholds
        self.redundancy = redundancy
        self.keep_within = keep_within  # a sentence joins the answer if it scores within this of the best

    def warm(self) -> float:
        t0 = time.perf_counter()
        self.embedder.model
        return time.perf_counter() - t0

    def with_embedder(self, embedder: Embedder) -> "ExtractiveAnswerer":
        return ExtractiveAnswerer(embedder, self.titles, self.max_sentences, self.thresholds, self.redundancy,
                                  self.keep_within)

    def stream(self, question: str, hits: list[Hit]) -> AnswerStream:
        """The whole answer at once: quoting needs no generation, so there is nothing to stream token by token."""
        answer = self.answer(question, hits)
        return finished_stream(answer, render_claims(answer.claims))

    def answer(self, question: str, hits: list[Hit]) -> Answer:
        candidates = [
            _Candidate(hit, i, s) for hit in hits for i, s in enumerate(split_sentences(hit.paragraph.text))
        ]
        if not candidates:
            return self._abstain(question, hits)
        vectors = self.embedder.encode_queries([question] + [c.text for c in candidates])
        q, sent_vecs = vectors[0], vectors[1:]
        sims = sent_vecs @ q
        q_terms = content_terms(question)
        wants_number = bool(_QUANTITY_QUESTION.search(question))
        scored = []
        for c, sim in zip(candidates, sims):
            lexical = len(q_terms & content_terms(c.text)) / len(q_terms) if q_terms else 0.0
            bonus = 0.05 if wants_number and numbers_in(c.text) else 0.0
            scored.append(_Candidate(c.hit, c.index, c.text, float(sim) + 0.25 * lexical + bonus, float(sim)))
        signals = {"similarity": max(c.similarity for c in scored),
                    "missing_entities": float(len(missing_entities(question, [h.paragraph.text for h in hits])))}
        if self.thresholds.abstains(signals["similarity"], signals["missing_entities"]):
            return self._abstain(question, hits, signals)
        chosen = self._select(scored, sent_vecs, candidates)
        doc_rank = {}
        for h in hits:
            doc_rank.setdefault(h.paragraph.doc_id, h.rank)
        chosen.sort(key=lambda c: (doc_rank[c.hit.paragraph.doc_id], c.hit.paragraph.doc_id, c.hit.paragraph.para, c.index))
        claims = tuple(
            SentenceClaim(c.text, (make_citation(c.hit.paragraph, self.titles.get(c.hit.paragraph.doc_id, ""), c.text),),
                          Support.SUPPORTED, c.similarity)
            for c in chosen
        )
        notes = (LOW_CONFIDENCE,) if signals["similarity"] < self.thresholds.confident_similarity else ()
        return Answer(question=question, claims=claims, abstained=False, retrieved=tuple(hits), answerer=self.name,
                      signals=signals, notes=notes)

    def _select(self, scored: list[_Candidate], vectors: np.ndarray, candidates: list[_Candidate]) -> list[_Candidate]:
        order = sorted(range(len(scored)), key=lambda i: -scored[i].score)
        best = scored[order[0]].score
        picked: list[int] = []
        for i in order:
            if len(picked) >= self.max_sentences or scored[i].score < best - self.keep_within:
                break
            if scored[i].similarity < self.thresholds.min_similarity and picked:
                continue
            if any(float(vectors[i] @ vectors[j]) >= self.redundancy for j in picked):
                continue
            picked.append(i)
        return [scored[i] for i in picked]

    def _abstain(self, question: str, hits: list[Hit], signals: dict[str, float] | None = None) -> Answer:
        return Answer(question=question, claims=(SentenceClaim(REFUSAL),), abstained=True, retrieved=tuple(hits),
                      answerer=self.name, signals=signals or {})


# Capitalised words that name no particular thing in a question about this kind of corpus.
_GENERIC_CAPITALISED = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was",
                        "were", "do", "does", "did", "can", "could", "should", "would", "will", "has", "have", "had",
                        "according", "in", "on", "by", "for", "the", "a", "an", "and", "of", "to", "i", "and", "or"}
_ENTITY = re.compile(r"\b(?:[A-Z][A-Za-z0-9&'’.-]*[A-Za-z0-9]|[A-Z]|\d{4})\b")


def missing_entities(question: str, passages: list[str]) -> list[str]:
    """Names, acronyms and years in the question that none of the passages mention.

    >>> missing_entities("What was Xiaomi's profit in 2023?", ["BYD sold more in 2023."])
    ['Xiaomi']
    """
    text = " ".join(passages).lower().replace(".", "")
    found = []
    for m in _ENTITY.finditer(question):
        if m.start() == len(question) - len(question.lstrip()):
            continue  # the first word is capitalised anyway
        word = re.sub(r"['’]s$", "", m.group(0))
        if word.lower() in _GENERIC_CAPITALISED or len(word) < 2:
            continue
        key = word.lower().replace(".", "")
        if word.isupper() and key.endswith("s"):
            key = key[:-1]  # "NEVs" is the plural of "NEV"
        if key not in text:
            found.append(word)
    return list(dict.fromkeys(found))
