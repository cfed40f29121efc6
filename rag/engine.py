"""The loaded pieces a caller needs to answer questions: embedder, index, retriever, answerer.

Load once per process (the CLI), per server (`st.cache_resource` in the UI) or per test
session, and pass it along. `ask` is retrieve-then-answer with nothing hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.answer import Answerer, ask
from rag.answer.extractive import ExtractiveAnswerer
from rag.documents import Answer
from rag.embedding import Embedder
from rag.retrieval import HybridRetriever, Mode
from rag.store import Index, current_generation


@dataclass
class Engine:
    embedder: Embedder
    index: Index
    retriever: HybridRetriever
    answerer: Answerer

    @classmethod
    def load(cls, index_dir: str | Path, embedder: Embedder | None = None, mode: Mode | str = Mode.HYBRID) -> "Engine":
        embedder = embedder or Embedder()
        index = Index.open(index_dir, embedder.name, embedder.dimension)
        retriever = HybridRetriever.from_index(index, embedder, mode)
        titles = {d.doc_id: d.title for d in index.documents}
        return cls(embedder, index, retriever, ExtractiveAnswerer(embedder, titles))

    @property
    def titles(self) -> dict[str, str]:
        return {d.doc_id: d.title for d in self.index.documents}

    def is_stale(self) -> bool:
        """True when a newer ingest has swapped in another generation."""
        return current_generation(self.index.path) != self.index.generation

    def ask(self, question: str, top_k: int = 5, mode: Mode | str | None = None,
            answerer: Answerer | None = None, standalone_question: str | None = None) -> Answer:
        return ask(question, self.retriever, answerer or self.answerer, top_k=top_k, mode=mode,
                   standalone_question=standalone_question)
