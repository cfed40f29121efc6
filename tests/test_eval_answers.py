"""The answer-level evals' own logic (evals/answers.py, squad.py, mmlongbench.py) on small hand-made inputs:
normalisation, what counts as stated, cited and retrieved, the document split, and each set's questions."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from evals import answers as A
from evals import mmlongbench, squad


def q(answerable=True, parts=(("82,959",),), pages=(("a.pdf", 4),), windows=(), doc="a.pdf"):
    return A.Question("q1", "What were net sales?", doc, answerable, parts, frozenset(pages), windows)


def rec(abstained=False, text="", lead="", citations=(), retrieved=()):
    return A.AnswerRecord(abstained, text, lead, tuple(citations), tuple(retrieved))


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "haystack, needle",
    [
        ("Total net sales $ 82,959 million", "82,959"),
        ("Total net sales 82959", "$82,959"),
        ("the RATE was 12.5 %", "12.5%"),
        ("Products — Three Months Ended: $73,929", "73,929"),
        ("Rollo,  the Viking leader", "rollo"),
        ("a rate of 17.0 per cent", "17"),
    ],
)
def test_contains_matches_the_forms_reports_print(haystack, needle):
    assert A.contains(haystack, needle)


@pytest.mark.parametrize(
    "haystack, needle",
    [
        ("Total net sales $182,959", "82,959"),  # a longer number is not the figure
        ("Total net sales 82,9591", "82,959"),
        ("the Normandy region", "norman"),  # part of a word
        ("a rate of 17.5", "17"),
        ("", "17"),
        ("anything", ""),
    ],
)
def test_contains_refuses_partial_matches(haystack, needle):
    assert not A.contains(haystack, needle)


def test_norm_keeps_decimal_points_and_drops_sentence_points():
    assert A.norm("Up 4.5%. Then 1,234.") == "up 4.5% then 1234"
    assert A.norm("It’s “Duchy”  of\tNormandy!") == "it's duchy of normandy"


# ---------------------------------------------------------------- stated, lead, cited


def test_stated_needs_every_part_and_any_alternative():
    parts = (("18,592",), ("24,259",))
    assert A.stated("18,592 and 24,259", parts) == 1.0
    assert A.stated("18,592 only", parts) == 0.0
    assert A.stated_any("18,592 only", parts) == 1.0
    assert A.stated("the Vikings came", (("Norsemen", "Vikings"),)) == 1.0
    assert math.isnan(A.stated("x", ()))


def test_score_answer_for_an_answered_question():
    cite_gold, cite_other = A.Passage("a.pdf", 4, "Net sales 82,959"), A.Passage("a.pdf", 9, "x")
    row = A.score_answer(
        q(),
        rec(
            text="82,959 (2023) Net sales were $82,959 million.",
            lead="82,959",
            citations=[cite_other, cite_gold],
            retrieved=[cite_other, cite_gold],
        ),
    )
    assert (row["answered"], row["stated"], row["in_lead"], row["cited_gold"], row["hit@5"], row["doc_hit@5"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert math.isnan(row["refused"])


def test_score_answer_lead_and_citation_misses():
    row = A.score_answer(
        q(),
        rec(
            text="Revenue 10 Net sales were $82,959 million.",
            lead="10",
            citations=[A.Passage("a.pdf", 5, "82,959")],
            retrieved=[A.Passage("b.pdf", 4, "")] * 5 + [A.Passage("a.pdf", 4, "")],
        ),
    )
    assert (row["stated"], row["in_lead"], row["cited_gold"], row["hit@5"], row["doc_hit@5"]) == (
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )


def test_a_refused_answerable_question_scores_zero_even_if_the_text_has_the_figure():
    row = A.score_answer(
        q(), rec(abstained=True, text="82,959", lead="82,959", citations=[A.Passage("a.pdf", 4, "82,959")])
    )
    assert (row["answered"], row["stated"], row["in_lead"], row["cited_gold"]) == (0.0, 0.0, 0.0, 0.0)


def test_unanswerable_questions_count_only_for_refusal():
    refused = A.score_answer(q(answerable=False, parts=(), pages=()), rec(abstained=True))
    answered = A.score_answer(q(answerable=False, parts=(), pages=()), rec(abstained=False, text="42"))
    assert refused["refused"] == 1.0 and answered["refused"] == 0.0
    for name in ("answered", "stated", "in_lead", "cited_gold", "hit@5", "doc_hit@5"):
        assert math.isnan(refused[name]), name


def test_windows_mark_the_gold_paragraph_in_the_right_document_only():
    question = q(parts=(("Rollo",),), pages=(), windows=("In 911 Rollo took Normandy",), doc="normans.txt")
    right = A.Passage("normans.txt", None, "The Vikings came. In 911, Rollo took Normandy from the king.")
    mention = A.Passage("normans.txt", None, "Rollo is mentioned here again.")
    other = A.Passage("france.txt", None, "In 911 Rollo took Normandy")
    assert A.hit_at(question, [mention, other, right]) == 1.0
    assert A.hit_at(question, [mention, other]) == 0.0


def test_sentence_window_cuts_long_sentences_around_the_answer():
    context = "Intro. " + " ".join(f"w{i}" for i in range(60)) + " ANSWER " + " ".join(f"v{i}" for i in range(60)) + "."
    window = A.sentence_window(context, context.index("ANSWER"), "ANSWER", max_words=11)
    assert window.split() == [f"w{i}" for i in range(55, 60)] + ["ANSWER"] + [f"v{i}" for i in range(5)]
    assert A.contains(context, window)


# ---------------------------------------------------------------- halves and summaries


def test_half_is_deterministic_and_splits_documents():
    names = [f"doc-{i}.pdf" for i in range(200)]
    halves = [A.half(n) for n in names]
    assert halves == [A.half(n) for n in names]
    assert 60 < halves.count("fit") < 140  # both halves are used
    assert A.half("2023 Q3 AAPL.pdf") == (
        "fit" if int(__import__("hashlib").sha1(b"2023 Q3 AAPL.pdf").hexdigest(), 16) % 2 == 0 else "held"
    )


def test_summarize_skips_nan_and_filters_by_half():
    rows = [
        {"half": "fit", "answerable": True, "answered": 1.0, "refused": A.NAN},
        {"half": "fit", "answerable": False, "answered": A.NAN, "refused": 0.0},
        {"half": "held", "answerable": True, "answered": 0.0, "refused": A.NAN},
    ]
    fit, everything = A.summarize(rows, "fit"), A.summarize(rows)
    assert (fit["questions"], fit["answerable"], fit["unanswerable"], fit["answered"], fit["refused"]) == (
        2,
        1,
        1,
        1.0,
        0.0,
    )
    assert everything["answered"] == 0.5


def test_table_prints_both_halves_and_all():
    run = A.Run(
        "paracite",
        rows=[
            {"half": "fit", "answerable": True, "answered": 1.0},
            {"half": "held", "answerable": True, "answered": 0.0},
        ],
    )
    lines = A.table([run]).splitlines()
    assert [line.split(" | ")[1] for line in lines[2:]] == ["fit", "held", "all"]
    assert "| 1.000 |" in lines[2] and "| 0.000 |" in lines[3] and "| 0.500 |" in lines[4]


def test_record_from_answer_reads_lead_sentences_citations_and_trace():
    para = SimpleNamespace(doc_id="d1", page=3, text="Net sales 5", label="d1 para. 2")
    cite = SimpleNamespace(doc_id="d1", page=3, text="Net sales 5", label="d1 para. 2")
    answer = SimpleNamespace(
        abstained=False,
        lead=SimpleNamespace(span="5"),
        notes=(),
        claims=[SimpleNamespace(text="Net sales were 5.")],
        citations=[cite],
        trace=[SimpleNamespace(paragraph=para)],
        retrieved=[],
    )
    r = A.record_from_answer(answer, {"d1": "D 1.pdf"}.get)
    assert (r.text, r.lead, r.citations[0].doc, r.retrieved[0].page) == ("5 Net sales were 5.", "5", "D 1.pdf", 3)


# ---------------------------------------------------------------- the sets


def test_squad_article_becomes_one_document_and_questions_keep_their_sentence(tmp_path):
    context1 = "The Normans were a people. Rollo led them in 911."
    context2 = "Normandy lies in France."
    dev = {
        "data": [
            {
                "title": "Normans",
                "paragraphs": [
                    {
                        "context": context1,
                        "qas": [
                            {
                                "id": "a1",
                                "question": "Who led them?",
                                "is_impossible": False,
                                "answers": [{"text": "Rollo", "answer_start": context1.index("Rollo")}],
                            },
                            {
                                "id": "u1",
                                "question": "Who led the Danes?",
                                "is_impossible": True,
                                "plausible_answers": [{"text": "Rollo", "answer_start": context1.index("Rollo")}],
                                "answers": [],
                            },
                        ],
                    },
                    {"context": context2, "qas": []},
                ],
            },
            {"title": "Second_one", "paragraphs": [{"context": "Skip me.", "qas": []}]},
        ]
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(dev))
    qs = squad.prepare(path, tmp_path / "docs", articles=1, per_article=None)
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["normans.txt"]
    assert (tmp_path / "docs" / "normans.txt").read_text() == context1 + "\n\n" + context2 + "\n"
    answerable, unanswerable = qs
    assert (answerable.answerable, answerable.parts, answerable.windows) == (
        True,
        (("Rollo",),),
        ("Rollo led them in 911.",),
    )
    assert (unanswerable.answerable, unanswerable.parts, unanswerable.doc) == (False, (), "normans.txt")


def test_squad_keeps_per_article_of_each_kind():
    qas = [
        {"id": f"a{i}", "question": "?", "is_impossible": False, "answers": [{"text": "x", "answer_start": 0}]}
        for i in range(5)
    ] + [{"id": f"u{i}", "question": "?", "is_impossible": True} for i in range(5)]
    qs = squad.questions_of({"title": "T", "paragraphs": [{"context": "x y.", "qas": qas}]}, per_article=2)
    assert [x.answerable for x in qs] == [True, True, False, False]
    assert qs == squad.questions_of({"title": "T", "paragraphs": [{"context": "x y.", "qas": qas[::-1]}]}, 2)


def test_mmlongbench_keeps_text_table_layout_questions_on_present_pdfs():
    samples = [
        {
            "doc_id": "a.pdf",
            "question": "q0",
            "answer": "17",
            "answer_format": "Int",
            "evidence_pages": "[3, 4]",
            "evidence_sources": "['Table']",
        },
        {
            "doc_id": "a.pdf",
            "question": "q1",
            "answer": "x",
            "answer_format": "Str",
            "evidence_pages": "[2]",
            "evidence_sources": "['Chart', 'Table']",
        },
        {
            "doc_id": "a.pdf",
            "question": "q2",
            "answer": "Not answerable",
            "answer_format": "None",
            "evidence_pages": "[]",
            "evidence_sources": "[]",
        },
        {
            "doc_id": "b.pdf",
            "question": "q3",
            "answer": "y",
            "answer_format": "Str",
            "evidence_pages": "[1]",
            "evidence_sources": "['Pure-text (Plain-text)']",
        },
        {
            "doc_id": "a.pdf",
            "question": "q4",
            "answer": "['Ann', 'Bo']",
            "answer_format": "List",
            "evidence_pages": "[1]",
            "evidence_sources": "['Generalized-text (Layout)', 'Pure-text (Plain-text)']",
        },
    ]
    qs = mmlongbench.questions(samples, {"a.pdf"})
    assert [x.question for x in qs] == ["q0", "q2", "q4"]
    assert qs[0].pages == frozenset({("a.pdf", 3), ("a.pdf", 4)}) and qs[0].parts == (("17",),)
    assert (qs[1].answerable, qs[1].parts, qs[1].pages) == (False, (), frozenset())
    assert qs[2].parts == (("Ann",), ("Bo",))


def test_sec10q_questions_come_from_the_gold_file(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps(
            {
                "id": "s1",
                "question": "Gross margin?",
                "doc_ids": ["2023-q3-aapl"],
                "files": ["2023 Q3 AAPL.pdf"],
                "pages": [{"doc_id": "2023-q3-aapl", "page": 4}],
                "evidence": ["36,413", "1,234"],
                "answer": "$36,413 million",
            }
        )
        + "\n"
    )
    (item,) = A.sec10q_questions(gold)
    assert (item.doc, item.pages, item.parts, item.answerable) == (
        "2023 Q3 AAPL.pdf",
        frozenset({("2023 Q3 AAPL.pdf", 4)}),
        (("36,413",), ("1,234",)),
        True,
    )


def test_reasons_counts_refusals_of_answerable_questions_by_signal():
    run = A.Run(
        "p",
        rows=[
            {"id": "a", "answerable": True, "answered": 0.0},
            {"id": "b", "answerable": True, "answered": 0.0},
            {"id": "c", "answerable": True, "answered": 1.0},
            {"id": "d", "answerable": False, "refused": 1.0},
        ],
        answers={
            "a": {"signals": {"covered": 0.0, "missing_year": 0.0}},
            "b": {"signals": {"missing_year": 1.0}},
            "c": {"notes": ["No sentence ... closely"]},
            "d": {"signals": {}},
        },
    )
    text = A.reasons(run)
    assert "refused: 2 (" in text and "1 names not covered by one paragraph" in text
    assert "1 year not in the retrieved paragraphs" in text and "answers with a note: 1 of 1" in text
