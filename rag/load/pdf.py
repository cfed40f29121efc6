"""PDF text layer into paragraphs, with the first page of each.

Steps: open (decrypting an empty user password), take each page's lines, laid out (blank
lines between paragraphs, wide gaps between table cells), drop running headers, footers and
page numbers (keeping the running heads as `running_heads` metadata: they often name the
document), then rebuild paragraphs: join wrapped lines, repair hyphenation at line ends, keep
list items apart, tell headings by their larger font, and join a paragraph that runs across a
page break. Tables (`rag.load.tables`: lines whose cells align in columns, with their header
rows and label column) become one block each, with the title above as caption (and a units note
such as "(In millions)"); a table that continues at the top of the next page with the same
columns (its header repeated or not, perhaps under a "(continued)" heading) stays one table.
A lone line of cells that is no table keeps the old reading: "label; figure; figure".

Two libraries read the lines (`pdf_library`, `$PARACITE_PDF_LIBRARY`): PDFium through pypdfium2
(`rag.load.pdfium_text`, the default: some 15x faster on real filings, with bold headings),
and pypdf's layout mode, the fallback. Both feed the same paragraph rebuilding below.

Bounded work (pypdf): a PDF over `max_pages` is refused before any page is read; pages that draw the
same content stream with the same resources are extracted once (pypdf re-parses a shared stream
for every page that uses it, and the text and font-size passes each parse it again: a 2.6 KB,
4-page PDF took 15.6 s); the font-size pass is skipped on pages without text; pypdf's own safety
limits (`LimitReachedError`, e.g. a stream that inflates past 75 MB) refuse the file with an
`IngestError`. Wall time and memory are the ingest worker's budget (`rag.load.worker`).
Lines are joined in linear time, also for a paragraph that runs over many pages.

Both libraries find tables the same way: PDFium's lines carry each cell's edges and baseline; for
pypdf's layout text the character offsets stand in for the edges, and with no baselines each header
line is its own header row (tests/test_tables.py runs both).

Not handled: OCR of scanned pages (refused with a clear error), multi-column layouts,
tables without visible column gaps, footnotes.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from pypdf import PdfReader
from pypdf.errors import (
    DependencyError,
    FileNotDecryptedError,
    LimitReachedError,
    PyPdfError,
    WrongPasswordError,
)
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from rag.documents import Table
from rag.errors import BadArgument, IngestError, OverBudget
from rag.load.base import Parsed
from rag.load.paragraphs import Block, clean_text, table_row_text
from rag.load.pdf_shared import MAX_REPEATED_MB, check_repeated_content
from rag.load.table_text import table_text
from rag.load.tables import UNITS_NOTE, FoundTable, find_tables, same_columns

_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[ivxlc\d]+(?:\s*(?:of|/)\s*\d+)?$|^[-–—]\s*\d+\s*[-–—]$", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*•▪‣◦·]|\d{1,3}[.)])\s+")
_CELL_GAP = re.compile(r"\s{3,}")
_TERMINAL = tuple('.!?:;"”’)')
# A table cell that holds a figure: "$ 96,388", "(393)", "12.5 %", "—".
_FIGURE = re.compile(r"^[$€£¥]?\s*\(?[$€£¥]?\s*[-−–]?[\d.,]+\s*%?\)?\s*%?$|^[-—–]$")
# Lines seen at the top or bottom of at least this share of pages are running heads or feet.
_RUNNING_SHARE = 0.5
# Running heads kept as document metadata (the rest are page furniture such as "Table of Contents").
_RUNNING_KEPT = 4
_RUNNING_PAGE_NUMBER = re.compile(r"[\s|·•–—-]*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d*)?\s*$", re.IGNORECASE)
# A heading's font is at least this much larger than the body's.
_HEADING_SIZE_RATIO = 1.15
# The default page cap (see `rag.load.limits.Limits.max_pages`).
MAX_PAGES = 2000


# pypdf refuses arrays of more than 100,000 elements; real 10-Q filings hold bigger ones (2 of the 20 in
# evals/sec10q). The worker's memory and time budgets (rag.load.limits) bound what a larger array can cost.
ARRAY_LIMIT = 10_000_000


# Which library reads the text layer: "pdfium" (pypdfium2; the default where it is installed) or "pypdf".
LIBRARY_ENV = "PARACITE_PDF_LIBRARY"
LIBRARIES = ("pdfium", "pypdf")


def pdf_library(environ=None) -> str:
    """The PDF library to read with: `$PARACITE_PDF_LIBRARY`, else pdfium where pypdfium2 is installed, else pypdf.

    >>> pdf_library({"PARACITE_PDF_LIBRARY": "pypdf"})
    'pypdf'
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get(LIBRARY_ENV, "").strip().lower()
    if chosen:
        if chosen not in LIBRARIES:
            raise BadArgument(
                f"{LIBRARY_ENV}={chosen!r} is not a PDF library paracite reads with; valid: {', '.join(LIBRARIES)}"
            )
        return chosen
    return "pdfium" if importlib.util.find_spec("pypdfium2") else "pypdf"


