"""The answer's shape (issue 24): a lead of the measure asked, a list for "which countries", no pronoun without its
referent, no weak-match note under a covered lead, disagreements named in the sentences' words; and lead precision.

The behaviour that depends on the corpus and the model runs on the real index (`engine`, tests/conftest.py).
"""

from __future__ import annotations

import math
import re

import pytest

from evals.metrics import lead_precision
from evals.scoring import QUALITY_METRICS, REPORTED_METRICS, check_against_baseline
from rag.answer.extractive import LOW_CONFIDENCE
from rag.answer.measure import asked_measure, named
from rag.answer.ranker import Candidate
from rag.answer.shape import named_document, points_back, with_referents
from rag.documents import Hit, Paragraph
from rag.names import Names
from rag.terms import content_terms

# ---- lead precision -------------------------------------------------------------------------------------------------


def test_lead_precision_counts_a_wrong_lead_and_not_a_missing_one():
    assert math.isnan(lead_precision("", ["679,000"], [], True))
    assert lead_precision("679,000", ["679,000"], [], True) == 1.0
    assert lead_precision("3.11 million", ["679,000"], [], True) == 0.0
    assert lead_precision("nearly 1.3 million NEVs", [], [["1.3 million"]], True) == 1.0
    assert lead_precision("over 6.4 million", [], [["1.3 million"]], True) == 0.0
    assert lead_precision("80,000 vehicles", [], [], False) == 0.0  # a lead on a question the documents cannot answer
    assert math.isnan(lead_precision("X", [], [], True))  # nothing to judge it by


def test_lead_precision_is_reported_beside_the_lead_metrics_but_not_guarded():
    assert REPORTED_METRICS.index("lead_precision") == REPORTED_METRICS.index("lead_contains") + 1
    assert "lead_precision" not in QUALITY_METRICS
    drops, table = check_against_baseline({"lead_contains": 0.5, "lead_precision": 0.2}, {"lead_contains": 0.5})
    assert not drops and re.search(r"lead_precision\s+–\s+0\.200\s+not guarded", table)


# ---- reading the question -------------------------------------------------------------------------------------------


def test_the_measure_a_how_many_question_narrows():
    assert asked_measure("How many new-energy vehicles did China export?") == (("new-energy",), "vehicles")
    assert asked_measure("How many electric passenger vehicles did customs count?") == (
        ("electric", "passenger"),
        "vehicles",
    )
    assert asked_measure("How many vehicles did China export in 2023?") == ((), "vehicles")
    assert asked_measure("What share of exports were electric?") == ((), "")


def test_a_narrowing_word_is_named_through_a_form_the_documents_define():
    names = Names({"NEV": ["new-energy vehicles"]})
    assert named("new-energy", "vehicles", "NEV exports neared 1.3 million units", names)
    assert not named("new-energy", "vehicles", "NEV exports neared 1.3 million units")  # no definition, no form
    assert not named("electric", "cars", "China exported 5.2 million vehicles", names)


def test_pointing_sentences_come_after_their_referent():
    hit = Hit(Paragraph("d", 1, "x"), 1.0, 1)
    other = Hit(Paragraph("e", 1, "y"), 1.0, 2)
    cs = [
        Candidate(hit, 0, "The commentary wants plants abroad."),
        Candidate(hit, 1, "It describes instead a fractured world."),
        Candidate(other, 0, "They build abroad."),
    ]
    assert points_back("It describes instead a fractured world.") and not points_back("Italy set duties.")
    assert with_referents(cs, [1]) == [0, 1]
    assert with_referents(cs, [1, 0]) == [0, 1]
    assert with_referents(cs, [2]) == [2]  # the first sentence of its paragraph: nothing before it to add


def test_a_document_named_by_its_kind_or_name():
    contexts = {"caixin-commentary": "China's Carmakers caixin-commentary", "briefing-a": "Trade briefing-a"}
    assert named_document("What does the commentary recommend?", contexts) == {"caixin-commentary"}
    assert named_document("What does the Caixin piece argue?", contexts) == {"caixin-commentary"}
    assert named_document("How many vehicles did China export?", contexts) == set()


# ---- on the real index ----------------------------------------------------------------------------------------------


def _quotes(answer) -> list[str]:
    return [c.text for c in answer.claims]


def test_nev_question_leads_with_the_nev_figure(engine):
    """The held-out UI question: not the customs count of all vehicles ("over 6.4 million")."""
    answer = engine.ask("How many new-energy vehicles did China export?")
    assert answer.lead is not None
    assert "6.4" not in answer.lead.span and "5.221" not in answer.lead.span
    assert re.search(r"\bNEVs?\b|new-energy", answer.lead.citation.quote)
    assert answer.lead.citation.quote in _quotes(answer)  # the lead's sentence is quoted
    assert LOW_CONFIDENCE not in answer.notes


@pytest.mark.parametrize(
    "question, wanted",
    [
        ("How many new-energy vehicles did China export in 2022?", "679,000"),
        ("How many commercial vehicles did China export in 2022?", "582,000"),
        ("How many electric passenger vehicles did China's customs count as exported in 2023?", "1.773 million"),
        ("What figure do Chinese customs data give for the country's vehicle exports?", "6.4 million"),
        (
            "According to the China Association of Automobile Manufacturers, how many vehicles did China export in "
            "the past year?",
            "six million",
        ),
    ],
)
def test_the_lead_is_the_measure_asked(engine, question, wanted):
    answer = engine.ask(question)
    assert answer.lead is not None and wanted in answer.lead.span


def test_no_lead_rather_than_a_figure_of_another_unit(engine):
    """'How many years' wants a figure in years; a count of vehicles is no answer to it."""
    answer = engine.ask("For how many years running has China been the top country for car shipments abroad?")
    assert answer.lead is None or re.search(r"\byears?\b", answer.lead.span)


def test_which_countries_leads_with_all_of_them(engine):
    answer = engine.ask("Which countries have raised tariffs on Chinese EVs?")
    assert answer.lead is not None
    listed = {p.strip() for p in answer.lead.span.split(",")}
    assert {"Canada", "Turkey", "Brazil", "Russia"} <= listed
    assert all(p in answer.lead.citation.quote for p in listed)  # each from the cited sentence
    assert LOW_CONFIDENCE not in answer.notes  # a lead from a covered paragraph is no weak match


def test_a_quoted_sentence_that_points_back_follows_its_referent(engine):
    for question in ("How many commercial vehicles did China export in 2022?", "What does the commentary argue?"):
        answer = engine.ask(question)
        quotes = _quotes(answer)
        for i, claim in enumerate(answer.claims):
            if points_back(claim.text):
                paragraph = claim.citations[0].text
                before = paragraph[: paragraph.find(claim.text)].strip()
                assert before, f"{claim.text!r} opens its paragraph"  # then there is nothing it points back to
                assert i > 0 and before.endswith(quotes[i - 1]), f"{claim.text!r} quoted without its referent"


def test_sources_disagree_in_the_sentences_words(engine):
    answer = engine.ask("How many vehicles did China export in 2023?")
    assert answer.disagreements
    for d in answer.disagreements:
        assert "did" not in d.measure.split() and d.measure
        cited = " ".join(v.citation.quote for v in d.values)
        assert content_terms(d.measure) <= content_terms(cited)
        assert d.period in cited
