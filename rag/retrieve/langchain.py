"""LangChain adapters: the hybrid retriever as a `BaseRetriever` returning `Document`s.

Each LangChain document carries the paragraph's citation fields in its metadata, so a chain
built on it can still cite `[doc_id para. N]`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from rag.cite.markers import format_marker


class ParagraphRetriever(BaseRetriever):
    retriever: Any
    top_k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        return [
            LCDocument(
                page_content=h.paragraph.text,
                metadata={
                    "doc_id": h.paragraph.doc_id,
                    "para": h.paragraph.para,
                    "page": h.paragraph.page,
                    "heading": h.paragraph.heading,
                    "score": h.score,
                    "rank": h.rank,
                    "citation": format_marker(h.paragraph.doc_id, [h.paragraph.para]),
                    **{f"score_{k}": v for k, v in h.scores_by_retriever.items()},
                },
            )
            for h in self.retriever.search(query, top_k=self.top_k)
        ]
