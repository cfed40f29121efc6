"""The index folder: generations of a SQLite metadata store, vectors, BM25 postings and a versioned manifest.

Layout of an index folder (default `.rag/index`, or $RAG_INDEX):

    CURRENT            name of the live generation, replaced atomically (os.replace)
    .lock              held by the one writer at a time; holds its pid
    gen-<time>-<pid>/  one complete generation:
        manifest.json    format, format_version, model, dimension, chunking, counts, `dense` (the kind and
                         settings of vectors.faiss, `rag.index.ann`), and `replaces`: the generation it replaced
                         (None when there was no readable one)
        meta.sqlite      documents, paragraphs (by position; a table's structure as JSON in table_json), chunks
                         (by row), and the BM25 vocabulary: terms (stem -> term id) and words (each word
                         paragraphs hold -> its term id)
        vectors.f32      every chunk's L2-normalised vector, float32; row i is chunk row i
        vectors.faiss    the search index over those rows: exact (IndexFlatIP), or IVF-PQ above a size (`rag.index.ann`)
        chunk_paras.npy  int32 (chunks, 2): the first and last paragraph position of each chunk row
        references.npy   int32: positions of source-list paragraphs (`rag.load.paragraphs.is_reference`)
        bm25/            BM25 postings over paragraph positions (`rag.index.bm25`)
        sentences.f32, sentence_offsets.npy   every paragraph's sentence vectors, by position (`rag.embed.sentence_vectors`)

A paragraph's *position* is its row in the paragraphs table. A full write numbers paragraphs in
(doc_id, para) order. An ingest that only adds documents to an index whose dense search is approximate
appends instead (`GenerationWriter(base=...)`): the new generation starts as a copy of the live one, and
its paragraphs and chunks continue the old positions and rows; nothing old is re-embedded or re-tokenised.

A writer builds a whole new generation beside the live one, fsyncs it, then swaps CURRENT.
A crash or kill at any moment leaves CURRENT naming the previous, complete generation.
Readers memory-map the arrays and keep meta.sqlite open, reading paragraphs by position as a question
needs them, so a 1M-paragraph index opens in well under a second and holds little in RAM. An index of at
most `EAGER_PARAGRAPHS` paragraphs is also read whole at open and checked row by row, as it always was.
On POSIX a generation deleted while a reader holds it open lives on until that reader closes it.

Two states are told apart. *No index* (the folder is absent, or holds no CURRENT and no complete
generation) is `IndexNotFound`, and a first ingest may create one. *A damaged index* (generations
are here but CURRENT is missing or names nothing usable; a manifest, the SQLite store, the vectors or
the postings cannot be read or disagree) is `IndexDamaged`, never an empty index: an ingest that took
it for empty would publish an index without the old documents. `rag doctor` (rag/index/doctor.py)
says what is wrong and can point CURRENT back at a complete generation.

After a swap a writer deletes only what it can vouch for: generations a killed writer left
incomplete, and those the previous live generation replaced. The previous one stays as the spare
(a reader may be loading it). A complete generation outside that chain (left by a lost or
hand-edited CURRENT, or a rebuild over a damaged index) was never read by this writer, so it is
never deleted; `rag doctor` lists it.

No pickle anywhere. Not handled: concurrent writers on a network filesystem without flock, a
hand-edited generation whose files still agree with each other, or removing documents from a large
index in place (a removal or an update rewrites the generation from its stored rows and vectors).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rag.index import ann
from rag.index.bm25 import Postings, PostingsWriter, Vocabulary
from rag.documents import Chunk, Document, Paragraph, Table
from rag.errors import IndexBusy, IndexDamaged, IndexMismatch, IndexNotFound, UnknownParagraph
from rag.load.paragraphs import is_reference
from rag.embed.sentence_vectors import OFFSETS_FILE as SENTENCE_OFFSETS_FILE
from rag.embed.sentence_vectors import VECTORS_FILE as SENTENCE_VECTORS_FILE
from rag.embed.sentence_vectors import SentenceVectors
from rag.embed.sentence_vectors import load as load_sentence_vectors

FORMAT = "paracite-index"
FORMAT_VERSION = 2  # 2: vectors.f32, bm25/, chunk_paras.npy, references.npy, positions, terms, `dense`
DEFAULT_INDEX_DIR = ".rag/index"
INDEX_ENV = "RAG_INDEX"
# Up to this many paragraphs an open index also holds every record in memory (`Index.content`) and checks
# every row, as before; above it paragraphs are read from meta.sqlite by position (`rag doctor` checks rows).
EAGER_PARAGRAPHS = 20_000
# What CURRENT may name: a folder of this index, never a path out of it ("../x", "/etc").
_GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9._-]+")
_FILES = ("manifest.json", "meta.sqlite", "vectors.f32", "vectors.faiss", "chunk_paras.npy", "references.npy")

_SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, kind TEXT, source_path TEXT, sha256 TEXT,
                        format TEXT, pages INTEGER, meta TEXT, ingested_at REAL);
CREATE TABLE paragraphs (position INTEGER PRIMARY KEY, doc_id TEXT, para INTEGER, page INTEGER, heading TEXT,
                         text TEXT, source_paras TEXT, table_json TEXT);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT, doc_id TEXT, para_start INTEGER,
                     para_end INTEGER, text TEXT);
CREATE TABLE terms (term TEXT PRIMARY KEY, id INTEGER) WITHOUT ROWID;
CREATE TABLE words (word TEXT PRIMARY KEY, id INTEGER) WITHOUT ROWID;
"""
# Made after the bulk insert of a new generation (faster than keeping them up to date row by row).
_INDEXES = """
CREATE UNIQUE INDEX paragraphs_by_doc ON paragraphs (doc_id, para);
CREATE UNIQUE INDEX chunks_by_id ON chunks (chunk_id);
CREATE INDEX chunks_by_doc ON chunks (doc_id, para_start);
"""
# table_json (a table paragraph's structure, `Table.to_json`, else NULL) came later: an older meta.sqlite has no such
# column, and reads as NULL (`_Store.paragraph_columns`); an append onto one adds it.
_PARAGRAPH_COLUMNS = "doc_id, para, page, heading, text, source_paras, table_json"
_PARAGRAPH_COLUMNS_BEFORE_TABLES = "doc_id, para, page, heading, text, source_paras, NULL"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


