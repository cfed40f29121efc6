"""Follow-up rewriting: the rules, the LLM path, the gold follow-ups through retrieval, and `rag ask --history`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.query import rewrite_followup, rule_rewrite

GOLD = Path(__file__).resolve().parent.parent / "evals" / "gold" / "followups.jsonl"
JAPAN = "How many vehicles did Japanese makers build overseas in 2023?"


def _gold():
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize(
    "followup,previous,expected",
    [
        ("And what about Korea?", [JAPAN], "How many vehicles did Korean makers build overseas in 2023?"),
        ("How about 2014?", [JAPAN], "How many vehicles did Japanese makers build overseas in 2014?"),
        (
            "What about Kia?",
            ["How many cars did Hyundai build in Alabama in 2013?"],
            "How many cars did Kia build in Alabama in 2013?",
        ),
        (
            "And in China?",
            ["What share of global car sales did electric cars take in 2024?"],
            "What share of global car sales did electric cars take in 2024, in China?",
        ),
        (
            "When did it open?",
            ["Where is Hyundai's first US plant?"],
            "When did it open? (about: Hyundai first US plant)",
        ),
        ("Who owns NUMMI?", [JAPAN], "Who owns NUMMI?"),  # standalone already
        ("And for 2014?", [JAPAN, "What about Korea?"], "How many vehicles did Korean makers build overseas in 2014?"),
    ],
)
def test_rule_rewrite(followup, previous, expected):
    assert rule_rewrite(followup, previous).standalone == expected


def test_engine_ask_reports_the_rewritten_question(engine):
    a = engine.ask("And what about Korea?", history=[{"role": "user", "content": JAPAN}])
    assert a.question == "And what about Korea?"
    assert a.standalone_question == "How many vehicles did Korean makers build overseas in 2023?"


def test_no_history_means_no_rewrite_and_no_llm_call():
    model = FakeListChatModel(responses=[])
    assert rewrite_followup("And Korea?", [], model).method == "unchanged"


def test_llm_rewrite_is_used_and_cleaned():
    model = FakeListChatModel(
        responses=['Standalone question: "How many vehicles did Korean makers build abroad in 2023?"\nextra']
    )
    r = rewrite_followup("And what about Korea?", [{"role": "user", "content": JAPAN}], model)
    assert (r.method, r.standalone) == ("llm", "How many vehicles did Korean makers build abroad in 2023?")


def test_llm_rewrite_that_fails_falls_back_to_rules():
    class Down:
        def invoke(self, _):
            raise ConnectionError("refused")

    r = rewrite_followup("And what about Korea?", [{"role": "user", "content": JAPAN}], Down())
    assert (r.method, r.standalone) == ("slot", "How many vehicles did Korean makers build overseas in 2023?")


def test_gold_followups_retrieve_their_paragraph_after_rewriting(engine):
    """recall@5 of the evidence paragraph, with the rule rewriter, against the follow-up asked as typed."""
    gold = _gold()
    assert len(gold) >= 8 and all(g["kind"] == "followup" and g["history"] for g in gold)
    found, found_raw, misses = 0, 0, []
    for g in gold:
        ev = g["evidence"][0]
        targets = {(ev["doc_id"], p.para) for p in engine.index.paragraphs(ev["doc_id"]) if ev["quote"] in p.text}
        assert targets, f"{g['id']}: quote not in {ev['doc_id']}"
        standalone = engine.rewrite(g["question"], g["history"]).standalone
        assert standalone != g["question"]
        got = {(h.paragraph.doc_id, h.paragraph.para) for h in engine.retriever.search(standalone, top_k=5)}
        raw = {(h.paragraph.doc_id, h.paragraph.para) for h in engine.retriever.search(g["question"], top_k=5)}
        found += bool(targets & got)
        found_raw += bool(targets & raw)
        if not targets & got:
            misses.append((g["id"], standalone))
    # f001's paragraph says "Hyundai and Kia", never "Korea": the rewrite is right, retrieval ranks it 6th.
    assert found >= len(gold) - 1, misses
    # with passages (title and heading in front) the questions as typed find their paragraphs too (10 of 10 here;
    # 6 of 10 with each paragraph alone); the rewrite must not lose any
    assert found >= found_raw


def test_cli_ask_with_history(corpus_index, tmp_path):
    from app.cli import cli

    history = tmp_path / "turns.json"
    history.write_text(
        json.dumps([{"role": "user", "content": JAPAN}, {"role": "assistant", "content": "17.2 million."}])
    )
    result = CliRunner().invoke(
        cli, ["ask", "How about 2014?", "--history", str(history), "--index", str(corpus_index), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["standalone_question"] == "How many vehicles did Japanese makers build overseas in 2014?"
    assert out["retrieved"] and out["claims"] and out["support"]["sentences"] == len(out["claims"])


def test_cli_rejects_malformed_history(corpus_index, tmp_path):
    from app.cli import cli

    bad = tmp_path / "bad.json"
    bad.write_text('{"role": "user"}')
    result = CliRunner().invoke(cli, ["ask", "q", "--history", str(bad), "--index", str(corpus_index)])
    assert result.exit_code != 0 and "expected a JSON list" in result.output
