"""Retrieval at paragraph level: every mode, fusion, ties, empty input and source lists (real model, real FAISS)."""

from __future__ import annotations

import pytest

from rag.documents import Paragraph
from rag.errors import BadArgument
from rag.passages import make_passages
from rag.retrieve.hybrid import HybridRetriever, Mode, reciprocal_rank_fusion, zscore_fusion

PARAGRAPHS = [
    Paragraph(
        "trade",
        1,
        "The EU set definitive countervailing duties of 17.0% on BYD and 35.3% on SAIC from October 2024.",
        heading="The EU case",
    ),
    Paragraph(
        "trade", 2, "Turkey imposed an extra 40% tariff on vehicles imported from China in July 2024.", heading="Turkey"
    ),
    Paragraph(
        "trade",
        3,
        'Politico Europe, "EU duties on Chinese electric cars: China sues the EU over EV duties".',
        heading="Sources",
    ),
    Paragraph(
        "plants", 1, "BYD opened its plant in Rayong, Thailand, in July 2024 with capacity of 150,000 cars a year."
    ),
]


@pytest.fixture(scope="module")
def retriever(embedder):
    passages = make_passages(PARAGRAPHS)
    vectors = embedder.encode_documents([c.text for c in passages])
    return HybridRetriever(PARAGRAPHS, passages, vectors, embedder)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_every_mode_finds_the_paragraph_and_ranks_from_one(retriever, mode):
    hits = retriever.search("Where did BYD open a plant in Thailand?", top_k=2, mode=mode)
    assert hits[0].paragraph.label == "plants para. 1"
    assert [h.rank for h in hits] == [1, 2] and hits[0].score >= hits[1].score
    assert mode in hits[0].scores_by_retriever


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_every_mode_on_empty_input(embedder, mode):
    empty = HybridRetriever([], [], embedder.encode_documents([]), embedder)
    assert empty.search("anything", mode=mode) == []
    assert (
        HybridRetriever(
            PARAGRAPHS[:1], make_passages(PARAGRAPHS[:1]), embedder.encode_documents([PARAGRAPHS[0].text]), embedder
        ).search("   ", mode=mode)
        == []
    )


def test_source_lists_are_retrieved_only_when_asked_about_sources(retriever):
    asked = retriever.search("What duties did the EU impose on Chinese electric cars?", top_k=4)
    assert "trade para. 3" not in [h.paragraph.label for h in asked]
    sources = retriever.search("Which sources report the EU duties on Chinese electric cars?", top_k=4)
    assert "trade para. 3" in [h.paragraph.label for h in sources]


def test_bad_settings_are_refused_with_the_valid_values(retriever):
    with pytest.raises(BadArgument, match="top_k must be greater than 0"):
        retriever.search("duties", top_k=0)
    with pytest.raises(BadArgument, match="valid retrieval modes: bm25, dense, hybrid"):
        retriever.search("duties", mode="sparse")
    assert Mode.parse("bm25") is Mode.BM25


def test_fusions_on_hand_computed_cases():
    # RRF: 1/(60+1) + 1/(60+2) for item 3, ranked first; ties break by first appearance in the sort key elsewhere.
    rrf = reciprocal_rank_fusion({"bm25": [7, 3], "dense": [3, 9]}, k=60)
    assert rrf[3] == pytest.approx(1 / 62 + 1 / 61) and rrf[7] == pytest.approx(1 / 61)
    # z-score: bm25 {1: 9, 2: 1} -> {1: +1, 2: -1}; dense {2: .9, 3: .1} -> {2: +1, 3: -1}; missing gets the list's floor.
    z = zscore_fusion({"bm25": {1: 9.0, 2: 1.0}, "dense": {2: 0.9, 3: 0.1}}, {"bm25": 0.5, "dense": 0.5})
    assert z == pytest.approx({1: 0.0, 2: 0.0, 3: -1.0})
    assert zscore_fusion({"bm25": {}, "dense": {}}) == {}
    assert zscore_fusion({"bm25": {4: 2.0}}) == {4: 0.0}  # one candidate: no spread, z is 0


