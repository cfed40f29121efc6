"""A PDF's text lines through PDFium (pypdfium2), laid out as `rag.load.pdf` rebuilds paragraphs from them.

PDFium gives each page's text in reading order, one line per text line, with no layout: a table
row comes out as "Products $ 96,388 $ 104,429" and paragraphs are not apart. So this module puts
back the two things the paragraph builder reads from a layout:
- a wide horizontal gap between two words (over `CELL_GAP_EM` of the font size) becomes three
  spaces, a cell boundary; a lone currency sign stays with its figure ("$ 96,388");
- baselines further apart than `PARAGRAPH_PITCH` times the page's usual line pitch (or `LEADING_EM`
  font sizes), a change of font size, or a jump back up the page (a new column or text box) become
  a blank line, a paragraph boundary.
Each line keeps its baseline, font size and each cell's left and right edge (`rag.load.tables.Line`),
from which tables are rebuilt. Only the characters beside a space, and the first and last of each cell, are measured, so a page costs a
few hundred calls into PDFium. Lines drawn at least `HEADING_SIZE_RATIO` times the page's body
font size are headings, and so are short bold lines that end no sentence (`BOLD`).

On the 20 10-Q filings of evals/sec10q this read the text 7x faster than pypdf's layout mode
(evals/sec10q/README.md has the table). PDFium opens files encrypted with an empty password itself.

Not handled: OCR, rotated text, tables drawn without gaps between columns, footnote placement.
"""

from __future__ import annotations

import ctypes
from statistics import median

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from rag.errors import IngestError, OverBudget
from rag.load.tables import CELL, Line

# A gap between two words wider than this many font sizes is a gap between table cells (a word space is ~0.25).
CELL_GAP_EM = 1.0
# Baselines further apart than this many times the page's usual line pitch (in font sizes), or than LEADING_EM font
# sizes, are a gap between paragraphs (text is set at 1.2-1.6 times its size); so is a change of font size.
PARAGRAPH_PITCH = 1.3
LEADING_EM = 1.75
# A heading's font is at least this much larger than the body's (as in rag.load.pdf).
HEADING_SIZE_RATIO = 1.15
_CURRENCY = frozenset("$€£¥")
# A short line set in bold (weight 600 or more, first and last letter) that does not end a sentence is a heading:
# filings set their section titles in bold at the body's size.
BOLD = 600
MAX_BOLD_HEADING = 100
_TERMINAL = tuple('.!?:;,"”’')


def read(path, data: bytes, max_pages: int) -> tuple[list[list[Line]], set[str], dict[str, str], int]:
    """Each page's lines (blank lines between paragraphs, three spaces between cells, each cell's extent kept),
    the large-font lines, the document information dictionary, and the page count."""
    try:
        pdf = pdfium.PdfDocument(data, password="")
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise IngestError(
                path, "encrypted PDF that needs a password; decrypt it first (e.g. qpdf --decrypt)"
            ) from e
        raise IngestError(path, f"corrupt or unreadable PDF ({e})") from e
    try:
        count = len(pdf)
        if count > max_pages:
            raise OverBudget(
                path,
                f"PDF has {count:,} pages, over the limit of {max_pages:,}; raise PARACITE_MAX_PAGES to ingest it",
                "max_pages",
                "PARACITE_MAX_PAGES",
            )
        pages: list[list[Line]] = []
        large: set[str] = set()
        for i in range(count):
            page = pdf[i]
            textpage = page.get_textpage()
            try:
                lines, big = page_lines(textpage)
            finally:
                textpage.close()
                page.close()
            pages.append(lines)
            large |= big
        meta = {k: str(v) for k, v in pdf.get_metadata_dict(skip_empty=True).items()}
        return pages, large, meta, count
    except pdfium.PdfiumError as e:
        raise IngestError(path, f"corrupt PDF: cannot extract text ({e})") from e
    finally:
        pdf.close()


