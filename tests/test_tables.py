"""Tables as tables (issue 10): a generated two-page filing whose table has a two-row header and crosses the
page break is read as one table paragraph, every value readable with its row and column labels, stored and read
back with its structure, quoted row by row by the answerer, and drawn as an HTML table in the reader and the
citation panel (Streamlit AppTest on the shipped corpus, whose briefings hold two tables)."""

from __future__ import annotations

import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rag.embed.sentence_vectors import vector_texts
from rag.load import load_file
from rag.load.table_text import column_labels, row_lines
from rag.sentences import split_sentences
from tests.pdfs import (
    PROSE_AFTER,
    PROSE_BEFORE,
    TABLE_CAPTION,
    TABLE_DATES,
    TABLE_GROUP,
    TABLE_PERIODS,
    TABLE_ROWS,
    table_pdf,
)

COLUMNS = [f"{period} {date}" for period in TABLE_PERIODS for date in TABLE_DATES]


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    return table_pdf(tmp_path_factory.mktemp("tables") / "widgets-q2.pdf")


@pytest.fixture(scope="module", params=["pdfium", "pypdf"])
def loaded(request, pdf):
    # The library is chosen only while this file loads: a module-scoped setting would outlive it, into the
    # session's corpus index when that is built by a later test here.
    mp = pytest.MonkeyPatch()
    mp.setenv("PARACITE_PDF_LIBRARY", request.param)
    try:
        return load_file(pdf)
    finally:
        mp.undo()


def the_table(loaded):
    tables = [p for p in loaded.paragraphs if p.table is not None]
    assert len(tables) == 1, [p.text[:80] for p in tables]
    return tables[0]


def test_a_table_across_a_page_break_is_one_table_with_its_two_row_header(loaded):
    para = the_table(loaded)
    table = para.table
    assert table.pages == (1, 2) and para.page == 1
    assert table.caption == TABLE_CAPTION
    # Each period spans its two dates: the column labels read top to bottom.
    assert column_labels(table) == [""] + COLUMNS
    assert len(table.header) == 2
    # The label column, in order, with the group label; the header repeated on page 2 is not a row.
    assert [row[0] for row in table.rows] == [TABLE_GROUP] + [label for label, *_ in TABLE_ROWS]
    assert [tuple(row[1:]) for row in table.rows[1:]] == [tuple(values) for _, *values in TABLE_ROWS]


def test_every_cell_is_readable_with_its_row_and_column_labels(loaded):
    para = the_table(loaded)
    lines = para.text.split("\n")
    assert lines[0] == TABLE_CAPTION and len(lines) == 1 + len(TABLE_ROWS)
    for line, (label, *values) in zip(lines[1:], TABLE_ROWS):
        assert line == f"{TABLE_GROUP} {label} — " + "; ".join(f"{c}: {v}" for c, v in zip(COLUMNS, values))
    # Each row is one sentence, so the answerer can quote one row and cite the table's paragraph.
    assert split_sentences(para.text) == lines


def test_sentence_vectors_of_rows_are_of_their_label_and_values(loaded):
    """A row's sentence vector is embedded from its compact form; the passages keep every column label."""
    para = the_table(loaded)
    texts = vector_texts(para)
    assert len(texts) == len(split_sentences(para.text)) and texts[0] == TABLE_CAPTION
    for text, (label, *values) in zip(texts[1:], TABLE_ROWS):
        assert text == f"{TABLE_GROUP} {label}: " + "; ".join(values)
    prose = next(p for p in loaded.paragraphs if p.table is None and len(split_sentences(p.text)) > 1)
    assert vector_texts(prose) == split_sentences(prose.text)


def test_prose_next_to_the_table_is_not_a_table(loaded):
    para = the_table(loaded)
    by_number = {p.para: p for p in loaded.paragraphs}
    before, after = by_number[para.para - 1], by_number[para.para + 1]
    assert before.text == PROSE_BEFORE and before.table is None
    assert after.text == PROSE_AFTER and after.table is None and after.page == 2


class _Cells(HTMLParser):
    """The cells of an HTML table: (section, row, tag, colspan, class of the row, text)."""

    def __init__(self):
        super().__init__()
        self.cells, self.section, self.row, self.row_class, self.open = [], "", -1, "", None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("thead", "tbody"):
            self.section, self.row = tag, -1
        elif tag == "tr":
            self.row, self.row_class = self.row + 1, attrs.get("class") or ""
        elif tag in ("th", "td"):
            self.open = [self.section, self.row, tag, int(attrs.get("colspan") or 1), self.row_class, ""]

    def handle_data(self, data):
        if self.open is not None:
            self.open[-1] += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.open is not None:
            self.cells.append(tuple(self.open))
            self.open = None


