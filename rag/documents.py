"""The records passed between stages: frozen dataclasses, changed only through `dataclasses.replace`.

load -> Document + [Paragraph] -> [Chunk] -> index -> [Hit] -> Answer (of SentenceClaim, each with Citation).
This module holds data only: no I/O, no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class Document:
    doc_id: str  # slug of the file name, stable across re-ingests
    title: str
    kind: str  # commentary, briefing, report, ...
    source_path: str
    sha256: str
    format: str  # txt, md, pdf, html
    pages: int | None = None  # PDFs only
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Paragraph:
    doc_id: str
    para: int  # 1-based, in reading order
    text: str  # clean, as embedded and matched
    page: int | None = None  # first page, PDFs only
    heading: str = ""  # nearest section title
    source_paras: tuple[int, ...] = ()  # the original article's paragraphs the commentary points to

    @property
    def label(self) -> str:
        return f"{self.doc_id} para. {self.para}"


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # f"{doc_id}:{para_start}:{window}"
    doc_id: str
    para_start: int
    para_end: int  # equal to para_start: a chunk never cuts across a citation
    text: str


@dataclass(frozen=True)
class Hit:
    paragraph: Paragraph
    score: float
    rank: int  # 1-based
    scores_by_retriever: dict[str, float] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Citation:
    doc_id: str
    para: int
    title: str
    quote: str  # the supporting sentence
    text: str  # the whole paragraph
    page: int | None = None
    source_paras: tuple[int, ...] = ()


class Support(str, Enum):
    SUPPORTED = "supported"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class SentenceClaim:
    text: str  # the sentence, without its marker
    citations: tuple[Citation, ...] = ()
    support: Support = Support.UNCHECKED
    score: float | None = None


@dataclass(frozen=True)
class Answer:
    question: str
    claims: tuple[SentenceClaim, ...]
    abstained: bool
    retrieved: tuple[Hit, ...]
    standalone_question: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    answerer: str = "extractive"
    notes: tuple[str, ...] = ()  # e.g. "fell back to extractive: ..."
    signals: dict[str, float] = field(default_factory=dict, hash=False, compare=False)  # evidence strength, for abstention

    @property
    def citations(self) -> list[Citation]:
        """Each cited paragraph once, in order of first citation."""
        seen: dict[tuple[str, int], Citation] = {}
        for claim in self.claims:
            for c in claim.citations:
                seen.setdefault((c.doc_id, c.para), c)
        return list(seen.values())

    @property
    def text(self) -> str:
        from rag.citations import render_claims  # the marker grammar has one owner

        return render_claims(self.claims)
