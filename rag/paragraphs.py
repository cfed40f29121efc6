"""Turn a loader's blocks into clean, numbered paragraphs.

A loader yields `Block`s (paragraph text, heading or list item, with a page for PDFs). This
module cleans their text, pulls the commentary's `[para. N]` markers out into `source_paras`,
carries the nearest heading onto each paragraph and numbers them 1, 2, ... in reading order.
It also holds `split_plain_text`, the block splitter shared by the .txt and .md loaders.

It does not know file formats, and it does not chunk.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.documents import Paragraph

_SOURCE_MARKER = re.compile(r"\s*\[paras?\.?\s*(\d+(?:\s*[,–-]\s*\d+)*)\]", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+")
# Hard-wrapped prose rarely has a line this long; text saved one paragraph per line does.
_WRAPPED_LINE_MAX = 120
_TERMINAL = tuple('.!?"”’')


@dataclass(frozen=True)
class Block:
    text: str
    kind: str = "para"  # para, heading, item
    page: int | None = None


_REFERENCE_HEADINGS = re.compile(r"^(sources?|references?|bibliography|works cited|further reading|notes and sources)\b",
                                 re.IGNORECASE)


def is_reference(paragraph: Paragraph) -> bool:
    """A paragraph of a document's source list (under a "Sources" or "References" heading).

    >>> is_reference(Paragraph("d", 30, "IEA, Global EV Outlook 2024.", heading="Sources"))
    True
    """
    return bool(_REFERENCE_HEADINGS.match(paragraph.heading.strip()))


def clean_text(text: str) -> str:
    """Normalise Unicode and whitespace, drop control characters; keep typographic quotes.

    >>> clean_text("Exports\\u00a0rose  to\\t6.4 million\\u200b.")
    'Exports rose to 6.4 million.'
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())


def extract_source_paras(text: str) -> tuple[str, tuple[int, ...]]:
    """Remove `[para. N]` markers from the text and return them as numbers.

    >>> extract_source_paras("NEV exports neared 1.3 million [para. 4][para. 5].")
    ('NEV exports neared 1.3 million.', (4, 5))
    """
    refs: list[int] = []
    for m in _SOURCE_MARKER.finditer(text):
        for part in re.split(r"\s*,\s*", m.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part)]
            refs.extend(range(bounds[0], bounds[-1] + 1))
    stripped = _SOURCE_MARKER.sub("", text)
    stripped = re.sub(r"\s+([.,;:!?])", r"\1", stripped)
    return stripped.strip(), tuple(dict.fromkeys(refs))


def number_paragraphs(doc_id: str, blocks: list[Block]) -> list[Paragraph]:
    """Clean blocks and number the paragraphs; headings become context, not paragraphs."""
    paragraphs: list[Paragraph] = []
    heading = ""
    for block in blocks:
        text = clean_text(block.text)
        if not text:
            continue
        if block.kind == "heading":
            heading = text
            continue
        text, refs = extract_source_paras(text)
        if not text:
            continue
        paragraphs.append(
            Paragraph(doc_id=doc_id, para=len(paragraphs) + 1, text=text, page=block.page,
                      heading=heading, source_paras=refs)
        )
    return paragraphs


def split_plain_text(text: str, markdown: bool = False) -> list[Block]:
    """Split plain text into blocks.

    Blank lines separate blocks. Inside a block, lines are joined when the text is hard-wrapped
    (every line short), and each line is its own paragraph when it was saved one paragraph per
    line. List items are their own paragraphs. With `markdown`, `#` lines are headings and
    pipe tables become one paragraph per row ("Header: cell; ..."). In plain text a short line
    standing alone, without terminal punctuation, is taken as a heading.
    """
    blocks: list[Block] = []
    for raw in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [ln.rstrip() for ln in raw.split("\n") if ln.strip()]
        if not lines:
            continue
        if markdown and all(ln.lstrip().startswith("|") for ln in lines):
            blocks.extend(_markdown_table(lines))
            continue
        blocks.extend(_split_block(lines, markdown))
    return blocks


def _split_block(lines: list[str], markdown: bool) -> list[Block]:
    out: list[Block] = []
    # Hard-wrapped prose has short lines, most ending mid-sentence; text saved one paragraph per
    # line has long lines, or lines that each end a sentence.
    wrapped = max(len(ln) for ln in lines) <= _WRAPPED_LINE_MAX and not (
        len(lines) > 1 and all(ln.rstrip().endswith(_TERMINAL) for ln in lines))
    current: list[str] = []
    current_kind = "para"

    def flush() -> None:
        if current:
            out.append(Block(" ".join(s.strip() for s in current), current_kind))
            current.clear()

    for line in lines:
        stripped = line.strip()
        if markdown and re.match(r"^#{1,6}\s", stripped):
            flush()
            out.append(Block(stripped.lstrip("#").strip(), "heading"))
            current_kind = "para"
            continue
        if _LIST_ITEM.match(line):
            flush()
            current_kind = "item"
            current.append(_LIST_ITEM.sub("", line, count=1))
            if not wrapped:
                flush()
            continue
        continuation = wrapped and current and (current_kind == "para" or line[:1].isspace())
        if not continuation:
            flush()
            current_kind = "para"
        current.append(line)
        if not wrapped:
            flush()
    flush()
    if not markdown and len(lines) == 1 and out and out[0].kind == "para" and _looks_like_heading(lines[0]):
        out[0] = Block(out[0].text, "heading")
    return out


def _looks_like_heading(line: str) -> bool:
    s = line.strip()
    return 0 < len(s) <= 80 and len(s.split()) <= 12 and s[-1] not in ".!?:;,\"”’)" and s[0].isupper()


def _markdown_table(lines: list[str]) -> list[Block]:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if len(rows) < 2:
        return [Block(" ".join(rows[0]))] if rows else []
    header, body = rows[0], rows[1:]
    return [Block(table_row_text(header, row)) for row in body]


def table_row_text(header: list[str], row: list[str]) -> str:
    """One table row as a citable sentence.

    >>> table_row_text(["Year", "Exports"], ["2023", "4.91 million"])
    'Year: 2023; Exports: 4.91 million.'
    """
    cells = [f"{h}: {c}" if h else c for h, c in zip(header, row) if c]
    return "; ".join(cells) + "."


def strip_markdown_inline(text: str) -> str:
    """Drop inline Markdown: links keep their text, emphasis and code marks go.

    >>> strip_markdown_inline("See **the [IEA](https://iea.org) report** and `code`.")
    'See the IEA report and code.'
    """
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])", r"\2", text)
    return re.sub(r"`([^`]*)`", r"\1", text)
