"""Tables in a PDF page's laid-out lines: which lines form a table, its header rows, its columns.

A line here is a `Line`: its text, with three spaces between cells, and each cell's left and right
edge on the page, its baseline and font size (PDFium gives them, `rag.load.pdfium_text`; for
pypdf's layout text the character offsets stand in for positions, and there is no baseline).

Steps (`find_tables`), one page at a time:
1. A table's body is a run of lines with two or more cells, where short one-cell lines (a group
   label such as "Net sales:", a wrapped row label, a header cell) and blank lines may come between
   as long as another line of cells follows. Fewer than two lines of cells is no table.
2. Its columns are the cells of the lines with the usual number of cells: column k spans from the
   leftmost to the rightmost edge of their k-th cells (figures are right-aligned, so edges vary).
   Column 0 holds the row labels.
3. The header is the lines at the top (and the one-cell lines right above the body) that start
   over the value columns, with no row label: "Three Months Ended   Six Months Ended", then
   "April 1," and "2023" printed as separate text objects, one per column. They are set in rows by
   baseline, and each header cell is put over the columns it covers, so a label that spans two
   columns names both. A first line whose cells are all words, above rows of figures, is a header
   too ("Year   Exports   Share").
4. Each body line's cells go to the column they overlap most; a row label wrapped onto a second line
   is joined.
Merging a table with its continuation on the next page, and its caption, are `rag.load.pdf`'s.

Not handled: tables drawn without gaps between columns, cells wrapped onto several lines (but for
the row label), two tables side by side, a second header block in the middle of a table.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from statistics import median

# A cell: words apart by at most two spaces (three or more spaces part cells).
CELL = re.compile(r"\S+(?: {1,2}\S+)*")
# A table cell that holds a figure: "$ 96,388", "(393)", "12.5 %", "—", "4.91 million".
FIGURE = re.compile(
    r"^[$€£¥]?\s*\(?[$€£¥]?\s*[-−–]?[\d.,]+\s*%?\)?\s*%?(?:\s*(?:million|billion|bn|thousand))?$"
    r"|^[-—–]$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^(?:[-*•▪‣◦·]|\d{1,3}[.)])\s+")
# A one-cell line inside a table (a group label, a wrapped label, a header cell) is at most this long
# (a 10-Q's wrapped row label runs to about 110 characters; its prose lines to 150 and more).
MAX_LABEL_CHARS = 130
# A group label right above a table's first row ("Current assets:") is at most this long: a longer line ending in
# ":" is the end of the sentence that introduces the table.
MAX_GROUP_CHARS = 60
# A note of a table's units, under its title: "(In millions, except per share amounts)".
UNITS_NOTE = re.compile(r"^\((?:[^()]|\([^()]*\)){0,200}\)$")
# How far ahead (in lines) a one-cell line may be from the next line of cells and still belong to the table:
# a header printed one cell per text object comes out as up to three lines (and a blank) per column.
LOOKAHEAD_LINES = 40
# Header lines lie within this many font sizes of each other's baseline to be one header row.
SAME_ROW_EM = 0.5
# A header cell covers a column when at least this share of the cell lies over the column (`_slots`): a label
# centred over two columns has about half over each, over three a third.
COVER_SHARE = 0.25
# Header rows at most: more lines above a table's body are text, not its header.
MAX_HEADER_ROWS = 6


class Line(str):
    """A laid-out line: the text, each cell's (left, right) edge, the baseline (None when unknown) and font size."""

    def __new__(cls, text: str = "", spans=(), y: float | None = None, size: float = 0.0):
        line = super().__new__(cls, text)
        line.spans, line.y, line.size = tuple(spans), y, size
        return line


@dataclass
class Cell:
    text: str
    x0: float
    x1: float


@dataclass
class FoundTable:
    """A table found on one page: lines `start` to `end` (exclusive) of the page, and its grid."""

    start: int
    end: int
    header: list[list[str]]  # header rows, one cell per column
    rows: list[list[str]]  # body rows, the label first
    bands: list[tuple[float, float]]  # each column's extent, for matching a continuation on the next page
    em: float  # the font size, the unit of every tolerance
    pages: list[int] = field(default_factory=list)


def cells(line: str) -> list[Cell]:
    """The cells of a line with their extents: a `Line`'s own, else character offsets (pypdf's layout text).

    >>> [(c.text, c.x0, c.x1) for c in cells("Products   $ 96,388")]
    [('Products', 0, 8), ('$ 96,388', 11, 19)]
    """
    found = list(CELL.finditer(line))
    spans = getattr(line, "spans", ())
    if len(spans) != len(found):
        spans = [(m.start(), m.end()) for m in found]
    return [Cell(m.group(), x0, x1) for m, (x0, x1) in zip(found, spans)]


