"""Incremental ingestion: files -> paragraphs -> passages -> vectors -> a new index generation.

A file whose bytes (sha256) and chunking are unchanged keeps its paragraphs and vectors; so does one
that moved with the same bytes (a copied checkout, a renamed folder or file), which only gets its new
path; a changed file is re-parsed and re-embedded; a file that disappeared from a folder being
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

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.documents import Document, Paragraph, Passage
from rag.embed.embedder import Embedder
from rag.embed.sentence_vectors import embed_blocks
from rag.errors import IndexNotFound, IngestError
from rag.index.files import discover, moved_from, under_any, unique_id, with_doc_id
from rag.index.layout import FORMAT, FORMAT_VERSION, IndexContent, check_manifest, make_private, read_manifest
from rag.index.lock import write_lock
from rag.index.reader import Index
from rag.index.report import IngestReport
from rag.index.writer import GenerationWriter, write_generation
from rag.load import LoadedFile, check_size, file_sha256, loader_for, slugify
from rag.load.aliases import counted_acronyms, learn_aliases
from rag.load.limits import Limits
from rag.load.worker import Job, parse_files
from rag.passages import DEFAULT_MAX_CHARS, DEFAULT_MAX_WORDS, context_title, make_passages
from rag.passages import settings as chunking_settings

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def ingest(
    paths: list[str | Path],
    index_dir: str | Path,
    embedder: Embedder,
    max_words: int = DEFAULT_MAX_WORDS,
    rebuild: bool = False,
    progress: Progress | None = None,
    show_progress: bool = False,
    limits: Limits | None = None,
    passage_chars: int | None = None,
    parse: Callable[..., list] = parse_files,
) -> IngestReport:
    """Bring the index at `index_dir` in line with the files under `paths`.

    Steps: open the live generation; find the files; `_plan` what needs parsing (unchanged and moved files
    are settled there); parse the rest; `_settle` the results in file order (ids, failures kept at their last
    good version); `_removed` what left a folder we scanned; write a generation (`_write`) unless nothing changed.

    `limits` is the per-file parse budget (default: `Limits.from_env()`). `passage_chars` > 0 embeds short
    paragraphs of one section together, up to that many characters, with the title and heading in front
    (`rag.passages`); 0 embeds each paragraph alone; None keeps the index's own setting (an upload does not
    re-cut every document), or `DEFAULT_MAX_CHARS` for a new index. `parse` parses the changed files (as `parse_files`: the jobs,
    the limits, `on_done`); `app.distributed` passes its own, with an `embedder` that embeds on a Ray cluster.
    """
    started = time.perf_counter()
    limits = limits or Limits.from_env()
    report = IngestReport()
    with write_lock(index_dir):
        old = None if rebuild else _open_previous(index_dir, embedder, report)
        if passage_chars is None:
            passage_chars = recorded_passage_chars(old.manifest) if old else DEFAULT_MAX_CHARS
        files, errors = discover(paths)
        report.failed.extend(errors)
        # Only folders and files that exist can vouch that a document is gone: a mistyped or unmounted
        # path must not empty the index.
        roots = [Path(p).absolute() for p in paths if Path(p).exists()]
        same_chunking = bool(old) and old.manifest.get("chunking") == chunking_settings(max_words, passage_chars)
        plan = _plan(files, roots, old, same_chunking, limits, progress)
        results = parse(plan.jobs, limits, on_done=plan.parsed)
        keep_docs, fresh = _settle(plan, results, old, report)
        # a path discovery refused (a symlink out of the folder) is still there: its document is not removed
        seen = {str(f) for f in files} | {str(Path(e.path).absolute()) for e in errors}
        _removed(old, keep_docs, seen, roots, report)
        # An index written before sentence vectors is rewritten once to add them (its passage vectors are kept).
        upgrade = bool(old) and old.sentences is None
        if report.changed or report.moved or rebuild or upgrade:
            manifest = {
                "model": embedder.name,
                "dimension": embedder.dimension,
                "normalized": True,
                "chunking": chunking_settings(max_words, passage_chars),
            }
            report.generation = _write(
                index_dir,
                old,
                keep_docs,
                fresh,
                embedder,
                manifest,
                report,
                same_chunking,
                max_words,
                passage_chars,
                progress,
                show_progress,
            )
        _ensure_query_encoder(index_dir, embedder, report)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Plan:
    """What to do with each file, in file order: keep it (a `Document`), parse it (its job's index), or fail it."""

    total: int
    progress: Progress | None
    steps: list[tuple[Path, Document | None, Document | int | IngestError]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    done: int = 0

    def parsed(self, *_) -> None:
        self.done += 1
        if self.progress:
            self.progress("parse", self.done, self.total)

    def settle(self, path: Path, previous: Document | None, outcome: Document | IngestError) -> None:
        self.steps.append((path, previous, outcome))
        self.parsed()

    def to_parse(self, path: Path, previous: Document | None) -> None:
        self.steps.append((path, previous, len(self.jobs)))
        # A provisional id: the final one depends on which earlier files succeed (`_settle`).
        self.jobs.append((path, previous.doc_id if previous else slugify(path.name)))


def _plan(
    files: list[Path],
    roots: list[Path],
    old: Index | None,
    same_chunking: bool,
    limits: Limits,
    progress: Progress | None,
) -> _Plan:
    """Which files need parsing. A file is known by its path, or else, when its bytes are unchanged, as a document
    that moved: the same path under another root (a copied checkout, a renamed folder), or a renamed file."""
    plan = _Plan(len(files), progress)
    by_path = {d.source_path: d for d in old.documents} if old else {}
    claimed = {str(f) for f in files if str(f) in by_path}
    for path in files:
        previous = by_path.get(str(path))
        try:
            loader_for(path)  # an unsupported type fails before the file is read
            check_size(path, limits)  # and a huge one before it is hashed
            if previous is None:
                previous = moved_from(path, roots, old, claimed)
                if previous is not None:
                    claimed.add(previous.source_path)
            if previous and same_chunking and file_sha256(path) == previous.sha256:
                plan.settle(path, previous, replace(previous, source_path=str(path)))
                continue
        except IngestError as e:
            plan.settle(path, previous, e)
            continue
        plan.to_parse(path, previous)
    return plan


def _settle(
    plan: _Plan, results: list, old: Index | None, report: IngestReport
) -> tuple[dict[str, Document], list[LoadedFile]]:
    """The documents kept as they were (by doc id) and the freshly parsed files, with ids given in file order as a
    serial ingest gives them; a file that failed keeps its previous version."""
    keep_docs: dict[str, Document] = {}
    fresh: list[LoadedFile] = []
    used_ids = {d.doc_id: d.source_path for d in old.documents} if old else {}
    for path, previous, step in plan.steps:
        result = results[step] if isinstance(step, int) else step
        if isinstance(result, Document):
            keep_docs[result.doc_id] = result
            report.unchanged.append(result.doc_id)
            if result.source_path != previous.source_path:
                report.moved.append(result.doc_id)
                used_ids[result.doc_id] = result.source_path
            continue
        if not isinstance(result, IngestError) and not previous:
            try:
                result = with_doc_id(result, unique_id(path, used_ids))
            except IngestError as e:
                result = e
        if isinstance(result, IngestError):
            report.failed.append(result)
            if previous:  # keep the last good version rather than lose it
                keep_docs[previous.doc_id] = previous
            continue
        used_ids[result.document.doc_id] = str(path)
        result = _with_aliases(result)
        fresh.append(result)
        report.warnings.extend(result.warnings)
        (report.updated if previous else report.added).append(result.document.doc_id)
    return keep_docs, fresh


def recorded_passage_chars(manifest: dict) -> int:
    """The passage size an index was cut with (0: each paragraph alone, as indexes before passages were)."""
    return int((manifest.get("chunking") or {}).get("max_chars", 0))


def _with_aliases(loaded: LoadedFile) -> LoadedFile:
    """The document with the acronyms its own text defines or counts (`rag.load.aliases`) in its metadata, for the
    answerer."""
    texts = [p.text for p in loaded.paragraphs]
    learned = {"aliases": learn_aliases(texts), "counted_acronyms": counted_acronyms(texts)}
    learned = {k: v for k, v in learned.items() if v}
    if not learned:
        return loaded
    return replace(loaded, document=replace(loaded.document, meta={**loaded.document.meta, **learned}))


def _removed(
    old: Index | None, keep_docs: dict[str, Document], seen: set[str], roots: list[Path], report: IngestReport
) -> None:
    """Old documents not kept: dropped when their file is gone from a folder we scanned, else kept as they were."""
    if not old:
        return
    parsed = {*report.added, *report.updated}
    for doc in old.documents:
        if doc.doc_id in keep_docs or doc.doc_id in parsed or doc.source_path in seen:
            continue  # unchanged, moved, re-ingested, or failed and kept
        if under_any(Path(doc.source_path), roots):
            report.removed.append(doc.doc_id)  # its file is gone from a folder we scanned
        else:
            keep_docs[doc.doc_id] = doc  # ingested from elsewhere; not ours to drop


def _write(
    index_dir: str | Path,
    old: Index | None,
    keep_docs: dict[str, Document],
    fresh: list[LoadedFile],
    embedder: Embedder,
    manifest: dict,
    report: IngestReport,
    same_chunking: bool,
    max_words: int,
    passage_chars: int,
    progress: Progress | None,
    show_progress: bool,
) -> str:
    """The new generation: appended to a large index that only grows, else written whole."""
    if _appends(old, report, same_chunking):
        return _append(
            index_dir, old, fresh, embedder, max_words, manifest, report, progress, show_progress, passage_chars
        )
    content = _assemble(old, keep_docs, fresh, embedder, max_words, report, progress, show_progress, passage_chars)
    return write_generation(index_dir, content, manifest)


def _ensure_query_encoder(index_dir: str | Path, embedder: Embedder, report: IngestReport) -> None:
    """Export the ONNX query encoder once per index folder (`rag.embed.onnx_encoder`), so questions never load torch.

    A failed export is a warning, not a failure: questions then use the torch model, slower to start."""
    from rag.embed import onnx_encoder

    if onnx_encoder.load(index_dir, embedder.name, embedder.dimension) is not None:
        return
    try:
        embedder.export_query_encoder(index_dir)
        make_private(onnx_encoder.encoder_folder(index_dir))
    except Exception as e:  # noqa: BLE001 - any exporter failure leaves the torch path, which works
        report.warnings.append(
            f"the ONNX query encoder was not exported ({type(e).__name__}: {e}); questions will load torch"
        )


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
        content = _assemble(
            old, keep, [], embedder, chunking["max_words"], report, None, False, chunking.get("max_chars", 0)
        )
        report.generation = write_generation(
            index_dir, content, {k: old.manifest[k] for k in ("model", "dimension", "normalized", "chunking")}
        )
    report.seconds = time.perf_counter() - started
    return report


def _open_previous(index_dir: str | Path, embedder: Embedder, report: IngestReport | None = None) -> Index | None:
    manifest = read_manifest(index_dir)
    if manifest is None:
        return None
    older = (
        manifest.get("format") == FORMAT
        and isinstance(manifest.get("format_version"), int)
        and manifest["format_version"] < FORMAT_VERSION
    )
    if older and report is not None and manifest.get("model") == embedder.name:
        # An index of an older format, by this model: rebuilt whole (everything re-embedded), not refused, so
        # `make run` keeps working after an upgrade. Its generation stays until the next write replaces it.
        report.warnings.append(
            f"the index at {index_dir} is format v{manifest['format_version']}; rebuilding it as v{FORMAT_VERSION}"
        )
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
    return (
        old is not None
        and not old.is_exact
        and same_chunking
        and bool(report.added)
        and not report.updated
        and not report.removed
        and old.sentences is not None
    )


def _append(
    index_dir: str | Path,
    old: Index,
    fresh: list[LoadedFile],
    embedder: Embedder,
    max_words: int,
    manifest: dict,
    report: IngestReport,
    progress: Progress | None,
    show_progress: bool,
    passage_chars: int,
) -> str:
    """A new generation of `old` plus the fresh documents: only their chunks are embedded, their vectors added
    to the trained dense index, their postings to the BM25 postings."""
    now = time.time()
    passages = _new_passages(fresh, max_words, passage_chars)
    vectors = _embed(passages, embedder, progress, show_progress)
    report.passages_embedded = len(passages)
    with GenerationWriter(index_dir, manifest, base=old) as writer:
        writer.add_documents([f.document for f in fresh], {f.document.doc_id: now for f in fresh})
        paragraphs = [p for loaded in fresh for p in loaded.paragraphs]
        blocks = iter(_sentence_blocks(paragraphs, None, passages, vectors, embedder, report, progress, show_progress))
        for loaded in fresh:
            writer.add_paragraphs(loaded.paragraphs, [next(blocks) for _ in loaded.paragraphs])
        writer.add_passages(passages, vectors)
        return writer.commit()


def _new_passages(fresh: list[LoadedFile], max_words: int, passage_chars: int) -> list[Passage]:
    passages: list[Passage] = []
    for loaded in fresh:
        title = context_title(loaded.document.title, loaded.document.source_path)
        passages.extend(make_passages(loaded.paragraphs, max_words, title=title, max_chars=passage_chars))
    return passages


def _embed(passages: list[Passage], embedder: Embedder, progress: Progress | None, show_progress: bool) -> np.ndarray:
    if not passages:
        return np.zeros((0, embedder.dimension), np.float32)
    callback = (lambda done, total: progress("embed", done, total)) if progress else show_progress
    return embedder.encode_documents([c.text for c in passages], progress=callback)


def _assemble(
    old: Index | None,
    keep_docs: dict[str, Document],
    fresh: list[LoadedFile],
    embedder: Embedder,
    max_words: int,
    report: IngestReport,
    progress: Progress | None,
    show_progress: bool,
    passage_chars: int = 0,
) -> IndexContent:
    documents: list[Document] = []
    paragraphs: list[Paragraph] = []
    passages: list[Passage] = []
    vector_parts: list[np.ndarray] = []
    ingested_at: dict[str, float] = {}
    if old:
        # One pass over the old records (not one per document): a large index holds millions of them.
        content = old.content
        paras_of: dict[str, list[Paragraph]] = {}
        for p in content.paragraphs:
            paras_of.setdefault(p.doc_id, []).append(p)
        rows_of: dict[str, list[int]] = {}
        for row, c in enumerate(content.passages):
            rows_of.setdefault(c.doc_id, []).append(row)
        for doc in content.documents:
            if doc.doc_id not in keep_docs:
                continue
            documents.append(keep_docs[doc.doc_id])  # its source path may have moved
            paragraphs.extend(sorted(paras_of.get(doc.doc_id, []), key=lambda p: p.para))
            doc_rows = rows_of.get(doc.doc_id, [])
            passages.extend(content.passages[r] for r in doc_rows)
            vector_parts.append(
                np.asarray(content.vectors[doc_rows], dtype=np.float32).reshape(-1, old.vectors.shape[1])
            )
            ingested_at[doc.doc_id] = old.ingested_at(doc.doc_id) or time.time()
    for loaded in fresh:
        documents.append(loaded.document)
        paragraphs.extend(loaded.paragraphs)
        ingested_at[loaded.document.doc_id] = time.time()
    new_passages = _new_passages(fresh, max_words, passage_chars)
    if new_passages:
        vector_parts.append(_embed(new_passages, embedder, progress, show_progress))
        passages.extend(new_passages)
    report.passages_embedded = len(new_passages)
    vectors = np.vstack(vector_parts) if vector_parts else np.zeros((0, embedder.dimension), np.float32)
    blocks = _sentence_blocks(
        paragraphs,
        old,
        new_passages,
        vector_parts[-1] if new_passages else None,
        embedder,
        report,
        progress,
        show_progress,
    )
    return IndexContent(
        documents,
        paragraphs,
        passages,
        vectors,
        ingested_at,
        {(p.doc_id, p.para): b for p, b in zip(paragraphs, blocks)},
    )


def _sentence_blocks(
    paragraphs: list[Paragraph],
    old: Index | None,
    new_passages: list[Passage],
    new_vectors: np.ndarray | None,
    embedder: Embedder,
    report: IngestReport,
    progress: Progress | None,
    show_progress: bool,
) -> list[np.ndarray]:
    """Each paragraph's sentence vectors (`rag.embed.sentence_vectors`): the old generation's where they still fit,
    a new chunk's vector where a chunk is one whole sentence (a short paragraph, a table row), the rest embedded."""
    known = (
        (lambda p: old.sentences.of(p.doc_id, p.para))
        if old is not None and old.sentences is not None
        else (lambda p: None)
    )
    reuse = dict(zip((c.text for c in new_passages), new_vectors)) if new_vectors is not None else {}
    callback = (lambda done, total: progress("embed sentences", done, total)) if progress else show_progress
    blocks, embedded = embed_blocks(
        paragraphs,
        known,
        lambda texts: embedder.encode_documents(texts, progress=callback, desc="Sentences"),
        embedder.dimension,
        reuse,
    )
    report.sentences_embedded += embedded
    return blocks
