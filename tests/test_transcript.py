"""rag.transcript: answer records survive JSON, notice changed documents, and export to Markdown."""

from __future__ import annotations

import json

from rag.transcript import CHANGED, MISSING, OK, answer_record, citation_status, neighbours, to_markdown


def test_answer_record_is_json_and_carries_hashes(engine):
    answer = engine.ask("How many vehicles did China export in 2023?")
    record = json.loads(json.dumps(answer_record(answer, engine.index)))
    assert not record["abstained"] and record["claims"]
    for claim in record["claims"]:
        for key in claim["cites"]:
            cite = record["citations"][key]
            assert cite["sha256"] == engine.index.document(cite["doc_id"]).sha256
            assert claim["text"] in cite["text"]
            assert citation_status(cite, engine.index) == OK
    cited = [r for r in record["retrieved"] if r["cited"]]
    assert {f"{r['doc_id']} para. {r['para']}" for r in cited} == set(record["citations"])


def test_citation_status_changed_and_missing(engine):
    para = engine.index.paragraph("caixin-commentary", 4)
    cite = {"doc_id": para.doc_id, "para": para.para, "sha256": "0" * 64}
    assert citation_status(cite, engine.index) == CHANGED
    assert citation_status({**cite, "doc_id": "gone"}, engine.index) == MISSING
    assert citation_status(cite, None) == MISSING


def test_neighbours_stop_at_the_ends(engine):
    before, after = neighbours(engine.index, "caixin-commentary", 1)
    assert before is None and after.para == 2


def test_markdown_export_resolves_citations():
    messages = [
        {"role": "user", "content": "Exports?"},
        {"role": "assistant", "abstained": False, "claims": [{"text": "Exports grew.", "cites": ["a para. 2"]}],
         "citations": {"a para. 2": {"doc_id": "a", "para": 2, "page": 3, "title": "A report", "quote": "Exports grew.",
                                     "text": "Exports grew.\nA lot.", "source_paras": [7, 8], "sha256": "x"}},
         "retrieved": [], "notes": []},
        {"role": "user", "content": "World Cup?"},
        {"role": "assistant", "abstained": True, "claims": [{"text": "Not found in the documents.", "cites": []}],
         "citations": {}, "retrieved": [{"doc_id": "a", "para": 1, "title": "A report", "text": "Close."}]},
    ]
    md = to_markdown(messages)
    assert "Exports grew. [a para. 2]" in md
    assert "**[a para. 2]** A report, page 3 (original article para. 7, 8)" in md
    assert "> Exports grew.\n> A lot." in md
    assert "Not found in the documents." in md and "- [a para. 1] A report" in md and "> Close." in md


def test_conversations_round_trip_and_refuse_crafted_ids(tmp_path):
    import pytest

    from rag.errors import BadArgument
    from rag.transcript import load_conversation, new_conversation_id, save_conversation

    cid = new_conversation_id()
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "claims": [], "citations": {}}]
    path = save_conversation(tmp_path, cid, messages)
    assert path.parent == tmp_path and load_conversation(tmp_path, cid) == messages
    assert load_conversation(tmp_path, new_conversation_id()) == []  # none saved yet
    with pytest.raises(BadArgument):
        save_conversation(tmp_path, "../../etc/passwd", messages)
    assert load_conversation(tmp_path, "../" + cid) == []
    path.write_text('{"version": 999, "messages": [1]}')
    assert load_conversation(tmp_path, cid) == []  # another record version is not misread
