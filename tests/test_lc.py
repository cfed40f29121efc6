"""The hybrid retriever as a LangChain `BaseRetriever`, in a chain, with citation fields on every document."""

from __future__ import annotations

from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from rag.cite.markers import parse_markers


def test_the_retriever_drops_into_a_langchain_chain(engine):
    retriever = engine.retriever.as_langchain(top_k=3)
    assert isinstance(retriever, BaseRetriever)
    question = "What share of their foreign sales do Chinese companies produce abroad?"
    docs = retriever.invoke(question)
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    ours = engine.retriever.search(question, top_k=3)
    assert [(d.metadata["doc_id"], d.metadata["para"]) for d in docs] == [
        (h.paragraph.doc_id, h.paragraph.para) for h in ours
    ]
    for d in docs:
        marker = parse_markers(d.metadata["citation"])[0]
        assert (marker.doc_id, marker.paras) == (d.metadata["doc_id"], (d.metadata["para"],))
        assert d.page_content == engine.index.paragraph(d.metadata["doc_id"], d.metadata["para"]).text
    # A chain step after it sees the documents with their markers, as a user's prompt template would.
    context = (
        retriever | RunnableLambda(lambda ds: "\n".join(f"{d.metadata['citation']} {d.page_content}" for d in ds))
    ).invoke(question)
    assert context.startswith(docs[0].metadata["citation"]) and "less than 10%" in context