def test_passages_group_short_paragraphs_of_one_section_with_their_title_and_heading():
    from rag.passages import make_passages

    rows = [
        Paragraph("proxy", 1, "Nominee: Jennifer Bailey; For: 1,013,605,781", heading="Election of directors"),
        Paragraph("proxy", 2, "Nominee: Tim Cook; For: 1,020,113,912", heading="Election of directors"),
        Paragraph("proxy", 3, "The auditor was ratified.", heading="Ratification of auditor"),
    ]
    passages = make_passages(rows, title="Apple Inc. 2023 proxy statement", max_chars=1000)
    assert [(p.para_start, p.para_end) for p in passages] == [(1, 2), (3, 3)]  # a heading change closes a passage
    assert passages[0].text.startswith("Apple Inc. 2023 proxy statement — Election of directors\n")
    assert "Tim Cook" in passages[0].text and "auditor" not in passages[0].text
    long = [Paragraph("d", n, "word " * 150, heading="h") for n in (1, 2)]
    assert [(p.para_start, p.para_end) for p in make_passages(long, max_chars=1000)] == [(1, 1), (2, 2)]  # apart
    assert [(p.para_start, p.para_end) for p in make_passages(rows)] == [(1, 1), (2, 2), (3, 3)]  # off: as read
    assert make_passages(rows)[0].text == rows[0].text


def test_a_hit_on_a_passage_resolves_to_its_paragraphs(embedder):
    from rag.passages import make_passages

    rows = [
        Paragraph("proxy", 1, "Nominee: Jennifer Bailey; For: 1,013,605,781", heading="Election of directors"),
        Paragraph("proxy", 2, "Nominee: Tim Cook; For: 1,020,113,912", heading="Election of directors"),
        Paragraph("other", 1, "Thailand cut import duties on electric cars in 2022."),
    ]
    passages = make_passages(rows[:2], title="Apple Inc. 2023 proxy statement", max_chars=1000) + make_passages(
        rows[2:], max_chars=1000
    )
    retriever = HybridRetriever(rows, passages, embedder.encode_documents([p.text for p in passages]), embedder)
    hits = retriever.search(
        "How many votes did Apple's director nominees get in the 2023 proxy?", top_k=3, mode="dense"
    )
    # The rows name neither Apple nor the proxy: the passage's title finds them, and each row is its own hit.
    assert [(h.paragraph.doc_id, h.paragraph.para) for h in hits[:2]] == [("proxy", 1), ("proxy", 2)]
    assert hits[0].score == hits[1].score  # one passage, one score for each paragraph in it


def test_the_document_a_question_names_ranks_first(embedder):
    """Two filings print the same row; the question's company and quarter pick the filing (`rag.retrieve.document_match`)."""
    from rag.documents import Document

    docs = [
        Document(
            f"2023-{q}-{t.lower()}",
            f"{name} Form 10-Q",
            "quarterly report",
            f"/f/2023 {q.upper()} {t}.pdf",
            "",
            "pdf",
            meta={"company": name, "ticker": t, "date": date},
        )
        for q, t, name, date in [
            ("q1", "ACME", "Acme Corporation", "2023-03-31"),
            ("q2", "ACME", "Acme Corporation", "2023-06-30"),
            ("q2", "GLBX", "Globex Inc.", "2023-06-30"),
        ]
    ]
    others = [
        "The effective tax rate was 16.1% for the quarter.",
        "Research and development expense grew 12%.",
        "Inventories consist of raw materials and finished goods.",
        "The Company repurchased 10 million shares.",
    ]
    paras = [
        Paragraph(d.doc_id, i, text, heading="Results")
        for d, n in zip(docs, (2000, 3000, 4000))
        for i, text in enumerate([f"Total net sales; {n:,}; 1,000."] + others, start=1)
    ]
    passages = make_passages(paras)
    retriever = HybridRetriever(
        paras, passages, embedder.encode_documents([c.text for c in passages]), embedder, documents=docs
    )
    assert (
        retriever.search("What were Globex's total net sales in Q2 2023?", top_k=1)[0].paragraph.doc_id
        == "2023-q2-glbx"
    )
    assert (
        retriever.search("Acme total net sales, first quarter of 2023?", top_k=1)[0].paragraph.doc_id == "2023-q1-acme"
    )
    latest = retriever.search("Acme's total net sales in the latest 10-Q?", top_k=3)
    assert latest[0].paragraph.doc_id == "2023-q2-acme" and latest[0].scores_by_retriever["document"] == 1.0
    # A question that names no document is ranked as before, and says no document score.
    plain = retriever.search("total net sales", top_k=3)
    assert "document" not in plain[0].scores_by_retriever
    question = "What were Globex's total net sales in Q2 2023?"
    without = HybridRetriever(paras, passages, retriever.dense.vectors, embedder)  # no documents: no prior
    unweighted = HybridRetriever(paras, passages, retriever.dense.vectors, embedder, documents=docs, document_weight=0)
    assert [h.paragraph.label for h in unweighted.search(question, top_k=3)] == [
        h.paragraph.label for h in without.search(question, top_k=3)
    ]
