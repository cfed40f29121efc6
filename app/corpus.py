"""The corpus folder as the UI manages it: uploads staged, moved in under the index lock, ingested; deletion.

An upload is checked (type allowlist, size limit) and given a sanitised name. Its bytes go first
to a staging folder beside the corpus folder (`.paracite-staging-*`, on the same filesystem, so
that moving in is a rename), never into the corpus folder itself. Then, holding the index write
lock, the batch is moved in and ingested: another writer never sees half a batch, and a busy or
damaged index refuses before any corpus file changes. A file with the same sanitised name
replaces the old one and keeps its doc_id; the old file is kept in staging (a hard link, else a
copy) until the batch is done. On any failure (a move that fails part-way, an ingest that raises)
every replaced file gets its old bytes back and every new file is removed; a file that fails to
ingest on its own is rolled back the same way. So the corpus folder and the index stay as they
were: a failed upload damages nothing.

Not handled: de-duplicating identical files under two names, quotas across many uploads, or a
machine that dies between the moves and the rollback (the old bytes then wait in the staging
folder, as old-<n>-<name>, for a person to move back).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from app import audit
from app.auth import Principal, Role
from rag.embed.embedder import Embedder
from rag.errors import CorpusRestoreFailed, RagError
from rag.index.ingest import IngestReport, Progress, ingest, remove_documents
from rag.index.layout import check_manifest, fsync_path, read_manifest
from rag.index.lock import write_lock
from rag.index.reader import Index
from rag.load import SUPPORTED_EXTENSIONS, slugify

DEFAULT_CORPUS_DIR = "corpus"
CORPUS_ENV = "RAG_CORPUS"
# Uploads are reports and articles; 25 MB holds a long PDF and keeps one upload from filling memory.
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
ALLOWED_EXTENSIONS = SUPPORTED_EXTENSIONS  # the loaders' list: .htm .html .markdown .md .pdf .txt
_MAX_NAME_CHARS = 100
STAGING_PREFIX = ".paracite-staging-"


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
        raise UploadRejected(
            name, f"file type '{shown}' is not allowed; upload one of: {', '.join(ALLOWED_EXTENSIONS)}"
        )
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")
    # A name with no ASCII left ("报告.md") gets a stable name of its own, so two such uploads never collide.
    stem = stem[: _MAX_NAME_CHARS - len(ext)] or f"upload-{hashlib.sha256(base_name.encode()).hexdigest()[:10]}"
    return stem + ext


def check_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The sanitised name, or `UploadRejected` saying what is wrong."""
    safe = sanitize_filename(name)
    if len(data) > max_bytes:
        # MB as Streamlit counts them (server.maxUploadSize is in MiB), so the UI and this message agree.
        raise UploadRejected(name, f"{len(data) / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit")
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


def add_uploads(
    files: list[tuple[str, bytes]],
    corpus_dir: str | Path,
    index_dir: str | Path,
    embedder: Embedder,
    progress: Progress | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    *,
    principal: Principal,
    audit_log: str | Path | None = None,
) -> UploadResult:
    """Stage `(name, bytes)` uploads, move them into `corpus_dir` under the index lock, and ingest them.

    `principal` must be an editor or an admin, else `app.auth.Forbidden` is raised before anything
    is read or written, and the refusal is logged. Each document added or replaced is logged to
    `audit_log` (default: `app.audit.default_path(index_dir)`).

    Each file is judged on its own: refused or failing files are reported, the rest go in.
    A file that fails to ingest is rolled back, so the folder matches the index again; when the
    whole batch fails (a move, or the ingest, raises), every file is rolled back and the error raised.
    """
    log = Path(audit_log) if audit_log else audit.default_path(index_dir)
    audit.require(log, principal, Role.EDITOR, "upload", doc=_names(files))
    corpus = Path(corpus_dir).absolute()
    corpus.mkdir(parents=True, exist_ok=True)
    result = UploadResult()
    batch: dict[Path, bytes] = {}
    for name, data in files:
        try:
            safe = check_upload(name, data, max_bytes)
        except UploadRejected as e:
            result.rejected.append(e)
            continue
        target = corpus / safe
        # Two uploads with one sanitised name: the last one wins.
        result.saved = {k: v for k, v in result.saved.items() if v != target}
        batch[target] = data
        result.saved[name] = target
    if not batch:
        return result
    with _Staging(corpus) as staging:
        staged = {target: staging.write(data) for target, data in batch.items()}
        with write_lock(index_dir):
            # A damaged index or another model's refuses here, before any corpus file changes.
            manifest = read_manifest(index_dir)
            if manifest is not None:
                check_manifest(manifest, embedder.name, embedder.dimension, Path(index_dir))
            try:
                for target, source in staged.items():
                    staging.move_in(source, target)
                # ingest takes the write lock again: it is re-entrant in this thread (rag.index.lock.write_lock).
                result.report = ingest(sorted(staged), index_dir, embedder, progress=progress)
            except BaseException:
                staging.roll_back()
                raise
            failed = {Path(e.path).absolute() for e in result.report.failed} & set(staged)
            staging.roll_back(only=failed)
    result.saved = {k: v for k, v in result.saved.items() if v not in failed}
    files_by_doc = {slugify(target.name): target.name for target in result.saved.values()}
    for action, doc_ids in (("upload", result.report.added), ("replace", result.report.updated)):
        for doc_id in doc_ids:
            audit.record(log, principal, action, doc_id, detail=files_by_doc.get(doc_id))
    return result