def _em(line: str) -> float:
    # pypdf's layout text: a character is about half a font size wide.
    return getattr(line, "size", 0.0) or 2.0


def _overlap(c: Cell, band: tuple[float, float]) -> float:
    return min(c.x1, band[1]) - max(c.x0, band[0])


def find_tables(lines: list[str], headings: set[str] = frozenset()) -> list[FoundTable]:
    """The tables among one page's lines, in order (see the module's steps)."""
    parsed = [cells(ln) if ln.strip() else [] for ln in lines]

    def tabular(i: int) -> bool:
        return len(parsed[i]) >= 2 and not _BULLET.match(lines[i].strip())

    def single(i: int) -> bool:
        text = lines[i].strip()
        if len(parsed[i]) != 1 or len(text) > MAX_LABEL_CHARS or text.endswith("."):
            return False
        return not (" ".join(text.split()) in headings and not text.endswith(":"))

    def reaches_tabular(i: int) -> bool:
        for j in range(i + 1, min(i + 1 + LOOKAHEAD_LINES, len(lines))):
            if not parsed[j]:
                continue
            if tabular(j):
                return True
            if not single(j):
                return False
        return False

    tables: list[FoundTable] = []
    i = 0
    while i < len(lines):
        if not tabular(i):
            i += 1
            continue
        last, j, count = i, i + 1, 1
        while j < len(lines):
            if not parsed[j]:
                j += 1
            elif tabular(j):
                last, j, count = j, j + 1, count + 1
            elif single(j) and reaches_tabular(j):
                j += 1
            else:
                break
        if count < 2:
            i += 1
            continue
        floor = tables[-1].end if tables else 0
        table = _build(lines, parsed, i, last + 1, floor, headings)
        if table is not None:
            tables.append(table)
        i = last + 1
    return tables


def _build(lines, parsed, start: int, end: int, floor: int, headings) -> FoundTable | None:
    body_lines = [i for i in range(start, end) if parsed[i]]
    tab = [i for i in body_lines if len(parsed[i]) >= 2]
    counts = Counter(len(parsed[i]) for i in tab)
    n = max(counts, key=lambda k: (counts[k], k))
    template = [parsed[i] for i in tab if len(parsed[i]) == n]
    bands = [(min(r[k].x0 for r in template), max(r[k].x1 for r in template)) for k in range(n)]
    em = median(_em(lines[i]) for i in body_lines)
    # A line starting right of this has no row label: it is over the value columns (a header cell).
    split_x = bands[0][0] + 0.5 * (bands[1][0] - bands[0][0])

    def unlabelled(i: int) -> bool:
        return parsed[i][0].x0 > split_x

    # One-cell lines right above the body: header cells over the value columns ("April 1,", "2023"), and below
    # them group labels ("ASSETS:", "Current assets:"). A note of units ("(In millions)") stops the walk: it goes
    # to the caption.
    above, seen_header = start, False
    groups_allowed = not unlabelled(start)  # a table that starts with its header has no group label above it
    for i in range(start - 1, floor - 1, -1):
        if not parsed[i]:
            continue
        text = lines[i].strip()
        if (
            start - i > LOOKAHEAD_LINES
            or len(parsed[i]) != 1
            or text.endswith(".")
            or UNITS_NOTE.match(text)
            or len(text) > MAX_LABEL_CHARS
        ):
            break
        if text.endswith(":"):
            # "Current assets:" sits below the header; "(in millions):" ends the sentence that introduces the table.
            tail = i > floor and lines[i - 1].strip() and len(lines[i - 1].strip()) > MAX_GROUP_CHARS
            if seen_header or not groups_allowed or len(text) > MAX_GROUP_CHARS or tail:
                break
            above = i
        elif unlabelled(i):
            above, seen_header = i, True
        else:
            break
    rest = [i for i in range(above, end) if parsed[i]]
    header_lines = []
    while (
        rest
        and unlabelled(rest[0])
        and len(header_lines) < 3 * MAX_HEADER_ROWS
        and not UNITS_NOTE.match(lines[rest[0]].strip())
        and not lines[rest[0]].rstrip().endswith(":")
    ):
        header_lines.append(rest.pop(0))
    if (
        rest
        and len(parsed[rest[0]]) >= 2
        and all(_names(c.text) for c in parsed[rest[0]])
        and (any(not _names(c.text) for i in rest[1:] for c in parsed[i][1:]) or not header_lines)
        and len(rest) >= 3
    ):
        header_lines.append(rest.pop(0))  # "Year   Exports   Share" or "Measure   2023   2024" above the rows
    if len([i for i in rest if len(parsed[i]) >= 2]) < 2:
        return None
    header = _header_grid([(lines[i], parsed[i]) for i in header_lines], bands, em, split_x)
    rows = _body_rows([parsed[i] for i in rest], bands, split_x)
    return FoundTable(above, end, header, rows, bands, em)


