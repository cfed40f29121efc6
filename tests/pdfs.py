"""PDFs made by the tests themselves (fpdf2), so loader tests never depend on files from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

# A sentence that the layout below places across the break between pages 1 and 2.
BREAK_SENTENCE_START = "Paragraph that crosses the page break begins here"
BREAK_SENTENCE_END = "and then it ends on the second page."


class _Report(FPDF):
    def header(self):
        self.set_font("Helvetica", "", 9)
        self.cell(0, 8, "Quarterly Test Report | running header", align="C")
        self.ln(12)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")


def report_pdf(path: Path) -> Path:
    """Three pages: title, wrapped paragraphs, a hand-hyphenated line end, a paragraph across a page break,
    a table and a bulleted list, under a running header and a 'Page N of M' footer."""
    pdf = _Report()
    pdf.set_title("Quarterly Test Report")
    pdf.set_subject("kind=report; date=2026-01-31")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 9, "Quarterly Test Report")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(
        0,
        6,
        "The first paragraph explains that exports were counted by the associa-\n"
        "tion of manufacturers, and that customs data gave a higher total.",
    )
    pdf.ln(4)
    filler = "Line filler text keeps the layout realistic and wraps over the full width of the page. " * 4
    while pdf.get_y() < 230:
        pdf.multi_cell(0, 6, filler.strip())
        pdf.ln(4)
    pdf.multi_cell(
        0, 6, f"{BREAK_SENTENCE_START}, " + "with words that wrap onto several lines, " * 12 + BREAK_SENTENCE_END
    )
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, "Figures")
    pdf.set_font("Helvetica", "", 11)
    with pdf.table() as table:
        for row in [
            ("Year", "Exports", "NEV exports"),
            ("2022", "3.11 million", "679,000"),
            ("2023", "4.91 million", "1.2 million"),
        ]:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.ln(4)
    pdf.multi_cell(0, 6, "- Russia was the largest destination.\n- Mexico came second.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "The last page holds one closing paragraph about localisation.")
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    """A page with a drawing and no text layer, like a scan."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, user_password: str) -> Path:
    """An AES-256 encrypted copy of a one-paragraph PDF."""
    from pypdf import PdfReader, PdfWriter

    plain = path.with_suffix(".plain.pdf")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "This filing reports that vehicle exports reached a record level last year.")
    pdf.output(str(plain))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with open(path, "wb") as fh:
        writer.write(fh)
    plain.unlink()
    return path


class _Filing(FPDF):
    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 8, f"Example Widgets Inc. | Q2 2023 Form 10-Q | {self.page_no()}", align="C")


def filing_pdf(path: Path) -> Path:
    """A two-page quarterly filing whose PDF title names nothing: a cover (form, period, company), then a
    statement of operations whose rows are a label and figures, with no header row."""
    pdf = _Filing()
    pdf.set_title("0000000000-23-000042")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 9, "FORM 10-Q", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "For the quarterly period ended April 1, 2023", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, "Example Widgets Inc.", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0, 6, "(Exact name of registrant as specified in its charter)", align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(
        0, 6, "The following table shows the results of operations for the quarter.", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(4)
    for label, *figures in [
        ("Products", "$ 96,388", "$ 104,429"),
        ("Services", "20,766", "19,516"),
        ("Total net sales", "117,154", "123,945"),
    ]:
        pdf.cell(90, 6, label)
        for figure in figures:
            pdf.cell(40, 6, figure, align="R")
        pdf.ln(6)
    pdf.output(str(path))
    return path


# The statement table of `table_pdf`: two header rows (a period spanning two dates), a label column, a group
# label row, and enough rows to run from page 1 onto page 2.
TABLE_PERIODS = ("Three Months Ended", "Six Months Ended")
TABLE_DATES = ("April 1, 2023", "March 26, 2022")
TABLE_GROUP = "Net sales by region:"
TABLE_ROWS = [
    (f"Region {n} sales", *(f"{(n * 7919 + k * 1237) % 90000 + 1000:,}" for k in range(4))) for n in range(1, 31)
]
TABLE_CAPTION = "Condensed Statement of Sales"
PROSE_BEFORE = "The following table shows net sales by region for the three and six months of the quarter."
PROSE_AFTER = (
    "Sales grew in most regions, and the company expects the growth to continue through the year, "
    "although currency changes weighed on the figures reported in Europe."
)


class _TableFiling(FPDF):
    """A filing whose table header is drawn again at the top of a page the table runs onto, as filings do."""

    in_table = False

    def header(self):
        if self.in_table:
            _table_header(self)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 8, f"Example Widgets Inc. | Q2 2023 Form 10-Q | {self.page_no()}", align="C")


_LABEL_W, _VALUE_W, _ROW_H = 62, 32, 6


def _table_header(pdf: FPDF) -> None:
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(_LABEL_W, _ROW_H, "")
    for period in TABLE_PERIODS:
        pdf.cell(2 * _VALUE_W, _ROW_H, period, align="C")
    pdf.ln(_ROW_H)
    pdf.cell(_LABEL_W, _ROW_H, "")
    for _ in TABLE_PERIODS:
        for date in TABLE_DATES:
            pdf.cell(_VALUE_W, _ROW_H, date, align="R")
    pdf.ln(_ROW_H)
    pdf.set_font("Helvetica", "", 10)


def table_pdf(path: Path) -> Path:
    """Two pages: a prose paragraph, a captioned table with a two-row header (each period spans two dates)
    that runs across the page break (its header repeated on page 2), then a prose paragraph after it."""
    pdf = _TableFiling()
    pdf.set_title("Example Widgets quarterly report")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    filler = (
        "Revenue and costs are described in this section in plain prose, so that the table below starts "
        "low on the first page and has to continue on the next one. "
    )
    for _ in range(4):
        pdf.multi_cell(0, 6, filler * 3, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    pdf.multi_cell(0, 6, PROSE_BEFORE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 8, TABLE_CAPTION, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _table_header(pdf)
    pdf.in_table = True
    pdf.cell(_LABEL_W, _ROW_H, TABLE_GROUP)
    pdf.ln(_ROW_H)
    for label, *values in TABLE_ROWS:
        pdf.cell(_LABEL_W, _ROW_H, "   " + label)
        for value in values:
            pdf.cell(_VALUE_W, _ROW_H, value, align="R")
        pdf.ln(_ROW_H)
    pdf.in_table = False
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, PROSE_AFTER, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path