@dataclass(frozen=True)
class IndexContent:
    """Everything one generation holds, as records. Chunk i owns row i of `vectors`; paragraph i is position i."""

    documents: list[Document]
    paragraphs: list[Paragraph]
    chunks: list[Chunk]
    vectors: np.ndarray  # float32, shape (len(chunks), dimension); memory-mapped when read from an index
    ingested_at: dict[str, float]
    # (doc_id, para) -> its sentence vectors, for a generation being written; readers use `Index.sentences`.
    sentences: dict[tuple[str, int], np.ndarray] | None = None


class Index:
    """A loaded, read-only generation of the index folder.

    What retrieval reads, by paragraph position and chunk row: `faiss` and `vectors` (dense), `postings`
    and `word_ids` (BM25), `chunk_positions`, `references`, `paragraphs_at` and `chunk_rows`. Thread-safe.
    """

    def __init__(self, path: Path, generation: str, manifest: dict, faiss_index, vectors: np.ndarray,
                 postings: Postings, chunk_span: np.ndarray, references: np.ndarray, store: "_Store",
                 documents: list[Document], ingested_at: dict[str, float]):
        self.path = path
        self.generation = generation
        self.manifest = manifest
        self.faiss = faiss_index
        self.vectors = vectors
        self.postings = postings
        self.chunk_span = chunk_span
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
    def open(cls, index_dir: str | Path, model: str, dimension: int) -> "Index":
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
    def chunk_count(self) -> int:
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
                self._content = read_content(self.path, self.generation, self._store, self._documents,
                                             self._ingested_at, self.vectors)
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
        return [_paragraph(r) for r in self._store.query(
            f"SELECT {self._store.paragraph_columns} FROM paragraphs WHERE doc_id = ? ORDER BY para", (doc_id,))]

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
        rows = self._store.query(f"SELECT {self._store.paragraph_columns} FROM paragraphs WHERE doc_id = ? AND para = ?",
                                 (doc_id, para))
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
            part = positions[start:start + 500]
            for r in self._store.query(f"SELECT position, {self._store.paragraph_columns} FROM paragraphs WHERE position IN "
                                       f"({','.join('?' * len(part))})", part):
                found[r[0]] = _paragraph(r[1:])
        missing = [p for p in positions if p not in found]
        if missing:
            raise IndexDamaged(self.path, f"{self.generation}/meta.sqlite has no paragraph at position {missing[0]}")
        return [found[p] for p in positions]

    def chunk_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The paragraph positions the chunk rows hold, row after row, and how many each holds (one, or a run
        of short paragraphs of one section)."""
        span = np.asarray(self.chunk_span[np.asarray(rows, dtype=np.int64)], dtype=np.int64).reshape(-1, 2)
        counts = span[:, 1] - span[:, 0] + 1
        if (counts == 1).all():
            return span[:, 0], counts
        starts = np.repeat(span[:, 0] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return starts + np.arange(int(counts.sum())), counts

    def chunk_rows(self, paragraph: Paragraph) -> list[int]:
        """The chunk rows that hold a paragraph."""
        return [r[0] for r in self._store.query(
            "SELECT row FROM chunks WHERE doc_id = ? AND para_start <= ? AND para_end >= ? ORDER BY row",
            (paragraph.doc_id, paragraph.para, paragraph.para))]

    def word_ids(self, words: list[str]) -> list[int | None]:
        """BM25 term ids of query words (`rag.index.bm25.words`); None for a word no paragraph holds."""
        unique = list(dict.fromkeys(words))
        found: dict[str, int] = {}
        for start in range(0, len(unique), 500):
            part = unique[start:start + 500]
            found.update(self._store.query(f"SELECT word, id FROM words WHERE word IN ({','.join('?' * len(part))})",
                                           part))
        return [found.get(w) for w in words]

    def close(self) -> None:
        self._store.close()


def _paragraph(r: tuple) -> Paragraph:
    return Paragraph(doc_id=r[0], para=r[1], page=r[2], heading=r[3] or "", text=r[4],
                     source_paras=tuple(json.loads(r[5])), table=Table.from_json(json.loads(r[6])) if r[6] else None)


def check_manifest(manifest: dict, model: str, dimension: int, path: Path) -> None:
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index at {path} has format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"this paracite reads {FORMAT!r} v{FORMAT_VERSION}; rebuild it with: rag ingest corpus/ --rebuild --index {path}"
        )
    if manifest.get("model") != model or manifest.get("dimension") != dimension:
        raise IndexMismatch(
            f"index at {path} was built with {manifest.get('model')!r} ({manifest.get('dimension')} dims), "
            f"but the embedder is {model!r} ({dimension} dims); rebuild it with: rag ingest corpus/ --rebuild --index {path}"
        )


# --- which generation is live -------------------------------------------------------------------------

def live_generation(index_dir: str | Path) -> str | None:
    """The generation CURRENT names; None when there is no index here at all.

    Raises `IndexDamaged` when an index is here but CURRENT is missing, unreadable, or names a
    generation that is absent or incomplete. Cheap (no globbing) when CURRENT is sound.
    """
    path = Path(index_dir)
    if path.exists() and not path.is_dir():
        raise IndexDamaged(path, "it is a file, not an index folder", fix="pass an index folder with --index")
    try:
        raw = (path / "CURRENT").read_text(encoding="utf-8")
    except FileNotFoundError:
        complete = complete_generations(path)
        if not complete:
            return None  # nothing here, or only folders of a first ingest that was killed
        raise IndexDamaged(path, f"CURRENT is missing, but {len(complete)} complete generation(s) are here "
                                 f"(newest: {complete[-1]})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise IndexDamaged(path, f"CURRENT cannot be read ({e})") from e
    name = raw.strip()
    if not _GENERATION_NAME.fullmatch(name):
        raise IndexDamaged(path, f"CURRENT holds {name[:80]!r}, not the name of a generation folder (gen-...)")
    if not (path / name).is_dir():
        raise IndexDamaged(path, f"CURRENT names {name}, which is not in the folder")
    if not (path / name / "manifest.json").is_file():
        raise IndexDamaged(path, f"CURRENT names {name}, which is incomplete (it has no manifest.json)")
    return name


def current_generation(index_dir: str | Path) -> str | None:
    """The live generation's name, or None when none is usable (no index, or a damaged one).

    For callers that only poll for a change (`Engine.is_stale`); `live_generation` says why.
    """
    try:
        return live_generation(index_dir)
    except IndexDamaged:
        return None


def generation_dirs(index_dir: str | Path) -> list[Path]:
    """Every gen-* folder, oldest first (by the manifest's creation time, else the folder's mtime)."""
    path = Path(index_dir)
    if not path.is_dir():
        return []
    return sorted((d for d in path.glob("gen-*") if d.is_dir()), key=_age)


def complete_generations(index_dir: str | Path) -> list[str]:
    """Names of the generations whose writer got as far as the manifest (written last), oldest first."""
    return [d.name for d in generation_dirs(index_dir) if (d / "manifest.json").is_file()]


def incomplete_generations(index_dir: str | Path) -> list[str]:
    """Names of gen-* folders without a manifest: left by a writer killed mid-way (or one writing now)."""
    return [d.name for d in generation_dirs(index_dir) if not (d / "manifest.json").is_file()]


def _age(gen_dir: Path) -> tuple[float, str]:
    try:
        created = json.loads((gen_dir / "manifest.json").read_text(encoding="utf-8"))["created"]
        if isinstance(created, (int, float)):
            return float(created), gen_dir.name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        return gen_dir.stat().st_mtime, gen_dir.name
    except OSError:
        return 0.0, gen_dir.name


def read_manifest(index_dir: str | Path) -> dict | None:
    """The live generation's manifest; None when there is no index. `IndexDamaged` when unreadable."""
    generation = live_generation(index_dir)
    if generation is None:
        return None
    return read_generation_manifest(index_dir, generation)


