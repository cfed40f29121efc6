"""Citation markers: one grammar, one parser, and resolution against the index.

Grammar: `[<doc_id> para. <N>]`, several paragraphs of one document as `[<doc_id> para. 4, 5]`.
Doc ids are slugs (lowercase letters, digits, hyphens). This module does not judge whether a
paragraph supports a sentence (see `rag.cite.support`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.documents import Citation, Paragraph, SentenceClaim, label

# Paragraph numbers of at most nine digits: int() of a digit run past 4,300 digits raises, and no document has more.
MARKER = re.compile(r"\[\s*([a-z0-9][a-z0-9-]*)\s+paras?\.?\s*(\d{1,9}(?:\s*(?:,|and)\s*\d{1,9})*)\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class Marker:
    doc_id: str
    paras: tuple[int, ...]
    start: int
    end: int


def format_marker(doc_id: str, paras: Iterable[int]) -> str:
    """
    >>> format_marker("caixin-commentary", [5, 4])
    '[caixin-commentary para. 4, 5]'
    """
    return f"[{label(doc_id, list(paras))}]"


def parse_markers(text: str) -> list[Marker]:
    """
    >>> [(m.doc_id, m.paras) for m in parse_markers("Exports grew [caixin-commentary para. 4, 5][b para. 2].")]
    [('caixin-commentary', (4, 5)), ('b', (2,))]
    """
    return [
        Marker(m.group(1).lower(), tuple(int(n) for n in re.split(r"\s*(?:,|and)\s*", m.group(2))), m.start(), m.end())
        for m in MARKER.finditer(text)
    ]


def strip_markers(text: str) -> str:
    """
    >>> strip_markers("Exports grew [a para. 4] fast [b para. 1].")
    'Exports grew fast.'
    """
    out = MARKER.sub("", text)
    out = re.sub(r"\s+([.,;:!?])", r"\1", out)
    return " ".join(out.split())


def render_claims(claims: Iterable[SentenceClaim]) -> str:
    """Each sentence followed by one marker per cited document."""
    parts = []
    for claim in claims:
        by_doc: dict[str, list[int]] = {}
        for c in claim.citations:
            by_doc.setdefault(c.doc_id, []).append(c.para)
        markers = "".join(format_marker(d, ps) for d, ps in by_doc.items())
        parts.append(f"{claim.text} {markers}".strip())
    return " ".join(parts)


def make_citation(paragraph: Paragraph, title: str, quote: str) -> Citation:
    return Citation(
        doc_id=paragraph.doc_id,
        para=paragraph.para,
        title=title,
        quote=quote,
        text=paragraph.text,
        page=paragraph.page,
        source_paras=paragraph.source_paras,
    )