def _names(text: str) -> bool:
    """Whether a cell could name a column: words, or a year, not another figure.

    >>> _names("Exports"), _names("2023"), _names("4.91 million"), _names("$ 96,388")
    (True, True, False, False)
    """
    return bool(_YEAR.match(text)) or not FIGURE.match(text)


_YEAR = re.compile(r"^(?:19|20)\d\d$")


def _column(c: Cell, bands, split_x: float) -> int:
    """The column a cell overlaps most (the nearest when it overlaps none); only a cell starting left of
    `split_x` may be a row label (column 0): a long label can reach over the value columns' edge."""
    first = 0 if c.x0 <= split_x else 1
    ks = range(first, len(bands))
    overlaps = {k: _overlap(c, bands[k]) for k in ks}
    best = max(ks, key=lambda k: overlaps[k])
    if overlaps[best] > 0:
        return best
    middle = (c.x0 + c.x1) / 2
    return min(ks, key=lambda k: abs((bands[k][0] + bands[k][1]) / 2 - middle))


def _slots(bands: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each value column's share of the width, for placing header cells. Figures are right-aligned, so a value
    column runs from the right edge of the column before it to its own right edge (the first one as far left
    as the columns' usual pitch). Column 0 (the labels) keeps its band.

    >>> _slots([(0, 50), (90, 120), (180, 210)])
    [(0, 50), (30, 120), (120, 210)]
    """
    values = bands[1:]
    if not values:
        return list(bands)
    pitch = (values[1][1] - values[0][1]) if len(values) > 1 else (values[0][1] - values[0][0])
    return [bands[0]] + [(values[k - 1][1] if k else x1 - pitch, x1) for k, (_, x1) in enumerate(values)]


def _header_grid(header_lines: list[tuple[str, list[Cell]]], bands, em: float, split_x: float) -> list[list[str]]:
    """Header lines as rows (by baseline, top first), each cell over every column it covers: a label centred over
    two columns ("Three Months Ended" over two dates) names both."""
    rows: list[tuple[float | None, list[Cell]]] = []
    for line, line_cells in header_lines:
        y = getattr(line, "y", None)
        for row in rows:
            if y is not None and row[0] is not None and abs(row[0] - y) < SAME_ROW_EM * em:
                row[1].extend(line_cells)
                break
        else:
            rows.append((y, list(line_cells)))
    if all(y is not None for y, _ in rows):
        rows.sort(key=lambda r: -r[0])  # PDF baselines grow upwards
    slots = _slots(bands)
    grid: list[list[str]] = []
    for _, row_cells in rows[-MAX_HEADER_ROWS:]:
        if len(row_cells) == 1 and row_cells[0].x0 > split_x:
            # One label over the value columns names them all ("April 1, 2023" over Cost, Gains, ... Fair Value).
            grid.append([""] + [row_cells[0].text] * (len(bands) - 1))
            continue
        owner: dict[int, tuple[float, Cell]] = {}
        for c in row_cells:
            covered = {_column(c, bands, split_x)}
            if c.x0 > split_x:
                width = max(c.x1 - c.x0, 1e-6)
                covered |= {k for k in range(1, len(slots)) if _overlap(c, slots[k]) >= COVER_SHARE * width}
            for k in covered:
                score = _overlap(c, slots[k])
                if k not in owner or score > owner[k][0]:
                    owner[k] = (score, c)
        grid.append([owner[k][1].text if k in owner else "" for k in range(len(bands))])
    return grid


def _body_rows(body: list[list[Cell]], bands, split_x: float) -> list[list[str]]:
    rows: list[list[str]] = []
    for line_cells in body:
        row = [""] * len(bands)
        for n, c in enumerate(line_cells):
            if len(line_cells) == 1 and c.text.endswith(":"):
                k = 0  # a group label, even one set in the middle ("LIABILITIES AND SHAREHOLDERS' EQUITY:")
            else:
                k = _column(c, bands, split_x if n == 0 else float("-inf"))
            row[k] = f"{row[k]} {c.text}".strip()
        previous = rows[-1] if rows else None
        if previous is not None and not any(previous[1:]) and row[0][:1].islower() and not previous[0].endswith(":"):
            row[0] = f"{previous[0]} {row[0]}"  # a row label wrapped onto a second line
            rows.pop()
        rows.append(row)
    return rows


def same_columns(a: FoundTable, b: FoundTable) -> bool:
    """Whether `b` (at the top of a page) continues `a` (at the end of the page before): the same columns, where
    they were."""
    if len(a.bands) != len(b.bands):
        return False
    tolerance = 2 * max(a.em, b.em)
    return all(abs(x[1] - y[1]) <= tolerance or abs(x[0] - y[0]) <= tolerance for x, y in zip(a.bands[1:], b.bands[1:]))