# --- reading one generation, every failure named --------------------------------------------------------

def read_generation_manifest(index_dir: str | Path, generation: str) -> dict:
    path = Path(index_dir)
    file = path / generation / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexDamaged(path, f"{generation}/manifest.json is missing") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise IndexDamaged(path, f"{generation}/manifest.json is not readable JSON ({e})") from e
    if not isinstance(manifest, dict):
        raise IndexDamaged(path, f"{generation}/manifest.json holds {type(manifest).__name__}, not a JSON object")
    return manifest


def open_generation(index_dir: str | Path, generation: str, model: str, dimension: int,
                    eager: bool | None = None) -> Index:
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
    chunk_span, references = read_layout(path, generation)
    store = _Store(path, generation)
    eager = eager or (eager is None and manifest["paragraphs"] <= EAGER_PARAGRAPHS)
    try:
        check_counts(path, generation, manifest, store.counts(exact=eager))
        check_sizes(path, generation, manifest, faiss_index, vectors, postings, chunk_span)
        documents, ingested_at = store.documents()
        index = Index(path, generation, manifest, faiss_index, vectors, postings, chunk_span, references, store,
                      documents, ingested_at)
        index.sentences = load_sentence_vectors(path / generation, manifest["paragraphs"], dimension, path,
                                                index.position)
        if eager:
            check_chunk_paragraphs(path, generation, index.content, chunk_span)
    except BaseException:
        store.close()
        raise
    return index


