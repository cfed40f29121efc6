"""A PDF whose pages share one content stream is refused before its text is read (issue 22, finding 14:
a 314 KB PDF of 1,999 pages sharing one stream burnt 95 s of CPU in PDFium before the memory budget
refused it). Refused quickly by construction: PDFium never loads a page of it, which the tests count.
"""

from __future__ import annotations

import zlib

import pypdfium2 as pdfium
import pytest

from rag.errors import OverBudget
from rag.load import load_file
from rag.load.limits import Limits
from tests.pathological.hostile_files import shared_stream_pdf, text_ops


@pytest.fixture()
def pdfium_pages(monkeypatch) -> list[int]:
    """Every page PDFium loads (text extraction starts with a page load), and every page pypdf extracts."""
    loaded: list[int] = []
    get_page = pdfium.PdfDocument.get_page

    def counting(self, index):
        loaded.append(index)
        return get_page(self, index)

    monkeypatch.setattr(pdfium.PdfDocument, "get_page", counting)
    return loaded


@pytest.mark.parametrize("library", ["pdfium", "pypdf"])
def test_1999_pages_sharing_one_stream_are_refused_before_any_page_is_read(
    tmp_path, monkeypatch, pdfium_pages, library
):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", library)
    from pypdf import PageObject

    extracted: list[int] = []
    monkeypatch.setattr(PageObject, "extract_text", lambda *a, **k: extracted.append(1) or "")
    path = tmp_path / "shared.pdf"
    path.write_bytes(shared_stream_pdf(1999, 100_000))
    assert path.stat().st_size < 330_000  # the size of the file
    with pytest.raises(
        OverBudget,
        match=r"PDF pages draw 1,143 MB or more of shared content over again \(up to "
        r"1,999 pages draw one stream\), over the limit of 32 MB; refused before "
        r"its text is read; raise PARACITE_MAX_REPEATED_CONTENT_MB",
    ) as err:
        load_file(path)
    assert err.value.limit == "max_repeated_content_mb"
    assert pdfium_pages == [] and extracted == []


def test_a_few_pages_sharing_a_small_stream_still_read(tmp_path, pdfium_pages):
    """Optimisers share identical pages' streams; that costs little and goes in."""
    path = tmp_path / "repeated.pdf"
    path.write_bytes(_pdf_with_shared_form(pages=3, form_ops=10))
    loaded = load_file(path)
    assert "Page text" in loaded.paragraphs[0].text and len(pdfium_pages) == 3


def test_the_budget_is_the_operators_to_raise(tmp_path, pdfium_pages):
    path = tmp_path / "shared.pdf"
    path.write_bytes(shared_stream_pdf(40, 10_000))  # 60 KB drawn 39 times over: 2.2 MB
    with pytest.raises(OverBudget, match="over the limit of 1 MB"):
        load_file(path, limits=Limits(max_repeated_content_mb=1))
    assert pdfium_pages == []
    assert Limits.from_env({"PARACITE_MAX_REPEATED_CONTENT_MB": "2.5"}).max_repeated_content_mb == 2.5
    with pytest.raises(Exception, match="no text paragraphs"):  # read (its one line is a running head), not refused
        load_file(path, limits=Limits(max_repeated_content_mb=3))


def test_a_form_xobject_drawn_by_every_page_counts_as_shared(tmp_path, pdfium_pages):
    """Each page's own tiny content stream draws one big shared form: the same work, another route."""
    path = tmp_path / "form.pdf"
    path.write_bytes(_pdf_with_shared_form(pages=500, form_ops=20_000))
    with pytest.raises(OverBudget, match="up to 500 pages draw one stream"):
        load_file(path, limits=Limits(max_repeated_content_mb=8))
    assert pdfium_pages == []


WORDS = "exports rose sharply while imports fell behind forecast in every quarter".split()


def _pdf_with_shared_form(pages: int, form_ops: int) -> bytes:
    """Each page has its own content stream (a line of text, then `/F0 Do`) and every page's resources name one
    form XObject of `form_ops` path operators."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Font << /F1 3 0 R >> /XObject << /F0 5 0 R >> >>",
    }
    form = zlib.compress(b"0 0 m\n" * form_ops)
    objects[5] = (
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Length %d /Filter /FlateDecode >>\n"
        b"stream\n" % len(form) + form + b"\nendstream"
    )
    kids = []
    for i in range(pages):
        page, content = 10 + 2 * i, 11 + 2 * i
        kids.append(f"{page} 0 R")
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R /Resources 4 0 R >>"
        ).encode()
        ops = text_ops(f"Page text {' '.join(WORDS[(i + k) % len(WORDS)] for k in range(6))} ends.") + b"/F0 Do\n"
        objects[content] = b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.7\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n" % size + b"0000000000 65535 f \n"
    for num in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[num]) if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def test_a_stream_past_pypdfs_cap_is_left_to_pdfium_unless_pages_share_it(tmp_path, pdfium_pages, monkeypatch):
    """pypdf's limits are not PDFium's: the check never refuses a file for them, but a bomb two pages draw is."""
    from tests.pathological.hostile_files import limit_pdf, raw_pdf

    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "pdfium")
    alone = tmp_path / "limit.pdf"
    alone.write_bytes(limit_pdf())
    assert load_file(alone).paragraphs[0].text == "A stream that claims to be huge."
    shared = tmp_path / "shared-bomb.pdf"
    shared.write_bytes(raw_pdf([10, 10], {10: text_ops("A bomb follows.") + b" " * 200_000_000}, flate_times=2))
    with pytest.raises(OverBudget, match="75 MB or more of shared content"):
        load_file(shared)
    assert len(pdfium_pages) == 1
