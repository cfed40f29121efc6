"""Answerers turn retrieved paragraphs into an `Answer` of cited sentences.

Every answerer has the `Answerer` shape: `answer(query, hits) -> Answer`, `stream(query, hits)
-> AnswerStream`, where `query` is a `rag.query.Query`, `warm()` and `with_embedder(embedder)`. The pipeline that calls them (rewrite,
retrieve, answer, time) is `rag.engine.Engine`, and only it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Protocol

from rag.documents import Answer, Hit
from rag.query import Query


class Answerer(Protocol):
    name: str
    chat_model: Any  # the LLM, for rewriting follow-ups; None for the extractive answerer

    def answer(self, query: Query, hits: list[Hit]) -> Answer:
        """The answer to `query` from `hits`, every sentence cited."""

    def stream(self, query: Query, hits: list[Hit]) -> AnswerStream:
        """Text as it is produced; `.result()` then gives the verified answer."""

    def warm(self) -> float:
        """Load what the first answer would otherwise load (a model); returns the seconds it took."""

    def with_embedder(self, embedder) -> Answerer:
        """The same answerer, its sentence similarity computed by `embedder` (the evals' cache)."""


class AnswerStream:
    """Tokens as they arrive (iterate it, e.g. `st.write_stream(stream)`), then `.result()` once exhausted.

    `tokens` is a generator that yields the text and returns the verified answer, which can differ from
    the streamed text (invented markers removed, or a fallback).
    """

    def __init__(self, tokens: Generator[str, None, Answer]):
        self._tokens = tokens
        self._finished = False
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        if not self._finished:  # a second pass (`result()` after the UI's) finds the answer already set
            self.answer = yield from self._tokens
            self._finished = True

    def result(self) -> Answer:
        for _ in self:
            pass
        if self.answer is None:
            raise RuntimeError("the stream ended without an answer")
        return self.answer


def finished_stream(answer: Answer, text: str) -> AnswerStream:
    """A stream of an answer that is already complete (the extractive answerer's), as one piece of text."""

    def tokens() -> Generator[str, None, Answer]:
        yield text
        return answer

    return AnswerStream(tokens())
