"""The records passed between stages: frozen dataclasses, changed only through `dataclasses.replace`.

load -> Document + [Paragraph] (a table is one Paragraph with a Table) -> [Passage] -> index -> [Hit] -> Answer (of SentenceClaim, each with Citation).
How an Answer is shown or saved (JSON, text, Markdown, the UI's view) is `rag.present`'s job.
This module holds data only: no I/O, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# The headings of a source list (`Paragraph.is_reference`).
_REFERENCE_HEADINGS = re.compile(
    r"^(sources?|references?|bibliography|works cited|further reading|notes and sources)\b", re.IGNORECASE
)


def label(doc_id: str, para: int | tuple[int, ...] | list[int]) -> str:
    """The one way a citation is named, for people and for markers (`rag.cite.markers.format_marker` brackets it).

    >>> label("caixin-commentary", 4), label("a", [5, 4])
    ('caixin-commentary para. 4', 'a para. 4, 5')
    """
    paras = [para] if isinstance(para, int) else sorted(set(para))
    return f"{doc_id} para. {', '.join(str(p) for p in paras)}"


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
class Table:
    """A table's structure, carried by the one paragraph that holds it (`Paragraph.table`).

    Column 0 holds the row labels. `header` rows and body `rows` have one cell per column; a header
    label that spans several columns is repeated in each ("Three Months Ended" over two dates).
    The paragraph's text is `rag.load.table_text.table_text` of it: one line per row, each value with its
    row and column labels, which is what is embedded, matched and quoted.
    """

    header: tuple[tuple[str, ...], ...]  # header rows, top first
    rows: tuple[tuple[str, ...], ...]  # body rows, the row label first; a row of groups ("Net sales:") has no values
    pages: tuple[int, ...] = ()  # every page it is printed on (a table may cross pages)
    caption: str = ""  # the heading or title right above it

    @property
    def columns(self) -> int:
        return max((len(r) for r in self.header + self.rows), default=0)

    def to_json(self) -> dict:
        return {
            "header": [list(r) for r in self.header],
            "rows": [list(r) for r in self.rows],
            "pages": list(self.pages),
            "caption": self.caption,
        }

    @classmethod
    def from_json(cls, data: dict) -> Table:
        return cls(
            tuple(tuple(r) for r in data.get("header", ())),
            tuple(tuple(r) for r in data.get("rows", ())),
            tuple(data.get("pages", ())),
            data.get("caption", ""),
        )


@dataclass(frozen=True)
class Paragraph:
    doc_id: str
    para: int  # 1-based, in reading order
    text: str  # clean, as embedded and matched
    page: int | None = None  # first page, PDFs only
    heading: str = ""  # nearest section title
    source_paras: tuple[int, ...] = ()  # the original article's paragraphs the commentary points to
    table: Table | None = None  # the structure, when this paragraph is a table

    @property
    def is_reference(self) -> bool:
        """A paragraph of a document's source list (under a "Sources" or "References" heading): retrieval ranks
        it below the text it supports.

        >>> Paragraph("d", 30, "IEA, Global EV Outlook 2024.", heading="Sources").is_reference
        True
        """
        return bool(_REFERENCE_HEADINGS.match(self.heading.strip()))

    @property
    def label(self) -> str:
        return label(self.doc_id, self.para)

    @classmethod
    def from_json(cls, data: dict) -> Paragraph:
        """The paragraph `dataclasses.asdict` gave, read back from JSON (tuples came back as lists)."""
        table = data.get("table")
        return cls(
            **{
                **data,
                "source_paras": tuple(data.get("source_paras", ())),
                "table": Table.from_json(table) if table else None,
            }
        )


@dataclass(frozen=True)
class Passage:
    """The retrieval unit: whole consecutive paragraphs of one section (`rag.passages`), embedded together.

    A passage never cuts across a paragraph, so a hit on it resolves to paragraphs a citation can name.
    """

    passage_id: str  # f"{doc_id}:{para_start}:{window}"
    doc_id: str
    para_start: int
    para_end: int  # the last paragraph it holds (para_start when it holds one)
    text: str  # as embedded: with the document title and heading in front


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

    @property
    def label(self) -> str:
        return label(self.doc_id, self.para)


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
class DocRef:
    """A document as it was when an answer was given: enough to show and check a citation later."""

    doc_id: str
    title: str
    sha256: str = ""


@dataclass(frozen=True)
class Lead:
    """The verbatim span that answers the question (a figure, date, name or place), with its citation.

    `span` is a substring of `citation.quote`; `context` is a short qualifier shown beside it (e.g. "CAAM, 2023").
    """

    span: str
    citation: Citation
    context: str = ""


@dataclass(frozen=True)
class DisagreementValue:
    value: str  # verbatim from the cited sentence
    citation: Citation


@dataclass(frozen=True)
class Disagreement:
    """Cited sentences from different documents giving different values for one measure and period."""

    measure: str
    period: str
    values: tuple[DisagreementValue, ...]


class FallbackReason(str, Enum):
    UNREACHABLE = "unreachable"  # the LLM backend could not be reached or refused the request
    UNSUPPORTED = "unsupported"  # no sentence of the LLM answer was supported by its citations


@dataclass(frozen=True)
class Fallback:
    """Why an LLM answer was replaced by the extractive one."""

    reason: FallbackReason
    answerer: str  # the LLM answerer that fell back
    detail: str = ""


@dataclass(frozen=True)
class Answer:
    question: str
    claims: tuple[SentenceClaim, ...]
    abstained: bool
    retrieved: tuple[Hit, ...]
    standalone_question: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    answerer: str = "extractive"
    notes: tuple[str, ...] = ()
    signals: dict[str, float] = field(
        default_factory=dict, hash=False, compare=False
    )  # evidence strength, for abstention
    lead: Lead | None = None
    disagreements: tuple[Disagreement, ...] = ()
    fallback: Fallback | None = None
    documents: dict[str, DocRef] = field(
        default_factory=dict, hash=False, compare=False
    )  # retrieved docs, at answer time
    trace: tuple[Hit, ...] = ()  # retrieval deeper than `retrieved`, only when asked for (evals)

    @property
    def citations(self) -> list[Citation]:
        """Each cited paragraph once, in order of first citation."""
        seen: dict[tuple[str, int], Citation] = {}
        for claim in self.claims:
            for c in claim.citations:
                seen.setdefault((c.doc_id, c.para), c)
        return list(seen.values())