def load_generation(index_dir: str | Path, generation: str, model: str, dimension: int) -> Index:
    """One generation opened and checked row by row, whatever its size (`rag doctor`)."""
    return open_generation(index_dir, generation, model, dimension, eager=True)


def check_manifest_fields(index_dir: Path, generation: str, manifest: dict) -> None:
    """The fields ingest relies on, beyond format and model (a hand edit can drop them)."""
    chunking = manifest.get("chunking")
    if not isinstance(chunking, dict) or not isinstance(chunking.get("max_words"), int):
        raise IndexDamaged(index_dir, f"{generation}/manifest.json has no chunking.max_words")
    for key in ("documents", "paragraphs", "chunks"):
        if not isinstance(manifest.get(key), int):
            raise IndexDamaged(index_dir, f"{generation}/manifest.json has no count of {key}")
    dense = manifest.get("dense")
    if not isinstance(dense, dict) or dense.get("kind") not in ("exact", "ivfpq"):
        raise IndexDamaged(index_dir, f"{generation}/manifest.json has no dense.kind (exact or ivfpq)")


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
        raise IndexDamaged(path, f"{generation}/vectors.faiss holds {faiss_index.d}-dimensional vectors, "
                                 f"the manifest says {manifest.get('dimension')}")
    if ann.is_exact(faiss_index) != (manifest["dense"]["kind"] == "exact"):
        raise IndexDamaged(path, f"{generation}/vectors.faiss is not the {manifest['dense']['kind']} index "
                                 f"the manifest says")
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
        raise IndexDamaged(path, f"{generation}/vectors.f32 holds {size} bytes, not the {rows * d * 4} of "
                                 f"{rows} vectors of {d} dimensions")
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
        return _PARAGRAPH_COLUMNS if "table_json" in names else _PARAGRAPH_COLUMNS_BEFORE_TABLES

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
            return {table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0]
                    for table in ("documents", "paragraphs", "chunks")}
        last = {table: self.query(f"SELECT MAX({key}) FROM {table}")[0][0]
                for table, key in (("paragraphs", "position"), ("chunks", "row"))}
        return {"documents": self.query("SELECT COUNT(*) FROM documents")[0][0],
                **{table: 0 if value is None else value + 1 for table, value in last.items()}}

    def documents(self) -> tuple[list[Document], dict[str, float]]:
        documents, ingested_at = [], {}
        try:
            for row in self.query("SELECT doc_id, title, kind, source_path, sha256, format, pages, meta, ingested_at "
                                  "FROM documents ORDER BY doc_id"):
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


