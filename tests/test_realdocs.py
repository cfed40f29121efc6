"""The real-documents benchmark: the committed gold set's integrity, the scoring on hand-made inputs, and
`rag eval realdocs` end to end on a generated three-page PDF (the 10-Q PDFs are never needed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from fpdf import FPDF

from evals import cli as eval_cli
from evals.realdocs import (
    GOLD,
    GoldItem,
    PageRef,
    RealdocsError,
    Retrieved,
    check_gold,
    doc_hit,
    load_gold,
    normalize,
    page_hit,
    page_mrr,
    page_texts,
    paragraph_hit,
    summarize,
)
from rag.load import slugify

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the committed gold set


def test_gold_set_integrity():
    items = load_gold(ROOT / GOLD)
    assert len(items) >= 60
    assert len({i.id for i in items}) == len(items)
    assert all(i.id.startswith("s") and len(i.id) == 4 for i in items)
    for item in items:
        assert item.question and item.answer and item.evidence, item.id
        assert list(item.doc_ids) == [slugify(f) for f in item.files], item.id
        assert item.pages and all(p.page >= 1 and p.doc_id in item.doc_ids for p in item.pages), item.id
        assert item.source_chunk_type in {"Table", "Text"}, item.id
    raw = [json.loads(line) for line in (ROOT / GOLD).read_text(encoding="utf-8").splitlines()]
    assert all(
        {"id", "question", "doc_ids", "files", "pages", "evidence", "answer", "question_type", "source_chunk_type"}
        <= set(r)
        for r in raw
    )


def test_gold_refuses_missing_fields_and_duplicates(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "s001", "question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(RealdocsError, match="lacks doc_ids"):
        load_gold(bad)
    row = {
        "id": "s001",
        "question": "q",
        "doc_ids": ["a"],
        "files": ["a.pdf"],
        "pages": [{"doc_id": "a", "page": 1}],
        "evidence": ["1"],
        "answer": "1",
    }
    bad.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(RealdocsError, match="duplicate ids"):
        load_gold(bad)
    bad.write_text(json.dumps({**row, "pages": [{"doc_id": "a", "page": 0}]}) + "\n", encoding="utf-8")
    with pytest.raises(RealdocsError, match="1-based"):
        load_gold(bad)


# ---------------------------------------------------------------- scoring

GOLD_ITEM = GoldItem(
    "s001",
    "What was the gross margin?",
    ("q3",),
    ("Q3.pdf",),
    (PageRef("q3", 4), PageRef("q3", 20)),
    ("36,413",),
    "$36,413 million",
)


def test_hits_and_mrr_on_hand_made_rankings():
    ranking = [
        Retrieved("q2", 4, "Gross margin 36,413"),  # right page number, wrong document
        Retrieved("q3", 5, "Operating expenses"),
        Retrieved("q3", 20, "Total gross margin $ 36,413"),
        Retrieved("q3", 4, "Gross margin 36413"),
    ]
    assert doc_hit(GOLD_ITEM, ranking) == 1.0
    assert doc_hit(GOLD_ITEM, ranking, k=1) == 0.0
    assert page_hit(GOLD_ITEM, ranking) == 1.0
    assert page_hit(GOLD_ITEM, ranking, k=2) == 0.0
    assert page_mrr(GOLD_ITEM, ranking) == pytest.approx(1 / 3)
    assert paragraph_hit(GOLD_ITEM, ranking) == 1.0
    assert paragraph_hit(GOLD_ITEM, ranking[:2]) == 0.0  # the figure in another document does not count


def test_scores_on_empty_results_and_ranks_past_ten():
    assert doc_hit(GOLD_ITEM, []) == 0.0 and page_hit(GOLD_ITEM, []) == 0.0 and page_mrr(GOLD_ITEM, []) == 0.0
    late = [Retrieved("q3", 1, "")] * 10 + [Retrieved("q3", 4, "")]
    assert page_mrr(GOLD_ITEM, late) == 0.0
    rows = [
        {"id": "a", "doc_hit@5": 1.0, "page_hit@5": 1.0, "para_hit@5": math.nan, "mrr@10": 1.0},
        {"id": "b", "doc_hit@5": 1.0, "page_hit@5": 0.0, "para_hit@5": 0.0, "mrr@10": 0.25},
    ]
    summary = summarize(rows)
    assert summary == {"questions": 2, "doc_hit@5": 1.0, "page_hit@5": 0.5, "para_hit@5": 0.0, "mrr@10": 0.625}


def test_normalize_matches_printed_forms():
    assert normalize("$82,959") in normalize("Total net sales $ 82,959 $ 83,000")
    assert normalize("12.5%") in normalize("Effective tax rate 12.5 % 15.7 %")


# ---------------------------------------------------------------- end to end on a generated PDF

PAGES = [
    ("Overview", "The company designs chips for data centers and gaming. Its fiscal quarter ended on October 29."),
    (
        "Revenue by market",
        "Data Center revenue was $14,514 million in the quarter, up from $3,833 million a year "
        "earlier, on demand for accelerated computing.",
    ),
    ("Income taxes", "The effective tax rate was 12.2% for the quarter, below the statutory federal rate of 21%."),
]


def _tiny_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "filings"
    folder.mkdir()
    pdf = FPDF()
    for title, body in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 15)
        pdf.multi_cell(0, 9, title)
        pdf.ln(3)
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, body)
    pdf.output(str(folder / "2023 Q3 TEST.pdf"))
    return folder


def _tiny_gold(tmp_path: Path) -> Path:
    doc = "2023-q3-test"
    rows = [
        {
            "id": "s001",
            "question": "What was Data Center revenue in the quarter?",
            "doc_ids": [doc],
            "files": ["2023 Q3 TEST.pdf"],
            "pages": [{"doc_id": doc, "page": 2}],
            "evidence": ["14,514"],
            "answer": "$14,514 million",
            "question_type": "Single-Doc Single-Chunk RAG",
            "source_chunk_type": "Text",
        },
        {
            "id": "s002",
            "question": "What effective tax rate was reported?",
            "doc_ids": [doc],
            "files": ["2023 Q3 TEST.pdf"],
            "pages": [{"doc_id": doc, "page": 3}],
            "evidence": ["12.2%"],
            "answer": "12.2%",
            "question_type": "Single-Doc Single-Chunk RAG",
            "source_chunk_type": "Text",
        },
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_check_gold_finds_evidence_on_its_page_only(tmp_path):
    folder, gold = _tiny_folder(tmp_path), _tiny_gold(tmp_path)
    items = load_gold(gold)
    texts = page_texts(folder)
    assert check_gold(items, texts) == []
    wrong = [
        GoldItem(
            "s009",
            "q",
            ("2023-q3-test",),
            ("2023 Q3 TEST.pdf",),
            (PageRef("2023-q3-test", 1), PageRef("2023-q3-test", 7)),
            ("14,514",),
            "x",
        )
    ]
    assert check_gold(wrong, texts) == [
        "s009: '14,514' not on 2023-q3-test p. 1",
        "s009: 2023-q3-test has 3 pages, not 7",
    ]


def test_rag_eval_realdocs_end_to_end(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(eval_cli, "load_embedder", lambda: embedder)
    folder, gold, out, index = _tiny_folder(tmp_path), _tiny_gold(tmp_path), tmp_path / "out", tmp_path / "index"
    args = ["realdocs", str(folder), "--index", str(index), "--gold", str(gold), "--out", str(out)]
    result = CliRunner().invoke(eval_cli.eval_command, args)
    assert result.exit_code == 0, result.output
    assert "| paracite | 2 | 1.000 | 1.000 | 1.000 | 1.000 |" in result.output
    figures = json.loads((out / "realdocs.json").read_text(encoding="utf-8"))
    assert figures["format"] == "paracite-realdocs v1"
    run = figures["runs"][0]
    assert run["ingest"]["fresh"] is True and run["ingest"]["embed_seconds"] > 0
    assert [r["id"] for r in run["rows"]] == ["s001", "s002"]
    assert (out / "realdocs.md").exists() and (out / "realdocs-misses.md").exists()

    # A second run finds the index up to date: nothing is ingested, so nothing is timed.
    again = CliRunner().invoke(eval_cli.eval_command, args)
    assert again.exit_code == 0, again.output
    assert "– (index up to date)" in again.output