def load_pdf(
    path: Path,
    data: bytes,
    max_pages: int = MAX_PAGES,
    library: str | None = None,
    max_repeated_mb: float = MAX_REPEATED_MB,
) -> Parsed:
    """Paragraphs of a PDF, its text read by `library` (default `pdf_library()`); the paragraphs are rebuilt
    from the lines the same way whichever library read them. A PDF whose pages draw shared content over
    again past `max_repeated_mb` is refused first (`check_repeated_content`)."""
    library = library or pdf_library()
    with _pypdf_limits():
        try:
            reader = _open(path, data)
        except IngestError:
            reader = None  # PDFium may read what pypdf cannot; else the reader says what is wrong
        if reader is not None:
            check_repeated_content(path, reader, max_pages, max_repeated_mb)
    if library == "pdfium":
        from rag.load import pdfium_text

        pages_lines, large_texts, info, count = pdfium_text.read(path, data, max_pages)
        meta = _info_metadata(info)
    else:
        with _pypdf_limits():
            pages_lines, large_texts, meta, count = _read_pypdf(path, data, max_pages)
    if not any(pages_lines):
        raise IngestError(path, "PDF has no text layer (a scanned document?); run OCR first, e.g. ocrmypdf")
    running = _drop_running_lines(pages_lines)
    if running:
        meta["running_heads"] = " | ".join(running)
    blocks = _blocks(pages_lines, large_texts)
    return Parsed(blocks, meta, pages=count, warnings=[])


@contextmanager
def _pypdf_limits() -> Iterator[None]:
    try:
        from pypdf import apply_configuration
    except ImportError:  # a pypdf without configurable limits keeps its own
        yield
        return
    with apply_configuration(array_maximum_element_count=ARRAY_LIMIT):
        yield


def _read_pypdf(path: Path, data: bytes, max_pages: int) -> tuple[list[list[str]], set[str], dict[str, str], int]:
    reader = _open(path, data)
    if len(reader.pages) > max_pages:
        raise OverBudget(
            path,
            f"PDF has {len(reader.pages):,} pages, over the limit of {max_pages:,}; "
            f"raise PARACITE_MAX_PAGES to ingest it",
            "max_pages",
            "PARACITE_MAX_PAGES",
        )
    pages_lines: list[list[str]] = []
    large_texts: set[str] = set()
    # Pages drawing the same content with the same resources give the same text: extract it once.
    extracted: dict[tuple, tuple[list[str], set[str]]] = {}
    try:
        for page in reader.pages:
            key = _content_key(page)
            if key not in extracted:
                lines = _page_lines(page.extract_text(extraction_mode="layout"))
                extracted[key] = lines, (_large_font_lines(page) if lines else set())
            lines, large = extracted[key]
            pages_lines.append(list(lines))
            large_texts |= large
    except LimitReachedError as e:
        raise IngestError(path, f"PDF exceeds one of pypdf's safety limits ({e}); refused as unsafe to parse") from e
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise IngestError(path, f"corrupt PDF: cannot extract text ({type(e).__name__}: {e})") from e
    info = reader.metadata or {}
    return pages_lines, large_texts, _info_metadata({str(k).lstrip("/"): v for k, v in info.items()}), len(reader.pages)