def _names(files: list[tuple[str, bytes]], limit: int = 300) -> str:
    """The uploaded names, for the log line of a refusal (never their bytes)."""
    text = ", ".join(name for name, _ in files)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Staging:
    """The staging folder of one upload batch, and the moves into the corpus folder it can undo."""

    def __init__(self, corpus: Path):
        self.corpus = corpus
        self.dir = corpus  # set in __enter__
        self.moved: list[tuple[Path, Path | None]] = []  # (target, its old bytes in staging or None if new)
        self.keep = False  # True when staging still holds old bytes that could not be put back

    def __enter__(self) -> _Staging:
        try:
            self.dir = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.corpus.parent))
        except OSError:  # a read-only parent folder: stage in the temp folder; moves in become copies
            self.dir = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX))
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix="new-", dir=self.dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return Path(name)

    def move_in(self, source: Path, target: Path) -> None:
        backup = None
        if target.exists() or target.is_symlink():
            backup = self.dir / f"old-{len(self.moved)}-{target.name}"
            try:
                os.link(target, backup, follow_symlinks=False)  # the old bytes stay, whatever replaces the name
            except OSError:  # no hard links on this filesystem, or staging is on another one
                shutil.copy2(target, backup, follow_symlinks=False)
        # Logged before the move, so a move that fails half-way is undone as well.
        self.moved.append((target, backup))
        _place(source, target)
        fsync_path(target.parent)

    def roll_back(self, only: set[Path] | None = None) -> None:
        """Put back the old bytes of each replaced file and remove each new one (all, or those in `only`)."""
        failed = []
        for target, backup in reversed(self.moved):
            if only is not None and target not in only:
                continue
            try:
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    _place(backup, target)
            except OSError as e:
                failed.append(f"{target.name} ({e})")
        if self.moved:
            fsync_path(self.corpus)
        if failed:
            self.keep = True
            raise CorpusRestoreFailed(failed, self.dir)


def _place(source: Path, target: Path) -> None:
    """Move `source` onto `target` in one rename; across filesystems, copy beside the target and rename."""
    try:
        os.replace(source, target)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        _write_atomic(target, source.read_bytes())
        source.unlink(missing_ok=True)


def delete_document(
    index_dir: str | Path,
    embedder: Embedder,
    doc_id: str,
    corpus_dir: str | Path,
    *,
    principal: Principal,
    audit_log: str | Path | None = None,
) -> tuple[IngestReport, Path | None]:
    """Remove `doc_id` from the index, then delete its file if (and only if) it lies inside `corpus_dir`.

    Returns the report and the deleted file, or None when the file was elsewhere (left alone).
    The index goes first: if that fails, the file is still there. `principal` must be an editor or
    an admin (else `app.auth.Forbidden`, logged); the deletion is logged to `audit_log`.
    """
    log = Path(audit_log) if audit_log else audit.default_path(index_dir)
    audit.require(log, principal, Role.EDITOR, "delete", doc=doc_id)
    # Under the lock, so an upload of the same name cannot land between the two steps and be deleted.
    with write_lock(index_dir):
        index = Index.open(index_dir, embedder.name, embedder.dimension)
        source = Path(index.document(doc_id).source_path)
        report = remove_documents(index_dir, embedder, [doc_id])
        removed = None
        if is_inside(source, corpus_dir) and source.is_file() and not source.is_symlink():
            source.unlink()
            removed = source
    audit.record(log, principal, "delete", doc_id, detail=removed.name if removed else "index only")
    return report, removed


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
