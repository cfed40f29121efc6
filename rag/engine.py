"""The loaded pieces a caller needs to answer questions: embedder, index, retriever, answerer.

Load once per process (the CLI), per server (`st.cache_resource` in the UI) or per test
session, and pass it along. `ask` is retrieve-then-answer with nothing hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.answer import Answerer, AnswerStream, ask, ask_stream
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
        return cls(embedder, index, retriever, ExtractiveAnswerer(embedder, titles_of(index)))

    @property
    def titles(self) -> dict[str, str]:
        return titles_of(self.index)

    def is_stale(self) -> bool:
        """True when a newer ingest has swapped in another generation."""
        return current_generation(self.index.path) != self.index.generation

    def ask(self, question: str, top_k: int = 5, mode: Mode | str | None = None,
            answerer: Answerer | None = None, standalone_question: str | None = None,
            history: list[dict] | None = None) -> Answer:
        """With `history` (earlier turns, `{"role", "content"}`), a follow-up is rewritten first:
        by the answerer's LLM when it has one, else by the rules of `rag.rewrite`."""
        answerer = answerer or self.answerer
        if history and standalone_question is None:
            standalone_question = self.rewrite(question, history, answerer).standalone
        return ask(question, self.retriever, answerer, top_k=top_k, mode=mode,
                   standalone_question=standalone_question)

    def stream(self, question: str, answerer, top_k: int = 5, mode: Mode | str | None = None,
               history: list[dict] | None = None) -> AnswerStream:
        """Like `ask`, for an answerer that streams (`stream_answer`): iterate for tokens, then `.result()`."""
        standalone = self.rewrite(question, history, answerer).standalone if history else None
        return ask_stream(question, self.retriever, answerer, top_k=top_k, mode=mode, standalone_question=standalone)

    def rewrite(self, question: str, history: list[dict] | None, answerer: Answerer | None = None):
        from rag.rewrite import rewrite_followup

        return rewrite_followup(question, history, getattr(answerer or self.answerer, "chat_model", None))

    def answerer_for(self, spec: str, base_url: str | None = None, **kwargs) -> Answerer:
        """An answerer for a spec of `rag.answer.llm.ANSWERER_SPECS` ("extractive", "local", "ollama:M", "openai:M")."""
        from rag.answer.llm import make_answerer

        return self.answerer if spec == "extractive" else make_answerer(spec, self.embedder, self.titles, base_url, **kwargs)


def titles_of(index: Index) -> dict[str, str]:
    return {d.doc_id: d.title for d in index.documents}