def _content_key(page) -> tuple:
    """What a page's text depends on: its content stream(s), its resources (fonts, forms), its rotation.

    Indirect objects are named by number; a small direct dictionary or array (a page's own
    `/Resources << /Font << /F1 3 0 R >> >>`) by what it holds, so pages that spell out the
    same resources share a key.
    """

    def ref(obj, depth: int = 0):
        if isinstance(obj, IndirectObject):
            return obj.idnum, obj.generation
        if depth < 4 and isinstance(obj, (ArrayObject, DictionaryObject)) and len(obj) <= 64:
            items = obj.items() if isinstance(obj, DictionaryObject) else enumerate(obj)
            return tuple(sorted((str(k), ref(v, depth + 1)) for k, v in items))
        if isinstance(obj, (ArrayObject, DictionaryObject, StreamObject)):
            return "direct", id(obj)  # lives as long as its page, so its id is stable while we read
        text = repr(obj)
        return text if len(text) <= 256 else ("direct", id(obj))

    return ref(page.get("/Contents")), ref(page.get("/Resources")), str(page.get("/Rotate", 0))


def _open(path: Path, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many real filings are encrypted with an empty user password; those open.
            if not reader.decrypt(""):
                raise IngestError(path, "encrypted PDF that needs a password; decrypt it first (e.g. qpdf --decrypt)")
        _ = len(reader.pages)
        return reader
    except IngestError:
        raise
    except DependencyError as e:
        raise IngestError(path, f"encrypted PDF needs the 'cryptography' package ({e})") from e
    except (FileNotDecryptedError, WrongPasswordError) as e:
        raise IngestError(path, "encrypted PDF that needs a password; decrypt it first") from e
    except LimitReachedError as e:
        raise IngestError(path, f"PDF exceeds one of pypdf's safety limits ({e}); refused as unsafe to parse") from e
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as e:
        raise IngestError(path, f"corrupt or unreadable PDF ({type(e).__name__}: {e})") from e


def _page_lines(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").split("\n")]
    first = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    last = next((i for i in range(len(lines) - 1, first - 1, -1) if lines[i].strip()), first - 1)
    return lines[first : last + 1]  # slicing once: popping blank lines off the front one by one was quadratic


def _trim_blank(lines: list[str]) -> list[str]:
    """The lines without blank ones at either end; the line objects themselves (a `Line` keeps its cells' extents)."""
    first = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    last = next((i for i in range(len(lines) - 1, first - 1, -1) if lines[i].strip()), first - 1)
    return lines[first : last + 1]


def _large_font_lines(page) -> set[str]:
    """Text drawn in a font clearly larger than the page's body text: headings."""
    runs: list[tuple[str, float]] = []

    def visit(text, cm, tm, font_dict, font_size):
        size = abs(font_size * (tm[3] or 1) * (cm[3] or 1))
        if text.strip() and size:
            runs.append((" ".join(text.split()), size))

    try:
        page.extract_text(visitor_text=visit)
    except Exception:  # font sizes only refine heading detection; text already came out
        return set()
    if not runs:
        return set()
    body = median(size for text, size in runs for _ in range(max(len(text) // 10, 1)))
    return {text for text, size in runs if size >= body * _HEADING_SIZE_RATIO}


def _normalise_running(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _drop_running_lines(pages: list[list[str]]) -> list[str]:
    """Remove page numbers, and lines repeated at the top or bottom of most pages; return those running lines
    (as first printed, without a page number), which often name the document ("Apple Inc. | Q2 2023 Form 10-Q")."""

    def edges(lines: list[str]) -> list[str]:
        content = [ln for ln in lines if ln.strip()]
        return [_normalise_running(ln) for ln in content[:2] + content[-2:]]

    counts = Counter(key for lines in pages for key in set(edges(lines)))
    running = {k for k, n in counts.items() if len(pages) >= 2 and n >= max(2, _RUNNING_SHARE * len(pages))}
    printed: dict[str, str] = {}
    for i, lines in enumerate(pages):
        content_idx = [j for j, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(content_idx[:2] + content_idx[-2:])
        keep = []
        for j, ln in enumerate(lines):
            if j in edge_idx and (key := _normalise_running(ln)) in running:
                printed.setdefault(key, _RUNNING_PAGE_NUMBER.sub("", " ".join(ln.split())))
            elif not (j in edge_idx and _PAGE_NUMBER.match(ln.strip())):
                keep.append(ln)
        pages[i] = _trim_blank(keep)
    return [t for t in dict.fromkeys(printed.values()) if re.search(r"[A-Za-z]{2}", t)][:_RUNNING_KEPT]


class _Pending:
    """A block still growing: its pieces are joined once, at the end (joining at each step was quadratic).
    A table's block holds the table found (`tables.FoundTable`) and its caption instead."""

    def __init__(self, pieces: list[str], kind: str, page: int, table: FoundTable | None = None, caption: str = ""):
        self.pieces, self.kind, self.page, self.table, self.caption = pieces, kind, page, table, caption

    @property
    def end(self) -> Block:
        """The block as far as `_continues` looks: its kind and how its last piece ends."""
        return Block(self.pieces[-1] if self.pieces else "", self.kind, self.page)

    def block(self, join) -> Block:
        if self.table is not None:
            table = _table(self.table, self.caption)
            return Block(table_text(table), "table", self.page, table)
        return Block(join(self.pieces), self.kind, self.page)


def _table(found: FoundTable, caption: str) -> Table:
    def row(cells: list[str]) -> tuple[str, ...]:
        return tuple(clean_text(c) for c in cells)

    header = tuple(row(r) for r in found.header)
    return Table(header, tuple(row(r) for r in found.rows), tuple(found.pages), clean_text(caption))


# A line right above a table that ends no sentence and is at most this long is its title (its caption).
MAX_CAPTION_CHARS = 250
_CAPTION_ENDS = tuple(".!?:;,")


def _blocks(pages: list[list[str]], large_texts: set[str]) -> list[Block]:
    blocks: list[_Pending] = []
    for page_no, lines in enumerate(pages, start=1):
        page_blocks: list[_Pending] = []
        current: list[str] = []
        kind = "para"
        table_header: list[str] | None = None
        heading: _Pending | None = None  # the last block, while it is a heading that may wrap on
        tables = {t.start: t for t in find_tables(lines, large_texts)}

        # emit and flush are called only within this page's iteration, so they see this page's lists.
        def emit(block: _Pending) -> None:
            nonlocal heading
            heading = None
            page_blocks.append(block)  # noqa: B023

        def flush() -> None:
            nonlocal current, kind
            if current:
                emit(_Pending([_join_lines(current)], kind, page_no))  # noqa: B023
            current, kind = [], "para"

        previous_blank = True
        n = 0
        while n < len(lines):
            raw = lines[n]
            n += 1
            line = raw.strip()
            if (found := tables.get(n - 1)) is not None:
                flush()
                table_header = None
                found.pages.append(page_no)
                emit(_Pending([], "table", page_no, found, _caption(page_blocks)))
                n = found.end
                previous_blank = False
                continue
            if not line:
                flush()
                previous_blank = True
                continue
            if _BULLET.match(line):  # before the table test: "1.   Xinhua ..." has a wide gap too
                flush()
                table_header = None
                kind = "item"
                current.append(_BULLET.sub("", line, count=1))
            elif len(cells := _CELL_GAP.split(line)) >= 2:
                flush()
                if all(_FIGURE.match(c) for c in cells[1:]):
                    # A label and its figures is a data row, never a header (a header row names its columns).
                    header = table_header if table_header and len(table_header) == len(cells) else [""] * len(cells)
                    emit(_Pending([table_row_text(header, cells)], "para", page_no))
                elif table_header is None or len(cells) != len(table_header):
                    table_header = cells
                else:
                    emit(_Pending([table_row_text(table_header, cells)], "para", page_no))
            elif " ".join(line.split()) in large_texts:
                flush()
                table_header = None
                if heading is not None and not previous_blank:
                    heading.pieces.append(line)  # a wrapped title
                else:
                    emit(_Pending([line], "heading", page_no))
                    heading = page_blocks[-1]
            else:
                table_header = None
                current.append(line)
            previous_blank = False
        flush()
        if blocks and page_blocks and _continues_table(blocks[-1], page_blocks):
            pass  # the table on the page before took this page's first rows
        elif blocks and page_blocks and _continues(blocks[-1].end, page_blocks[0].end):
            first = page_blocks.pop(0)
            blocks[-1].pieces.extend(first.pieces)  # a paragraph across the page break
        blocks.extend(page_blocks)
    return [b.block(" ".join) if b.kind == "heading" else b.block(_join_lines) for b in blocks]


def _caption(page_blocks: list[_Pending]) -> str:
    """The title right above a table, with the note of its units under it ("(In millions)"): a heading (kept, as the
    heading of what follows), or a short line that ends no sentence, which the caption takes out of the text."""
    parts: list[str] = []
    if page_blocks and page_blocks[-1].kind == "para" and UNITS_NOTE.match(_join_lines(page_blocks[-1].pieces)):
        parts.append(_join_lines(page_blocks.pop().pieces))
    if page_blocks and page_blocks[-1].kind == "heading":
        parts.insert(0, " ".join(page_blocks[-1].pieces))
    elif page_blocks and page_blocks[-1].kind == "para" and page_blocks[-1].table is None:
        title = _join_lines(page_blocks[-1].pieces)
        if len(title) <= MAX_CAPTION_CHARS and not title.endswith(_CAPTION_ENDS):
            page_blocks.pop()
            parts.insert(0, title)
    return " ".join(parts)


def _continues_table(previous: _Pending, page_blocks: list[_Pending]) -> bool:
    """A table that runs on from the page before: the previous page ends with a table, and this one starts with
    a table of the same columns, with no header or the same header (repeated), perhaps under a "(continued)"
    heading. Its rows (and the page) go to the earlier table, and the blocks are taken off `page_blocks`."""
    if previous.table is None:
        return False
    at = 0
    if page_blocks[0].kind == "heading" and len(page_blocks) > 1:
        title = " ".join(page_blocks[0].pieces)
        if "continued" not in title.lower() and " ".join(title.split()) != " ".join(previous.caption.split()):
            return False
        at = 1
    nxt = page_blocks[at].table
    if nxt is None or not same_columns(previous.table, nxt):
        return False
    if nxt.header and nxt.header != previous.table.header:
        return False
    previous.table.rows.extend(nxt.rows)
    previous.table.pages.extend(p for p in nxt.pages if p not in previous.table.pages)
    del page_blocks[: at + 1]
    return True


def _continues(prev: Block, nxt: Block) -> bool:
    """A paragraph that runs across a page break: no terminal punctuation before the break."""
    if prev.kind in ("heading", "table") or nxt.kind in ("heading", "item", "table"):
        return False
    return not prev.text.rstrip().endswith(_TERMINAL) or nxt.text[:1].islower()


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines, repairing a word hyphenated at a line end.

    >>> _join_lines(["the associa-", "tion reported", "self-", "Reliance"])
    'the association reported self-Reliance'
    """
    parts: list[str] = []  # joined once at the end; only the last piece is ever looked at or trimmed
    for line in (ln.strip() for ln in lines):
        if not parts or not parts[-1]:
            parts = [line]
        elif _HYPHENATED.search(parts[-1][-2:]):
            # "associa-" + "tion" was one word; "self-" + "Reliance" keeps its hyphen.
            if line[:1].islower():
                parts[-1] = parts[-1][:-1]
            parts.append(line)
        else:
            parts.append(" " + line)
    return " ".join("".join(parts).split())


_HYPHENATED = re.compile(r"[A-Za-z]-$")


def _info_metadata(info) -> dict[str, str]:
    """Title, author and subject from the document information dictionary (keys without their slash).

    >>> _info_metadata({"Title": "Exports", "Subject": "kind=briefing; date=2024-05-01"})
    {'title': 'Exports', 'kind': 'briefing', 'date': '2024-05-01'}
    """
    meta: dict[str, str] = {}
    if str(info.get("Title") or "").strip():
        meta["title"] = str(info["Title"]).strip()
    if str(info.get("Author") or "").strip():
        meta["author"] = str(info["Author"]).strip()
    if m := re.match(r"(?:D:)?(\d{4})(\d{2})(\d{2})", str(info.get("CreationDate") or "").strip()):
        meta["created"] = "-".join(m.groups())  # when the file was made: a filing's date where its cover has none
    # paracite's own PDFs carry "kind=briefing; date=..." in Subject; others keep Subject as is.
    subject = str(info.get("Subject") or "").strip()
    pairs = [p.partition("=") for p in subject.split(";") if "=" in p]
    if pairs:
        meta.update({k.strip().lower(): v.strip() for k, _, v in pairs})
    elif subject:
        meta["subject"] = subject
    return meta
