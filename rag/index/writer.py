"""Writing a generation beside the live one, then swapping CURRENT to it.

A writer builds a whole new generation beside the live one, fsyncs it, then swaps CURRENT.
A crash or kill at any moment leaves CURRENT naming the previous, complete generation.
A full write numbers paragraphs in (doc_id, para) order. An ingest that only adds documents to an index
whose dense search is approximate appends instead (`GenerationWriter(base=...)`): the new generation
starts as a copy of the live one, and its paragraphs and passages continue the old positions and rows;
nothing old is re-embedded or re-tokenised.

After a swap a writer deletes only what it can vouch for: generations a killed writer left
incomplete, and those the previous live generation replaced. The previous one stays as the spare
(a reader may be loading it). A complete generation outside that chain (left by a lost or
hand-edited CURRENT, or a rebuild over a damaged index) was never read by this writer, so it is
never deleted; `rag doctor` lists it.

Not handled: removing documents from a large index in place (a removal or an update rewrites the
generation from its stored rows and vectors).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from rag.documents import Document, Paragraph, Passage
from rag.embed.sentence_vectors import OFFSETS_FILE as SENTENCE_OFFSETS_FILE
from rag.embed.sentence_vectors import VECTORS_FILE as SENTENCE_VECTORS_FILE
from rag.index import ann
from rag.index.bm25 import PostingsWriter, Vocabulary
from rag.index.layout import (
    FILES,
    FORMAT,
    FORMAT_VERSION,
    INDEXES,
    PARAGRAPH_COLUMNS,
    PRIVATE_FILE,
    SCHEMA,
    IndexContent,
    current_generation,
    fsync_path,
    generation_dirs,
    make_private,
    manifest_or_none,
    named_by_current,
    replaced_by,
)
from rag.index.reader import Index


class GenerationWriter:
    """Writes one new generation piece by piece, then makes it live (`commit`). Call under `write_lock`.

    Paragraphs take positions, and chunks rows, in the order they are added; nothing is held in memory
    beyond the piece being added, so the bench writes 10M paragraphs through it. With `base` (the live
    generation, opened), the new generation starts as a copy of base's store and vectors and continues its
    positions and rows, its BM25 postings and its trained dense index: an append.
    Used as a context manager, a failure removes the unfinished generation.

    Example usage:
        with GenerationWriter(index_dir, {"model": ..., "dimension": 384, "chunking": ...}) as w:
            w.add_documents(documents, ingested_at)
            w.add_paragraphs(paragraphs)
            w.add_passages(passages, vectors)
            generation = w.commit()
    """

    def __init__(self, index_dir: str | Path, manifest: dict, base: Index | None = None):
        self.path = Path(index_dir)
        self.manifest = dict(manifest)
        self.base = base
        self._named = named_by_current(self.path)
        self._previous = current_generation(self.path)
        # Only a generation whose manifest reads is vouched for, and so may later be deleted as replaced.
        self._replaces = (
            self._previous if self._previous and manifest_or_none(self.path, self._previous) is not None else None
        )
        self.generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{os.getpid()}"
        self.dir = self.path / self.generation
        self.dir.mkdir(parents=True)
        self._committed = False
        try:
            # Sentence counts by position: base's (zeros where base stored none), then the new paragraphs'.
            self._sentence_counts: list[int] = []
            if base is not None:
                old = base.path / base.generation
                shutil.copyfile(old / "meta.sqlite", self.dir / "meta.sqlite")
                shutil.copyfile(old / "vectors.f32", self.dir / "vectors.f32")
                if base.sentences is not None:
                    shutil.copyfile(old / SENTENCE_VECTORS_FILE, self.dir / SENTENCE_VECTORS_FILE)
                    self._sentence_counts = np.diff(base.sentences.offsets).tolist()
                else:
                    self._sentence_counts = [0] * base.paragraph_count
            self._con = sqlite3.connect(self.dir / "meta.sqlite")
            if base is None:
                self._con.executescript(SCHEMA)
            elif "table_json" not in {r[1] for r in self._con.execute("PRAGMA table_info(paragraphs)")}:
                self._con.execute("ALTER TABLE paragraphs ADD COLUMN table_json TEXT")  # a base written before tables
            vocabulary = (
                Vocabulary(
                    dict(self._con.execute("SELECT term, id FROM terms")),
                    dict(self._con.execute("SELECT word, id FROM words")),
                )
                if base
                else Vocabulary()
            )
            self._vectors = open(self.dir / "vectors.f32", "ab")
            self._sentences = open(self.dir / SENTENCE_VECTORS_FILE, "ab")
            self._postings = PostingsWriter(self.dir / "bm25", vocabulary, base.postings if base else None)
            self.documents = len(base.documents) if base else 0
            self.paragraphs = base.paragraph_count if base else 0
            self.passages = base.passage_count if base else 0
            self._first_new_passage = self.passages
            self._references: list[int] = list(np.asarray(base.references).tolist()) if base else []
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> GenerationWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if not self._committed:
            self.abort()

    def add_documents(self, documents: Sequence[Document], ingested_at: dict[str, float]) -> None:
        self._con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    d.doc_id,
                    d.title,
                    d.kind,
                    d.source_path,
                    d.sha256,
                    d.format,
                    d.pages,
                    json.dumps(d.meta),
                    ingested_at.get(d.doc_id),
                )
                for d in documents
            ],
        )
        self.documents += len(documents)

    def add_paragraphs(self, paragraphs: Sequence[Paragraph], sentences: Sequence[np.ndarray] | None = None) -> None:
        """The next paragraphs, in position order (a document's paragraphs together, by number), with each one's
        sentence vectors (`rag.embed.sentence_vectors.embed_blocks`; None stores none, and questions embed them)."""
        if sentences is not None and len(sentences) != len(paragraphs):
            raise ValueError(f"{len(paragraphs)} paragraphs but {len(sentences)} blocks of sentence vectors")
        for block in sentences if sentences is not None else ():
            self._sentences.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self._sentence_counts.extend(
            len(b) for b in sentences
        ) if sentences is not None else self._sentence_counts.extend([0] * len(paragraphs))
        first = self.paragraphs
        self._con.executemany(
            f"INSERT INTO paragraphs (position, {PARAGRAPH_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    first + i,
                    p.doc_id,
                    p.para,
                    p.page,
                    p.heading,
                    p.text,
                    json.dumps(list(p.source_paras)),
                    json.dumps(p.table.to_json()) if p.table else None,
                )
                for i, p in enumerate(paragraphs)
            ],
        )
        self._postings.add([p.text for p in paragraphs])
        self._references.extend(first + i for i, p in enumerate(paragraphs) if p.is_reference)
        self.paragraphs += len(paragraphs)

    def add_passages(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        """The next chunks and their vectors (L2-normalised, of the manifest's dimension), row for row."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(passages), self.manifest["dimension"]):
            raise ValueError(f"{len(passages)} passages but vectors of shape {vectors.shape}; they must align")
        first = self.passages
        self._con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
            [(first + i, c.passage_id, c.doc_id, c.para_start, c.para_end, c.text) for i, c in enumerate(passages)],
        )
        self._vectors.write(vectors.tobytes())
        self.passages += len(passages)

    def commit(self) -> str:
        """Finish every file, fsync them, and swap CURRENT to the new generation; returns its name."""
        try:
            if self.base is None:
                self._con.executescript(INDEXES)
            span = self._passage_span()
            vocabulary = self._postings.vocabulary
            postings = self._postings.finish()
            first_new = len(vocabulary) - len(vocabulary.new_stems)
            self._con.executemany(
                "INSERT INTO terms VALUES (?,?)", ((t, first_new + i) for i, t in enumerate(vocabulary.new_stems))
            )
            self._con.executemany(
                "INSERT INTO words VALUES (?,?)", ((w, vocabulary.words[w]) for w in vocabulary.new_words)
            )
            self._con.commit()
            self._con.close()
            self._vectors.close()
            self._sentences.close()
            np.save(
                self.dir / SENTENCE_OFFSETS_FILE,
                np.concatenate([[0], np.cumsum(self._sentence_counts, dtype=np.int64)]).astype(np.int64),
                allow_pickle=False,
            )
            np.save(self.dir / "chunk_paras.npy", span, allow_pickle=False)
            np.save(self.dir / "references.npy", np.asarray(self._references, np.int32), allow_pickle=False)
            dense = self._write_dense()
            manifest = {
                **self.manifest,
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "documents": self.documents,
                "paragraphs": self.paragraphs,
                "chunks": self.passages,
                "dense": dense,
                "bm25": {"k1": postings.k1, "b": postings.b, "terms": postings.terms},
                "created": time.time(),
                "replaces": self._replaces,
            }
            (self.dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            make_private(self.dir)
            for name in (*FILES, SENTENCE_VECTORS_FILE, SENTENCE_OFFSETS_FILE):
                fsync_path(self.dir / name)
            for file in (self.dir / "bm25").iterdir():
                fsync_path(file)
            fsync_path(self.dir / "bm25")
            fsync_path(self.dir)
            set_current(self.path, self.generation)
            self._committed = True
        except BaseException:
            self.abort()
            raise
        _remove_stale(self.path, keep={self.generation, self._previous, self._named} - {None}, previous=self._replaces)
        return self.generation

    def abort(self) -> None:
        """Remove the unfinished generation (never live, so nobody can be reading it)."""
        for handle in ("_con", "_vectors", "_sentences"):
            try:
                getattr(self, handle).close()
            except (AttributeError, sqlite3.Error, OSError):
                pass
        if named_by_current(self.path) != self.generation:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _passage_span(self) -> np.ndarray:
        """chunk_paras.npy: base's rows, then the new chunks' first and last paragraph positions (by a join)."""
        span = np.zeros((self.passages - self._first_new_passage, 2), np.int32)
        cursor = self._con.execute(
            "SELECT c.row, f.position, l.position FROM chunks c "
            "LEFT JOIN paragraphs f ON f.doc_id = c.doc_id AND f.para = c.para_start "
            "LEFT JOIN paragraphs l ON l.doc_id = c.doc_id AND l.para = c.para_end "
            "WHERE c.row >= ? ORDER BY c.row",
            (self._first_new_passage,),
        )
        while rows := cursor.fetchmany(_BLOCK):  # in blocks: 10M tuples at once would take gigabytes
            broken = [r for r in rows if r[1] is None or r[2] is None]
            if broken:
                raise ValueError(f"chunk row {broken[0][0]} cites a paragraph that was not added")
            block = np.asarray(rows, np.int64)
            span[block[:, 0] - self._first_new_passage] = block[:, 1:]
        if self.base is not None:
            span = np.concatenate([np.asarray(self.base.passage_span, np.int32), span])
        return span

    def _write_dense(self) -> dict:
        """vectors.faiss: base's trained index with the new rows added, or a new one (`rag.index.ann.plan`)."""
        d = self.manifest["dimension"]
        vectors = (
            np.memmap(self.dir / "vectors.f32", dtype=np.float32, mode="r", shape=(self.passages, d))
            if self.passages
            else np.zeros((0, d), np.float32)
        )
        base = self.base
        if base is not None and not ann.needs_retraining(base.manifest["dense"], self.passages):
            spec = base.manifest["dense"]
            index = ann.read(base.path / base.generation / "vectors.faiss", spec, mmap=False)
            ann.add(index, vectors[base.passage_count :])
        else:
            spec = ann.plan(self.passages, d)
            index = ann.build(vectors, spec)
        faiss.write_index(index, str(self.dir / "vectors.faiss"))
        return spec


def write_generation(index_dir: str | Path, content: IndexContent, manifest: dict) -> str:
    """Write a complete new generation of `content` and make it live. Call under `write_lock`.

    Paragraphs go in (doc_id, para) order; chunks keep their order in `content`.
    """
    with GenerationWriter(index_dir, manifest) as writer:
        writer.add_documents(sorted(content.documents, key=lambda d: d.doc_id), content.ingested_at)
        paragraphs = sorted(content.paragraphs, key=lambda p: (p.doc_id, p.para))
        for start in range(0, len(paragraphs), _BLOCK):
            part = paragraphs[start : start + _BLOCK]
            writer.add_paragraphs(
                part, None if content.sentences is None else [content.sentences[(p.doc_id, p.para)] for p in part]
            )
        for start in range(0, len(content.passages), _BLOCK):
            writer.add_passages(content.passages[start : start + _BLOCK], content.vectors[start : start + _BLOCK])
        return writer.commit()


_BLOCK = 50_000


def set_current(index_dir: str | Path, generation: str) -> None:
    """The swap: CURRENT is replaced in one rename, so it always names a complete generation."""
    path = Path(index_dir)
    tmp = path / f".CURRENT.{os.getpid()}"
    try:
        tmp.write_text(generation, encoding="utf-8")
        os.chmod(tmp, PRIVATE_FILE)
        fsync_path(tmp)
        os.replace(tmp, path / "CURRENT")
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path)


def _remove_stale(path: Path, keep: set[str], previous: str | None) -> None:
    """Delete incomplete generations and those the previous live one replaced; nothing unread."""
    doomed = [d for d in generation_dirs(path) if not (d / "manifest.json").is_file() and d.name not in keep]
    if previous:
        doomed += [path / name for name in replaced_by(path, previous) if name not in keep]
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    for tmp in path.glob(".CURRENT.*"):
        tmp.unlink(missing_ok=True)
