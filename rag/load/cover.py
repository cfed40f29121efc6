"""Who and what a document is, read from its cover page: company, form, reporting period, kind, date and a title.

A filing's PDF metadata often names nothing ("0000320193-23-000006"), but its cover says it:
"Apple Inc. (Exact name of registrant as specified in its charter)", "FORM 10-Q", "For the quarterly
period ended April 1, 2023". `cover_metadata` reads those from the text of the first pages, in a
general way (the phrases of SEC covers and of most annual and quarterly reports, not a list of
companies), and `rag.load.load_file` stores them in `Document.meta` and, where the PDF's own title
names nothing, builds the title from them. `rag.retrieve.document_match` ranks documents by them.

Not handled: covers that are images, periods written without a month name ("Q2 FY23" is only kept
as written in the running heads), fiscal-year arithmetic (a quarter's fiscal label is not derived
from its end date).
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    m: i
    for i, m in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_DATE = (
    r"((?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{1,2},?\s+\d{4})"
)
_PERIOD = re.compile(
    r"^\W*for\s+the\s+(quarterly\s+period|quarter|fiscal\s+year|year|period|six\s+months|nine\s+months)\s+"
    r"ended:?\s+" + _DATE,
    re.IGNORECASE | re.MULTILINE,
)
_FORM = re.compile(r"\bFORM\s+(10-Q|10-K|20-F|40-F|8-K|6-K|S-1|10-QT|10-KT)\b", re.IGNORECASE)
_EXACT_NAME = re.compile(r"\(?\s*exact\s+name\s+of\s+(?:the\s+)?registrant", re.IGNORECASE)
_LEGAL = r"(?:INC|INCORPORATED|CORP|CORPORATION|COMPANY|CO|LTD|LIMITED|PLC|LLC|LP|N\.V|S\.A|AG|SE|GROUP|HOLDINGS)"
# An all-capitals name ending in a legal form, e.g. "MICROSOFT CORPORATION" in "Commission File Number 001-37845
# MICROSOFT CORPORATION".
_CAPS_NAME = re.compile(r"((?:[A-Z][A-Z0-9&'.-]*,?\s+){1,6}" + _LEGAL + r"\.?)(?![A-Za-z])")
_TICKER = re.compile(r"Trading\s+symbol\(?s?\)?\s*[:;]?\s*([A-Z]{1,5})\b", re.IGNORECASE)
_KINDS = {
    "10-Q": "quarterly report",
    "10-QT": "quarterly report",
    "10-K": "annual report",
    "10-KT": "annual report",
    "20-F": "annual report",
    "40-F": "annual report",
    "8-K": "current report",
    "6-K": "current report",
    "S-1": "registration statement",
}
# The cover is on the first pages; a name or period found later in the text is not the document's own.
COVER_ITEMS = 80


def cover_metadata(items: list[str]) -> dict[str, str]:
    """Metadata from the first text items of a document (headings and paragraphs, in reading order).

    >>> meta = cover_metadata(["FORM 10-Q", "For the quarterly period ended April 1, 2023 or",
    ...                        "Apple Inc.", "(Exact name of Registrant as specified in its charter)",
    ...                        "Title of each class: Common Stock; Trading symbol(s): AAPL"])
    >>> meta["company"], meta["form"], meta["kind"], meta["period"], meta["date"], meta["ticker"]
    ('Apple Inc.', '10-Q', 'quarterly report', 'quarterly period ended April 1, 2023', '2023-04-01', 'AAPL')
    >>> cover_metadata(["Commission File Number 001-37845 MICROSOFT CORPORATION"])["company"]
    'Microsoft Corporation'
    """
    items = [" ".join(t.split()) for t in items[:COVER_ITEMS] if t and t.strip()]
    text = "\n".join(items)
    meta: dict[str, str] = {}
    if m := _PERIOD.search(text):
        meta["period"] = f"{' '.join(m.group(1).lower().split())} ended {m.group(2)}"
        if iso := _iso(m.group(2)):
            meta["date"] = iso
    if m := _FORM.search(text):
        meta["form"] = m.group(1).upper()
        meta["kind"] = _KINDS[meta["form"]]
    elif re.search(r"\bquarterly\s+report\b", text, re.IGNORECASE):
        meta["kind"] = "quarterly report"
    elif re.search(r"\bannual\s+report\b", text, re.IGNORECASE):
        meta["kind"] = "annual report"
    if company := _company(items):
        meta["company"] = company
    if m := _TICKER.search(text):
        meta["ticker"] = m.group(1).upper()
    return meta


def _company(items: list[str]) -> str:
    for i, item in enumerate(items):
        m = _EXACT_NAME.search(item)
        if not m:
            continue
        before = item[: m.start()].strip(" :;,(") or (items[i - 1] if i else "")
        if before and len(before) <= 120:
            return _tidy_name(before)
    for item in items:
        if m := _CAPS_NAME.search(item):
            return _tidy_name(m.group(1))
    return ""


def _tidy_name(name: str) -> str:
    """An all-capitals name in title case; a mixed-case one as printed.

    >>> _tidy_name("AMAZON.COM, INC."), _tidy_name("Apple Inc.")
    ('Amazon.com, Inc.', 'Apple Inc.')
    """
    name = " ".join(name.split()).strip(" ;:")
    if name.isupper():
        name = " ".join(w[:1] + w[1:].lower() for w in name.split())
    return name


def _iso(text: str) -> str:
    """
    >>> _iso("April 1, 2023"), _iso("Smarch 1, 2023")
    ('2023-04-01', '')
    """
    m = re.match(r"([A-Za-z]+)\s+(\d{1,2}),?\s+(\d{4})", text)
    if not m or m.group(1).lower() not in _MONTHS:
        return ""
    try:
        return date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2))).isoformat()
    except ValueError:
        return ""


def cover_title(meta: dict[str, str]) -> str:
    """A title from the cover, when it names the company and the report.

    >>> cover_title({"company": "Apple Inc.", "form": "10-Q", "period": "quarterly period ended April 1, 2023"})
    'Apple Inc. Form 10-Q, quarterly period ended April 1, 2023'
    >>> cover_title({"company": "Apple Inc."})
    ''
    """
    company = meta.get("company", "")
    report = f"Form {meta['form']}" if meta.get("form") else meta.get("kind", "").capitalize()
    if not company or not (report or meta.get("period")):
        return ""
    return ", ".join(p for p in (f"{company} {report}".strip(), meta.get("period", "")) if p)
