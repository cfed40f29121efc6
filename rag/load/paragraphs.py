"""Turn a loader's blocks into clean, numbered paragraphs.

A loader yields `Block`s (paragraph text, heading or list item, with a page for PDFs). This
module cleans their text, pulls the commentary's `[para. N]` markers out into `source_paras`,
carries the nearest heading onto each paragraph and numbers them 1, 2, ... in reading order.
It also holds `split_plain_text`, the block splitter shared by the .txt and .md loaders.

Every function here runs in time linear in its input (the ingest budget is a backstop, not the
plan): no regex that can rescan the rest of the text from each of many starts, no string
rebuilt once per line. Paragraphs are bounded: one longer than `max_chars` is cut into
consecutive numbered parts at sentence (else whitespace) boundaries, and a marker range or
marker list expands to at most `MAX_SOURCE_REFS` numbers.

It does not know file formats, and it does not chunk. Not handled: emphasis nested inside
emphasis of the same mark, links whose text holds brackets.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass

from rag.documents import Paragraph, Table
from rag.errors import BadArgument
from rag.load.table_text import row_lines, table_text
from rag.sentences import split_sentences

# `(?<!\s)` lets a match start only where a run of whitespace starts: without it, a run of n spaces
# costs n scans of up to n characters. Numbers are at most 9 digits: int() of a longer one is slow
# (or refused, past 4300 digits), and no article has a billion paragraphs.
_SOURCE_MARKER = re.compile(r"(?<!\s)\s*\[paras?\.?\s*(\d{1,9}(?:\s*[,–-]\s*\d{1,9})*)\]", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"(?<!\s)\s+([.,;:!?])")
# A range wider than this ("[paras. 1-100000000]") is a typo or an attack: only its two ends are kept.
MAX_SOURCE_RANGE = 200
# A paragraph cites at most this many source paragraphs; markers past it are stripped and not read.
MAX_SOURCE_REFS = 1000
# The default cap on a paragraph's characters (see `rag.load.limits.Limits.max_paragraph_chars`):
# the extractive answerer embeds every sentence of each retrieved paragraph, so an unbounded
# paragraph makes one question cost minutes. At 5,000, five retrieved parts of a document of
# 43-character sentences held 446 sentences, over a second of embedding; 2,000 keeps a question
# under ~250. The shipped corpus's longest paragraph has 767, a long report paragraph ~1,500.
MAX_PARAGRAPH_CHARS = 2000
# A "heading" longer than this is text that lost its line breaks, not a title: it is kept as a paragraph.
MAX_HEADING_CHARS = 500
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+")
# Hard-wrapped prose rarely has a line this long; text saved one paragraph per line does.
_WRAPPED_LINE_MAX = 120
_TERMINAL = tuple('.!?"”’')


# A table is kept whole up to this many times the paragraph limit (its rows are its sentences); a longer one
# becomes consecutive tables of whole rows, each with the header.
TABLE_CHARS_FACTOR = 4


@dataclass(frozen=True)
class Block:
    text: str
    kind: str = "para"  # para, heading, item, table
    page: int | None = None
    table: Table | None = None  # kind "table": the structure; its text is made from it


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

    A range wider than `MAX_SOURCE_RANGE` keeps only its ends, and at most `MAX_SOURCE_REFS`
    numbers are returned, so the work is linear in the text.

    >>> extract_source_paras("NEV exports neared 1.3 million [para. 4][para. 5].")
    ('NEV exports neared 1.3 million.', (4, 5))
    >>> extract_source_paras("Typo [paras. 1-100000000].")
    ('Typo.', (1, 100000000))
    """
    refs: dict[int, None] = {}
    for m in _SOURCE_MARKER.finditer(text):
        if len(refs) >= MAX_SOURCE_REFS:
            break
        for part in re.split(r"\s*,\s*", m.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part)]
            first, last = bounds[0], bounds[-1]
            numbers = range(first, last + 1) if last - first <= MAX_SOURCE_RANGE else (first, last)
            for n in numbers:
                if len(refs) >= MAX_SOURCE_REFS:
                    break
                refs[n] = None
    stripped = _SOURCE_MARKER.sub("", text)
    stripped = _SPACE_BEFORE_PUNCT.sub(r"\1", stripped)
    return stripped.strip(), tuple(refs)


