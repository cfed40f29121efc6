"""Group paragraphs into the passages that are embedded: short neighbours of one section together, each with its context.

A passage is consecutive paragraphs of one section (one heading) up to `max_chars` characters
(`DEFAULT_MAX_CHARS` unless `rag ingest --passages N` says otherwise; 0 embeds each paragraph alone), and its text, as embedded, starts with the document's title and the
section heading, so a table row or a one-line paragraph is found by the company, report and year
it belongs to. A table (one paragraph) longer than a passage is embedded in slices of whole rows, each under
its caption (`_table_slices`), and every slice resolves to the table's paragraph. A passage never crosses a paragraph boundary: every hit names whole paragraphs, and
a hit on a passage scores each paragraph in it (`rag.retrieve.hybrid`). A paragraph longer than
`max_words` becomes overlapping windows of whole sentences, each keeping the paragraph's number.
Not handled: a single sentence longer than `max_words` stays whole (the encoder truncates it at
its 256-token limit); it is bounded all the same, since a loaded paragraph holds at most
`Limits.max_paragraph_chars` characters (2,000 by default).
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.documents import Paragraph, Passage
from rag.errors import BadArgument
from rag.sentences import split_sentences

# all-MiniLM-L6-v2 truncates at 256 word pieces, about 190 English words.
DEFAULT_MAX_WORDS = 180
# A passage of short paragraphs stops before this many characters (about 170 words, inside the encoder's window).
# On 20 real 10-Q filings it doubled page hit@5 against each paragraph alone (evals/answers.md); on the shipped
# corpus, whose paragraphs are long prose, it costs 0.01 hit@1 and evidence cited, within the gold check.
DEFAULT_MAX_CHARS = 1000


def settings(max_words: int = DEFAULT_MAX_WORDS, passage_chars: int = 0) -> dict:
    """How passages were cut, as the manifest records it; documents cut otherwise are re-embedded on ingest.

    >>> settings(180), settings(180, 1000)
    ({'max_words': 180}, {'max_words': 180, 'max_chars': 1000, 'context': 'title, heading'})
    """
    if not passage_chars:
        return {"max_words": max_words}  # as indexes were recorded before passages, so they are not re-embedded
    return {"max_words": max_words, "max_chars": passage_chars, "context": "title, heading"}


def context_title(title: str, source_path: str = "") -> str:
    """The title a passage is read with: the document's, and its file name's when the title names nothing
    (PDF metadata often holds an accession number such as '0000320193-23-000006').

    >>> context_title("0000320193-23-000006", "/data/2023 Q1 AAPL.pdf"), context_title("Trade Barriers", "x/b.md")
    ('2023 Q1 AAPL (0000320193-23-000006)', 'Trade Barriers')
    """
    if len(re.findall(r"[A-Za-z]{2,}", title)) >= 2 or not source_path:
        return title
    stem = Path(source_path).stem
    return f"{stem} ({title})" if title else stem


def context_prefix(title: str, heading: str) -> str:
    r"""What the embedder reads before a passage: the title and the section heading.

    >>> context_prefix("Apple 10-Q, Q1 2023", "Net sales by category")
    'Apple 10-Q, Q1 2023 — Net sales by category\n'
    """
    parts = [t for t in (title.strip(), heading.strip()) if t]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return " — ".join(parts) + "\n" if parts else ""


def make_passages(
    paragraphs: list[Paragraph], max_words: int = DEFAULT_MAX_WORDS, title: str = "", max_chars: int = 0
) -> list[Passage]:
    r"""Passages of the paragraphs of one document, in order.

    >>> from rag.documents import Paragraph
    >>> p = Paragraph("d", 3, "One two three. Four five six. Seven eight.")
    >>> [c.text for c in make_passages([p], max_words=6)]
    ['One two three. Four five six.', 'Four five six. Seven eight.']
    >>> rows = [Paragraph("d", 1, "Nominee: J. Bailey; For: 1,013,605,781", heading="Votes"),
    ...         Paragraph("d", 2, "Nominee: T. Cook; For: 1,020,000,000", heading="Votes")]
    >>> [(c.para_start, c.para_end, c.text) for c in make_passages(rows, title="Apple proxy 2023", max_chars=1000)]
    [(1, 2, 'Apple proxy 2023 — Votes\nNominee: J. Bailey; For: 1,013,605,781\nNominee: T. Cook; For: 1,020,000,000')]
    """
    if max_words < 1:
        raise BadArgument(f"max_words must be greater than 0. Currently, max_words is {max_words}")
    if max_chars < 0:
        raise BadArgument(f"max_chars must be 0 (each paragraph alone) or more. Currently, max_chars is {max_chars}")
    if not max_chars:  # each paragraph embedded alone, as read: the default, best on the shipped corpus
        return [
            Passage(f"{p.doc_id}:{p.para}:{i}", p.doc_id, p.para, p.para, text)
            for p in paragraphs
            for i, text in enumerate(_pieces(p, max_words, max_chars))
        ]
    passages: list[Passage] = []
    group: list[Paragraph] = []

    def flush() -> None:
        if group:
            text = context_prefix(title, group[0].heading) + "\n".join(p.text for p in group)
            passages.append(
                Passage(f"{group[0].doc_id}:{group[0].para}:0", group[0].doc_id, group[0].para, group[-1].para, text)
            )
            group.clear()

    for p in paragraphs:
        windows = _pieces(p, max_words, max_chars)
        if len(windows) > 1:
            flush()
            prefix = context_prefix(title, p.heading)
            passages += [
                Passage(f"{p.doc_id}:{p.para}:{i}", p.doc_id, p.para, p.para, prefix + text)
                for i, text in enumerate(windows)
            ]
            continue
        if group and (p.heading != group[0].heading or sum(len(q.text) + 1 for q in group) + len(p.text) > max_chars):
            flush()
        group.append(p)
    flush()
    return passages


def _pieces(p: Paragraph, max_words: int, max_chars: int) -> list[str]:
    return _table_slices(p, max_words, max_chars) if p.table is not None else _windows(p.text, max_words)


def _table_slices(p: Paragraph, max_words: int, max_chars: int) -> list[str]:
    """A table paragraph's text in slices of whole rows, each under the caption, within `max_words` (and
    `max_chars`, when set); every row line already names its columns, so a slice needs no overlap.

    >>> from rag.documents import Paragraph, Table
    >>> t = Table((("", "2023"),), (("Cars", "5"), ("Vans", "6"), ("Buses", "7")), (1,), "Exports")
    >>> _table_slices(Paragraph("d", 1, "Exports\\nCars — 2023: 5\\nVans — 2023: 6\\nBuses — 2023: 7", table=t), 10, 0)
    ['Exports\\nCars — 2023: 5\\nVans — 2023: 6', 'Exports\\nBuses — 2023: 7']
    """
    lines = p.text.split("\n")
    caption = lines[0] if p.table.caption and lines else ""
    rows = lines[1:] if caption else lines
    limit_chars = max_chars or float("inf")
    slices: list[list[str]] = []
    words = chars = 0
    for row in rows:
        size, length = len(row.split()), len(row) + 1
        if not slices or (slices[-1] and (words + size > max_words or chars + length > limit_chars)):
            slices.append([])
            words, chars = len(caption.split()), len(caption)
        slices[-1].append(row)
        words, chars = words + size, chars + length
    return ["\n".join(([caption] if caption else []) + s) for s in slices] or [p.text]


def _windows(text: str, max_words: int) -> list[str]:
    if len(text.split()) <= max_words:
        return [text]
    sentences = split_sentences(text)
    windows: list[str] = []
    start = 0
    while start < len(sentences):
        end, words = start, 0
        while end < len(sentences) and (end == start or words + len(sentences[end].split()) <= max_words):
            words += len(sentences[end].split())
            end += 1
        windows.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        # Overlap by one sentence so a fact that straddles a window edge is whole in one of them.
        start = end - 1 if end - 1 > start else end
    return windows