def page_lines(textpage) -> tuple[list[Line], set[str]]:
    """One page's laid-out lines and its large-font lines."""
    text = textpage.get_text_range().replace("\x02", "-")  # PDFium marks a hyphen at a line end as \x02
    raw = textpage.raw
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    x, y = ctypes.c_double(), ctypes.c_double()

    def box(i: int) -> tuple[float, float, float, float]:
        pdfium_c.FPDFText_GetCharBox(raw, i, left, right, bottom, top)
        return left.value, right.value, bottom.value, top.value

    found: list[tuple[str, int, float, float]] = []  # line, its first character's index, baseline, font size
    start = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        # get_text_range's index is the character index; "\r\n" is two characters of it.
        begin = start
        start += len(line) + (2 if text[begin + len(line) : begin + len(line) + 2] == "\r\n" else 1)
        if not line.strip():
            continue
        first = begin + len(line) - len(line.lstrip())
        pdfium_c.FPDFText_GetCharOrigin(raw, first, x, y)
        size = pdfium_c.FPDFText_GetFontSize(raw, first) or 10.0
        last = begin + len(line.rstrip()) - 1
        bold = (
            len(line.strip()) <= MAX_BOLD_HEADING
            and not line.rstrip().endswith(_TERMINAL)
            and min(pdfium_c.FPDFText_GetFontWeight(raw, first), pdfium_c.FPDFText_GetFontWeight(raw, last)) >= BOLD
        )
        found.append((line, begin, y.value, size, bold))
    if not found:
        return [], set()
    # The page's usual distance between baselines, in font sizes: a wider one is a gap between paragraphs.
    pitches = [(a[2] - b[2]) / max(a[3], b[3]) for a, b in zip(found, found[1:]) if 0.5 * b[3] < a[2] - b[2] < 3 * b[3]]
    usual = median(pitches) if pitches else 0.0
    out: list[Line] = []
    for n, (line, begin, baseline, size, _) in enumerate(found):
        if n:
            pitch, previous_size = found[n - 1][2] - baseline, found[n - 1][3]
            if (
                pitch < -0.5 * size
                or (usual and pitch > PARAGRAPH_PITCH * usual * max(size, previous_size))
                or pitch > LEADING_EM * max(size, previous_size)
                or max(size, previous_size) > HEADING_SIZE_RATIO * min(size, previous_size)
            ):
                out.append(Line(""))  # a paragraph gap, or a jump back up the page (a new column or text box)
        out.append(_cells(line, begin, box, size, baseline))
    body = median(size for line, _, _, size, _ in found for _ in range(max(len(line.strip()) // 10, 1)))
    large = {" ".join(line.split()) for line, _, _, size, bold in found if size >= body * HEADING_SIZE_RATIO or bold}
    return out, large


def _cells(line: str, begin: int, box, size: float, baseline: float) -> Line:
    """The line with each wide gap between words widened to three spaces (a cell boundary), and each cell's
    horizontal extent on the page (for `rag.load.tables`).

    A lone currency sign belongs to the figure after it: the gap before "$ 104,429" is measured to the figure.
    """
    pieces: list[str] = []
    origin: list[int] = []  # for each character of the result, the index of the character of `line` it came from
    for j, ch in enumerate(line):
        origin.append(j)
        if ch != " " or j == 0 or j + 1 >= len(line) or line[j - 1] == " " or line[j + 1] == " ":
            pieces.append(ch)
            continue
        if line[j - 1] in _CURRENCY and (j < 2 or line[j - 2] == " "):
            pieces.append(ch)  # "$ 96,388": the space after a lone currency sign
            continue
        after = j + 1
        if line[after] in _CURRENCY and after + 2 < len(line) and line[after + 1] == " ":
            after += 2
        gap = box(begin + after)[0] - box(begin + j - 1)[1]
        if gap > CELL_GAP_EM * size:
            pieces.append("   ")
            origin += [j, j]
        else:
            pieces.append(ch)
    text = "".join(pieces).rstrip()
    spans = tuple((box(begin + origin[m.start()])[0], box(begin + origin[m.end() - 1])[1]) for m in CELL.finditer(text))
    return Line(text, spans, baseline, size)
