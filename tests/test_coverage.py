"""Coverage on questions as real users write them: instruction sentences, report periods, and what a document
says of itself (issue 21)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answer.coverage import constraints, covers, question_parts, without_instructions
from rag.answer.question import negative, value_of
from rag.documents import Document
from rag.engine import contexts_of

FILING_QUESTION = (
    "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the "
    "question by relying on the details shown in the cash flow statement."
)
CASH_FLOW_ROW = "Purchases of property, plant and equipment (PP&E): 2018: (1,577); 2017: (1,373); 2016: (1,420)"


@pytest.mark.parametrize(
    "question, asked",
    [
        (FILING_QUESTION, "What is the FY2018 capital expenditure amount for 3M?"),
        ("How much did revenue grow? Answer in USD millions. Round to two decimals.", "How much did revenue grow?"),
        ("Please answer briefly. Which segment grew fastest?", "Which segment grew fastest?"),
        ("List the main risks.", "List the main risks."),  # a question that is one instruction stays
    ],
)
def test_instruction_sentences_are_not_part_of_what_is_asked(question, asked):
    assert without_instructions(question) == asked


def test_an_instruction_sentence_names_nothing_to_cover():
    (part,) = question_parts(FILING_QUESTION)
    assert part.names == () and part.years == {"2018"}
    assert covers(question_parts(FILING_QUESTION), CASH_FLOW_ROW)


@pytest.mark.parametrize(
    "word, year",
    [
        ("FY2018", "2018"),
        ("FY18", "2018"),
        ("fiscal 2018", "2018"),
        ("Q2 FY2024", "2024"),
        ("2Q24", "2024"),
        ("Q3'23", "2023"),
    ],
)
def test_report_periods_are_years_not_names(word, year):
    c = constraints(f"What were Apple's net sales in {word}?")
    assert c.names == (("Apple",),) and c.years == {year}
    assert covers((c,), f"Apple Inc. net sales, three months ended {year}: 94,836")  # a column headed by the year


def test_a_quarter_alone_is_no_name():
    assert constraints("What was Intel's revenue in Q2?").names == (("Intel",),)


def test_a_document_that_names_its_issuer_and_period_covers_its_paragraphs():
    """A cash-flow table names neither the company nor the fiscal year's name; the cover and the file name do."""
    doc = Document(
        "3m-2018-10k",
        "Annual report",
        "annual report",
        "/data/3M_2018_10K.pdf",
        "0" * 64,
        "pdf",
        meta={"company": "3M Company", "form": "10-K", "period": "fiscal year ended December 31, 2018"},
    )

    class FakeIndex:  # only `documents` is read
        documents = [doc]

    context = contexts_of(FakeIndex())["3m-2018-10k"]
    asked = question_parts("What was the capital expenditure of 3M Company in FY2018?")
    assert not covers(asked, "Purchases of property, plant and equipment: (1,577)")
    assert covers(asked, "Purchases of property, plant and equipment: (1,577) " + context)
    bare = contexts_of(type("I", (), {"documents": [replace(doc, meta={})]})())["3m-2018-10k"]
    assert "3M" in bare  # the file name alone still names the issuer


@pytest.mark.parametrize(
    "question",
    [
        "What was 3M's FY2018 capital expenditure?",
        "What was 3M's capital expenditure in fiscal 2018?",
        "What was 3M's capital expenditure for the fiscal year ended June 30, 2018?",
        "What was 3M's capital expenditure for the year ended December 31, 2018?",
        "What was 3M's capital expenditure in FY18?",
    ],
)
def test_the_ways_reports_write_a_year_are_one_period(question):
    # a cash-flow row whose column is headed "2018", in a document whose cover names 3M
    assert covers(question_parts(question), CASH_FLOW_ROW + " 3M Company Form 10-K")
    assert not covers(question_parts(question.replace("18", "19")), CASH_FLOW_ROW + " 3M Company Form 10-K")


def test_a_quarter_and_three_months_ended_are_one_period():
    row = "Net sales — Three Months Ended March 30, 2024: 90,753; Three Months Ended April 1, 2023: 94,836"
    for question in ("What were Apple's Q2 FY2024 net sales?", "What were Apple's net sales in 2Q24?"):
        assert covers(question_parts(question), row + " Apple Inc. Form 10-Q")


def test_a_figure_in_parentheses_with_its_units_line_is_the_same_figure():
    assert value_of("(1,577)", "(In millions)") == value_of("$1,577 million") == value_of("1.577 billion")
    assert value_of("1,577") == 1577 and negative("(1,577)") and not negative("$1,577 million")
    assert value_of("2,500", "(Dollars in thousands, except per share data)") == 2_500_000


def test_questions_as_people_type_them_name_nothing_by_capitals_alone():
    # written in capitals: a capital marks no name
    assert constraints("WHAT IS THE 2nd OBJECTIVE OF REGULATORY EFFICIENCY?").names == ()
    # the parts of a document say where to look, not what about
    assert constraints("How many papers in Table 2 are not mentioned in Section 3.1?").names == ()
    # a units aside is how to answer, not a name
    assert question_parts("How much higher was the dividend (Rupees in lacs) in 2002 than in 2001?")[0].names == ()


def test_a_name_misspelt_by_one_letter_is_still_named():
    row = "Advertising expenses — Year Ended December 31, 2015: 714,291 Netflix, Inc. Form 10-K"
    assert covers(question_parts("What is the advertising expense of Neflix in FY 2015?"), row)
    assert covers(question_parts("What did personnel costs do at Netfilx in 2015?"), row)
    assert not covers(question_parts("What is the advertising expense of Nestle in FY 2015?"), row)