def number_paragraphs(
    doc_id: str, blocks: list[Block], max_chars: int = MAX_PARAGRAPH_CHARS, warnings: list[str] | None = None
) -> list[Paragraph]:
    """Clean blocks and number the paragraphs; headings become context, not paragraphs.

    A paragraph longer than `max_chars` becomes consecutive paragraphs (its parts, see
    `split_long_text`), each numbered and each carrying the markers found in its own text; a
    note goes to `warnings`.
    """
    paragraphs: list[Paragraph] = []
    heading = ""
    for block in blocks:
        if block.table is not None:
            for part in _table_parts(block.table, TABLE_CHARS_FACTOR * max_chars):
                paragraphs.append(
                    Paragraph(
                        doc_id=doc_id,
                        para=len(paragraphs) + 1,
                        text=table_text(part),
                        page=part.pages[0] if part.pages else block.page,
                        heading=heading,
                        table=part,
                    )
                )
            continue
        text = clean_text(block.text)
        if not text:
            continue
        if block.kind == "heading" and len(text) <= MAX_HEADING_CHARS:
            heading = text
            continue
        stripped, refs = extract_source_paras(text)
        if not stripped:
            continue
        if len(stripped) <= max_chars:
            pieces = [(stripped, refs)]
        else:
            pieces = [extract_source_paras(part) for part in split_long_text(text, max_chars)]
            pieces = [(t, r) for t, r in pieces if t]
            if warnings is not None:
                warnings.append(
                    f"paragraph {len(paragraphs) + 1} has {len(stripped):,} characters, over the limit "
                    f"of {max_chars:,}: split into {len(pieces)} numbered parts "
                    f"(raise PARACITE_MAX_PARAGRAPH_CHARS to keep it whole)"
                )
        for piece, piece_refs in pieces:
            paragraphs.append(
                Paragraph(
                    doc_id=doc_id,
                    para=len(paragraphs) + 1,
                    text=piece,
                    page=block.page,
                    heading=heading,
                    source_paras=piece_refs,
                )
            )
    return paragraphs


def _table_parts(table: Table, max_chars: int) -> list[Table]:
    """The table, or consecutive tables of its whole rows with its header and caption, each of about `max_chars`
    of text at most (a single row longer than that stays one part)."""
    lines = row_lines(table)
    if len(table.caption) + sum(len(line) + 1 for _, line in lines) <= max_chars:
        return [table]
    cuts: list[int] = [0]
    size = len(table.caption)
    for i, line in lines:
        if size + len(line) + 1 > max_chars and i > cuts[-1]:
            cuts.append(i)
            size = len(table.caption)
        size += len(line) + 1
    cuts.append(len(table.rows))
    return [Table(table.header, table.rows[a:b], table.pages, table.caption) for a, b in zip(cuts, cuts[1:]) if b > a]


def split_long_text(text: str, max_chars: int) -> list[str]:
    """Cut clean text into parts of at most `max_chars`, at sentence ends where it can.

    Sentences are packed greedily; a sentence longer than `max_chars` is cut at spaces (never
    inside a `[...]` marker when a space before it will do), and a run without spaces is cut
    hard. Joined with spaces, the parts give the text back (but for hard cuts).

    >>> split_long_text("One two. Three four five. Six.", 12)
    ['One two.', 'Three four', 'five. Six.']
    """
    if max_chars < 1:
        raise BadArgument(f"max_chars must be greater than 0. Currently, max_chars is {max_chars}")
    if len(text) <= max_chars:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in split_sentences(text):
        for piece in _cut_at_spaces(sentence, max_chars) if len(sentence) > max_chars else (sentence,):
            if current and size + 1 + len(piece) > max_chars:
                parts.append(" ".join(current))
                current, size = [], 0
            size += len(piece) + (1 if current else 0)
            current.append(piece)
    if current:
        parts.append(" ".join(current))
    return parts


# How far back from a cut to look for an unclosed "[" of a marker; markers are short.
_MARKER_LOOKBACK = 64


def _cut_at_spaces(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    start = 0
    while len(text) - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut == -1:  # no space in reach: cut hard rather than keep an unbounded piece
            pieces.append(text[start : start + max_chars])
            start += max_chars
            continue
        bracket = text.rfind("[", max(start, cut - _MARKER_LOOKBACK), cut)
        if bracket != -1 and text.find("]", bracket, cut) == -1:
            earlier = text.rfind(" ", start + 1, bracket)
            if earlier != -1:
                cut = earlier
        pieces.append(text[start:cut])
        start = cut + 1
    pieces.append(text[start:])
    return pieces


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
        len(lines) > 1 and all(ln.rstrip().endswith(_TERMINAL) for ln in lines)
    )
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
    return 0 < len(s) <= 80 and len(s.split()) <= 12 and s[-1] not in '.!?:;,"”’)' and s[0].isupper()


