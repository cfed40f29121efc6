"""The index folder: FAISS vectors, a SQLite metadata store and a versioned manifest.

Layout of an index folder (default `.rag/index`, or $RAG_INDEX):

    CURRENT            name of the live generation, replaced atomically (os.replace)
    .lock              held by the one ingest that may write at a time
    gen-<time>-<pid>/  one complete generation:
        manifest.json  format, format_version, model, dimension, chunking, counts
        vectors.faiss  IndexFlatIP over L2-normalised vectors; row i is chunk row i
        meta.sqlite    documents, paragraphs, chunks

A writer builds a whole new generation beside the live one, fsyncs it, then swaps CURRENT.
A crash or kill at any moment leaves CURRENT naming the previous, complete generation.
Readers load everything into memory and close the files, so old generations can be deleted.
No pickle anywhere. Not handled: concurrent writers on a network filesystem without flock.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rag.documents import Chunk, Document, Paragraph
from rag.errors import IndexBusy, IndexMismatch, IndexNotFound, UnknownParagraph

FORMAT = "paracite-index"
FORMAT_VERSION = 1
DEFAULT_INDEX_DIR = ".rag/index"
INDEX_ENV = "RAG_INDEX"

_SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, kind TEXT, source_path TEXT, sha256 TEXT,
                        format TEXT, pages INTEGER, meta TEXT, ingested_at REAL);
CREATE TABLE paragraphs (doc_id TEXT, para INTEGER, page INTEGER, heading TEXT, text TEXT, source_paras TEXT,
                         PRIMARY KEY (doc_id, para));
CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, doc_id TEXT, para_start INTEGER,
                     para_end INTEGER, text TEXT);
"""


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


@dataclass(frozen=True)
class IndexContent:
    """Everything one generation holds, as records. Chunk i owns row i of `vectors`."""

    documents: list[Document]
    paragraphs: list[Paragraph]
    chunks: list[Chunk]
    vectors: np.ndarray  # float32, shape (len(chunks), dimension)
    ingested_at: dict[str, float]


