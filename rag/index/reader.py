"""Reading one generation of an index: `Index.open` and the records it serves by position.

Readers memory-map the arrays and keep meta.sqlite open, reading paragraphs by position as a question
needs them, so a 1M-paragraph index opens in well under a second and holds little in RAM. An index of at
most `EAGER_PARAGRAPHS` paragraphs is also read whole at open and checked row by row.
On POSIX a generation deleted while a reader holds it open lives on until that reader closes it.

Not handled: a hand-edited generation whose files still agree with each other.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.documents import Document, Paragraph, Passage, Table
from rag.embed.sentence_vectors import SentenceVectors
from rag.embed.sentence_vectors import load as load_sentence_vectors
from rag.errors import IndexDamaged, IndexNotFound, UnknownParagraph
from rag.index import ann
from rag.index.bm25 import Postings
from rag.index.checks import check_counts, check_manifest_fields, check_passage_paragraphs, check_sizes
from rag.index.layout import (
    EAGER_PARAGRAPHS,
    PARAGRAPH_COLUMNS,
    PARAGRAPH_COLUMNS_BEFORE_TABLES,
    IndexContent,
    check_manifest,
    live_generation,
    read_generation_manifest,
)


class Index:
    """A loaded, read-only generation of the index folder.

    What retrieval reads, by paragraph position and chunk row: `faiss` and `vectors` (dense), `postings`
    and `word_ids` (BM25), `passage_positions`, `references`, `paragraphs_at` and `passage_rows`. Thread-safe.
    """

    def __init__(
        self,
        path: Path,
        generation: str,
        manifest: dict,
        faiss_index,
        vectors: np.ndarray,
        postings: Postings,
        passage_span: np.ndarray,
        references: np.ndarray,
        store: _Store,
        documents: list[Document],
        ingested_at: dict[str, float],
    ):
        self.path = path
        self.generation = generation
        self.manifest = manifest
        self.faiss = faiss_index
        self.vectors = vectors
        self.postings = postings
        self.passage_span = passage_span
        self.references = references
        self._store = store
        self._documents = documents
        self._docs = {d.doc_id: d for d in documents}
        self._ingested_at = ingested_at
        self._content: IndexContent | None = None
        self._paras: dict[tuple[str, int], Paragraph] | None = None
        self._positions: dict[tuple[str, int], int] | None = None
        self.sentences: SentenceVectors | None = None  # set by `open_generation`
        self._content_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: str | Path, model: str, dimension: int) -> Index:
        """Open the live generation; refuse one built by another model or format version.

        Raises `IndexNotFound` (nothing here, or an empty index), `IndexMismatch` (another model or
        format) or `IndexDamaged` (here but broken); never a raw faiss, SQLite or JSON error.
        """
        path = Path(index_dir)
        generation = live_generation(path)
        if generation is None:
            raise IndexNotFound(path)
        index = open_generation(path, generation, model, dimension)
        if not index.documents:
            raise IndexNotFound(path, "the index is empty")
        return index

    @property
    def paragraph_count(self) -> int:
        return int(self.manifest["paragraphs"])

    @property
    def passage_count(self) -> int:
        return int(self.manifest["chunks"])

    @property
    def is_exact(self) -> bool:
        """Whether dense search is exact (a flat index) rather than approximate (`rag.index.ann`)."""
        return self.manifest.get("dense", {}).get("kind", "exact") == "exact"

    @property
    def content(self) -> IndexContent:
        """Every record in memory: read at open for a small index, on first use for a large one (slow there)."""
        with self._content_lock:
            if self._content is None:
                self._content = read_content(
                    self.path, self.generation, self._store, self._documents, self._ingested_at, self.vectors
                )
                self._paras = {(p.doc_id, p.para): p for p in self._content.paragraphs}
            return self._content

    @property
    def documents(self) -> list[Document]:
        return list(self._documents)

    def document(self, doc_id: str) -> Document:
        try:
            return self._docs[doc_id]
        except KeyError:
            known = ", ".join(sorted(self._docs)) or "(none)"
            raise UnknownParagraph(f"no document '{doc_id}' in the index; known: {known}") from None

    def paragraphs(self, doc_id: str) -> list[Paragraph]:
        self.document(doc_id)
        if self._content is not None:
            return [p for p in self._content.paragraphs if p.doc_id == doc_id]
        return [
            _paragraph(r)
            for r in self._store.query(
                f"SELECT {self._store.paragraph_columns} FROM paragraphs WHERE doc_id = ? ORDER BY para", (doc_id,)
            )
        ]

    def paragraph(self, doc_id: str, para: int) -> Paragraph:
        self.document(doc_id)
        found = self._find(doc_id, para)
        if found is None:
            count = len(self.paragraphs(doc_id))
            raise UnknownParagraph(f"'{doc_id}' has no paragraph {para}; it has paragraphs 1 to {count}")
        return found

    def has_paragraph(self, doc_id: str, para: int) -> bool:
        return self._find(doc_id, para) is not None

    def _find(self, doc_id: str, para: int) -> Paragraph | None:
        if self._paras is not None:
            return self._paras.get((doc_id, para))
        rows = self._store.query(
            f"SELECT {self._store.paragraph_columns} FROM paragraphs WHERE doc_id = ? AND para = ?", (doc_id, para)
        )
        return _paragraph(rows[0]) if rows else None

    def ingested_at(self, doc_id: str) -> float | None:
        return self._ingested_at.get(doc_id)

    def position(self, doc_id: str, para: int) -> int | None:
        """A paragraph's position (its row in the paragraphs table), or None when there is no such paragraph."""
        if self._content is not None:
            with self._content_lock:
                if self._positions is None:
                    self._positions = {(p.doc_id, p.para): i for i, p in enumerate(self._content.paragraphs)}
            return self._positions.get((doc_id, para))
        rows = self._store.query("SELECT position FROM paragraphs WHERE doc_id = ? AND para = ?", (doc_id, para))
        return int(rows[0][0]) if rows else None

    def paragraphs_at(self, positions: Sequence[int]) -> list[Paragraph]:
        """The paragraphs at these positions, in the order given."""
        positions = [int(p) for p in positions]
        if self._content is not None:
            return [self._content.paragraphs[p] for p in positions]
        found: dict[int, Paragraph] = {}
        for start in range(0, len(positions), 500):  # SQLite's limit on bound parameters
            part = positions[start : start + 500]
            for r in self._store.query(
                f"SELECT position, {self._store.paragraph_columns} FROM paragraphs WHERE position IN "
                f"({','.join('?' * len(part))})",
                part,
            ):
                found[r[0]] = _paragraph(r[1:])
        missing = [p for p in positions if p not in found]
        if missing:
            raise IndexDamaged(self.path, f"{self.generation}/meta.sqlite has no paragraph at position {missing[0]}")
        return [found[p] for p in positions]

    def passage_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The paragraph positions the chunk rows hold, row after row, and how many each holds (one, or a run
        of short paragraphs of one section)."""
        span = np.asarray(self.passage_span[np.asarray(rows, dtype=np.int64)], dtype=np.int64).reshape(-1, 2)
        counts = span[:, 1] - span[:, 0] + 1
        if (counts == 1).all():
            return span[:, 0], counts
        starts = np.repeat(span[:, 0] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return starts + np.arange(int(counts.sum())), counts

    def passage_rows(self, paragraph: Paragraph) -> list[int]:
        """The chunk rows that hold a paragraph."""
        return [
            r[0]
            for r in self._store.query(
                "SELECT row FROM chunks WHERE doc_id = ? AND para_start <= ? AND para_end >= ? ORDER BY row",
                (paragraph.doc_id, paragraph.para, paragraph.para),
            )
        ]

    def word_ids(self, words: list[str]) -> list[int | None]:
        """BM25 term ids of query words (`rag.index.bm25.words`); None for a word no paragraph holds."""
        unique = list(dict.fromkeys(words))
        found: dict[str, int] = {}
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            found.update(
                self._store.query(f"SELECT word, id FROM words WHERE word IN ({','.join('?' * len(part))})", part)
            )
        return [found.get(w) for w in words]

    def close(self) -> None:
        self._store.close()


def _paragraph(r: tuple) -> Paragraph:
    return Paragraph(
        doc_id=r[0],
        para=r[1],
        page=r[2],
        heading=r[3] or "",
        text=r[4],
        source_paras=tuple(json.loads(r[5])),
        table=Table.from_json(json.loads(r[6])) if r[6] else None,
    )


def open_generation(
    index_dir: str | Path, generation: str, model: str, dimension: int, eager: bool | None = None
) -> Index:
    """One generation, its files checked against each other and the embedder (cheaply: no scan of a large one).

    `eager` reads every record into memory and checks each row; by default only up to `EAGER_PARAGRAPHS`.
    """
    path = Path(index_dir)
    manifest = read_generation_manifest(path, generation)
    check_manifest(manifest, model, dimension, path)
    check_manifest_fields(path, generation, manifest)
    faiss_index = read_vectors(path, generation, manifest)
    vectors = read_exact_vectors(path, generation, manifest)
    postings = read_postings(path, generation)
    passage_span, references = read_layout(path, generation)
    store = _Store(path, generation)
    eager = eager or (eager is None and manifest["paragraphs"] <= EAGER_PARAGRAPHS)
    try:
        check_counts(path, generation, manifest, store.counts(exact=eager))
        check_sizes(path, generation, manifest, faiss_index, vectors, postings, passage_span)
        documents, ingested_at = store.documents()
        index = Index(
            path,
            generation,
            manifest,
            faiss_index,
            vectors,
            postings,
            passage_span,
            references,
            store,
            documents,
            ingested_at,
        )
        index.sentences = load_sentence_vectors(
            path / generation, manifest["paragraphs"], dimension, path, index.position
        )
        if eager:
            check_passage_paragraphs(path, generation, index.content, passage_span)
    except BaseException:
        store.close()
        raise
    return index


def load_generation(index_dir: str | Path, generation: str, model: str, dimension: int) -> Index:
    """One generation opened and checked row by row, whatever its size (`rag doctor`)."""
    return open_generation(index_dir, generation, model, dimension, eager=True)


def read_vectors(index_dir: str | Path, generation: str, manifest: dict):
    """vectors.faiss, the search index (an approximate one memory-mapped)."""
    path = Path(index_dir)
    file = path / generation / "vectors.faiss"
    if not file.is_file():
        raise IndexDamaged(path, f"{generation}/vectors.faiss is missing")
    try:
        faiss_index = ann.read(file, manifest.get("dense", {}))
    except RuntimeError as e:  # faiss reports a missing, truncated or foreign file as a RuntimeError
        raise IndexDamaged(path, f"{generation}/vectors.faiss cannot be read ({_faiss_reason(e)})") from e
    if faiss_index.d != manifest.get("dimension"):
        raise IndexDamaged(
            path,
            f"{generation}/vectors.faiss holds {faiss_index.d}-dimensional vectors, "
            f"the manifest says {manifest.get('dimension')}",
        )
    if ann.is_exact(faiss_index) != (manifest["dense"]["kind"] == "exact"):
        raise IndexDamaged(
            path, f"{generation}/vectors.faiss is not the {manifest['dense']['kind']} index the manifest says"
        )
    return faiss_index


def read_exact_vectors(index_dir: str | Path, generation: str, manifest: dict) -> np.ndarray:
    """vectors.f32, memory-mapped: (chunks, dimension) float32."""
    path = Path(index_dir)
    file = path / generation / "vectors.f32"
    if not file.is_file():
        raise IndexDamaged(path, f"{generation}/vectors.f32 is missing")
    rows, d = manifest["chunks"], manifest["dimension"]
    size = file.stat().st_size
    if size != rows * d * 4:
        raise IndexDamaged(
            path,
            f"{generation}/vectors.f32 holds {size} bytes, not the {rows * d * 4} of {rows} vectors of {d} dimensions",
        )
    if not rows:
        return np.zeros((0, d), np.float32)
    return np.memmap(file, dtype=np.float32, mode="r", shape=(rows, d))


def read_postings(index_dir: str | Path, generation: str) -> Postings:
    path = Path(index_dir)
    folder = path / generation / "bm25"
    try:
        postings = Postings.load(folder)
    except FileNotFoundError as e:
        raise IndexDamaged(path, f"{generation}/bm25/{Path(e.filename or '').name} is missing") from None
    except (OSError, ValueError) as e:  # a truncated or foreign .npy
        raise IndexDamaged(path, f"{generation}/bm25 cannot be read ({e})") from e
    problem = postings.check()
    if problem:
        raise IndexDamaged(path, f"{generation}/bm25: {problem}")
    return postings


def read_layout(index_dir: str | Path, generation: str) -> tuple[np.ndarray, np.ndarray]:
    """chunk_paras.npy (memory-mapped) and references.npy."""
    path = Path(index_dir)
    out = []
    for name, mmap in (("chunk_paras.npy", "r"), ("references.npy", None)):
        try:
            out.append(np.load(path / generation / name, mmap_mode=mmap, allow_pickle=False))
        except FileNotFoundError:
            raise IndexDamaged(path, f"{generation}/{name} is missing") from None
        except (OSError, ValueError) as e:
            raise IndexDamaged(path, f"{generation}/{name} cannot be read ({e})") from e
    return out[0], out[1]


def _faiss_reason(e: RuntimeError) -> str:
    """faiss's message without its C++ location: 'Error in f() at io.cpp:69: could not open' -> 'could not open'."""
    m = re.search(r" at \S+:\d+: (?:Error: '.*?' failed: )?(.*)", str(e), re.DOTALL)
    return ((m.group(1) if m else str(e)).strip().splitlines() or [""])[0]


