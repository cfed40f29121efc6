"""A figure question answered from a retrieved table: the row by the measure asked, the column by the period (issue 21,
item 2): the lead is the cell, the row is quoted first, and a prose figure of another measure does not lead."""

from __future__ import annotations

from pathlib import Path

from rag.engine import Engine
from rag.index.ingest import ingest

STATEMENT = """<html><body><h1>Zentrix Corp. Form 10-Q, quarterly period ended March 31, 2024</h1>
<p>The growth in research and development expense was driven by headcount; the Z14 line of sensors sold well.</p>
<h2>Condensed consolidated statements of operations (In millions)</h2>
<table>
<tr><th></th><th>Three Months Ended March 31, 2024</th><th>Three Months Ended March 31, 2023</th></tr>
<tr><td>Net sales</td><td>$ 31,220</td><td>$ 28,950</td></tr>
<tr><td>Operating expenses:</td><td></td><td></td></tr>
<tr><td>Research and development</td><td>4,109</td><td>3,877</td></tr>
<tr><td>Selling, general and administrative</td><td>2,310</td><td>2,204</td></tr>
<tr><td>Total operating expenses</td><td>6,419</td><td>6,081</td></tr>
<tr><td>Net income</td><td>$ 5,476</td><td>$ 4,998</td></tr>
</table></body></html>"""


def test_a_statement_row_answers_the_figure_asked(tmp_path: Path, embedder):
    """The row is far from the question in embedding space (similarity about 0.42, under the refusal threshold);
    that a row names the measure asked is what answers it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "zentrix-q1-2024.html").write_text(STATEMENT, encoding="utf-8")
    ingest([corpus], tmp_path / "index", embedder)
    engine = Engine.load(tmp_path / "index", embedder)

    answer = engine.ask("How much did Zentrix spend on research and development in the first quarter of 2024?")
    assert not answer.abstained and answer.lead is not None
    assert answer.lead.span == "4,109"
    assert answer.lead.citation.quote.startswith("Operating expenses: Research and development")  # the row cited
    assert answer.lead.citation.quote in [c.text for c in answer.claims]  # and quoted

    assert answer.signals["table_row"] == 1.0 and answer.signals["similarity"] < 0.52

    # the year asked picks the column; "total" picks the total row
    answer = engine.ask("What were Zentrix's total operating expenses in 2023?")
    assert answer.lead is not None and answer.lead.span == "6,081"


def test_a_table_cell_leads_over_a_prose_figure_of_another_measure(tmp_path: Path, embedder):
    from rag.answer.table_figure import Cell, outranks
    from rag.documents import Paragraph

    cell = Cell(Paragraph("d", 1, ""), "", "Operating expenses: Research and development", "2024", "4,109")
    question = "How much did Zentrix spend on research and development in 2024?"
    assert outranks(cell, "Its Z14 line of sensors sold 906 units in 2024.", question)
    assert not outranks(cell, "Research and development expense grew to 4.1 billion in 2024.", question)
