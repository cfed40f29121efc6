"""Each format becomes clean, numbered paragraphs; each bad input becomes a one-line error naming the file."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from rag.errors import BadArgument, IngestError
from rag.load import load_file
from tests.pdfs import BREAK_SENTENCE_END, BREAK_SENTENCE_START, encrypted_pdf, filing_pdf, report_pdf, scanned_pdf


def test_txt_with_front_matter_and_one_paragraph_per_line(tmp_path):
    line = "Chinese carmakers produce less than a tenth of their foreign sales abroad, a share well below rivals."
    f = tmp_path / "Notes 2024.txt"
    f.write_text(f"---\ntitle: Field notes\nkind: notes\n---\n{line}\n{line.replace('tenth', 'fifth')}\n", "utf-8")
    loaded = load_file(f)
    assert loaded.document.doc_id == "notes-2024"
    assert (loaded.document.title, loaded.document.kind, loaded.document.format) == ("Field notes", "notes", "txt")
    assert [p.para for p in loaded.paragraphs] == [1, 2]
    assert "fifth" in loaded.paragraphs[1].text


def test_shipped_commentary_keeps_source_paragraphs_out_of_text():
    from tests.conftest import CORPUS

    loaded = load_file(CORPUS / "caixin-commentary.md")
    doc = loaded.document
    assert (doc.doc_id, doc.kind, doc.meta["publisher"]) == ("caixin-commentary", "commentary", "Caixin Global")
    texts = [p.text for p in loaded.paragraphs]
    assert not any("[para." in t for t in texts)
    assert not any(w in " ".join(texts) for w in ("DIGEST HUB", "PODCAST", "MOST POPULAR", "Listen to the full"))
    caam = next(p for p in loaded.paragraphs if "China Association of Automobile Manufacturers" in p.text)
    assert caam.source_paras == (4, 5)


def test_html_drops_furniture_and_keeps_blocks(tmp_path):
    f = tmp_path / "page.html"
    f.write_text(
        """<html><head><title>Trade notes</title><meta name="kind" content="briefing">
    <script>alert('x')</script></head><body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
    <h1>Trade notes</h1><p>The EU set <b>countervailing</b> duties
    on Chinese EVs.</p><ul><li>Brazil raised its tariff.</li></ul>
    <table><tr><th>Market</th><th>Rate</th></tr><tr><td>Canada</td><td>100%</td></tr></table>
    <footer>Copyright 2026 Example Ltd</footer></body></html>""",
        "utf-8",
    )
    loaded = load_file(f)
    assert (loaded.document.title, loaded.document.kind) == ("Trade notes", "briefing")
    assert [p.text for p in loaded.paragraphs] == [
        "The EU set countervailing duties on Chinese EVs.",
        "Brazil raised its tariff.",
        "Canada — Rate: 100%",  # a table is one paragraph: each row with its column labels
    ]
    assert loaded.paragraphs[2].table.rows == (("Canada", "100%"),)


@pytest.mark.parametrize("library", ["pdfium", "pypdf"])
def test_pdf_paragraphs_join_lines_repair_hyphens_cross_pages_and_drop_running_lines(tmp_path, monkeypatch, library):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", library)  # pypdf is the fallback where pypdfium2 is missing
    path = report_pdf(tmp_path / "report.pdf")
    pages = [p.extract_text() for p in PdfReader(path).pages]
    assert BREAK_SENTENCE_START in pages[0] and "ends on the second page." in pages[1]  # the layout really breaks there
    loaded = load_file(path)
    doc, paras = loaded.document, loaded.paragraphs
    assert (doc.title, doc.kind, doc.pages, doc.meta["date"]) == ("Quarterly Test Report", "report", 3, "2026-01-31")
    texts = [p.text for p in paras]
    assert not any("running header" in t or "Page " in t for t in texts)
    first = paras[0]
    assert first.text == (
        "The first paragraph explains that exports were counted by the association of "
        "manufacturers, and that customs data gave a higher total."
    )
    crossing = [p for p in paras if BREAK_SENTENCE_START in p.text]
    assert len(crossing) == 1 and crossing[0].text.endswith(BREAK_SENTENCE_END) and crossing[0].page == 1
    # The table is one paragraph: its caption (the heading above it), then a line per row, each value named.
    table = [p for p in paras if p.table is not None]
    assert len(table) == 1 and table[0].table.header == (("Year", "Exports", "NEV exports"),)
    assert table[0].text.split("\n") == [
        "Figures",
        "2022 — Exports: 3.11 million; NEV exports: 679,000",
        "2023 — Exports: 4.91 million; NEV exports: 1.2 million",
    ]
    assert "Russia was the largest destination." in texts and "Mexico came second." in texts
    assert paras[-1].page == 3 and paras[-1].heading == "Figures"
    assert [p.para for p in paras] == list(range(1, len(paras) + 1))


@pytest.mark.parametrize("library", ["pdfium", "pypdf"])
def test_encrypted_pdf_with_empty_password_opens(tmp_path, monkeypatch, library):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", library)
    loaded = load_file(encrypted_pdf(tmp_path / "filing.pdf", user_password=""))
    assert "record level" in loaded.paragraphs[0].text


def test_filing_cover_gives_title_kind_date_and_rows_of_figures_are_a_table_without_header(tmp_path):
    loaded = load_file(filing_pdf(tmp_path / "2023 Q2 EXWI.pdf"))
    doc = loaded.document
    assert doc.title == "Example Widgets Inc. Form 10-Q, quarterly period ended April 1, 2023"
    assert (doc.kind, doc.meta["company"], doc.meta["date"]) == (
        "quarterly report",
        "Example Widgets Inc.",
        "2023-04-01",
    )
    assert doc.meta["file_title"] == "0000000000-23-000042"  # the PDF's own title, which named nothing
    assert doc.meta["running_heads"] == "Example Widgets Inc. | Q2 2023 Form 10-Q"
    texts = [p.text for p in loaded.paragraphs]
    # A label followed by figures is a row, not a header for the rows below it: this table has no header.
    table = [p for p in loaded.paragraphs if p.table is not None]
    assert len(table) == 1 and table[0].table.header == ()
    assert table[0].text.split("\n") == [
        "Products — $ 96,388; $ 104,429",
        "Services — 20,766; 19,516",
        "Total net sales — 117,154; 123,945",
    ]
    # The sentence above it ends with a full stop: it stays a paragraph, not the table's caption.
    assert "The following table shows the results of operations for the quarter." in texts
    assert not any("Form 10-Q |" in t for t in texts)


def test_unknown_pdf_library_is_refused_with_the_valid_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "acrobat")
    with pytest.raises(BadArgument, match="valid: pdfium, pypdf"):
        load_file(report_pdf(tmp_path / "report.pdf"))


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("locked.pdf", lambda p: encrypted_pdf(p, user_password="s3cret"), "needs a password"),
        ("scan.pdf", scanned_pdf, "no text layer"),
        ("broken.pdf", lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>> garbage\n%%EOF"), "corrupt"),
        ("truncated.pdf", lambda p: p.write_bytes(report_pdf(p).read_bytes()[:900]), "corrupt"),
        ("empty.md", lambda p: p.write_text(""), "empty file"),
        ("blank.txt", lambda p: p.write_text("  \n\n  "), "empty file"),
        ("image.txt", lambda p: p.write_bytes(bytes(range(256)) * 8), "binary"),
        (
            "bad-encoding.txt",
            lambda p: p.write_bytes("caf\u00e9 ".encode("cp1252") + b"\x81\x8d\x90 text"),
            "not UTF-8",
        ),
        ("slides.pptx", lambda p: p.write_bytes(b"PK\x03\x04"), "unsupported file type '.pptx'"),
        ("gone.md", lambda p: p.symlink_to(p.parent / "missing-target.md"), "cannot be read"),
    ],
)
def test_bad_inputs_get_one_line_errors_naming_the_file(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path)
    with pytest.raises(IngestError) as err:
        load_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and reason in message


def test_windows_1252_text_is_decoded_with_a_warning(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Exports to M\u00e9xico rose \u2013 sharply.".encode("cp1252"))
    loaded = load_file(path)
    assert loaded.paragraphs[0].text == "Exports to M\u00e9xico rose \u2013 sharply."
    assert any("Windows-1252" in w for w in loaded.warnings)


def test_pdf_library_is_pdfium_where_installed_else_pypdf(monkeypatch):
    from rag.load import pdf

    monkeypatch.delenv("PARACITE_PDF_LIBRARY", raising=False)
    assert pdf.pdf_library() == "pdfium"
    monkeypatch.setattr(pdf.importlib.util, "find_spec", lambda name: None)  # as where pypdfium2 has no wheel
    assert pdf.pdf_library() == "pypdf"


def test_hostile_pdfs_through_pdfium_load_or_fail_with_a_named_error_within_budget(monkeypatch):
    """The files built against pypdf's limits (a 200 MB flate bomb, a stream claiming 80 MB, a shared content
    stream): PDFium reads them in a worker under the same time and memory budget, or the file fails alone."""
    from pathlib import Path

    from rag.load.limits import Limits
    from rag.load.worker import parse_files

    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "pdfium")  # the workers inherit it
    paths = sorted((Path(__file__).parent / "pathological").glob("*.pdf"))
    results = parse_files([(p, p.stem) for p in paths], Limits(seconds_per_file=10, memory_mb=600, workers=2))
    outcome = {p.name: r if isinstance(r, IngestError) else r.paragraphs[0].text for p, r in zip(paths, results)}
    assert outcome["good.pdf"] == "A good PDF paragraph about exports, which ends properly."
    assert outcome["flate-bomb.pdf"] == "A bomb follows."  # inflated inside the worker's 600 MB, then read
    assert outcome["limit-reached.pdf"] == "A stream that claims to be huge."
    for name, result in outcome.items():
        assert isinstance(result, str) or ("\n" not in str(result) and name in str(result)), (name, result)
