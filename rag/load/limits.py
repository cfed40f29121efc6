"""The parse budget: how much time, memory, bytes, pages and characters one file may take.

One small frozen record, read from the environment by `Limits.from_env()`, so an operator can
raise a limit for one run without code:

    PARACITE_SECONDS_PER_FILE=120 PARACITE_MAX_PAGES=5000 rag ingest big-filings/

A file over a budget is refused with an `OverBudget` error naming the file, the limit and the
variable; a paragraph over `max_paragraph_chars` is not refused but cut into numbered parts.
Embedding runs outside the parse worker, so it has no time budget of its own: what bounds it is the
text (`max_doc_chars`) and the paragraphs (`max_paragraphs`) a file may produce.
Not handled: a budget for a whole ingest (only per file), disk space, or embedding time as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from rag.errors import BadArgument
from rag.load.paragraphs import MAX_PARAGRAPH_CHARS
from rag.load.pdf import MAX_PAGES
from rag.load.pdf_shared import MAX_REPEATED_MB, REPEATED_ENV

# Each field's environment variable.
ENV = {
    "seconds_per_file": "PARACITE_SECONDS_PER_FILE",
    "memory_mb": "PARACITE_MEMORY_MB",
    "max_file_mb": "PARACITE_MAX_FILE_MB",
    "max_pages": "PARACITE_MAX_PAGES",
    "max_doc_chars": "PARACITE_MAX_DOC_CHARS",
    "max_paragraph_chars": "PARACITE_MAX_PARAGRAPH_CHARS",
    "max_paragraphs": "PARACITE_MAX_PARAGRAPHS",
    "max_repeated_content_mb": REPEATED_ENV,
    "workers": "PARACITE_PARSE_WORKERS",
}


@dataclass(frozen=True)
class Limits:
    """Per-file parse budget. Defaults fit a 2,000-page filing and refuse what no corpus needs.

    >>> Limits().max_paragraph_chars
    2000
    >>> Limits.from_env({"PARACITE_MAX_PAGES": "50"}).max_pages
    50
    """

    # Wall time of one file's parse in its worker. The shipped PDFs take 0.05 s, but real 10-Q filings (60-90 pages
    # of tables) took over 30 s each on this 2-core machine under load, and 30 s refused 3 of 20 (evals/sec10q).
    seconds_per_file: float = 120.0
    # Address space of a parse worker (RLIMIT_AS), including the ~60 MB interpreter and parsers.
    memory_mb: int = 1024
    # Checked before a byte is read, so a huge file costs nothing.
    max_file_mb: float = 200.0
    # A PDF with more pages is refused before any page is read.
    max_pages: int = MAX_PAGES
    # MB of content a PDF's pages draw over again (shared streams), checked before any text is read.
    max_repeated_content_mb: float = MAX_REPEATED_MB
    # Characters of text in one document after parsing: 10 M is some 4,000 dense pages.
    max_doc_chars: int = 10_000_000
    # Longer paragraphs become consecutive numbered parts; the answerer embeds every sentence of each
    # retrieved paragraph, so this bounds the cost of a question.
    max_paragraph_chars: int = MAX_PARAGRAPH_CHARS
    # Paragraphs one document may become (after long ones are split): each is embedded, as one passage or a few
    # (`rag.passages` cuts a paragraph into windows of whole sentences), so with `max_doc_chars` this bounds the
    # embedding one file can cost. A 2,000-page filing has some 25 paragraphs a page.
    max_paragraphs: int = 50_000
    # Parse worker processes: None for os.cpu_count(); 0 parses in this process, without the time and
    # memory budget (for debugging, or where subprocesses cannot start).
    workers: int | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "workers":
                if value is not None and value < 0:
                    raise BadArgument(f"workers must be 0 or more (0 parses in-process). Currently, workers is {value}")
            elif value <= 0:
                raise BadArgument(
                    f"{f.name} must be greater than 0. Currently, {f.name} is {value} "
                    f"(set {ENV[f.name]} to a positive number)"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by any `PARACITE_*` variable that is set."""
        environ = os.environ if environ is None else environ
        values: dict[str, float | int | None] = {}
        for f in fields(cls):
            raw = environ.get(ENV[f.name], "").strip()
            if not raw:
                continue
            kind = float if f.name in {"seconds_per_file", "max_file_mb", "max_repeated_content_mb"} else int
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise BadArgument(
                    f"{ENV[f.name]}={raw!r} is not a number; set it to a {kind.__name__}, "
                    f"e.g. {ENV[f.name]}={getattr(cls(), f.name) or 2}"
                ) from None
        return cls(**values)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    def worker_count(self, jobs: int) -> int:
        wanted = (os.cpu_count() or 1) if self.workers is None else self.workers
        return min(wanted, jobs)
