"""Load one file into a `Document` and its numbered `Paragraph`s, choosing the loader by extension.

Every failure is an `IngestError` naming the file and the reason, so a caller can report it and
go on with the rest of the corpus. This package does not chunk, embed or store.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rag.documents import Document, Paragraph
from rag.errors import IngestError
from rag.loaders import html_page, pdf, text
from rag.paragraphs import number_paragraphs

LOADERS = {".txt": text.load_txt, ".md": text.load_md, ".markdown": text.load_md,
           ".pdf": pdf.load_pdf, ".html": html_page.load_html, ".htm": html_page.load_html}
SUPPORTED_EXTENSIONS = tuple(sorted(LOADERS))
_FORMATS = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".html": "html", ".htm": "html"}


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
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise IngestError(path, f"cannot be read ({e.strerror or e})") from e


def loader_for(path: Path):
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(
            path, f"unsupported file type '{path.suffix or '(none)'}'; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return loader


def load_file(path: str | Path, doc_id: str | None = None) -> LoadedFile:
    path = Path(path)
    loader = loader_for(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(path, f"cannot be read ({e.strerror or e})") from e
    if not data.strip():
        raise IngestError(path, "empty file")
    doc_id = doc_id or slugify(path.name)
    parsed = loader(path, data)
    paragraphs = number_paragraphs(doc_id, parsed.blocks)
    if not paragraphs:
        raise IngestError(path, "no text paragraphs found")
    meta = dict(parsed.meta)
    document = Document(
        doc_id=doc_id,
        title=meta.pop("title", "") or path.stem,
        kind=meta.pop("kind", "") or "document",
        source_path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        format=_FORMATS[path.suffix.lower()],
        pages=parsed.pages,
        meta=meta,
    )
    return LoadedFile(document, paragraphs, tuple(parsed.warnings))
