"""Incremental ingestion: files -> paragraphs -> chunks -> vectors -> a new index generation.

A file whose bytes (sha256) and chunking are unchanged keeps its paragraphs and vectors; a
changed file is re-parsed and re-embedded; a file that disappeared from a folder being
ingested is dropped. A file that fails keeps its previous version in the index (nothing is
lost) and is reported. When nothing changed, no generation is written.

Files are parsed in parallel worker processes (`rag.load.worker`), each within the budget
of `rag.load.limits.Limits` (by default read from `PARACITE_*` variables): a file over its
time, memory, byte, page or character budget fails alone with an `OverBudget` error. Results
are taken in file order, so doc ids, paragraphs and their order are those of a serial parse.
With `rag ingest --ray` the parsing and the embedding run on a Ray cluster instead (`app.distributed`,
through the `parse` hook and the embedder passed in); everything else runs here as it does locally.

Not handled: watching folders for changes, or de-duplicating identical files under two names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.passages import DEFAULT_MAX_WORDS, chunk_paragraphs, context_title
from rag.passages import settings as chunking_settings
from rag.documents import Chunk, Document, Paragraph
from rag.embed.embedder import Embedder
from rag.errors import IngestError, IndexNotFound
from rag.load import LoadedFile, check_size, file_sha256, loader_for, slugify
from rag.load.limits import Limits
from rag.load.worker import Job, parse_files
from rag.embed.sentence_vectors import embed_blocks
from rag.index.layout import FORMAT, FORMAT_VERSION, IndexContent, check_manifest, read_manifest
from rag.index.lock import write_lock
from rag.index.reader import Index
from rag.index.writer import GenerationWriter, write_generation

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    seconds: float = 0.0
    generation: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        if self.generation and not self.changed and not self.failed:
            return (f"Added sentence vectors to {len(self.unchanged)} unchanged documents: {self.sentences_embedded} "
                    f"sentences embedded in {self.seconds:.1f}s.")
        if not self.changed and not self.failed:
            return f"Nothing changed: {len(self.unchanged)} documents up to date ({self.seconds:.1f}s)."
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged",
                 f"{len(self.removed)} removed", f"{len(self.failed)} failed"]
        return (f"{', '.join(parts)}; {self.chunks_embedded} chunks and {self.sentences_embedded} sentences embedded "
                f"in {self.seconds:.1f}s.")


def discover(paths: list[str | Path]) -> tuple[list[Path], list[IngestError]]:
    """Files to ingest: each file given, and every non-hidden file under each folder given."""
    files: list[Path] = []
    errors: list[IngestError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            errors.append(IngestError(path, "no such file or folder"))
    unique = list(dict.fromkeys(f.absolute() for f in files))
    return unique, errors


def ingest(
    paths: list[str | Path],
    index_dir: str | Path,
    embedder: Embedder,
    max_words: int = DEFAULT_MAX_WORDS,
    rebuild: bool = False,
    progress: Progress | None = None,
    show_progress: bool = False,
    limits: Limits | None = None,
    passage_chars: int = 0,
    parse: Callable[..., list] = parse_files,
) -> IngestReport:
    """Bring the index at `index_dir` in line with the files under `paths`.

    `limits` is the per-file parse budget (default: `Limits.from_env()`). `passage_chars` > 0 embeds short
    paragraphs of one section together, up to that many characters, with the title and heading in front
    (`rag.passages`); 0 embeds each paragraph alone. `parse` parses the changed files (as `parse_files`: the jobs,
    the limits, `on_done`); `app.distributed` passes its own, with an `embedder` that embeds on a Ray cluster.
    """
    started = time.perf_counter()
    limits = limits or Limits.from_env()
    report = IngestReport()
    with write_lock(index_dir):
        old = None if rebuild else _open_previous(index_dir, embedder, report)
        old_by_path = {d.source_path: d for d in old.documents} if old else {}
        files, errors = discover(paths)
        report.failed.extend(errors)
        # Only folders and files that exist can vouch that a document is gone: a mistyped or unmounted
        # path must not empty the index.
        roots = [Path(p).absolute() for p in paths if Path(p).exists()]

        keep_docs: dict[str, Document] = {}  # doc_id -> document kept as it was
        fresh: list[LoadedFile] = []
        used_ids = {d.doc_id: d.source_path for d in old.documents} if old else {}
        seen_paths: set[str] = set()
        same_chunking = bool(old) and old.manifest.get("chunking") == chunking_settings(max_words, passage_chars)
        parsed = 0

        def parse_done(*_) -> None:
            nonlocal parsed
            parsed += 1
            if progress:
                progress("parse", parsed, len(files))

        # First, in file order: what needs parsing. Unchanged and unreadable files are settled here.
        plan: list[tuple[Path, Document | None, int | IngestError | None]] = []  # job index, error, or unchanged
        jobs: list[Job] = []
        for path in files:
            source = str(path)
            seen_paths.add(source)
            previous = old_by_path.get(source)
            try:
                loader_for(path)  # an unsupported type fails before the file is read
                check_size(path, limits)  # and a huge one before it is hashed
                if previous and same_chunking and file_sha256(path) == previous.sha256:
                    plan.append((path, previous, None))
                    parse_done()
                    continue
            except IngestError as e:
                plan.append((path, previous, e))
                parse_done()
                continue
            plan.append((path, previous, len(jobs)))
            # A provisional id: the final one depends on which earlier files succeed (see below).
            jobs.append((path, previous.doc_id if previous else slugify(path.name)))
        results = parse(jobs, limits, on_done=parse_done)

        # Then, in file order again: ids are given as a serial ingest gave them.
        for path, previous, step in plan:
            result = results[step] if isinstance(step, int) else step
            if result is None:
                keep_docs[previous.doc_id] = previous
                report.unchanged.append(previous.doc_id)
                continue
            if not isinstance(result, IngestError) and not previous:
                try:
                    result = _with_doc_id(result, _unique_id(path, used_ids))
                except IngestError as e:
                    result = e
            if isinstance(result, IngestError):
                report.failed.append(result)
                if previous:  # keep the last good version rather than lose it
                    keep_docs[previous.doc_id] = previous
                continue
            loaded = result
            used_ids[loaded.document.doc_id] = str(path)
            fresh.append(loaded)
            report.warnings.extend(loaded.warnings)
            (report.updated if previous else report.added).append(loaded.document.doc_id)

        if old:
            for doc in old.documents:
                if doc.doc_id in keep_docs or doc.source_path in seen_paths:
                    continue  # unchanged, re-ingested, or failed and kept
                if _under_any(Path(doc.source_path), roots):
                    report.removed.append(doc.doc_id)  # its file is gone from a folder we scanned
                else:
                    keep_docs[doc.doc_id] = doc  # ingested from elsewhere; not ours to drop

        # An index written before sentence vectors is rewritten once to add them (its chunk vectors are kept).
        upgrade = bool(old) and old.sentences is None
        if not report.changed and not rebuild and not upgrade:
            _ensure_query_encoder(index_dir, embedder, report)
            report.seconds = time.perf_counter() - started
            return report
        manifest = {"model": embedder.name, "dimension": embedder.dimension, "normalized": True,
                    "chunking": chunking_settings(max_words, passage_chars)}
        if _appends(old, report, same_chunking):
            report.generation = _append(index_dir, old, fresh, embedder, max_words, manifest, report, progress,
                                        show_progress, passage_chars)
        else:
            content = _assemble(old, keep_docs, fresh, embedder, max_words, report, progress, show_progress,
                                passage_chars)
            report.generation = write_generation(index_dir, content, manifest)
        _ensure_query_encoder(index_dir, embedder, report)
    report.seconds = time.perf_counter() - started
    return report


def _ensure_query_encoder(index_dir: str | Path, embedder: Embedder, report: IngestReport) -> None:
    """Export the ONNX query encoder once per index folder (`rag.embed.onnx_encoder`), so questions never load torch.

    A failed export is a warning, not a failure: questions then use the torch model, slower to start."""
    from rag.embed import onnx_encoder

    if onnx_encoder.load(index_dir, embedder.name, embedder.dimension) is not None:
        return
    try:
        embedder.export_query_encoder(index_dir)
    except Exception as e:  # noqa: BLE001 - any exporter failure leaves the torch path, which works
        report.warnings.append(f"the ONNX query encoder was not exported ({type(e).__name__}: {e}); "
                               "questions will load torch")


def remove_documents(index_dir: str | Path, embedder: Embedder, doc_ids: list[str]) -> IngestReport:
    """Drop documents from the index (their files are left alone)."""
    started = time.perf_counter()
    report = IngestReport()
    with write_lock(index_dir):
        old = Index.open(index_dir, embedder.name, embedder.dimension)
        for doc_id in doc_ids:
            old.document(doc_id)  # raises with the list of known ids
        keep = {d.doc_id: d for d in old.documents if d.doc_id not in doc_ids}
        report.removed = list(doc_ids)
        report.unchanged = list(keep)
        chunking = old.manifest["chunking"]
        content = _assemble(old, keep, [], embedder, chunking["max_words"], report, None, False,
                            chunking.get("max_chars", 0))
        report.generation = write_generation(index_dir, content, {k: old.manifest[k] for k in
                                                                  ("model", "dimension", "normalized", "chunking")})
    report.seconds = time.perf_counter() - started
    return report


def _open_previous(index_dir: str | Path, embedder: Embedder, report: IngestReport | None = None) -> Index | None:
    manifest = read_manifest(index_dir)
    if manifest is None:
        return None
    older = manifest.get("format") == FORMAT and isinstance(manifest.get("format_version"), int) \
        and manifest["format_version"] < FORMAT_VERSION
    if older and report is not None and manifest.get("model") == embedder.name:
        # An index of an older format, by this model: rebuilt whole (everything re-embedded), not refused, so
        # `make run` keeps working after an upgrade. Its generation stays until the next write replaces it.
        report.warnings.append(f"the index at {index_dir} is format v{manifest['format_version']}; rebuilding it as "
                               f"v{FORMAT_VERSION}")
        return None
    check_manifest(manifest, embedder.name, embedder.dimension, Path(index_dir))
    try:
        return Index.open(index_dir, embedder.name, embedder.dimension)
    except IndexNotFound:
        return None  # an empty index: nothing to reuse


def _appends(old: Index | None, report: IngestReport, same_chunking: bool) -> bool:
    """Whether this ingest only adds documents to a large index, which then grows by appending (`rag.index.writer`).

    A small index (exact dense search) is rewritten whole, as ever, so its paragraphs stay in (doc_id, para)
    order; an update or a removal rewrites a large one too (from its stored rows and vectors).
    """
    return (old is not None and not old.is_exact and same_chunking and bool(report.added)
            and not report.updated and not report.removed and old.sentences is not None)


def _append(index_dir: str | Path, old: Index, fresh: list[LoadedFile], embedder: Embedder, max_words: int,
            manifest: dict, report: IngestReport, progress: Progress | None, show_progress: bool,
            passage_chars: int) -> str:
    """A new generation of `old` plus the fresh documents: only their chunks are embedded, their vectors added
    to the trained dense index, their postings to the BM25 postings."""
    now = time.time()
    chunks = _new_chunks(fresh, max_words, passage_chars)
    vectors = _embed(chunks, embedder, progress, show_progress)
    report.chunks_embedded = len(chunks)
    with GenerationWriter(index_dir, manifest, base=old) as writer:
        writer.add_documents([f.document for f in fresh], {f.document.doc_id: now for f in fresh})
        paragraphs = [p for loaded in fresh for p in loaded.paragraphs]
        blocks = iter(_sentence_blocks(paragraphs, None, chunks, vectors, embedder, report, progress, show_progress))
        for loaded in fresh:
            writer.add_paragraphs(loaded.paragraphs, [next(blocks) for _ in loaded.paragraphs])
        writer.add_chunks(chunks, vectors)
        return writer.commit()


def _new_chunks(fresh: list[LoadedFile], max_words: int, passage_chars: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for loaded in fresh:
        title = context_title(loaded.document.title, loaded.document.source_path)
        chunks.extend(chunk_paragraphs(loaded.paragraphs, max_words, title=title, max_chars=passage_chars))
    return chunks


def _embed(chunks: list[Chunk], embedder: Embedder, progress: Progress | None, show_progress: bool) -> np.ndarray:
    if not chunks:
        return np.zeros((0, embedder.dimension), np.float32)
    callback = (lambda done, total: progress("embed", done, total)) if progress else show_progress
    return embedder.encode_documents([c.text for c in chunks], progress=callback)


def _assemble(old: Index | None, keep_docs: dict[str, Document], fresh: list[LoadedFile], embedder: Embedder,
              max_words: int, report: IngestReport, progress: Progress | None, show_progress: bool,
              passage_chars: int = 0) -> IndexContent:
    documents: list[Document] = []
    paragraphs: list[Paragraph] = []
    chunks: list[Chunk] = []
    vector_parts: list[np.ndarray] = []
    ingested_at: dict[str, float] = {}
    if old:
        # One pass over the old records (not one per document): a large index holds millions of them.
        content = old.content
        paras_of: dict[str, list[Paragraph]] = {}
        for p in content.paragraphs:
            paras_of.setdefault(p.doc_id, []).append(p)
        rows_of: dict[str, list[int]] = {}
        for row, c in enumerate(content.chunks):
            rows_of.setdefault(c.doc_id, []).append(row)
        for doc in content.documents:
            if doc.doc_id not in keep_docs:
                continue
            documents.append(doc)
            paragraphs.extend(sorted(paras_of.get(doc.doc_id, []), key=lambda p: p.para))
            doc_rows = rows_of.get(doc.doc_id, [])
            chunks.extend(content.chunks[r] for r in doc_rows)
            vector_parts.append(np.asarray(content.vectors[doc_rows], dtype=np.float32).reshape(-1, old.vectors.shape[1]))
            ingested_at[doc.doc_id] = old.ingested_at(doc.doc_id) or time.time()
    for loaded in fresh:
        documents.append(loaded.document)
        paragraphs.extend(loaded.paragraphs)
        ingested_at[loaded.document.doc_id] = time.time()
    new_chunks = _new_chunks(fresh, max_words, passage_chars)
    if new_chunks:
        vector_parts.append(_embed(new_chunks, embedder, progress, show_progress))
        chunks.extend(new_chunks)
    report.chunks_embedded = len(new_chunks)
    vectors = np.vstack(vector_parts) if vector_parts else np.zeros((0, embedder.dimension), np.float32)
    blocks = _sentence_blocks(paragraphs, old, new_chunks, vector_parts[-1] if new_chunks else None, embedder, report,
                              progress, show_progress)
    return IndexContent(documents, paragraphs, chunks, vectors, ingested_at,
                        {(p.doc_id, p.para): b for p, b in zip(paragraphs, blocks)})


def _sentence_blocks(paragraphs: list[Paragraph], old: Index | None, new_chunks: list[Chunk],
                     new_vectors: np.ndarray | None, embedder: Embedder, report: IngestReport,
                     progress: Progress | None, show_progress: bool) -> list[np.ndarray]:
    """Each paragraph's sentence vectors (`rag.embed.sentence_vectors`): the old generation's where they still fit,
    a new chunk's vector where a chunk is one whole sentence (a short paragraph, a table row), the rest embedded."""
    known = ((lambda p: old.sentences.of(p.doc_id, p.para)) if old is not None and old.sentences is not None
             else (lambda p: None))
    reuse = dict(zip((c.text for c in new_chunks), new_vectors)) if new_vectors is not None else {}
    callback = (lambda done, total: progress("embed sentences", done, total)) if progress else show_progress
    blocks, embedded = embed_blocks(
        paragraphs, known, lambda texts: embedder.encode_documents(texts, progress=callback, desc="Sentences"),
        embedder.dimension, reuse)
    report.sentences_embedded += embedded
    return blocks


def _with_doc_id(loaded: LoadedFile, doc_id: str) -> LoadedFile:
    if loaded.document.doc_id == doc_id:
        return loaded
    return replace(loaded, document=replace(loaded.document, doc_id=doc_id),
                   paragraphs=[replace(p, doc_id=doc_id) for p in loaded.paragraphs])


def _unique_id(path: Path, used: dict[str, str]) -> str:
    """The file name's slug; on a clash with another file, add its extension, then a number."""
    base = slugify(path.name)
    candidates = [base, f"{base}-{path.suffix.lower().lstrip('.')}"] + [f"{base}-{n}" for n in range(2, 1000)]
    for candidate in candidates:
        if used.get(candidate, str(path)) == str(path):
            return candidate
    raise IngestError(path, "too many files share this name")


def _under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