def read_content(index_dir: str | Path, generation: str, store: _Store, documents: list[Document],
                 ingested_at: dict[str, float], vectors: np.ndarray) -> IndexContent:
    """Every paragraph (in position order) and chunk (in row order) as records."""
    try:
        paragraphs = [_paragraph(r) for r in store.query(f"SELECT {store.paragraph_columns} FROM paragraphs "
                                                          "ORDER BY position")]
        chunks = [Chunk(*r) for r in store.query("SELECT chunk_id, doc_id, para_start, para_end, text FROM chunks "
                                                 "ORDER BY row")]
    except (ValueError, TypeError) as e:  # a row whose JSON columns were edited by hand
        raise IndexDamaged(index_dir, f"{generation}/meta.sqlite holds a malformed row ({e})") from e
    return IndexContent(list(documents), paragraphs, chunks, vectors, dict(ingested_at))


def check_counts(index_dir: str | Path, generation: str, manifest: dict, counts: dict[str, int]) -> None:
    for key in ("documents", "paragraphs", "chunks"):
        if manifest.get(key) != counts[key]:
            raise IndexDamaged(index_dir, f"{generation}/manifest.json counts {manifest.get(key)} {key}, "
                                          f"meta.sqlite holds {counts[key]}")


def check_sizes(index_dir: str | Path, generation: str, manifest: dict, faiss_index, vectors: np.ndarray,
                postings: Postings, chunk_span: np.ndarray) -> None:
    """The vectors, postings and layout arrays have one entry per chunk or paragraph the manifest counts."""
    chunks, paragraphs = manifest["chunks"], manifest["paragraphs"]
    if faiss_index.ntotal != chunks:
        raise IndexDamaged(index_dir, f"{generation}/vectors.faiss holds {faiss_index.ntotal} vectors "
                                      f"for {chunks} chunks in meta.sqlite")
    if postings.paragraphs != paragraphs:
        raise IndexDamaged(index_dir, f"{generation}/bm25 holds lengths of {postings.paragraphs} paragraphs "
                                      f"for {paragraphs} in meta.sqlite")
    if chunk_span.shape != (chunks, 2):
        raise IndexDamaged(index_dir, f"{generation}/chunk_paras.npy has shape {chunk_span.shape}, "
                                      f"not ({chunks}, 2)")
    if chunks and (int(chunk_span.min()) < 0 or int(chunk_span.max()) >= paragraphs):
        raise IndexDamaged(index_dir, f"{generation}/chunk_paras.npy points outside the {paragraphs} paragraphs")


