"""Paragraph-level retrieval: BM25, dense (FAISS), and their fusion.

`HybridRetriever.search(query, top_k, mode) -> list[Hit]` ranks paragraphs, never bare chunks: a
paragraph scores as its best chunk. BM25 and dense are its parts (`candidates`), fused by `fuse`.
It reads a `Corpus` by paragraph position: an index on disk (`from_index`: BM25 postings and vectors
memory-mapped, paragraphs read from SQLite only for the hits) or lists in memory. Ties break by
(doc_id, para) (by position after an append to a large index, `rag.index.writer`), so runs are deterministic. `HybridRetriever.as_langchain()` wraps it
as a LangChain `BaseRetriever` (rag.retrieve.langchain).

Paragraphs of a source list (under a "Sources" or "References" heading) stay in the index but are
retrieved only when the question asks about sources: otherwise a bibliography entry that repeats
a news headline's words ("EU duties on Chinese EVs") crowds out the paragraphs that say what happened.

Not handled: query expansion, cross-encoder re-ranking, metadata filters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from typing import Protocol

import numpy as np

from rag.documents import Document, Hit, Paragraph, Passage
from rag.embed.embedder import Embedder
from rag.errors import BadArgument
from rag.index import ann
from rag.index.bm25 import Postings, Vocabulary, words
from rag.retrieve.document_match import DocumentMatcher

_ASKS_ABOUT_SOURCES = re.compile(
    r"\b(sources?|references?|cite[sd]?|citations?|bibliography|reported by|according to whom)\b", re.IGNORECASE
)

# Reciprocal rank fusion constant from Cormack, Clarke & Buettcher (SIGIR 2009); robust across collections.
RRF_K = 60
# How deep each retriever's ranking goes before fusion. Z-score fusion gained from depth 1000 over 100 on
# SciFact (nDCG@10 0.737 vs 0.731, evals/README.md); on a corpus of a few hundred paragraphs it means "all".
CANDIDATES = 1000
# Weight of the dense scores in z-score fusion: the middle of a flat plateau (0.45-0.60) on SciFact.
DENSE_WEIGHT = 0.5
# Added to a paragraph's fused score, times its document's prior (1.0 for the document a question names best,
# `rag.retrieve.document_match`). Fitted on the fit half of the 10-Q questions (`python -m evals.document_weight`):
# page hit@5 0.361 with no prior, 0.500 from 3 up (the smallest weight of the plateau is taken); on the held half,
# which fitted nothing, page hit@5 0.062 -> 0.250 and doc hit@5 0.688 -> 1.000. It applies only to questions that
# name an issuer or report, so the shipped corpus ranks as before.
DOCUMENT_WEIGHT = 3.0
# How many of the best fused paragraphs the document prior re-ranks.
DOCUMENT_RERANK = 300


class _Choice(str, Enum):
    """An enum of settings whose `parse` refuses a bad value with the list of valid ones."""

    @classmethod
    def parse(cls, value):
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise BadArgument(f"unknown {cls._label} {value!r}; valid {cls._label}s: {valid}") from None


class Mode(_Choice):
    BM25 = "bm25"
    DENSE = "dense"
    HYBRID = "hybrid"


Mode._label = "retrieval mode"


def _check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise BadArgument(f"top_k must be greater than 0. Currently, the top_k is {top_k}")


class Corpus(Protocol):
    """What retrieval reads, by paragraph position and chunk row: an open `rag.index.reader.Index` (on disk,
    memory-mapped) or `InMemory` lists. Positions run in (doc_id, para) order unless `tie_order` says otherwise."""

    paragraph_count: int
    postings: Postings
    faiss: object
    vectors: np.ndarray
    references: np.ndarray

    def paragraphs_at(self, positions: Sequence[int]) -> list[Paragraph]: ...
    def passage_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def passage_rows(self, paragraph: Paragraph) -> list[int]: ...
    def word_ids(self, words: list[str]) -> list[int | None]: ...


class InMemory:
    """Paragraphs, chunks and vectors given as lists (tests, the BEIR evals), as a `Corpus`.

    Positions are the list's order; ties break by (doc_id, para) through `tie_order`.
    """

    def __init__(
        self,
        paragraphs: list[Paragraph],
        passages: list[Passage],
        vectors: np.ndarray,
        dimension: int,
        faiss_index=None,
    ):
        if len(passages) != len(vectors):
            raise BadArgument(f"{len(passages)} passages but {len(vectors)} vectors; they must align")
        self.paragraphs = paragraphs
        self.paragraph_count = len(paragraphs)
        self.vectors = np.asarray(vectors, dtype=np.float32).reshape(len(passages), dimension)
        if faiss_index is None:
            faiss_index = ann.build(self.vectors, {"kind": "exact"})
        self.faiss = faiss_index
        self._vocabulary = Vocabulary()
        self.postings = Postings.build([p.text for p in paragraphs], self._vocabulary)
        self.references = np.asarray([i for i, p in enumerate(paragraphs) if p.is_reference], np.int64)
        position = {(p.doc_id, p.para): i for i, p in enumerate(paragraphs)}
        # Passage row -> the positions of its paragraphs (one, or a run of short ones).
        self._passage_paras = [
            [position[(c.doc_id, n)] for n in range(c.para_start, c.para_end + 1) if (c.doc_id, n) in position]
            for c in passages
        ]
        self._paragraph_rows: dict[int, list[int]] = {}
        for row, paras in enumerate(self._passage_paras):
            for p in paras:
                self._paragraph_rows.setdefault(p, []).append(row)
        self._position = position
        ranked = sorted(range(len(paragraphs)), key=lambda i: (paragraphs[i].doc_id, paragraphs[i].para))
        self.tie_order = np.empty(len(paragraphs), np.int64)
        self.tie_order[ranked] = np.arange(len(paragraphs))

    def paragraphs_at(self, positions: Sequence[int]) -> list[Paragraph]:
        return [self.paragraphs[int(i)] for i in positions]

    def passage_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        paras = [self._passage_paras[int(r)] for r in rows]
        counts = np.fromiter((len(p) for p in paras), np.int64, len(paras))
        return np.fromiter((i for p in paras for i in p), np.int64, int(counts.sum())), counts

    def passage_rows(self, paragraph: Paragraph) -> list[int]:
        return self._paragraph_rows.get(self._position[(paragraph.doc_id, paragraph.para)], [])

    def word_ids(self, words: list[str]) -> list[int | None]:
        return self._vocabulary.word_ids(words)


class Bm25Retriever:
    """BM25 (Lucene variant) over paragraph text, with a Snowball English stemmer and English stopwords
    (`rag.index.bm25`: postings on disk for an index, in memory for lists)."""

    def __init__(self, corpus: Corpus):
        # Paragraph text alone: with the title and heading in front (as passages are embedded) the shipped
        # corpus lost 0.043 hit@5, since every paragraph of a document then shares its title's words.
        self.corpus = corpus
        self.postings = corpus.postings

    def query_terms(self, query: str) -> list[int]:
        """Term ids of the query's words that paragraphs hold verbatim, each once, in query order."""
        if not self.corpus.paragraph_count:
            return []
        return list(dict.fromkeys(t for t in self.corpus.word_ids(words(query)) if t is not None))

    def top(self, query: str, depth: int = CANDIDATES) -> dict[int, float]:
        """The `depth` best-scoring paragraphs (by position) with a positive score."""
        return self.postings.top(self.query_terms(query), depth)


