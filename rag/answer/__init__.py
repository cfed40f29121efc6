"""Answerers turn retrieved paragraphs into an `Answer` of cited sentences.

All share `answer(question, hits) -> Answer`. `ask` runs retrieve then answer and times both
stages, so callers (CLI, UI, evals) never hide the data flow behind a chain.
"""

from __future__ import annotations

import time
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
    t2 = time.perf_counter()
    timings = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, **result.timings_ms}
    timings["total"] = timings["retrieve"] + timings["answer"]
    return replace(result, question=question, standalone_question=query, timings_ms=timings)
