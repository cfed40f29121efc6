"""PDF text layer into paragraphs, with the first page of each.

Steps: open (decrypting an empty user password), take each page's text in pypdf's layout
mode (which keeps vertical gaps as blank lines), drop running headers, footers and page
numbers, then rebuild paragraphs: join wrapped lines, repair hyphenation at line ends, keep
list items and table rows apart, tell headings by their larger font, and join a paragraph
that runs across a page break.

Not handled: OCR of scanned pages (refused with a clear error), multi-column layouts,
tables without visible column gaps, footnotes.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from statistics import median

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, WrongPasswordError

from rag.errors import IngestError
from rag.loaders.base import Parsed
from rag.paragraphs import Block, table_row_text

_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[ivxlc\d]+(?:\s*(?:of|/)\s*\d+)?$|^[-–—]\s*\d+\s*[-–—]$", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*•▪‣◦·]|\d{1,3}[.)])\s+")
_CELL_GAP = re.compile(r"\s{3,}")
_TERMINAL = tuple('.!?:;"”’)')
# Lines seen at the top or bottom of at least this share of pages are running heads or feet.
_RUNNING_SHARE = 0.5
# A heading's font is at least this much larger than the body's.
_HEADING_SIZE_RATIO = 1.15


def load_pdf(path: Path, data: bytes) -> Parsed:
    reader = _open(path)
    warnings: list[str] = []
    pages_lines: list[list[str]] = []
    large_texts: set[str] = set()
    try:
        for page in reader.pages:
            pages_lines.append(_page_lines(page.extract_text(extraction_mode="layout")))
            large_texts |= _large_font_lines(page)
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise IngestError(path, f"corrupt PDF: cannot extract text ({e})") from e
    if not any(pages_lines):
        raise IngestError(path, "PDF has no text layer (a scanned document?); run OCR first, e.g. ocrmypdf")
    _drop_running_lines(pages_lines)
    blocks = _blocks(pages_lines, large_texts)
    return Parsed(blocks, _metadata(reader), pages=len(reader.pages), warnings=warnings)


def _open(path: Path) -> PdfReader:
    try:
        reader = PdfReader(path)
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
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise IngestError(path, f"corrupt or unreadable PDF ({type(e).__name__}: {e})") from e


def _page_lines(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


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


def _drop_running_lines(pages: list[list[str]]) -> None:
    """Remove page numbers, and lines repeated at the top or bottom of most pages."""
    def edges(lines: list[str]) -> list[str]:
        content = [ln for ln in lines if ln.strip()]
        return [_normalise_running(ln) for ln in content[:2] + content[-2:]]

    counts = Counter(key for lines in pages for key in set(edges(lines)))
    running = {k for k, n in counts.items() if len(pages) >= 2 and n >= max(2, _RUNNING_SHARE * len(pages))}
    for i, lines in enumerate(pages):
        content_idx = [j for j, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(content_idx[:2] + content_idx[-2:])
        keep = [
            ln for j, ln in enumerate(lines)
            if not (j in edge_idx and (_normalise_running(ln) in running or _PAGE_NUMBER.match(ln.strip())))
        ]
        pages[i] = _page_lines("\n".join(keep))


def _blocks(pages: list[list[str]], large_texts: set[str]) -> list[Block]:
    blocks: list[Block] = []
    for page_no, lines in enumerate(pages, start=1):
        page_blocks: list[Block] = []
        current: list[str] = []
        kind = "para"
        table_header: list[str] | None = None

        def flush() -> None:
            nonlocal current, kind
            if current:
                page_blocks.append(Block(_join_lines(current), kind, page_no))
            current, kind = [], "para"

        previous_blank = True
        for raw in lines:
            line = raw.strip()
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
                if table_header is None or len(cells) != len(table_header):
                    table_header = cells
                else:
                    page_blocks.append(Block(table_row_text(table_header, cells), "para", page_no))
            elif " ".join(line.split()) in large_texts:
                flush()
                table_header = None
                if page_blocks and page_blocks[-1].kind == "heading" and not previous_blank:
                    page_blocks[-1] = Block(f"{page_blocks[-1].text} {line}", "heading", page_no)  # a wrapped title
                else:
                    page_blocks.append(Block(line, "heading", page_no))
            else:
                table_header = None
                current.append(line)
            previous_blank = False
        flush()
        if blocks and page_blocks and _continues(blocks[-1], page_blocks[0]):
            first = page_blocks.pop(0)
            blocks[-1] = Block(_join_lines([blocks[-1].text, first.text]), blocks[-1].kind, blocks[-1].page)
        blocks.extend(page_blocks)
    return blocks


def _continues(prev: Block, nxt: Block) -> bool:
    """A paragraph that runs across a page break: no terminal punctuation before the break."""
    if prev.kind == "heading" or nxt.kind == "heading" or nxt.kind == "item":
        return False
    return not prev.text.rstrip().endswith(_TERMINAL) or nxt.text[:1].islower()


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines, repairing a word hyphenated at a line end.

    >>> _join_lines(["the associa-", "tion reported", "self-", "Reliance"])
    'the association reported self-Reliance'
    """
    out = ""
    for line in (ln.strip() for ln in lines):
        if not out:
            out = line
        elif re.search(r"[A-Za-z]-$", out):
            # "associa-" + "tion" was one word; "self-" + "Reliance" keeps its hyphen.
            out = out[:-1] + line if line[:1].islower() else out + line
        else:
            out = f"{out} {line}"
    return " ".join(out.split())


def _metadata(reader: PdfReader) -> dict[str, str]:
    meta: dict[str, str] = {}
    info = reader.metadata or {}
    if info.get("/Title"):
        meta["title"] = str(info["/Title"]).strip()
    if info.get("/Author"):
        meta["author"] = str(info["/Author"]).strip()
    # paracite's own PDFs carry "kind=briefing; date=..." in Subject; others keep Subject as is.
    subject = str(info.get("/Subject") or "").strip()
    pairs = [p.partition("=") for p in subject.split(";") if "=" in p]
    if pairs:
        meta.update({k.strip().lower(): v.strip() for k, _, v in pairs})
    elif subject:
        meta["subject"] = subject
    return meta