class Index:
    """A loaded, read-only generation of the index folder."""

    def __init__(self, path: Path, generation: str, manifest: dict, content: IndexContent, faiss_index):
        self.path = path
        self.generation = generation
        self.manifest = manifest
        self.content = content
        self.faiss = faiss_index
        self._docs = {d.doc_id: d for d in content.documents}
        self._paras = {(p.doc_id, p.para): p for p in content.paragraphs}

    @classmethod
    def open(cls, index_dir: str | Path, model: str, dimension: int) -> "Index":
        """Load the live generation; refuse one built by another model or format version."""
        path = Path(index_dir)
        generation = current_generation(path)
        if generation is None:
            raise IndexNotFound(path)
        gen_dir = path / generation
        try:
            manifest = json.loads((gen_dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IndexNotFound(path, f"unreadable index manifest ({e})") from e
        check_manifest(manifest, model, dimension, path)
        faiss_index = faiss.read_index(str(gen_dir / "vectors.faiss"))
        content = _read_content(gen_dir / "meta.sqlite", faiss_index)
        if not content.documents:
            raise IndexNotFound(path, "the index is empty")
        return cls(path, generation, manifest, content, faiss_index)

    @property
    def documents(self) -> list[Document]:
        return list(self.content.documents)

    def document(self, doc_id: str) -> Document:
        try:
            return self._docs[doc_id]
        except KeyError:
            known = ", ".join(sorted(self._docs)) or "(none)"
            raise UnknownParagraph(f"no document '{doc_id}' in the index; known: {known}") from None

    def paragraphs(self, doc_id: str) -> list[Paragraph]:
        self.document(doc_id)
        return [p for p in self.content.paragraphs if p.doc_id == doc_id]

    def paragraph(self, doc_id: str, para: int) -> Paragraph:
        self.document(doc_id)
        try:
            return self._paras[(doc_id, para)]
        except KeyError:
            count = len(self.paragraphs(doc_id))
            raise UnknownParagraph(f"'{doc_id}' has no paragraph {para}; it has paragraphs 1 to {count}") from None

    def has_paragraph(self, doc_id: str, para: int) -> bool:
        return (doc_id, para) in self._paras

    def ingested_at(self, doc_id: str) -> float | None:
        return self.content.ingested_at.get(doc_id)


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


def current_generation(index_dir: Path) -> str | None:
    try:
        name = (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name if name and (Path(index_dir) / name / "manifest.json").exists() else None


def read_manifest(index_dir: str | Path) -> dict | None:
    generation = current_generation(Path(index_dir))
    if generation is None:
        return None
    return json.loads((Path(index_dir) / generation / "manifest.json").read_text(encoding="utf-8"))


@contextmanager
def write_lock(index_dir: str | Path) -> Iterator[None]:
    """One writer at a time; a second ingest fails at once instead of waiting."""
    path = Path(index_dir)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusy(f"another ingest is writing {path}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_generation(index_dir: str | Path, content: IndexContent, manifest: dict) -> str:
    """Write a complete new generation and make it live. Call under `write_lock`."""
    path = Path(index_dir)
    generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{os.getpid()}"
    gen_dir = path / generation
    gen_dir.mkdir(parents=True)
    vectors = np.ascontiguousarray(content.vectors, dtype=np.float32)
    faiss_index = faiss.IndexFlatIP(int(manifest["dimension"]))
    if len(vectors):
        faiss_index.add(vectors)
    faiss.write_index(faiss_index, str(gen_dir / "vectors.faiss"))
    _write_sqlite(gen_dir / "meta.sqlite", content)
    manifest = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION,
                "documents": len(content.documents), "paragraphs": len(content.paragraphs),
                "chunks": len(content.chunks), "created": time.time()}
    (gen_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for name in ("vectors.faiss", "meta.sqlite", "manifest.json"):
        _fsync(gen_dir / name)
    _fsync(gen_dir)
    # The swap: CURRENT is replaced in one rename, so it always names a complete generation.
    tmp = path / f".CURRENT.{os.getpid()}"
    tmp.write_text(generation, encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path / "CURRENT")
    _fsync(path)
    _remove_stale(path, keep={generation})
    return generation


def _remove_stale(path: Path, keep: set[str]) -> None:
    """Delete generations other than the live one and the newest older one (a reader may be loading it)."""
    gens = sorted((d for d in path.glob("gen-*") if d.is_dir() and d.name not in keep), key=lambda d: d.stat().st_mtime)
    complete = [d for d in gens if (d / "manifest.json").exists()]
    spare = complete[-1:] if complete else []
    for d in gens:
        if d not in spare:
            shutil.rmtree(d, ignore_errors=True)
    for tmp in path.glob(".CURRENT.*"):
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_sqlite(path: Path, content: IndexContent) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            [(d.doc_id, d.title, d.kind, d.source_path, d.sha256, d.format, d.pages, json.dumps(d.meta),
              content.ingested_at.get(d.doc_id)) for d in content.documents],
        )
        con.executemany(
            "INSERT INTO paragraphs VALUES (?,?,?,?,?,?)",
            [(p.doc_id, p.para, p.page, p.heading, p.text, json.dumps(list(p.source_paras))) for p in content.paragraphs],
        )
        con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
            [(i, c.chunk_id, c.doc_id, c.para_start, c.para_end, c.text) for i, c in enumerate(content.chunks)],
        )
        con.commit()
    finally:
        con.close()


def _read_content(path: Path, faiss_index) -> IndexContent:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        documents, ingested_at = [], {}
        for row in con.execute("SELECT doc_id, title, kind, source_path, sha256, format, pages, meta, ingested_at "
                               "FROM documents ORDER BY doc_id"):
            documents.append(Document(*row[:7], meta=json.loads(row[7] or "{}")))
            ingested_at[row[0]] = row[8]
        paragraphs = [
            Paragraph(doc_id=r[0], para=r[1], page=r[2], heading=r[3] or "", text=r[4], source_paras=tuple(json.loads(r[5])))
            for r in con.execute("SELECT doc_id, para, page, heading, text, source_paras FROM paragraphs ORDER BY doc_id, para")
        ]
        chunks = [Chunk(*r) for r in con.execute(
            "SELECT chunk_id, doc_id, para_start, para_end, text FROM chunks ORDER BY row")]
    finally:
        con.close()
    if faiss_index.ntotal != len(chunks):
        raise IndexMismatch(f"index at {path.parent} holds {faiss_index.ntotal} vectors for {len(chunks)} chunks; rebuild it")
    vectors = faiss_index.reconstruct_n(0, faiss_index.ntotal) if len(chunks) else np.zeros((0, faiss_index.d), np.float32)
    return IndexContent(documents, paragraphs, chunks, np.asarray(vectors, dtype=np.float32), ingested_at)