def _markdown_table(lines: list[str]) -> list[Block]:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if len(rows) < 2:
        return [Block(" ".join(rows[0]))] if rows else []
    width = max(len(r) for r in rows)
    header, body = (tuple(r) + ("",) * (width - len(r)) for r in rows[:1]), rows[1:]
    table = Table(tuple(header), tuple(tuple(r) + ("",) * (width - len(r)) for r in body))
    return [Block(table_text(table), "table", None, table)]  # one table, one paragraph, as PDF tables are read


def table_row_text(header: list[str], row: list[str]) -> str:
    """One table row as a citable sentence.

    >>> table_row_text(["Year", "Exports"], ["2023", "4.91 million"])
    'Year: 2023; Exports: 4.91 million.'
    """
    cells = [f"{h}: {c}" if h else c for h, c in zip(header, row) if c]
    return "; ".join(cells) + "."


def strip_markdown_inline(text: str) -> str:
    """Drop inline Markdown: links keep their text, emphasis and code marks go.

    Images and links are read by `_strip_links` and single-mark emphasis by `_strip_emphasis`:
    each does what a regex did before, in one pass, where the regex rescanned the rest of the
    text from every unclosed `[` or `_` (quadratic time on `"_a " * n`).

    >>> strip_markdown_inline("See **the [IEA](https://iea.org) report** and `code`.")
    'See the IEA report and code.'
    """
    text = _strip_links(text, image=True)
    text = _strip_links(text, image=False)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = _strip_emphasis(text)
    return re.sub(r"`([^`]*)`", r"\1", text)


class _Next:
    """The first index at or after a position holding `char`, for positions that only grow.

    Caching the last answer keeps a sequence of queries linear in the text in total.
    """

    def __init__(self, text: str, char: str):
        self.text, self.char = text, char
        self.asked, self.found = -1, -1

    def at(self, pos: int) -> int:
        if not (self.asked <= pos and (self.found >= pos or self.found == -1 and self.asked >= 0)):
            self.asked, self.found = pos, self.text.find(self.char, pos)
        return self.found


def _strip_links(text: str, image: bool) -> str:
    """Replace `[label](target)` (or `![alt](target)`) by the label, as these regexes did:
    `\\[([^\\]]+)\\]\\([^)]*\\)` and `!\\[([^\\]]*)\\]\\([^)]*\\)`.

    >>> _strip_links("a [b](c) [d] [e](f", image=False)
    'a b [d] [e](f'
    """
    opener = "![" if image else "["
    closing, paren = _Next(text, "]"), _Next(text, ")")
    out: list[str] = []
    done = pos = 0
    while (i := text.find(opener, pos)) != -1:
        label_start = i + len(opener)
        k = closing.at(label_start)
        if k == -1:
            break  # no "]" left: no later opener can match either
        if (k > label_start or image) and text.startswith("(", k + 1):
            m = paren.at(k + 2)
            if m == -1:
                break  # no ")" left
            out.append(text[done:i])
            out.append(text[label_start:k])
            done = pos = m + 1
            continue
        pos = i + 1
    out.append(text[done:])
    return "".join(out)


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _strip_emphasis(text: str) -> str:
    """Drop single `*` or `_` emphasis marks, exactly as the regex
    `(?<![\\w*])([*_])(?!\\s)(.+?)(?<!\\s)\\1(?![\\w*])` did, in one pass.

    The closing mark of an opening at `i` is the first valid closer at or after `i + 2`
    (`.+?` is lazy) with no newline in between; valid closers are found once, up front.

    >>> _strip_emphasis("an *important* _point_ in snake_case_name and 2 * 3 * 4")
    'an important point in snake_case_name and 2 * 3 * 4'
    """
    n = len(text)
    closers: dict[str, list[int]] = {"*": [], "_": []}
    for j, ch in enumerate(text):
        if (
            ch in closers
            and j >= 1
            and not text[j - 1].isspace()
            and (j + 1 == n or not (_word(text[j + 1]) or text[j + 1] == "*"))
        ):
            closers[ch].append(j)
    newline = _Next(text, "\n")
    out: list[str] = []
    done = i = 0
    while i < n:
        ch = text[i]
        if (
            ch in closers
            and i + 1 < n
            and not text[i + 1].isspace()
            and (i == 0 or not (_word(text[i - 1]) or text[i - 1] == "*"))
        ):
            found = closers[ch]
            at = bisect_left(found, i + 2)
            if at < len(found):
                j = found[at]
                nl = newline.at(i + 1)
                if nl == -1 or nl >= j:
                    out.append(text[done:i])
                    out.append(text[i + 1 : j])
                    done = i = j + 1
                    continue
        i += 1
    out.append(text[done:])
    return "".join(out)
