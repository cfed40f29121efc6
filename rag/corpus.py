"""The corpus folder as the UI manages it: uploads saved safely, ingested, and documents deleted.

An upload is checked (type allowlist, size limit), given a sanitised name inside the corpus
folder, written atomically, and ingested. A file with the same sanitised name replaces the old
one and keeps its doc_id. When a file fails to ingest, the previous bytes are put back (or the
new file removed), so the corpus folder and the index stay as they were: a failed upload
damages nothing.

Not handled: de-duplicating identical files under two names, or quotas across many uploads.
"""

from __future__ import annotations

import os
import hashlib
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.embedding import Embedder
from rag.errors import RagError
from rag.ingest import IngestReport, Progress, ingest, remove_documents
from rag.loaders import SUPPORTED_EXTENSIONS
from rag.store import Index

DEFAULT_CORPUS_DIR = "corpus"
CORPUS_ENV = "RAG_CORPUS"
# Uploads are reports and articles; 25 MB holds a long PDF and keeps one upload from filling memory.
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
ALLOWED_EXTENSIONS = SUPPORTED_EXTENSIONS  # the loaders' list: .htm .html .markdown .md .pdf .txt
_MAX_NAME_CHARS = 100


class UploadRejected(RagError):
    """An uploaded file refused before it reached the corpus folder (type, size or name)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


def default_corpus_dir() -> Path:
    return Path(os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS_DIR)


def sanitize_filename(name: str) -> str:
    """A safe file name to store an upload under: no folders, no hidden files, an allowed extension.

    Only the last path component is kept (either slash), accents are folded, and anything other
    than letters, digits, dot, dash and underscore becomes a dash.

    >>> sanitize_filename("../../x.pdf")
    'x.pdf'
    >>> sanitize_filename("C:\\\\Users\\\\me\\\\Q3 Report (final).PDF")
    'Q3-Report-final.pdf'
    """
    base = base_name = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = "." + ext.lower() if ext else ""
    if ext not in ALLOWED_EXTENSIONS:
        shown = ext or "(none)"
        raise UploadRejected(name, f"file type '{shown}' is not allowed; upload one of: {', '.join(ALLOWED_EXTENSIONS)}")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")
    # A name with no ASCII left ("报告.md") gets a stable name of its own, so two such uploads never collide.
    stem = stem[: _MAX_NAME_CHARS - len(ext)] or f"upload-{hashlib.sha256(base_name.encode()).hexdigest()[:10]}"
    return stem + ext


def check_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The sanitised name, or `UploadRejected` saying what is wrong."""
    safe = sanitize_filename(name)
    if len(data) > max_bytes:
        raise UploadRejected(name, f"{len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    if not data.strip():
        raise UploadRejected(name, "empty file")
    return safe


@dataclass
class UploadResult:
    saved: dict[str, Path] = field(default_factory=dict)  # uploaded name -> where it now lies
    rejected: list[UploadRejected] = field(default_factory=list)
    report: IngestReport | None = None

    @property
    def errors(self) -> list[str]:
        """One line per file that did not go in: refused uploads and failed ingests alike."""
        lines = [str(e) for e in self.rejected]
        if self.report:
            lines += [f"{Path(e.path).name}: {e.reason}" for e in self.report.failed]
        return lines


def add_uploads(files: list[tuple[str, bytes]], corpus_dir: str | Path, index_dir: str | Path, embedder: Embedder,
                progress: Progress | None = None, max_bytes: int = MAX_UPLOAD_BYTES) -> UploadResult:
    """Save `(name, bytes)` uploads into `corpus_dir` and ingest them into `index_dir`.

    Each file is judged on its own: refused or failing files are reported, the rest go in.
    A file that fails to ingest is rolled back, so the folder matches the index again.
    """
    corpus = Path(corpus_dir)
    corpus.mkdir(parents=True, exist_ok=True)
    result = UploadResult()
    backups: dict[Path, bytes | None] = {}
    for name, data in files:
        try:
            safe = check_upload(name, data, max_bytes)
        except UploadRejected as e:
            result.rejected.append(e)
            continue
        target = (corpus / safe).absolute()
        if target in backups:  # two uploads with one sanitised name: the last one wins
            result.saved = {k: v for k, v in result.saved.items() if v != target}
        else:
            backups[target] = target.read_bytes() if target.is_file() else None
        _write_atomic(target, data)
        result.saved[name] = target
    if not result.saved:
        return result
    try:
        result.report = ingest(sorted(set(result.saved.values())), index_dir, embedder, progress=progress)
    except BaseException:
        for target, old in backups.items():
            _restore(target, old)
        raise
    failed = {Path(e.path).absolute() for e in result.report.failed}
    for target in failed & set(backups):
        _restore(target, backups[target])
    result.saved = {k: v for k, v in result.saved.items() if v not in failed}
    return result


def delete_document(index_dir: str | Path, embedder: Embedder, doc_id: str,
                    corpus_dir: str | Path) -> tuple[IngestReport, Path | None]:
    """Remove `doc_id` from the index, then delete its file if (and only if) it lies inside `corpus_dir`.

    Returns the report and the deleted file, or None when the file was elsewhere (left alone).
    The index goes first: if that fails, the file is still there.
    """
    index = Index.open(index_dir, embedder.name, embedder.dimension)
    source = Path(index.document(doc_id).source_path)
    report = remove_documents(index_dir, embedder, [doc_id])
    if is_inside(source, corpus_dir) and source.is_file() and not source.is_symlink():
        source.unlink()
        return report, source
    return report, None


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """True when `path` resolves to a location under `folder` (symlinks and `..` followed)."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        return False


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _restore(target: Path, old: bytes | None) -> None:
    if old is None:
        target.unlink(missing_ok=True)
    else:
        _write_atomic(target, old)