def test_a_table_is_drawn_as_an_html_table_with_the_quoted_row_marked(loaded):
    from ui.render import table_html

    table = the_table(loaded).table
    quoted = [line for i, line in row_lines(table) if table.rows[i][0] == "Region 7 sales"][0]
    parser = _Cells()
    parser.feed(table_html(table, quote=quoted))
    head = [c for c in parser.cells if c[0] == "thead"]
    # The first header row: the periods, each over its two dates; the second: the four dates.
    assert [(c[3], c[5]) for c in head if c[1] == 0 and c[5]] == [(2, p) for p in TABLE_PERIODS]
    assert [c[5] for c in head if c[1] == 1 and c[5]] == list(TABLE_DATES) * 2
    body = [c for c in parser.cells if c[0] == "tbody"]
    assert [c[5] for c in body if c[2] == "th"] == [TABLE_GROUP] + [label for label, *_ in TABLE_ROWS]
    marked = [c[5] for c in body if "pc-quoted" in c[4]]
    assert marked == list(TABLE_ROWS[6])


@pytest.fixture(scope="module")
def table_index(tmp_path_factory, pdf, embedder) -> Path:
    from rag.index.ingest import ingest

    corpus = tmp_path_factory.mktemp("table-corpus")
    shutil.copy(pdf, corpus / pdf.name)
    index_dir = tmp_path_factory.mktemp("table-index") / "index"
    report = ingest([corpus], index_dir, embedder)
    assert not report.failed, report.failed
    return index_dir


def test_the_table_is_stored_with_its_structure_and_an_older_index_still_reads(table_index, pdf, embedder, tmp_path):
    from rag.index.layout import current_generation
    from rag.index.reader import Index

    loaded = the_table(load_file(pdf))
    index = Index.open(table_index, embedder.name, embedder.dimension)
    assert index.paragraph(loaded.doc_id, loaded.para) == loaded
    # An index written before tables has no table_json column: it opens, and its paragraphs have no structure.
    old = tmp_path / "old"
    shutil.copytree(table_index, old)
    with sqlite3.connect(old / current_generation(old) / "meta.sqlite") as con:
        con.execute("ALTER TABLE paragraphs DROP COLUMN table_json")
    stored = Index.open(old, embedder.name, embedder.dimension).paragraph(loaded.doc_id, loaded.para)
    assert stored.table is None and stored.text == loaded.text


def test_the_answerer_quotes_a_row_and_cites_the_table_paragraph(table_index, embedder):
    from rag.engine import Engine

    engine = Engine.load(table_index, embedder)
    label, *values = TABLE_ROWS[6]
    answer = engine.ask(f"What were {label} in the six months ended {TABLE_DATES[0]}?")
    cites = [c for claim in answer.claims for c in claim.citations]
    table = [c for c in cites if engine.index.paragraph(c.doc_id, c.para).table is not None]
    assert table, [c.quote for c in cites]
    paragraph = engine.index.paragraph(table[0].doc_id, table[0].para)
    assert table[0].quote in paragraph.text.split("\n")  # the quote is one whole row, in the cited paragraph
    assert label in table[0].quote and values[2] in table[0].quote


def test_the_ui_draws_a_cited_table_in_the_panel_and_the_reader(tmp_path, corpus_index, embedder, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.state

    shutil.copytree(corpus_index, tmp_path / "index")
    (tmp_path / "corpus").mkdir()
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setattr(ui.state, "EMBEDDER_FACTORY", lambda: embedder)
    app = str(Path(__file__).resolve().parent.parent / "ui" / "main.py")
    at = AppTest.from_file(app, default_timeout=120).run()
    at.chat_input[0].set_value("What was the average lithium-ion battery pack price in 2024?").run()
    assert not at.exception, at.exception
    message = at.session_state["messages"][-1]
    cites = [c for claim in message.claims for c in claim.citations]
    keys = [b for b in at.button if (b.key or "").startswith("chip-")]
    first = cites[0]
    assert "Average lithium-ion battery pack price" in first.quote, first.quote
    keys[0].click().run()
    assert not at.exception, at.exception
    panel = [h.value for h in at.html if 'class="pc-panel"' in h.value][-1]
    assert '<table class="pc-table">' in panel and 'class="pc-quoted"' in panel
    assert panel.count("<tr") > 3 and "$115/kWh" in panel

    reader = AppTest.from_file(app, default_timeout=120)
    reader.switch_page("reader.py")
    reader.query_params["doc"] = first.doc_id
    reader.query_params["para"] = str(first.para)
    reader.run()
    assert not reader.exception, reader.exception
    page = [h.value for h in reader.html if "pc-reader" in h.value][0]
    anchor = page.index(f'id="para-{first.para}"')
    assert '<table class="pc-table">' in page[anchor:] and "pc-para pc-target" in page[anchor - 60 : anchor]
