"""Issue 24's UI logic that needs no browser: the PDF page's boxes, suggested questions from any corpus, the
export, the disagreement's numbered citations, the upload message and the answer's real time."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "ui" / "main.py")
CUSTOMS = (
    "China's customs administration counted 5.221 million vehicles exported in 2023, up 57.4%, including 1.773 "
    "million electric passenger vehicles, so about one car in three exported was electric."
)


def test_the_quote_is_found_on_its_pdf_page_line_by_line():
    from ui.pdf_page import quote_page

    pdf = ROOT / "corpus" / "briefing-china-vehicle-exports.pdf"
    view = quote_page(pdf, 1, 2, [CUSTOMS])
    assert view.page == 1 and view.png.startswith(b"\x89PNG")
    assert len(view.boxes) == 3  # the sentence is printed over three lines
    assert all(0 <= b.left and b.left + b.width <= 100 and 0 <= b.top <= 100 for b in view.boxes)
    assert view.boxes[0].top < view.boxes[1].top < view.boxes[2].top
    # A sentence the page does not hold gives no boxes (and the first page), never a wrong mark.
    assert quote_page(pdf, 1, 1, ["Nothing like this sentence is printed anywhere in the briefing."]).boxes == ()


def test_suggestions_are_drawn_from_any_corpus_and_each_is_answered(tmp_path, embedder):
    from app.suggestions import suggest
    from rag.engine import Engine
    from rag.index.ingest import ingest

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "acme-annual-note.md").write_text(
        "# Acme Robotics annual note\n\n## Results\n\n"
        "Acme's robot shipments reached 41,200 units in 2024, up from 30,100 in 2023.\n\n"
        "Revenue grew to $812 million in 2024, driven by warehouse robots.\n\n"
        "## Plants\n\nThe Tilburg plant opened in March 2024 and employs 640 people.\n",
        encoding="utf-8",
    )
    (corpus / "zenith-grid-memo.md").write_text(
        "# Zenith Grid memo\n\n## Storage\n\n"
        "Zenith's battery storage capacity stood at 3.4 GWh in 2023, the memo says.\n\n"
        "## Outlook\n\nThe company plans two more sites in Portugal by 2026.\n",
        encoding="utf-8",
    )
    ingest([corpus], tmp_path / "index", embedder)
    engine = Engine.load(tmp_path / "index", embedder)
    chosen = suggest(engine)
    questions = [s.question for s in chosen]
    assert "What were Acme's robot shipments in 2024?" in questions, questions
    assert "What was Zenith's battery storage capacity in 2023?" in questions, questions
    assert len(set(questions)) == len(questions) and {s.doc_id for s in chosen} == {
        "acme-annual-note",
        "zenith-grid-memo",
    }
    for s in chosen:  # each one the answerer answers, citing the paragraph it came from
        answer = engine.ask(s.question)
        assert not answer.abstained and (s.doc_id, s.para) in {(c.doc_id, c.para) for c in answer.citations}


def test_export_names_the_file_and_carries_date_settings_and_the_rewritten_question(engine):
    from ui.export import conversation_export, file_name, title_of

    first = "How many vehicles did China export in 2023?"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": "5.221 million"}]
    follow = engine.ask("And in 2024?", history=history)
    assert follow.standalone_question != follow.question
    turns = [first, engine.ask(first), "And in 2024?", follow]
    when = datetime(2026, 3, 20, 9, 5)
    md = conversation_export(turns, title_of(turns), {"top-k": 5, "retrieval": "hybrid"}, when)
    assert md.startswith("# How many vehicles did China export in 2023?\n")
    assert "_Exported 2026-03-20 09:05 · top-k 5 · retrieval hybrid_" in md
    assert md.count("_Searched as:") == 1 and "2024" in md.split("_Searched as:")[1].split("_")[0]
    assert "\\[briefing-china-vehicle-exports para. 7\\]" in md.replace("para\\.", "para.").replace("\\-", "-")
    assert file_name(title_of(turns), when) == "how-many-vehicles-did-china-export-in-2023-2026-03-20.md"


@pytest.fixture
def app(tmp_path, corpus_index, embedder, monkeypatch):
    import ui.state

    shutil.copytree(corpus_index, tmp_path / "index")
    (tmp_path / "corpus").mkdir()
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    monkeypatch.setattr(ui.state, "EMBEDDER_FACTORY", lambda: embedder)
    return AppTest.from_file(APP, default_timeout=120).run()


def test_an_answer_is_drawn_at_once_its_disagreement_cited_by_number_and_the_upload_message_is_plain(app):
    at = app
    assert [b for b in at.button if (b.key or "").startswith("suggest-")]  # the empty chat suggests questions
    at.chat_input[0].set_value("How many vehicles did China export in 2023?").run()
    assert not at.exception, at.exception
    answer = at.session_state["messages"][-1]
    # The caption gives the answer's own time (engine.ask's), drawn with the answer.
    caption = at.chat_message[-1].caption[-1].value.replace("\\", "")
    assert caption == f"extractive · answered in {answer.timings_ms['total'] / 1000:.2f} s"
    assert answer.disagreements
    numbered = [b for b in at.button if (b.key or "").startswith("dchip-")]
    assert len(numbered) == sum(len(d.values) for d in answer.disagreements)
    assert all(b.label.startswith("\\[") for b in numbered)  # numbers, not raw [doc para. N] markers
    numbered[0].click().run()  # a disagreement's citation opens the side panel like any other
    assert not at.exception, at.exception
    value = answer.disagreements[0].values[0]
    panel = [h.value for h in at.html if 'class="pc-panel"' in h.value][-1]
    assert f"para. {value.citation.para}" in panel and "<mark>" in panel
    assert at.button(key="close-panel")
    at.button(key="close-panel").click().run()
    assert not [h for h in at.html if 'class="pc-panel"' in h.value]

    at.switch_page("library.py").run()
    at.file_uploader[0].set_value(
        [("acme-note.txt", b"Acme's chief executive is Dana Whitfield.\n", "text/plain")]
    ).run()
    at.button(key="add").click().run()
    assert not at.exception, at.exception
    message = [s.value.replace("\\", "") for s in at.success][0]
    assert "acme-note (1 paragraph)" in message and "Ready to ask about" in message
    assert "embedded" not in message