def check_chunk_paragraphs(index_dir: str | Path, generation: str, content: IndexContent,
                           chunk_span: np.ndarray) -> None:
    """Every chunk's paragraphs exist, at the positions chunk_paras.npy gives: a hit must resolve to paragraphs
    a person can read."""
    paras = {(p.doc_id, p.para): i for i, p in enumerate(content.paragraphs)}
    for c, (first, last) in zip(content.chunks, np.asarray(chunk_span).tolist()):
        missing = [n for n in range(c.para_start, c.para_end + 1) if (c.doc_id, n) not in paras]
        if missing or c.para_end < c.para_start:
            raise IndexDamaged(index_dir, f"{generation}: chunk {c.chunk_id} cites {c.doc_id} paragraph(s) "
                                          f"{missing or [c.para_start, c.para_end]}, which meta.sqlite does not hold")
        if (paras[(c.doc_id, c.para_start)], paras[(c.doc_id, c.para_end)]) != (first, last):
            raise IndexDamaged(index_dir, f"{generation}/chunk_paras.npy places chunk {c.chunk_id} at positions "
                                          f"{first}-{last}, not where meta.sqlite holds its paragraphs")


# --- writing ---------------------------------------------------------------------------------------------

# (index folder, thread) -> depth. flock conflicts between two open files even in one process, so a
# thread that already holds the lock (corpus.add_uploads, around ingest) must not take it again.
_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()


