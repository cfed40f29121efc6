"""Load one file into a `Document` and its numbered `Paragraph`s, choosing the loader by extension.

Every failure is an `IngestError` naming the file and the reason, so a caller can report it and
go on with the rest of the corpus; a file over a `Limits` budget gets `OverBudget`, which says
which environment variable raises it. `load_file` applies the byte, page, character and paragraph budgets;
time and memory need a worker process (`rag.load.worker.parse_files`).
This package does not chunk, embed or store.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rag.documents import Document, Paragraph
from rag.errors import IngestError, OverBudget
from rag.load import html_page, pdf, text
from rag.load.cover import COVER_ITEMS, cover_metadata, cover_title
from rag.load.limits import ENV, Limits
from rag.load.paragraphs import number_paragraphs

LOADERS = {
    ".txt": text.load_txt,
    ".md": text.load_md,
    ".markdown": text.load_md,
    ".pdf": pdf.load_pdf,
    ".html": html_page.load_html,
    ".htm": html_page.load_html,
}
SUPPORTED_EXTENSIONS = tuple(sorted(LOADERS))
_FORMATS = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".html": "html", ".htm": "html"}
# A title or metadata value longer than this is cut: it is shown on every citation.
MAX_META_CHARS = 300


@dataclass(frozen=True)
class LoadedFile:
    document: Document
    paragraphs: list[Paragraph]
    warnings: tuple[str, ...] = ()


def slugify(name: str) -> str:
    """A readable, stable document id from a file name.

    >>> slugify("Caixin Commentary (2025).md")
    'caixin-commentary-2025'
    """
    stem = Path(name).stem if "." in name else name
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return slug or "document"


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks so that a large file is never held in memory whole."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()
    except OSError as e:
        raise IngestError(path, f"cannot be read ({e.strerror or e})") from e


def loader_for(path: Path):
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(
            path, f"unsupported file type '{path.suffix or '(none)'}'; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return loader


def check_size(path: Path, limits: Limits) -> None:
    """Refuse a file over `limits.max_file_mb` before reading it."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise IngestError(path, f"cannot be read ({e.strerror or e})") from e
    if size > limits.max_file_bytes:
        raise OverBudget(
            path,
            f"file is {size / 2**20:,.1f} MB, over the limit of {limits.max_file_mb:g} MB; "
            f"raise {ENV['max_file_mb']} to ingest it",
            "max_file_mb",
            ENV["max_file_mb"],
        )


def load_file(path: str | Path, doc_id: str | None = None, limits: Limits | None = None) -> LoadedFile:
    """Parse one file into its document and numbered paragraphs, within `limits` (default: `Limits()`)."""
    path = Path(path)
    limits = limits or Limits()
    loader = loader_for(path)
    check_size(path, limits)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(path, f"cannot be read ({e.strerror or e})") from e
    if not data.strip():
        raise IngestError(path, "empty file")
    doc_id = doc_id or slugify(path.name)
    fmt = _FORMATS[path.suffix.lower()]
    if fmt == "pdf":
        parsed = loader(path, data, max_pages=limits.max_pages, max_repeated_mb=limits.max_repeated_content_mb)
    else:
        parsed = loader(path, data)
    chars = sum(len(b.text) for b in parsed.blocks)
    if chars > limits.max_doc_chars:
        raise OverBudget(
            path,
            f"document has {chars:,} characters of text, over the limit of "
            f"{limits.max_doc_chars:,}; raise {ENV['max_doc_chars']} to ingest it",
            "max_doc_chars",
            ENV["max_doc_chars"],
        )
    warnings = list(parsed.warnings)
    notes: list[str] = []
    paragraphs = number_paragraphs(doc_id, parsed.blocks, max_chars=limits.max_paragraph_chars, warnings=notes)
    warnings.extend(f"{path}: {note}" for note in notes)
    if not paragraphs:
        raise IngestError(path, "no text paragraphs found")
    if len(paragraphs) > limits.max_paragraphs:
        raise OverBudget(
            path,
            f"document has {len(paragraphs):,} paragraphs, over the limit of "
            f"{limits.max_paragraphs:,}; raise {ENV['max_paragraphs']} to ingest it",
            "max_paragraphs",
            ENV["max_paragraphs"],
        )
    meta = {k: _cut(v) if isinstance(v, str) else v for k, v in parsed.meta.items()}
    cover = cover_metadata([b.text for b in parsed.blocks[:COVER_ITEMS]])
    title = meta.pop("title", "")
    if cover_title(cover):
        if title:
            meta["file_title"] = title
        title = cover_title(cover)
    kind = meta.pop("kind", "") or cover.pop("kind", "")
    meta.update({k: v for k, v in cover.items() if k not in meta})
    document = Document(
        doc_id=doc_id,
        title=title or path.stem,
        kind=kind or "document",
        source_path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        pages=parsed.pages,
        meta=meta,
    )
    return LoadedFile(document, paragraphs, tuple(warnings))


def _cut(value: str) -> str:
    """
    >>> _cut("short")
    'short'
    """
    if len(value) <= MAX_META_CHARS:
        return value
    head = value[:MAX_META_CHARS]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"
