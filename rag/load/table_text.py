"""A table paragraph's text: every value readable with its row and column labels, one line per row.

The text is what BM25, the embedder and the answerers see, and what a quote is taken from: the
caption on the first line, then one line per row that has values,

    Net sales: Products — Three Months Ended April 1, 2023: $ 73,929; Three Months Ended March 26, 2022: $ 77,457

A column's label is its header cells, top to bottom; a row's label is its first cell, after the
group it is in (a row with no values whose label ends with ":", such as "Net sales:", opens a group;
a row whose label starts with "Total" closes it). Each line is one sentence for
`rag.sentences.split_sentences`, which splits at line breaks, so the extractive answerer quotes one
row and cites the table's paragraph. `row_lines` gives each line with its row, for a reader that
marks the quoted row. This module does not find tables (`rag.load.tables` does) or draw them (`ui.render`).
"""

from __future__ import annotations

from rag.documents import Table

# The mark between a row's label and its values.
LABEL_MARK = " — "


def column_labels(table: Table) -> list[str]:
    """Each column's label: its header cells, top to bottom, once each.

    >>> column_labels(Table((("", "Three Months Ended", "Three Months Ended"), ("", "April 1, 2023", "March 26, 2022")), ()))
    ['', 'Three Months Ended April 1, 2023', 'Three Months Ended March 26, 2022']
    """
    labels = []
    for k in range(table.columns):
        parts: list[str] = []
        for row in table.header:
            cell = row[k] if k < len(row) else ""
            if cell and (not parts or parts[-1] != cell):
                parts.append(cell)
        labels.append(" ".join(parts))
    return labels


def labelled_rows(table: Table) -> list[tuple[int, str, list[tuple[str, str]]]]:
    """Each row that has values, as (its index in `table.rows`, its full label, [(column label, value)]).

    A row with no values whose label ends with ":" opens a group, whose label goes in front of the rows under
    it; a row whose label starts with "Total" closes it."""
    labels = column_labels(table)
    group = ""
    out: list[tuple[int, str, list[tuple[str, str]]]] = []
    for i, row in enumerate(table.rows):
        label = row[0] if row else ""
        values = [(labels[k] if k < len(labels) else "", v) for k, v in enumerate(row) if k and v]
        if not values:
            group = label if label.endswith(":") else group
            continue
        out.append((i, f"{group} {label}".strip() if group else label, values))
        if label.lower().startswith("total"):
            group = ""
    return out


def row_lines(table: Table) -> list[tuple[int, str]]:
    """Each row that has values, as (its index in `table.rows`, its line of text).

    >>> t = Table((("", "2023", "2022"),), (("Net sales:", "", ""), ("Products", "$ 73,929", "$ 77,457"),
    ...                                   ("Total net sales", "94,836", "97,278"), ("Gross margin", "41,976", "")))
    >>> for i, line in row_lines(t): print(i, line)
    1 Net sales: Products — 2023: $ 73,929; 2022: $ 77,457
    2 Net sales: Total net sales — 2023: 94,836; 2022: 97,278
    3 Gross margin — 2023: 41,976
    """
    out: list[tuple[int, str]] = []
    for i, full, values in labelled_rows(table):
        cells = "; ".join(f"{name}: {value}" if name else value for name, value in values)
        out.append((i, f"{full}{LABEL_MARK}{cells}" if full else cells))
    return out


def compact_lines(table: Table) -> dict[str, str]:
    """Each row line (`row_lines`) -> the same row as it is embedded: its label and values, without the column
    labels, which are the same on every row of a table and so tell no row from another, yet made a row line
    three times as long to encode (`rag.embed.sentence_vectors.vector_texts`).

    >>> t = Table((("", "2023", "2022"),), (("Products", "$ 73,929", "$ 77,457"),))
    >>> compact_lines(t)
    {'Products — 2023: $ 73,929; 2022: $ 77,457': 'Products: $ 73,929; $ 77,457'}
    """
    lines = dict(row_lines(table))
    return {
        lines[i]: (f"{full}: " if full else "") + "; ".join(v for _, v in values)
        for i, full, values in labelled_rows(table)
    }


def table_text(table: Table) -> str:
    """The caption, then one line per row with values (see `row_lines`).

    >>> print(table_text(Table((("Year", "Exports"),), (("2023", "4.91 million"),), (2,), "Figures")))
    Figures
    2023 — Exports: 4.91 million
    """
    lines = [line for _, line in row_lines(table)]
    return "\n".join(([table.caption] if table.caption else []) + lines)