@contextmanager
def write_lock(index_dir: str | Path) -> Iterator[None]:
    """One writer at a time; a second one fails at once (`IndexBusy`) instead of waiting.

    Re-entrant within one thread: code that holds the lock may call `ingest`, which takes it
    again. Another thread or process still gets `IndexBusy`.
    """
    path = Path(index_dir)
    path.mkdir(parents=True, exist_ok=True)
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    # Opened without truncating, so that a refused writer does not wipe the holder's pid.
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder_pid(path)
            who = f" (pid {holder})" if holder else ""
            raise IndexBusy(f"another ingest{who} is writing {path}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder_pid(index_dir: str | Path) -> int | None:
    """The pid written by the last writer to take the lock (it may have finished since)."""
    try:
        text = (Path(index_dir) / ".lock").read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def lock_is_held(index_dir: str | Path) -> bool:
    """True while some writer holds the lock: another process, or any thread of this one (this one too)."""
    lock = Path(index_dir) / ".lock"
    if not lock.is_file():
        return False
    with _held_guard:
        if any(k[0] == str(Path(index_dir).resolve()) for k in _held):
            return True
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


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
            w.add_chunks(chunks, vectors)
            generation = w.commit()
    """

    def __init__(self, index_dir: str | Path, manifest: dict, base: Index | None = None):
        self.path = Path(index_dir)
        self.manifest = dict(manifest)
        self.base = base
        self._named = named_by_current(self.path)
        self._previous = current_generation(self.path)
        # Only a generation whose manifest reads is vouched for, and so may later be deleted as replaced.
        self._replaces = (self._previous if self._previous and _manifest_or_none(self.path, self._previous) is not None
                          else None)
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
                self._con.executescript(_SCHEMA)
            elif "table_json" not in {r[1] for r in self._con.execute("PRAGMA table_info(paragraphs)")}:
                self._con.execute("ALTER TABLE paragraphs ADD COLUMN table_json TEXT")  # a base written before tables
            vocabulary = (Vocabulary(dict(self._con.execute("SELECT term, id FROM terms")),
                                     dict(self._con.execute("SELECT word, id FROM words"))) if base else Vocabulary())
            self._vectors = open(self.dir / "vectors.f32", "ab")
            self._sentences = open(self.dir / SENTENCE_VECTORS_FILE, "ab")
            self._postings = PostingsWriter(self.dir / "bm25", vocabulary, base.postings if base else None)
            self.documents = len(base.documents) if base else 0
            self.paragraphs = base.paragraph_count if base else 0
            self.chunks = base.chunk_count if base else 0
            self._first_new_chunk = self.chunks
            self._references: list[int] = list(np.asarray(base.references).tolist()) if base else []
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> "GenerationWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if not self._committed:
            self.abort()

    def add_documents(self, documents: Sequence[Document], ingested_at: dict[str, float]) -> None:
        self._con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            [(d.doc_id, d.title, d.kind, d.source_path, d.sha256, d.format, d.pages, json.dumps(d.meta),
              ingested_at.get(d.doc_id)) for d in documents])
        self.documents += len(documents)

    def add_paragraphs(self, paragraphs: Sequence[Paragraph], sentences: Sequence[np.ndarray] | None = None) -> None:
        """The next paragraphs, in position order (a document's paragraphs together, by number), with each one's
        sentence vectors (`rag.embed.sentence_vectors.embed_blocks`; None stores none, and questions embed them)."""
        if sentences is not None and len(sentences) != len(paragraphs):
            raise ValueError(f"{len(paragraphs)} paragraphs but {len(sentences)} blocks of sentence vectors")
        for block in sentences if sentences is not None else ():
            self._sentences.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self._sentence_counts.extend(len(b) for b in sentences) if sentences is not None else \
            self._sentence_counts.extend([0] * len(paragraphs))
        first = self.paragraphs
        self._con.executemany(
            f"INSERT INTO paragraphs (position, {_PARAGRAPH_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            [(first + i, p.doc_id, p.para, p.page, p.heading, p.text, json.dumps(list(p.source_paras)),
              json.dumps(p.table.to_json()) if p.table else None)
             for i, p in enumerate(paragraphs)])
        self._postings.add([p.text for p in paragraphs])
        self._references.extend(first + i for i, p in enumerate(paragraphs) if is_reference(p))
        self.paragraphs += len(paragraphs)

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """The next chunks and their vectors (L2-normalised, of the manifest's dimension), row for row."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.manifest["dimension"]):
            raise ValueError(f"{len(chunks)} chunks but vectors of shape {vectors.shape}; they must align")
        first = self.chunks
        self._con.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                              [(first + i, c.chunk_id, c.doc_id, c.para_start, c.para_end, c.text)
                               for i, c in enumerate(chunks)])
        self._vectors.write(vectors.tobytes())
        self.chunks += len(chunks)

    def commit(self) -> str:
        """Finish every file, fsync them, and swap CURRENT to the new generation; returns its name."""
        try:
            if self.base is None:
                self._con.executescript(_INDEXES)
            span = self._chunk_span()
            vocabulary = self._postings.vocabulary
            postings = self._postings.finish()
            first_new = len(vocabulary) - len(vocabulary.new_stems)
            self._con.executemany("INSERT INTO terms VALUES (?,?)",
                                  ((t, first_new + i) for i, t in enumerate(vocabulary.new_stems)))
            self._con.executemany("INSERT INTO words VALUES (?,?)",
                                  ((w, vocabulary.words[w]) for w in vocabulary.new_words))
            self._con.commit()
            self._con.close()
            self._vectors.close()
            self._sentences.close()
            np.save(self.dir / SENTENCE_OFFSETS_FILE, np.concatenate([[0], np.cumsum(self._sentence_counts,
                                                                                    dtype=np.int64)]).astype(np.int64),
                    allow_pickle=False)
            np.save(self.dir / "chunk_paras.npy", span, allow_pickle=False)
            np.save(self.dir / "references.npy", np.asarray(self._references, np.int32), allow_pickle=False)
            dense = self._write_dense()
            manifest = {**self.manifest, "format": FORMAT, "format_version": FORMAT_VERSION,
                        "documents": self.documents, "paragraphs": self.paragraphs, "chunks": self.chunks,
                        "dense": dense, "bm25": {"k1": postings.k1, "b": postings.b, "terms": postings.terms},
                        "created": time.time(), "replaces": self._replaces}
            (self.dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            for name in (*_FILES, SENTENCE_VECTORS_FILE, SENTENCE_OFFSETS_FILE):
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

    def _chunk_span(self) -> np.ndarray:
        """chunk_paras.npy: base's rows, then the new chunks' first and last paragraph positions (by a join)."""
        span = np.zeros((self.chunks - self._first_new_chunk, 2), np.int32)
        cursor = self._con.execute(
            "SELECT c.row, f.position, l.position FROM chunks c "
            "LEFT JOIN paragraphs f ON f.doc_id = c.doc_id AND f.para = c.para_start "
            "LEFT JOIN paragraphs l ON l.doc_id = c.doc_id AND l.para = c.para_end "
            "WHERE c.row >= ? ORDER BY c.row", (self._first_new_chunk,))
        while rows := cursor.fetchmany(_BLOCK):  # in blocks: 10M tuples at once would take gigabytes
            broken = [r for r in rows if r[1] is None or r[2] is None]
            if broken:
                raise ValueError(f"chunk row {broken[0][0]} cites a paragraph that was not added")
            block = np.asarray(rows, np.int64)
            span[block[:, 0] - self._first_new_chunk] = block[:, 1:]
        if self.base is not None:
            span = np.concatenate([np.asarray(self.base.chunk_span, np.int32), span])
        return span

    def _write_dense(self) -> dict:
        """vectors.faiss: base's trained index with the new rows added, or a new one (`rag.index.ann.plan`)."""
        d = self.manifest["dimension"]
        vectors = (np.memmap(self.dir / "vectors.f32", dtype=np.float32, mode="r", shape=(self.chunks, d))
                   if self.chunks else np.zeros((0, d), np.float32))
        base = self.base
        if base is not None and not ann.needs_retraining(base.manifest["dense"], self.chunks):
            spec = base.manifest["dense"]
            index = ann.read(base.path / base.generation / "vectors.faiss", spec, mmap=False)
            ann.add(index, vectors[base.chunk_count:])
        else:
            spec = ann.plan(self.chunks, d)
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
            part = paragraphs[start:start + _BLOCK]
            writer.add_paragraphs(part, None if content.sentences is None
                                  else [content.sentences[(p.doc_id, p.para)] for p in part])
        for start in range(0, len(content.chunks), _BLOCK):
            writer.add_chunks(content.chunks[start:start + _BLOCK], content.vectors[start:start + _BLOCK])
        return writer.commit()


_BLOCK = 50_000


def set_current(index_dir: str | Path, generation: str) -> None:
    """The swap: CURRENT is replaced in one rename, so it always names a complete generation."""
    path = Path(index_dir)
    tmp = path / f".CURRENT.{os.getpid()}"
    try:
        tmp.write_text(generation, encoding="utf-8")
        fsync_path(tmp)
        os.replace(tmp, path / "CURRENT")
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path)


def named_by_current(path: Path) -> str | None:
    """What CURRENT holds, unchecked; None when it is missing or unreadable."""
    try:
        return (path / "CURRENT").read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _manifest_or_none(path: Path, generation: str) -> dict | None:
    try:
        return read_generation_manifest(path, generation)
    except IndexDamaged:
        return None


def replaced_by(index_dir: str | Path, generation: str) -> list[str]:
    """The generations `generation` superseded, newest first: the chain its writer vouched for.

    Follows each manifest's `replaces`. A manifest written before that field existed vouches for
    the complete generations older than it that have no `replaces` either.
    """
    path = Path(index_dir)
    chain: list[str] = []
    seen = {generation}
    manifest = _manifest_or_none(path, generation)
    while manifest is not None:
        if "replaces" not in manifest:  # written before the field: the old rule, older ones were superseded
            older = [d for d in generation_dirs(path) if d.name not in seen and _age(d) < _age(path / generation)
                     and (m := _manifest_or_none(path, d.name)) is not None and "replaces" not in m]
            chain.extend(d.name for d in reversed(older))
            break
        name = manifest["replaces"]
        if not isinstance(name, str) or name in seen or not _GENERATION_NAME.fullmatch(name) \
                or not (path / name).is_dir():
            break
        chain.append(name)
        seen.add(name)
        manifest = _manifest_or_none(path, name)
    return chain


def _remove_stale(path: Path, keep: set[str], previous: str | None) -> None:
    """Delete incomplete generations and those the previous live one replaced; nothing unread."""
    doomed = [d for d in generation_dirs(path) if not (d / "manifest.json").is_file() and d.name not in keep]
    if previous:
        doomed += [path / name for name in replaced_by(path, previous) if name not in keep]
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    for tmp in path.glob(".CURRENT.*"):
        tmp.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