class DenseRetriever:
    """Cosine similarity over passage vectors in a FAISS inner-product index (exact, or approximate and re-ranked
    exactly above a size: `rag.index.ann`); a paragraph scores as the best passage that holds it (a passage of several
    short paragraphs scores each of them)."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.faiss = corpus.faiss
        self.vectors = corpus.vectors

    def scores(self, query_vector: np.ndarray, depth: int = CANDIDATES * 4) -> dict[int, float]:
        """Best chunk cosine per paragraph, for the paragraphs among the top `depth` chunks."""
        if not self.faiss.ntotal:
            return {}
        sims, rows = ann.search(self.faiss, self.vectors, query_vector, depth)
        keep = rows >= 0
        sims, rows = sims[keep], rows[keep]
        # Rows come best first, so a paragraph's best passage is its first: keep each paragraph's first
        # appearance, in order of appearance (the order the scores' mean and spread are summed in).
        positions, counts = self.corpus.passage_positions(rows)
        if not len(positions):
            return {}
        sims = np.repeat(sims, counts)
        _, first = np.unique(positions, return_index=True)
        first.sort()
        return dict(zip(positions[first].tolist(), sims[first].tolist()))

    def paragraph_score(self, query_vector: np.ndarray, paragraph: Paragraph) -> float:
        """Best chunk cosine of one paragraph (for paragraphs outside the dense candidates)."""
        rows = self.corpus.passage_rows(paragraph)
        if not rows:
            return 0.0
        return float((np.asarray(self.vectors[np.asarray(rows)], dtype=np.float32) @ query_vector).max())


def reciprocal_rank_fusion(
    rankings: dict[str, list[int]], k: int = RRF_K, weights: dict[str, float] | None = None
) -> dict[int, float]:
    """Fuse rankings (lists of item ids, best first): score = sum of weight / (k + rank).

    >>> fused = reciprocal_rank_fusion({"bm25": [7, 3], "dense": [3, 9]}, k=60)
    >>> sorted(fused, key=lambda i: -fused[i])
    [3, 7, 9]
    """
    fused: dict[int, float] = {}
    for name, ranking in rankings.items():
        w = (weights or {}).get(name, 1.0)
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return fused


def zscore_fusion(scores: dict[str, dict[int, float]], weights: dict[str, float] | None = None) -> dict[int, float]:
    """Fuse score lists by z-normalising each over its own candidates and adding them, weighted.

    An item missing from a list gets that list's lowest z (it ranked below all its candidates there).
    Unlike RRF it keeps how far apart the scores are, which gained +0.022 nDCG@10 on SciFact.

    >>> fused = zscore_fusion({"bm25": {1: 9.0, 2: 1.0}, "dense": {2: 0.9, 3: 0.1}})
    >>> [round(fused[i], 2) for i in (1, 2, 3)]
    [0.0, 0.0, -2.0]
    """
    lists = {name: s for name, s in scores.items() if s}
    if not lists:
        return {}
    keys = {name: np.fromiter(s, np.int64, len(s)) for name, s in lists.items()}
    items = np.unique(np.concatenate(list(keys.values())))
    fused = np.zeros(len(items))
    for name, s in lists.items():
        values = np.fromiter(s.values(), dtype=np.float64, count=len(s))
        mean, std = float(values.mean()), float(values.std()) or 1.0
        z = (values - mean) / std
        column = np.full(len(items), z.min())  # missing: below all of this list's candidates
        column[np.searchsorted(items, keys[name])] = z
        fused += (weights or {}).get(name, 1.0) * column
    return dict(zip(items.tolist(), fused.tolist()))


class Fusion(_Choice):
    ZSCORE = "zscore"
    RRF = "rrf"


Fusion._label = "fusion"


def fuse(
    bm25: dict[int, float],
    dense: dict[int, float],
    fusion: Fusion,
    ties: Sequence[Paragraph] | np.ndarray | None = None,
) -> dict[int, float]:
    """Fused scores by position. `ties` orders equal RRF scores: the paragraphs by position (by (doc_id, para)),
    a rank per position, or None (by position)."""
    if fusion is Fusion.RRF:
        return reciprocal_rank_fusion({"bm25": _ranking(bm25, ties), "dense": _ranking(dense, ties)})
    return zscore_fusion({"bm25": bm25, "dense": dense}, {"bm25": 1 - DENSE_WEIGHT, "dense": DENSE_WEIGHT})


class HybridRetriever:
    """BM25 and dense rankings fused (z-score fusion by default, or RRF); `mode` picks one or both."""

    def __init__(
        self,
        paragraphs: list[Paragraph],
        passages: list[Passage],
        vectors: np.ndarray,
        embedder: Embedder,
        mode: Mode | str = Mode.HYBRID,
        faiss_index=None,
        fusion: Fusion | str = Fusion.ZSCORE,
        corpus: Corpus | None = None,
        documents: Sequence[Document] | None = None,
        document_weight: float = DOCUMENT_WEIGHT,
    ):
        """Over lists in memory; `from_index` reads an index on disk instead (then `corpus` is the index).
        `documents` (the index's own, for `from_index`) give the document prior; none, no prior."""
        self.mode = Mode.parse(mode)
        self.fusion = Fusion.parse(fusion)
        self.corpus = (
            corpus if corpus is not None else InMemory(paragraphs, passages, vectors, embedder.dimension, faiss_index)
        )
        self.bm25 = Bm25Retriever(self.corpus)
        self.dense = DenseRetriever(self.corpus)
        self.embedder = embedder
        self._tie_order = getattr(self.corpus, "tie_order", None)
        if documents is None:
            documents = getattr(self.corpus, "documents", None) or []
        self.documents = DocumentMatcher(documents)
        self.document_weight = document_weight

    @classmethod
    def from_index(
        cls,
        index,
        embedder: Embedder,
        mode: Mode | str = Mode.HYBRID,
        fusion: Fusion | str = Fusion.ZSCORE,
        document_weight: float = DOCUMENT_WEIGHT,
    ) -> HybridRetriever:
        return cls(
            [],
            [],
            np.zeros((0, embedder.dimension), np.float32),
            embedder,
            mode,
            fusion=fusion,
            corpus=index,
            document_weight=document_weight,
        )

    def search(
        self, query: str, top_k: int = 5, mode: Mode | str | None = None, query_vector: np.ndarray | None = None
    ) -> list[Hit]:
        _check_top_k(top_k)
        mode = self.mode if mode is None else Mode.parse(mode)
        if not self.corpus.paragraph_count or not query.strip():
            return []
        if mode is not Mode.BM25 and query_vector is None:
            query_vector = self.embedder.encode_queries([query])[0]
        bm25_scores, dense_scores = self.candidates(query, query_vector, mode)
        if len(self.corpus.references) and not _ASKS_ABOUT_SOURCES.search(query):
            bm25_scores = _without(bm25_scores, self.corpus.references)
            dense_scores = _without(dense_scores, self.corpus.references)
        if mode is Mode.BM25:
            fused = bm25_scores
        elif mode is Mode.DENSE:
            fused = dense_scores
        else:
            fused = fuse(bm25_scores, dense_scores, self.fusion, self._tie_order)
        prior = self.documents.scores(query) if self.document_weight else {}
        if prior:
            # The document a question names lifts its paragraphs: re-rank the best fused ones with the prior.
            ranked = _ranking(fused, self._tie_order)[: max(top_k, DOCUMENT_RERANK)]
            paragraphs = self.corpus.paragraphs_at(ranked)
            boosted = [fused[i] + self.document_weight * prior.get(p.doc_id, 0.0) for i, p in zip(ranked, paragraphs)]
            order = sorted(range(len(ranked)), key=lambda j: -boosted[j])[:top_k]  # stable: ties keep fused order
            picked = [(ranked[j], paragraphs[j], boosted[j]) for j in order]
        else:
            ranked = _ranking(fused, self._tie_order)[:top_k]
            picked = [(i, p, fused[i]) for i, p in zip(ranked, self.corpus.paragraphs_at(ranked))]
        out = []
        for rank, (i, paragraph, score) in enumerate(picked, start=1):
            extra = {"bm25": bm25_scores.get(i, 0.0)}
            if mode is not Mode.BM25:
                extra["dense"] = (
                    dense_scores.get(i) if i in dense_scores else self.dense.paragraph_score(query_vector, paragraph)
                )
            if prior:
                extra["document"] = prior.get(paragraph.doc_id, 0.0)
            out.append(Hit(paragraph, score, rank, {**extra, mode.value: fused[i]}))
        return out

    def candidates(
        self,
        query: str,
        query_vector: np.ndarray | None,
        mode: Mode = Mode.HYBRID,
        bm25_depth: int = CANDIDATES,
        dense_depth: int = CANDIDATES * 4,
    ) -> tuple[dict[int, float], dict[int, float]]:
        """Each retriever's scores before fusion, by paragraph position: BM25's top `bm25_depth` paragraphs, and
        the best chunk cosine of the paragraphs among the top `dense_depth` chunks (`fuse` combines them)."""
        bm25 = self.bm25.top(query, bm25_depth) if mode in (Mode.BM25, Mode.HYBRID) else {}
        dense = self.dense.scores(query_vector, dense_depth) if mode in (Mode.DENSE, Mode.HYBRID) else {}
        return bm25, dense

    def as_langchain(self, top_k: int = 5):
        from rag.retrieve.langchain import ParagraphRetriever

        return ParagraphRetriever(retriever=self, top_k=top_k)


def _without(scores: dict[int, float], positions: np.ndarray) -> dict[int, float]:
    """`scores` less the paragraphs at `positions` (sorted)."""
    if not scores:
        return scores
    keys = np.fromiter(scores, np.int64, len(scores))
    at = np.searchsorted(positions, keys)
    drop = set(keys[(at < len(positions)) & (positions[np.minimum(at, len(positions) - 1)] == keys)].tolist())
    return {i: v for i, v in scores.items() if i not in drop} if drop else scores


def _ranking(scores: dict[int, float], ties: Sequence[Paragraph] | np.ndarray | None = None) -> list[int]:
    """Positions best first; equal scores by (doc_id, para), which position order is in an index."""
    if isinstance(ties, Sequence):
        return sorted(scores, key=lambda i: (-scores[i], ties[i].doc_id, ties[i].para))
    keys = np.fromiter(scores, np.int64, len(scores))
    values = np.fromiter(scores.values(), np.float64, len(scores))
    order = np.lexsort((keys if ties is None else np.asarray(ties)[keys], -values))
    return keys[order].tolist()
