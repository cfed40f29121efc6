"""Names read from the documents themselves and from general knowledge, never from a list of our corpus (issue 21):
acronyms a document defines or spells out, acronyms it counts, and countries in their many forms."""

from __future__ import annotations

from pathlib import Path

from rag.answer.coverage import constraints, covers, question_parts, uncovered
from rag.answer.question import AnswerType, country_code, spans
from rag.engine import Engine
from rag.index.ingest import ingest
from rag.load.aliases import counted_acronyms, learn_aliases
from rag.names import Names, corpus_names, country
from rag.query import rewrite_followup


def test_acronyms_are_learned_from_a_documents_own_definitions():
    learned = learn_aliases(
        [
            "The Zorvath Institute of Metrology (ZIM) publishes the index.",
            "Sales of plasma-grown crystals (PGCs) rose.",
            "Shares of Quillon & Barrow (“Q&B”) fell.",
            "The WBA (Western Beekeepers Alliance) met in May.",
        ]
    )
    assert learned["ZIM"] == ["Zorvath Institute of Metrology"]
    assert learned["PGC"] == ["plasma-grown crystals"]
    assert learned["Q&B"] == ["Quillon & Barrow"]
    assert learned["WBA"] == ["Western Beekeepers Alliance"]


def test_an_acronym_used_in_one_place_and_spelled_out_in_another_is_one_name():
    learned = learn_aliases(["The ZIM revised its count.", "Later, the Zorvath Institute of Metrology said so."])
    assert learned == {"ZIM": ["Zorvath Institute of Metrology"]}
    # and a phrase that merely starts with the same letters is no definition
    assert learn_aliases(["ZIM rose.", "Zebras in motion were seen."]) == {}


def test_acronyms_written_in_the_plural_are_kinds_of_things_not_names():
    assert counted_acronyms(["Orders of UAVs and ROVs grew; the ZIM said one UAV failed."]) == ["ROV", "UAV"]
    names = Names(counted=["UAV"])
    # a paragraph about drones need not repeat "UAV" to answer a question about UAV makers in Veloria
    assert uncovered(constraints("How many UAV makers does Veloria have?"), "Veloria has 14 drone makers.", names) == []
    assert uncovered(constraints("How many UAV makers does Veloria have?"), "Veloria has 14.", Names()) == ["UAV"]


def test_a_defined_acronym_covers_its_long_form_and_back():
    names = Names({"ZIM": ["Zorvath Institute of Metrology"]})
    parts = question_parts("What did the ZIM report for 2023?")
    assert covers(parts, "In 2023 the Zorvath Institute of Metrology reported 4.1 million.", names)
    assert not covers(parts, "In 2023 the institute reported 4.1 million.", names)
    assert covers(question_parts("What did the Zorvath Institute of Metrology say?"), "The ZIM said no.", names)


def test_countries_in_their_forms_come_from_countryinfo():
    assert country("U.S.").name == country("the United States").name == country("American").name
    assert country("Japanese").name == "Japan" and country("Seoul").demonym == "Korean"
    assert covers(question_parts("What did Washington levy in 2024?"), "In 2024 the United States set 100%.")
    assert country_code("Russia") == ("RU", True) and country_code("the UK") == ("GB", True)
    assert spans("Exports went to Brazil, the US and Southeast Asia.", AnswerType.PLACE) == [
        "Brazil",
        "US",
        "Southeast Asia",
    ]


def test_a_follow_up_swaps_a_country_or_its_adjective():
    history = [{"role": "user", "content": "How many cars did Japanese makers build abroad in 2023?"}]
    assert rewrite_followup("And what about Korea?", history).standalone.startswith("How many cars did Korean makers")
    history = [{"role": "user", "content": "What duty did the United States set in 2024?"}]
    assert "Canada" in rewrite_followup("And Canada?", history).standalone


def test_ingest_stores_what_a_document_teaches_and_the_engine_uses_it(tmp_path: Path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(
        "# Zorvath notes\n\nThe Zorvath Institute of Metrology (ZIM) counted 412 UAVs in Veloria in 2023.\n\n"
        "Each UAV carried two sensors.\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    ingest([corpus], index, embedder)
    engine = Engine.load(index, embedder)
    meta = engine.index.documents[0].meta
    assert meta["aliases"] == {"ZIM": ["Zorvath Institute of Metrology"]} and meta["counted_acronyms"] == ["UAV"]
    learned = corpus_names(d.meta for d in engine.index.documents)
    assert "Zorvath Institute of Metrology" in learned.forms("ZIM") and "UAV" in learned.counted
    answer = engine.ask("How many UAVs did the ZIM count in Veloria in 2023?")
    assert not answer.abstained and "412" in " ".join(c.text for c in answer.claims)