class _Store:
    """A generation's meta.sqlite, read-only and open for the reader's life; one query at a time, as threads
    (the UI's sessions) share it. Every SQLite failure is `IndexDamaged`."""

    def __init__(self, index_dir: Path, generation: str):
        self.index_dir = index_dir
        self.generation = generation
        db = index_dir / generation / "meta.sqlite"
        if not db.is_file():
            raise IndexDamaged(index_dir, f"{generation}/meta.sqlite is missing")
        self._lock = threading.Lock()
        try:
            # A URI, so that mode=ro holds; as_uri() escapes '?' and '#' in the folder's name.
            self._con = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as e:
            raise IndexDamaged(index_dir, f"{generation}/meta.sqlite cannot be read ({e})") from e

    @functools.cached_property
    def paragraph_columns(self) -> str:
        """The paragraph columns to select: NULL for table_json in a meta.sqlite written before tables."""
        names = {r[1] for r in self.query("PRAGMA table_info(paragraphs)")}
        return PARAGRAPH_COLUMNS if "table_json" in names else PARAGRAPH_COLUMNS_BEFORE_TABLES

    def query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._con.execute(sql, args).fetchall()
            except sqlite3.Error as e:  # "file is not a database", "no such table", "database disk image is malformed"
                raise IndexDamaged(self.index_dir, f"{self.generation}/meta.sqlite cannot be read ({e})") from e

    def counts(self, exact: bool = True) -> dict[str, int]:
        """Rows per table. Not `exact`: paragraphs and chunks as their highest position or row + 1, read from the
        b-tree's end (COUNT(*) reads a 1M-paragraph table whole); positions and rows are written without gaps."""
        if exact:
            return {
                table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0]
                for table in ("documents", "paragraphs", "chunks")
            }
        last = {
            table: self.query(f"SELECT MAX({key}) FROM {table}")[0][0]
            for table, key in (("paragraphs", "position"), ("chunks", "row"))
        }
        return {
            "documents": self.query("SELECT COUNT(*) FROM documents")[0][0],
            **{table: 0 if value is None else value + 1 for table, value in last.items()},
        }

    def documents(self) -> tuple[list[Document], dict[str, float]]:
        documents, ingested_at = [], {}
        try:
            for row in self.query(
                "SELECT doc_id, title, kind, source_path, sha256, format, pages, meta, ingested_at "
                "FROM documents ORDER BY doc_id"
            ):
                documents.append(Document(*row[:7], meta=json.loads(row[7] or "{}")))
                ingested_at[row[0]] = row[8]
        except (ValueError, TypeError) as e:  # a row whose JSON columns were edited by hand
            raise IndexDamaged(self.index_dir, f"{self.generation}/meta.sqlite holds a malformed row ({e})") from e
        return documents, ingested_at

    def quick_check(self) -> list[str]:
        return [r[0] for r in self.query("PRAGMA quick_check")]

    def close(self) -> None:
        with self._lock:
            self._con.close()


@contextmanager
def read_only_store(index_dir: str | Path, generation: str) -> Iterator[_Store]:
    """A generation's meta.sqlite for a few queries (`rag doctor`); `IndexDamaged` when it is missing or unreadable."""
    store = _Store(Path(index_dir), generation)
    try:
        yield store
    finally:
        store.close()


def read_content(
    index_dir: str | Path,
    generation: str,
    store: _Store,
    documents: list[Document],
    ingested_at: dict[str, float],
    vectors: np.ndarray,
) -> IndexContent:
    """Every paragraph (in position order) and chunk (in row order) as records."""
    try:
        paragraphs = [
            _paragraph(r) for r in store.query(f"SELECT {store.paragraph_columns} FROM paragraphs ORDER BY position")
        ]
        passages = [
            Passage(*r)
            for r in store.query("SELECT chunk_id, doc_id, para_start, para_end, text FROM chunks ORDER BY row")
        ]
    except (ValueError, TypeError) as e:  # a row whose JSON columns were edited by hand
        raise IndexDamaged(index_dir, f"{generation}/meta.sqlite holds a malformed row ({e})") from e
    return IndexContent(list(documents), paragraphs, passages, vectors, dict(ingested_at))
