"""The one pipeline: rewrite a follow-up, retrieve, answer (an LLM answer is verified inside its answerer), time.

An `Engine` holds the loaded pieces (embedder, index, retriever, answerer). Load it once per
process (the CLI), per server (`st.cache_resource` in the UI) or per test session, and pass it
along. The CLI, the UI and the evals all answer through `ask` or `stream`; the evals get a
retrieval trace deeper than top-k with `depth`, and run with another embedder or answerer
through `with_embedder` and `with_answerer`, which return new engines and change nothing shared.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.answer import Answerer, AnswerStream
from rag.answer.extractive import ExtractiveAnswerer
from rag.documents import Answer, DocRef, Hit
from rag.embed.embedder import Embedder
from rag.index.layout import current_generation
from rag.index.reader import Index
from rag.names import corpus_names
from rag.query import Query, rewrite_followup
from rag.retrieve.hybrid import HybridRetriever, Mode


@dataclass(frozen=True)
class Engine:
    embedder: Embedder
    index: Index
    retriever: HybridRetriever
    answerer: Answerer
    load_ms: dict[str, float] = field(default_factory=dict, compare=False)  # where loading spent its time

    @classmethod
    def load(cls, index_dir: str | Path, embedder: Embedder | None = None, mode: Mode | str = Mode.HYBRID) -> Engine:
        """Open the index and what questions need: the query encoder (ONNX when the index has one, so no torch),
        the retriever (BM25 built over the paragraphs) and the extractive answerer with the stored sentence vectors."""
        load_ms: dict[str, float] = {}
        t0 = time.perf_counter()
        embedder = embedder or Embedder.for_index(index_dir)
        t1 = time.perf_counter()
        index = Index.open(index_dir, embedder.name, embedder.dimension)
        t2 = time.perf_counter()
        retriever = HybridRetriever.from_index(index, embedder, mode)
        t3 = time.perf_counter()
        load_ms.update(
            {
                f"query encoder ({embedder.query_backend})": (t1 - t0) * 1000,
                "index": (t2 - t1) * 1000,
                "retriever": (t3 - t2) * 1000,
            }
        )
        return cls(
            embedder,
            index,
            retriever,
            ExtractiveAnswerer(
                embedder,
                titles_of(index),
                sentences=index.sentences,
                contexts=contexts_of(index),
                names=corpus_names(d.meta for d in index.documents),
            ),
            load_ms,
        )

    @property
    def titles(self) -> dict[str, str]:
        return titles_of(self.index)

    def is_stale(self) -> bool:
        """True when a newer ingest has swapped in another generation."""
        return current_generation(self.index.path) != self.index.generation

    def with_embedder(self, embedder: Embedder) -> Engine:
        """The same index and settings, with query and sentence vectors from `embedder` (the evals' cache)."""
        return Engine(
            embedder,
            self.index,
            HybridRetriever.from_index(self.index, embedder, self.retriever.mode, self.retriever.fusion),
            self.answerer.with_embedder(embedder),
            self.load_ms,
        )

    def with_answerer(self, answerer: Answerer) -> Engine:
        return replace(self, answerer=answerer)

    def rewrite(self, question: str, history: list[dict] | None, answerer: Answerer | None = None) -> Query:
        """A follow-up as a standalone question: by the answerer's LLM when it has one, else by `rag.query`'s rules."""
        return rewrite_followup(question, history, (answerer or self.answerer).chat_model)

    def ask(
        self,
        question: str,
        history: list[dict] | None = None,
        top_k: int = 5,
        mode: Mode | str | None = None,
        answerer: Answerer | None = None,
        depth: int = 0,
    ) -> Answer:
        """Rewrite (with `history`, earlier turns `{"role", "content"}`), retrieve, answer from the top `top_k`.

        With `depth`, retrieval goes max(depth, top_k) deep once, and `Answer.trace` holds that whole ranking."""
        answerer = answerer or self.answerer
        query, hits, retrieve_ms = self._retrieve(question, history, answerer, top_k, mode, depth)
        t0 = time.perf_counter()
        result = answerer.answer(query, hits[:top_k])
        return self._stamp(result, question, query, hits, top_k, depth, retrieve_ms, time.perf_counter() - t0)

    def stream(
        self,
        question: str,
        history: list[dict] | None = None,
        top_k: int = 5,
        mode: Mode | str | None = None,
        answerer: Answerer | None = None,
    ) -> AnswerStream:
        """`ask`, with the answer's text as it is produced; iterate it, then `.result()` for the timed answer."""
        answerer = answerer or self.answerer
        query, hits, retrieve_ms = self._retrieve(question, history, answerer, top_k, mode, 0)

        def tokens() -> Generator[str, None, Answer]:
            t0 = time.perf_counter()
            inner = answerer.stream(query, hits)
            yield from inner
            return self._stamp(inner.result(), question, query, hits, top_k, 0, retrieve_ms, time.perf_counter() - t0)

        return AnswerStream(tokens())

    def _retrieve(
        self, question: str, history, answerer: Answerer, top_k: int, mode, depth: int
    ) -> tuple[Query, list[Hit], dict[str, float]]:
        """The rewritten question, its hits, and milliseconds spent rewriting, embedding the question and searching."""
        t0 = time.perf_counter()
        query = self.rewrite(question, history, answerer) if history else Query.plain(question)
        t1 = time.perf_counter()
        wanted = self.retriever.mode if mode is None else Mode.parse(mode)
        text = query.standalone
        vector = self.embedder.encode_queries([text])[0] if wanted is not Mode.BM25 and text.strip() else None
        t2 = time.perf_counter()
        hits = self.retriever.search(text, top_k=max(top_k, depth), mode=mode, query_vector=vector)
        t3 = time.perf_counter()
        return (
            query,
            hits,
            {"rewrite": (t1 - t0) * 1000, "embed_question": (t2 - t1) * 1000, "search": (t3 - t2) * 1000},
        )

    def _stamp(
        self,
        result: Answer,
        question: str,
        query: Query,
        hits: list[Hit],
        top_k: int,
        depth: int,
        retrieve_ms: dict[str, float],
        answer_s: float,
    ) -> Answer:
        retrieve = sum(retrieve_ms.values())
        timings = {**retrieve_ms, "retrieve": retrieve, "answer": answer_s * 1000, **result.timings_ms}
        timings["total"] = retrieve + timings["answer"]
        docs = {h.paragraph.doc_id for h in hits[:top_k]}
        documents = {d.doc_id: DocRef(d.doc_id, d.title, d.sha256) for d in self.index.documents if d.doc_id in docs}
        return replace(
            result,
            question=question,
            standalone_question=query.standalone,
            timings_ms=timings,
            documents=documents,
            trace=tuple(hits) if depth else (),
        )


def titles_of(index: Index) -> dict[str, str]:
    return {d.doc_id: d.title for d in index.documents}


# What a document says of itself on its cover (`rag.load.cover`), beside its title and file name.
_SELF_DESCRIPTION = ("company", "ticker", "form", "kind", "period", "date")


def contexts_of(index: Index) -> dict[str, str]:
    """Per document, the words that place any of its paragraphs: title, issuer, ticker, form, period, file name.

    A cash-flow table names neither the company nor the fiscal year's name; its document does.
    """
    return {
        d.doc_id: " ".join(
            [d.title, *(str(d.meta[k]) for k in _SELF_DESCRIPTION if d.meta.get(k)), Path(d.source_path).stem]
        )
        for d in index.documents
    }
