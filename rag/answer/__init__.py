"""Answerers turn retrieved paragraphs into an `Answer` of cited sentences.

All share `answer(question, hits) -> Answer`. `ask` runs retrieve then answer and times both
stages, so callers (CLI, UI, evals) never hide the data flow behind a chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from rag.documents import Answer, Hit

NOT_FOUND = "Not found in the documents."


class Answerer(Protocol):
    name: str

    def answer(self, question: str, hits: list[Hit]) -> Answer: ...


def ask(question: str, retriever, answerer: Answerer, top_k: int = 5, mode=None,
        standalone_question: str | None = None) -> Answer:
    """Retrieve with the standalone question (after any follow-up rewriting), then answer it."""
    query = standalone_question or question
    t0 = time.perf_counter()
    hits = retriever.search(query, top_k=top_k, mode=mode)
    t1 = time.perf_counter()
    result = answerer.answer(query, hits)
    return _stamp(result, question, query, t1 - t0, time.perf_counter() - t1)


class AnswerStream:
    """Tokens as they arrive (iterate it, e.g. `st.write_stream(stream)`), then `.result()` once exhausted.

    The verified answer can differ from the streamed text (invented markers removed, or a fallback).
    """

    def __init__(self, tokens: Iterator[str] = iter(())):
        self._tokens = tokens
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._tokens

    def result(self) -> Answer:
        for _ in self:
            pass
        if self.answer is None:
            raise RuntimeError("the stream ended without an answer")
        return self.answer


def ask_stream(question: str, retriever, answerer, top_k: int = 5, mode=None,
               standalone_question: str | None = None) -> AnswerStream:
    """`ask` for an answerer with `stream_answer`: tokens as generated, then the verified, timed answer."""
    query = standalone_question or question
    t0 = time.perf_counter()
    hits = retriever.search(query, top_k=top_k, mode=mode)
    retrieve_s = time.perf_counter() - t0
    inner = answerer.stream_answer(query, hits)
    outer = AnswerStream()

    def tokens() -> Iterator[str]:
        t1 = time.perf_counter()
        yield from inner
        outer.answer = _stamp(inner.result(), question, query, retrieve_s, time.perf_counter() - t1)

    outer._tokens = tokens()
    return outer


def _stamp(result: Answer, question: str, query: str, retrieve_s: float, answer_s: float) -> Answer:
    timings = {"retrieve": retrieve_s * 1000, "answer": answer_s * 1000, **result.timings_ms}
    timings["total"] = timings["retrieve"] + timings["answer"]
    return replace(result, question=question, standalone_question=query, timings_ms=timings)
