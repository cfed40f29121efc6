"""rag.present and app.transcript: answers survive JSON both ways, changed documents are noticed, the export escapes."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from app.transcript import (
    CHANGED,
    MISSING,
    OK,
    answer_status,
    citation_status,
    load_conversation,
    neighbours,
    new_conversation_id,
    save_conversation,
)
from rag.documents import Answer, Citation, DocRef, Hit, Lead, Paragraph, SentenceClaim, Support
from rag.present import conversation_markdown, from_json, to_json, to_text, view


def test_answer_json_round_trips_and_carries_hashes(engine):
    answer = engine.ask("How many vehicles did China export in 2023?")
    record = json.loads(json.dumps(to_json(answer)))
    assert record["format"] == "paracite-answer" and record["version"] == 2
    assert not record["abstained"] and record["claims"]
    cites = {c["label"]: c for c in record["citations"]}
    for claim in record["claims"]:
        for key in claim["cites"]:
            assert cites[key]["sha256"] == engine.index.document(cites[key]["doc_id"]).sha256
            assert claim["text"] in cites[key]["text"]
    assert {r["label"] for r in record["retrieved"] if r["cited"]} == set(cites)
    back = from_json(record)
    assert back.claims == answer.claims and back.retrieved == answer.retrieved and back.documents == answer.documents
    assert to_json(back) == record  # the UI's saved conversations and the evals read exactly what was written
    assert all(s == OK for s in answer_status(back, engine.index).values())


def test_citation_status_changed_and_missing(engine):
    assert citation_status(engine.index, "caixin-commentary", 4, "0" * 64) == CHANGED
    sha = engine.index.document("caixin-commentary").sha256
    assert citation_status(engine.index, "caixin-commentary", 4, sha) == OK
    assert citation_status(engine.index, "caixin-commentary", 999, sha) == CHANGED
    assert citation_status(engine.index, "gone", 4, sha) == MISSING
    assert citation_status(None, "caixin-commentary", 4, sha) == MISSING


def test_neighbours_stop_at_the_ends(engine):
    before, after = neighbours(engine.index, "caixin-commentary", 1)
    assert before is None and after.para == 2


def _answer(text: str = "Exports grew.", paragraph: str = "Exports grew.\nA lot.") -> Answer:
    cite = Citation("a", 2, "A report", text, paragraph, page=3, source_paras=(7, 8))
    return Answer(
        "Exports?",
        (SentenceClaim(text, (cite,), Support.SUPPORTED, 0.9),),
        False,
        (Hit(Paragraph("a", 2, paragraph, 3, "", (7, 8)), 1.0, 1), Hit(Paragraph("a", 1, "Close."), 0.5, 2)),
        documents={"a": DocRef("a", "A report", "x")},
    )


def test_markdown_export_resolves_citations_and_escapes_documents():
    abstained = Answer(
        "World Cup?",
        (SentenceClaim("Not found in the documents."),),
        True,
        (Hit(Paragraph("a", 1, "Close."), 0.5, 1),),
        documents={"a": DocRef("a", "A report", "x")},
    )
    md = conversation_markdown(["Exports?", _answer(), "World Cup?", abstained])
    assert "Exports grew. \\[a para. 2\\]" in md
    assert "**\\[a para. 2\\]** A report, page 3 · original article para. 7, 8" in md
    assert "> Exports grew.\n> A lot." in md
    assert "Not found in the documents." in md and "- \\[a para. 1\\] A report" in md and "> Close." in md
    evil = _answer(
        "See <img src=x onerror=alert(1)> and [x](javascript:alert(1)).",
        "See <img src=x onerror=alert(1)> and [x](javascript:alert(1)).\n<script>alert(2)</script>",
    )
    md = conversation_markdown([evil])
    assert not re.search(r"(?<!\\)<", md), "an unescaped < could open HTML"
    assert not re.search(r"(?<!\\)\]\(", md), "an unescaped ]( could make a link"
    assert "\\<img src=x onerror=alert(1)\\>" in md and "\\<script\\>" in md


def test_a_new_field_reaches_every_presenter():
    """The lead line is added once in rag.present and shows in JSON, text, Markdown and the UI's view."""
    base = _answer()
    answer = replace(base, lead=Lead("grew", base.claims[0].citations[0], "2023"))
    assert to_json(answer)["lead"] == {"span": "grew", "context": "2023", "cite": "a para. 2"}
    assert from_json(to_json(answer)).lead == answer.lead
    assert "A: grew (2023) [a para. 2]" in to_text(answer)
    assert "**grew** (2023) \\[a para. 2\\]" in conversation_markdown([answer])
    assert view(answer).lead == answer.lead
    assert to_json(base)["lead"] is None and "A: " not in to_text(base)


def test_conversations_round_trip_and_refuse_crafted_ids(tmp_path):
    from rag.errors import BadArgument

    cid = new_conversation_id()
    turns = ["Q?", _answer()]
    path = save_conversation(tmp_path, cid, turns)
    assert path.parent == tmp_path and load_conversation(tmp_path, cid) == turns
    assert load_conversation(tmp_path, new_conversation_id()) == []  # none saved yet
    with pytest.raises(BadArgument):
        save_conversation(tmp_path, "../../etc/passwd", turns)
    assert load_conversation(tmp_path, "../" + cid) == []
    path.write_text('{"version": 999, "messages": [1]}')
    assert load_conversation(tmp_path, cid) == []  # another record version is not misread


def test_version_1_conversations_still_load(tmp_path):
    """Conversations saved before answers had one JSON shape keep their citations."""
    cid = new_conversation_id()
    v1 = {
        "version": 1,
        "messages": [
            {"role": "user", "content": "Exports?"},
            {
                "role": "assistant",
                "version": 1,
                "question": "Exports?",
                "abstained": False,
                "answerer": "extractive",
                "claims": [{"text": "Exports grew.", "support": "supported", "cites": ["a para. 2"]}],
                "citations": {
                    "a para. 2": {
                        "doc_id": "a",
                        "para": 2,
                        "page": 3,
                        "title": "A report",
                        "quote": "Exports grew.",
                        "text": "Exports grew.",
                        "source_paras": [7],
                        "sha256": "x",
                    }
                },
                "retrieved": [
                    {
                        "doc_id": "a",
                        "para": 2,
                        "page": 3,
                        "title": "A report",
                        "text": "Exports grew.",
                        "score": 1.0,
                        "sha256": "x",
                        "cited": True,
                    }
                ],
            },
        ],
    }
    (tmp_path / f"{cid}.json").write_text(json.dumps(v1))
    question, answer = load_conversation(tmp_path, cid)
    assert question == "Exports?" and answer.claims[0].citations[0].label == "a para. 2"
    assert answer.documents["a"].sha256 == "x"
