"""Pages that draw the same content over and over: a small PDF that costs its reader minutes.

A content stream (or a form XObject a page's resources name) drawn by k pages is parsed k times by
PDFium; 1,999 pages sharing one 600 KB stream, a 317 KB file, took over 30 s of CPU before a budget
stopped it (issue 22, finding 14). `check_repeated_content` refuses such a file from its page tree
alone, before any page is read. Not handled: repetition through patterns, Type 3 fonts or
annotations, and a PDF that pypdf cannot open (the worker's time and memory budgets still hold).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from rag.errors import OverBudget

# Content that a PDF's pages draw over again (a stream shared by k pages counts k - 1 times) may add up to this
# many MB (`rag.load.limits.Limits.max_repeated_content_mb`). Optimisers share the streams of identical pages
# (blank ones, a letterhead form); 1,999 pages sharing one 600 KB stream is 1.1 GB.
MAX_REPEATED_MB = 32.0
REPEATED_ENV = "PARACITE_MAX_REPEATED_CONTENT_MB"
# What pypdf inflates a stream to at most; one past it counts as this much each time it is drawn again.
PYPDF_STREAM_CAP = 75 * 2**20


def check_repeated_content(path: Path, reader: PdfReader, max_pages: int, max_repeated_mb: float) -> None:
    """Refuse a PDF whose pages draw the same content streams over and over, before any text is read.

    This reads only the page tree with pypdf's `reader` (object numbers, no content parsed),
    decodes each shared stream once for its size, and sums what would be drawn again: (k - 1) x its size. Over
    `max_repeated_mb` it is an `OverBudget`; a PDF pypdf cannot open is left to the reader, and
    one over `max_pages` to its page-count check.
    """
    try:
        if len(reader.pages) > max_pages:
            return
        uses: Counter[int] = Counter()
        objects: dict[int, StreamObject] = {}
        forms: dict[tuple[str, int], set[int]] = {}  # resources or form -> the forms it draws, found once
        for page in reader.pages:
            drawn: set[int] = set()
            contents = page.get("/Contents")
            items = contents.get_object() if isinstance(contents, IndirectObject) else contents
            for item in items if isinstance(items, ArrayObject) else [contents]:
                if isinstance(item, IndirectObject):
                    drawn.add(item.idnum)
                    objects.setdefault(item.idnum, item)
            drawn |= _forms(page.get("/Resources"), forms, objects)
            uses.update(drawn)
        shared = {num: n for num, n in uses.items() if n > 1}
        repeated = 0
        for num, n in shared.items():
            try:
                repeated += (n - 1) * len(objects[num].get_object().get_data())
            except LimitReachedError:  # it inflates past pypdf's cap (75 MB), and is drawn again
                repeated += (n - 1) * PYPDF_STREAM_CAP
            if repeated > max_repeated_mb * 2**20:
                break
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        return  # not for this check to judge (pypdf's limits are not PDFium's): the reader says what is wrong
    if repeated > max_repeated_mb * 2**20:
        pages = max(shared.values())
        raise OverBudget(
            path,
            f"PDF pages draw {repeated / 2**20:,.0f} MB or more of shared content over again "
            f"(up to {pages:,} pages draw one stream), over the limit of {max_repeated_mb:g} MB; "
            f"refused before its text is read; raise {REPEATED_ENV} to ingest it",
            "max_repeated_content_mb",
            REPEATED_ENV,
        )


def _forms(resources, memo: dict[tuple[str, int], set[int]], objects: dict, depth: int = 0) -> set[int]:
    """Object numbers of the form XObjects a resources dictionary names, and of those their own resources name.

    Each indirect resources dictionary and each form is looked into once (`memo`; a loop finds nothing more),
    so forms that name each other cost their number, not their number to the power of the depth."""
    key = ("resources", resources.idnum) if isinstance(resources, IndirectObject) else None
    if key in memo:
        return memo[key]
    if key is not None:
        memo[key] = set()
    found: set[int] = set()
    resources = resources.get_object() if isinstance(resources, IndirectObject) else resources
    xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
    xobjects = xobjects.get_object() if isinstance(xobjects, IndirectObject) else xobjects
    if isinstance(xobjects, DictionaryObject) and depth < 8:
        for ref in xobjects.values():
            if not isinstance(ref, IndirectObject):
                continue
            form = ("form", ref.idnum)
            if form not in memo:
                memo[form] = set()
                xobject = ref.get_object()
                if isinstance(xobject, StreamObject) and xobject.get("/Subtype") == "/Form":
                    objects.setdefault(ref.idnum, ref)
                    memo[form] = {ref.idnum} | _forms(xobject.get("/Resources"), memo, objects, depth + 1)
            found |= memo[form]
    if key is not None:
        memo[key] = found
    return found
