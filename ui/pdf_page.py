"""A PDF page as the citation panel shows it: the rendered page, and the boxes of the quoted text on it.

PDFium (pypdfium2) renders the page and gives each character's box. The quote is the clean sentence
the answer cites, whose words the loader joined across line breaks and hyphens, so it is found on the
page by its letters and digits alone (case, spaces, punctuation and hyphens ignored). A quoted table row
("Net sales: Products — Three Months Ended …: $ 73,929; …") is found by its cells instead, which is how
the row is printed. The boxes come back as percentages of the page, to lay over the image at any width.

Drawing only: nothing here reads the index, and a file whose bytes no longer match the document's
sha256 is not drawn (the page would not be the one that was cited).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

SCALE = 1.6  # pixels per PDF point: an A4 page is about 950 px wide, sharp in a panel even zoomed to its text
MIN_KEYS = 12  # a prefix shorter than this many letters and digits could match anywhere


@dataclass(frozen=True)
class Box:
    """A highlighted run of characters on one line, in percent of the page (top-left origin)."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class PageView:
    page: int  # 1-based
    png: bytes
    boxes: tuple[Box, ...]
    width: float = 595.0  # the page's size in PDF points
    height: float = 842.0

    def band(self, margin: float = 7.0) -> tuple[float, float]:
        """The stretch of the page (top and bottom, in percent of its height) that holds the boxes, with a
        margin: what the panel shows first. The whole page when there are no boxes.

        >>> PageView(1, b"", (Box(10, 40, 50, 2), Box(10, 43, 20, 2))).band()
        (33.0, 52.0)
        """
        if not self.boxes:
            return 0.0, 100.0
        top = min(b.top for b in self.boxes)
        bottom = max(b.top + b.height for b in self.boxes)
        return max(0.0, top - margin), min(100.0, bottom + margin)

    def columns(self, margin: float = 3.0, least: float = 60.0) -> tuple[float, float]:
        """The stretch across the page (left and right, in percent of its width) that holds the boxes, with a
        margin, at least `least` percent wide: the page's margins are left out, so its text reads larger.

        >>> PageView(1, b"", (Box(12, 40, 70, 2),)).columns(), PageView(1, b"", (Box(40, 40, 5, 2),)).columns()
        ((9.0, 85.0), (12.5, 72.5))
        """
        if not self.boxes:
            return 0.0, 100.0
        left = max(0.0, min(b.left for b in self.boxes) - margin)
        right = min(100.0, max(b.left + b.width for b in self.boxes) + margin)
        if right - left < least:
            middle = min(max((left + right) / 2, least / 2), 100 - least / 2)
            left, right = middle - least / 2, middle + least / 2
        return left, right


def keys(text: str) -> str:
    """The letters and digits of `text`, lowercased: what survives line joins, hyphenation and quotes.

    >>> keys("China’s ex-\\nports: 5.221 million")
    'chinasexports5221million'
    """
    return "".join(ch.lower() for ch in text if ch.isalnum())


def file_matches(path: Path, sha256: str) -> bool:
    """True when the file at `path` is the one that was ingested (same sha256)."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return False
    return not sha256 or digest.hexdigest() == sha256


def find_span(page_text: str, wanted: str) -> list[int]:
    """Indexes into `page_text` of the characters that spell `wanted` (by `keys`); the longest prefix of at
    least MIN_KEYS keys when the whole does not fit on this page (a quote that runs onto the next one).

    >>> text = "It rose 4%.\\r\\nChina's exports hit a re-\\r\\ncord 4.91 million in 2023."
    >>> idx = find_span(text, "China's exports hit a record 4.91 million in 2023.")
    >>> text[idx[0]:idx[-1] + 1]
    "China's exports hit a re-\\r\\ncord 4.91 million in 2023"
    """
    positions = [i for i, ch in enumerate(page_text) if ch.isalnum()]
    haystack = "".join(page_text[i].lower() for i in positions)
    needle = keys(wanted)
    if not needle:
        return []
    at = haystack.find(needle)
    length = len(needle)
    if at < 0:
        lo, hi = MIN_KEYS, len(needle) - 1  # the longest prefix found: binary search on its length
        at, length = -1, 0
        while lo <= hi:
            mid = (lo + hi) // 2
            found = haystack.find(needle[:mid])
            if found >= 0:
                at, length, lo = found, mid, mid + 1
            else:
                hi = mid - 1
        if at < 0:
            return []
    start, end = positions[at], positions[at + length - 1]
    return [i for i in range(start, end + 1) if not page_text[i].isspace()]


def line_boxes(charboxes: list[tuple[float, float, float, float]], width: float, height: float) -> tuple[Box, ...]:
    """Character boxes (PDF points: left, bottom, right, top) merged into one box per line, in percent, a point of padding around each.

    >>> [tuple(round(v, 1) for v in (b.left, b.top, b.width, b.height))
    ...  for b in line_boxes([(10, 80, 15, 90), (15, 80, 20, 90), (10, 60, 14, 70)], 100, 100)]
    [(9.0, 9.0, 12.0, 12.0), (9.0, 29.0, 6.0, 12.0)]
    """
    lines: list[list[float]] = []
    for left, bottom, right, top in charboxes:
        if right <= left or top <= bottom:
            continue
        last = lines[-1] if lines else None
        # The same line: it overlaps the line's height and goes on rightwards (a wrap starts back at the left).
        if last and bottom < last[3] and top > last[1] and left >= last[2] - 2 * (right - left) - 1:
            last[0], last[1] = min(last[0], left), min(last[1], bottom)
            last[2], last[3] = max(last[2], right), max(last[3], top)
        else:
            lines.append([left, bottom, right, top])
    pad = 1.0  # a point around each line, so the mark does not clip the letters
    return tuple(
        Box(
            100 * (left - pad) / width,
            100 * (height - top - pad) / height,
            100 * (right - left + 2 * pad) / width,
            100 * (top - bottom + 2 * pad) / height,
        )
        for left, bottom, right, top in lines
    )


def _boxes(page, wanted: list[str]) -> tuple[Box, ...]:
    width, height = page.get_size()
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    boxes: list[Box] = []
    for w in wanted:
        boxes += line_boxes([textpage.get_charbox(i) for i in find_span(text, w)], width, height)
    return tuple(boxes)


def quote_page(path: Path, first_page: int, last_page: int, wanted: list[str]) -> PageView:
    """The first page from `first_page` to `last_page` (1-based) of the PDF at `path` on which the texts
    in `wanted` (a quote, or a table row's cells) are found, as a PNG with their boxes; the first page,
    with no boxes, when they are found on none."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        last_page = min(max(first_page, last_page), len(pdf))
        chosen, boxes = first_page, ()
        for number in range(first_page, last_page + 1):
            boxes = _boxes(pdf[number - 1], wanted)
            if boxes:
                chosen = number
                break
        page = pdf[chosen - 1]
        buffer = io.BytesIO()
        page.render(scale=SCALE).to_pil().save(buffer, format="PNG", optimize=True)
        return PageView(chosen, buffer.getvalue(), boxes, *page.get_size())
    finally:
        pdf.close()
