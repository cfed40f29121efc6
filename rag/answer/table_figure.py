"""The cell of a retrieved table that answers a question for a figure: its row by the measure, its column by the period.

A filing answers "How much did Apple spend on research and development in the first quarter of 2023?" in a
table row ("Operating expenses: Research and development — Three Months Ended December 31, 2022: 7,709; …"),
whose words the question shares but whose sentence the ranker, made for prose, seldom puts first. Steps:
1. Rows: every row with values of every table among the retrieved paragraphs (`labelled_rows`, with its
   group: "Operating expenses: Research and development").
2. The row: its figure must be of the unit the question asks for, if it asks for one ("what share" wants a
   percentage); the share of its own label's content words (stemmed) the question uses must reach `MIN_LABEL_SHARE`,
   with at least one word that is not a word of totals ("total", "net"); the best share wins, then the most words
   shared, then a "Total" row (the whole, when the question names no part), then the earlier paragraph.
3. The column: one whose label names a year of the question; else, for a question about a quarter or "three
   months", the first labelled so; else the first column with a value (reports print the current period first).

Not handled: a measure the row writes in other words ("revenue" for "net sales"), periods written only as fiscal
quarters the columns do not name, and figures that need arithmetic (issue 25).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.question import unit_of, wanted_unit
from rag.documents import Paragraph
from rag.load.table_text import LABEL_MARK, labelled_rows, row_lines
from rag.terms import content_terms

MIN_LABEL_SHARE = 0.6  # of a row label's words the question must use (2 of 3: "total operating expenses")
_TOTAL_WORDS = frozenset({"total", "net", "other", "net,"})
_QUARTER = re.compile(r"\b(quarter|three months|q[1-4])\b", re.IGNORECASE)
_YEAR_TO_DATE = re.compile(r"\b(six|nine|twelve) months|\byear[- ]to[- ]date\b|\bfirst half\b", re.IGNORECASE)


@dataclass(frozen=True)
class Cell:
    paragraph: Paragraph
    line: str  # the row's line of the paragraph's text: the sentence quoted
    label: str  # the row's label, with its group
    column: str  # the column's label ("Three Months Ended December 31, 2022")
    value: str  # as printed ("7,709", "$ 29,998", "(393)")


def find_cell(question: str, years: frozenset[str], paragraphs: Sequence[Paragraph]) -> Cell | None:
    """The best cell for `question` among the tables of `paragraphs` (best retrieved first), or None.

    >>> from rag.documents import Table
    >>> t = Table((("", "Three Months Ended", "Three Months Ended"), ("", "December 31, 2022", "December 25, 2021")),
    ...           (("Operating expenses:", "", ""), ("Research and development", "7,709", "6,306"),
    ...            ("Total operating expenses", "14,316", "12,755")))
    >>> p = Paragraph("d", 3, "", table=t)
    >>> c = find_cell("How much did Apple spend on research and development in Q1 2023?", frozenset({"2023"}), [p])
    >>> c.value, c.label, c.column
    ('7,709', 'Operating expenses: Research and development', 'Three Months Ended December 31, 2022')
    >>> find_cell("What were the operating expenses in 2021?", frozenset({"2021"}), [p]).value
    '12,755'
    >>> find_cell("Who chairs the board?", frozenset(), [p]) is None
    True
    """
    asked = content_terms(question)
    unit = wanted_unit(question)  # a share asked is no count printed
    best, best_key = None, None
    for rank, p in enumerate(paragraphs):
        if p.table is None:
            continue
        lines = dict(row_lines(p.table))
        for i, full, values in labelled_rows(p.table):
            own = content_terms(p.table.rows[i][0] if p.table.rows[i] else "")
            shared = own & asked
            if not own or not shared - _TOTAL_WORDS or len(shared) / len(own) < MIN_LABEL_SHARE:
                continue
            column, value = _column(question, years, values)
            # a bare figure may be money: a statement's units line ("In millions") says so once for every cell
            if not value or (unit and unit_of(value) not in ({unit, "count"} if unit == "money" else {unit})):
                continue
            total = (p.table.rows[i][0] or "").lower().startswith("total")
            key = (len(shared) / len(own), len(shared), total, -rank)
            if best_key is None or key > best_key:
                best, best_key = Cell(p, lines[i], full, column, value), key
    return best


def _column(question: str, years: frozenset[str], values: list[tuple[str, str]]) -> tuple[str, str]:
    labelled = [(name, value) for name, value in values if value.strip()]
    if not labelled:
        return "", ""
    for name, value in labelled:
        if years and any(y in name for y in years):
            return name, value
    if _YEAR_TO_DATE.search(question):
        wanted = [(n, v) for n, v in labelled if _YEAR_TO_DATE.search(n)]
    elif _QUARTER.search(question):
        wanted = [(n, v) for n, v in labelled if re.search(r"three months|quarter", n, re.IGNORECASE)]
    else:
        wanted = []
    return (wanted or labelled)[0]


def outranks(cell: Cell, sentence: str, question: str) -> bool:
    """Does the cell answer better than the figure a sentence gives? Yes when the sentence is the cell's own row
    (read by its columns, not by the words around a figure), when it leaves out most of
    what the row and the question share (its figure is of another measure: "iPhone 14", "Section 906"), or when
    the question names a year that the cell's column names and the sentence does not.

    >>> from rag.documents import Table
    >>> t = Table((("", "2023", "2024"),), (("Average battery pack price", "$139/kWh", "$115/kWh"),))
    >>> c = find_cell("What was the average battery pack price in 2023?", frozenset({"2023"}), [Paragraph("d", 1, "", table=t)])
    >>> q = "What was the average battery pack price in 2023?"
    >>> outranks(c, "The iPhone 14 Pro sold well.", q), outranks(c, "Packs averaged $139/kWh in 2023 at that price.", q)
    (True, False)
    >>> outranks(c, "Average pack prices fell to $115/kWh in 2024.", q)
    True
    """
    if sentence == cell.line:
        return True  # the row itself: its columns, not the words around a figure, say which period it is
    measure = content_terms(cell.label) & content_terms(question)
    said = content_terms(sentence)
    if len(measure & said) < len(measure) / 2:
        return True
    years = {y for y in re.findall(r"\b(?:19|20)\d\d\b", question) if y in cell.column}
    return bool(years) and not any(y in sentence for y in years)


def describe(cell: Cell) -> str:
    """What the figure is, for beside the lead: "Research and development, Three Months Ended December 31, 2022"."""
    label = cell.label.split(": ")[-1] if ": " in cell.label else cell.label
    return ", ".join(part for part in (label.split(LABEL_MARK)[0], cell.column) if part)
