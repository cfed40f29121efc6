"""The `rag` command end to end on the shipped corpus: real model, real index."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import cli

# (question, a fact the answer must state, a phrase of the commentary paragraph that must be cited)
COMMENTARY_QUESTIONS = [
    (
        "How many vehicles did China export last year according to the China Association of Automobile Manufacturers?",
        "6.4 million",
        "According to the China Association of Automobile Manufacturers",
    ),
    ("How many NEVs did China export?", "1.3 million", "nearly 1.3 million NEVs exported"),
    ("What were the leading export destinations in 2024?", "Saudi Arabia", "Belt and Road Initiative countries"),
    ("How big is the global vehicle market outside China?", "60 million", "excluding China, is over 60 million"),
    (
        "What share of their foreign sales do Chinese companies produce abroad?",
        "less than 10%",
        "Chinese companies produce less than 10%",
    ),
    (
        "What share of the global auto parts trade does China account for?",
        "$150 billion",
        "global auto parts trade, exceeding $150 billion",
    ),
    (
        "What NEV penetration does the International Energy Agency project by 2030?",
        "35%",
        "more than 35% penetration by 2030",
    ),
    ("What does BloombergNEF forecast for NEV sales by 2030?", "39 million", "BloombergNEF forecasts NEV sales"),
    ("What three fronts should the industry strategy focus on?", "localizing production", "three fronts"),
    (
        "Which markets present regulatory hurdles such as anti-subsidy investigations?",
        "EU",
        "anti-subsidy investigations",
    ),
]
OUT_OF_SCOPE = ["Who won the 2022 World Cup?", "What is the capital of Australia?", "How do I bake sourdough bread?"]


@pytest.fixture(scope="module")
def ask_results(corpus_index):
    questions = [q for q, _, _ in COMMENTARY_QUESTIONS] + OUT_OF_SCOPE
    result = CliRunner().invoke(cli, ["ask", *questions, "--json", "--index", str(corpus_index)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [r["question"] for r in lines] == questions  # one object per question, one model load
    return {r["question"]: r for r in lines}


@pytest.mark.parametrize("question, fact, cited_phrase", COMMENTARY_QUESTIONS)
def test_commentary_questions_state_the_fact_and_cite_its_paragraph(ask_results, question, fact, cited_phrase):
    r = ask_results[question]
    assert not r["abstained"]
    assert fact in r["answer"]
    cited = [c for c in r["citations"] if c["doc_id"] == "caixin-commentary" and cited_phrase in c["text"]]
    assert cited, [c["text"][:80] for c in r["citations"]]
    assert f"[caixin-commentary para. {cited[0]['para']}" in r["answer"]
    assert set(r["timings_ms"]) >= {"retrieve", "answer", "total"}


@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_out_of_scope_questions_abstain_and_still_list_closest_paragraphs(ask_results, question):
    r = ask_results[question]
    assert r["abstained"] and r["answer"] == "Not found in the documents."
    assert r["citations"] == [] and len(r["retrieved"]) == 5


def test_every_citation_resolves_to_a_paragraph_containing_its_quote(ask_results, engine):
    checked = 0
    for r in ask_results.values():
        for c in r["citations"]:
            paragraph = engine.index.paragraph(c["doc_id"], c["para"])
            assert paragraph.text == c["text"] and c["quote"] in paragraph.text
            assert c["page"] == paragraph.page and c["source_paras"] == list(paragraph.source_paras)
            checked += 1
    assert checked >= len(COMMENTARY_QUESTIONS)


def test_commentary_citations_carry_the_original_article_paragraphs(ask_results):
    r = ask_results[COMMENTARY_QUESTIONS[0][0]]
    caam = next(c for c in r["citations"] if "Automobile Manufacturers" in c["text"])
    assert caam["source_paras"] == [4, 5]


def test_plain_output_shows_answer_and_sources(corpus_index):
    result = CliRunner().invoke(
        cli, ["ask", "What three fronts should the industry strategy focus on?", "--index", str(corpus_index)]
    )
    assert result.exit_code == 0
    assert "Sources:" in result.stdout and "[caixin-commentary para. " in result.stdout


def test_docs_and_show_let_a_user_check_a_citation(corpus_index, engine):
    docs = CliRunner().invoke(cli, ["docs", "--index", str(corpus_index)])
    assert docs.exit_code == 0
    assert "caixin-commentary\tcommentary\t13 paragraphs" in docs.stdout
    assert "briefing-global-ev-market\tbriefing\t" in docs.stdout and "4 pages" in docs.stdout
    para = engine.index.paragraph("caixin-commentary", 8)
    show = CliRunner().invoke(cli, ["show", "caixin-commentary", "8", "--index", str(corpus_index)])
    assert show.exit_code == 0 and para.text in show.stdout and "Original article: para. 4, 5" in show.stdout
    missing = CliRunner().invoke(cli, ["show", "caixin-commentary", "99", "--index", str(corpus_index)])
    assert missing.exit_code == 1 and "has no paragraph 99; it has paragraphs 1 to 13" in missing.output


def test_asking_without_an_index_says_how_to_build_one(tmp_path):
    result = CliRunner().invoke(cli, ["ask", "Anything?", "--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 3  # app.cli.EXIT_CODES: no index
    assert "no index at" in result.output and "rag ingest corpus/" in result.output


def test_ingest_reports_each_bad_file_and_exits_non_zero(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text("# Note\n\nBYD opened a plant in Thailand in 2024, the note says.\n")
    (corpus / "empty.txt").write_text("")
    result = CliRunner().invoke(cli, ["ingest", str(corpus), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1
    assert f"failed   {corpus.absolute() / 'empty.txt'}: empty file" in result.output
    assert "1 added, 0 updated, 0 unchanged, 0 removed, 1 failed" in result.output
    again = CliRunner().invoke(cli, ["ingest", str(corpus / "note.md"), "--index", str(tmp_path / "index")])
    assert again.exit_code == 0 and "Nothing changed: 1 documents up to date" in again.output


def test_weak_matches_are_answered_with_a_low_confidence_note(ask_results, corpus_index):
    confident = ask_results[COMMENTARY_QUESTIONS[0][0]]
    assert confident["notes"] == []
    result = CliRunner().invoke(
        cli, ["ask", "What was BYD's net profit in 2023?", "--json", "--index", str(corpus_index)]
    )
    r = json.loads(result.stdout)
    assert r["abstained"] or any("No sentence in the documents matches this question closely" in n for n in r["notes"])
