"""The index folder: FAISS vectors, a SQLite metadata store and a versioned manifest.

Layout of an index folder (default `.rag/index`, or $RAG_INDEX):

    CURRENT            name of the live generation, replaced atomically (os.replace)
    .lock              held by the one writer at a time; holds its pid
    gen-<time>-<pid>/  one complete generation:
        manifest.json  format, format_version, model, dimension, chunking, counts, and `replaces`:
                       the generation it replaced (None when there was no readable one)
        vectors.faiss  IndexFlatIP over L2-normalised vectors; row i is chunk row i
        meta.sqlite    documents, paragraphs, chunks
        sentences.npy, sentence_offsets.npy   each paragraph's sentence vectors (rag/sentence_vectors.py)

A writer builds a whole new generation beside the live one, fsyncs it, then swaps CURRENT.
A crash or kill at any moment leaves CURRENT naming the previous, complete generation.
Readers load everything into memory and close the files, so old generations can be deleted.

Two states are told apart. *No index* (the folder is absent, or holds no CURRENT and no complete
generation) is `IndexNotFound`, and a first ingest may create one. *A damaged index* (generations
are here but CURRENT is missing or names nothing usable; a manifest, the SQLite store or the
vectors cannot be read or disagree) is `IndexDamaged`, never an empty index: an ingest that took
it for empty would publish an index without the old documents. `rag doctor` (rag/doctor.py)
says what is wrong and can point CURRENT back at a complete generation.

After a swap a writer deletes only what it can vouch for: generations a killed writer left
incomplete, and those the previous live generation replaced. The previous one stays as the spare
(a reader may be loading it). A complete generation outside that chain (left by a lost or
hand-edited CURRENT, or a rebuild over a damaged index) was never read by this writer, so it is
never deleted; `rag doctor` lists it.

No pickle anywhere. Not handled: concurrent writers on a network filesystem without flock, or
a hand-edited generation whose files still agree with each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from rag.documents import Chunk, Document, Paragraph
from rag.errors import IndexBusy, IndexDamaged, IndexMismatch, IndexNotFound, UnknownParagraph
from rag.sentence_vectors import SentenceVectors
from rag.sentence_vectors import load as load_sentence_vectors

FORMAT = "paracite-index"
FORMAT_VERSION = 1
DEFAULT_INDEX_DIR = ".rag/index"
INDEX_ENV = "RAG_INDEX"
# What CURRENT may name: a folder of this index, never a path out of it ("../x", "/etc").
_GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9._-]+")

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
    sentences: SentenceVectors | None = None  # None in generations written before sentence vectors


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
        """Load the live generation; refuse one built by another model or format version.

        Raises `IndexNotFound` (nothing here, or an empty index), `IndexMismatch` (another model or
        format) or `IndexDamaged` (here but broken); never a raw faiss, SQLite or JSON error.
        """
        path = Path(index_dir)
        generation = live_generation(path)
        if generation is None:
            raise IndexNotFound(path)
        manifest, faiss_index, content = load_generation(path, generation, model, dimension)
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


def load_generation(index_dir: str | Path, generation: str, model: str,
                    dimension: int) -> tuple[dict, object, IndexContent]:
    """(manifest, faiss index, content) of one generation, checked against each other and the embedder."""
    path = Path(index_dir)
    manifest = read_generation_manifest(path, generation)
    check_manifest(manifest, model, dimension, path)
    check_manifest_fields(path, generation, manifest)
    faiss_index = read_vectors(path, generation, manifest)
    content = read_content(path, generation, faiss_index)
    check_content(path, generation, manifest, content)
    sentences = load_sentence_vectors(path / generation, [(p.doc_id, p.para) for p in content.paragraphs],
                                      faiss_index.d, path)
    return manifest, faiss_index, replace(content, sentences=sentences)


def check_manifest_fields(index_dir: Path, generation: str, manifest: dict) -> None:
    """The fields ingest relies on, beyond format and model (a hand edit can drop them)."""
    chunking = manifest.get("chunking")
    if not isinstance(chunking, dict) or not isinstance(chunking.get("max_words"), int):
        raise IndexDamaged(index_dir, f"{generation}/manifest.json has no chunking.max_words")
    for key in ("documents", "paragraphs", "chunks"):
        if not isinstance(manifest.get(key), int):
            raise IndexDamaged(index_dir, f"{generation}/manifest.json has no count of {key}")


def read_vectors(index_dir: str | Path, generation: str, manifest: dict):
    path = Path(index_dir)
    file = path / generation / "vectors.faiss"
    if not file.is_file():
        raise IndexDamaged(path, f"{generation}/vectors.faiss is missing")
    try:
        faiss_index = faiss.read_index(str(file))
    except RuntimeError as e:  # faiss reports a missing, truncated or foreign file as a RuntimeError
        raise IndexDamaged(path, f"{generation}/vectors.faiss cannot be read ({_faiss_reason(e)})") from e
    if faiss_index.d != manifest.get("dimension"):
        raise IndexDamaged(path, f"{generation}/vectors.faiss holds {faiss_index.d}-dimensional vectors, "
                                 f"the manifest says {manifest.get('dimension')}")
    return faiss_index


def _faiss_reason(e: RuntimeError) -> str:
    """faiss's message without its C++ location: 'Error in f() at io.cpp:69: could not open' -> 'could not open'."""
    m = re.search(r" at \S+:\d+: (?:Error: '.*?' failed: )?(.*)", str(e), re.DOTALL)
    return ((m.group(1) if m else str(e)).strip().splitlines() or [""])[0]


@dataclass(frozen=True)
class StoredRows:
    """The rows of one generation's meta.sqlite, before they are matched with the vectors."""

    documents: list[Document]
    paragraphs: list[Paragraph]
    chunks: list[Chunk]
    ingested_at: dict[str, float]


@contextmanager
def read_only_store(index_dir: str | Path, generation: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a generation's meta.sqlite; `IndexDamaged` when it is missing or unreadable."""
    path = Path(index_dir)
    db = path / generation / "meta.sqlite"
    if not db.is_file():
        raise IndexDamaged(path, f"{generation}/meta.sqlite is missing")
    try:
        # A URI, so that mode=ro holds; as_uri() escapes '?' and '#' in the folder's name.
        con = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
        try:
            yield con
        finally:
            con.close()
    except sqlite3.Error as e:  # "file is not a database", "no such table", "database disk image is malformed"
        raise IndexDamaged(path, f"{generation}/meta.sqlite cannot be read ({e})") from e


def read_rows(index_dir: str | Path, generation: str) -> StoredRows:
    path = Path(index_dir)
    try:
        with read_only_store(path, generation) as con:
            documents, ingested_at = [], {}
            for row in con.execute("SELECT doc_id, title, kind, source_path, sha256, format, pages, meta, ingested_at "
                                   "FROM documents ORDER BY doc_id"):
                documents.append(Document(*row[:7], meta=json.loads(row[7] or "{}")))
                ingested_at[row[0]] = row[8]
            paragraphs = [
                Paragraph(doc_id=r[0], para=r[1], page=r[2], heading=r[3] or "", text=r[4],
                          source_paras=tuple(json.loads(r[5])))
                for r in con.execute("SELECT doc_id, para, page, heading, text, source_paras FROM paragraphs "
                                     "ORDER BY doc_id, para")
            ]
            chunks = [Chunk(*r) for r in con.execute(
                "SELECT chunk_id, doc_id, para_start, para_end, text FROM chunks ORDER BY row")]
    except (ValueError, TypeError) as e:  # a row whose JSON columns were edited by hand
        raise IndexDamaged(path, f"{generation}/meta.sqlite holds a malformed row ({e})") from e
    return StoredRows(documents, paragraphs, chunks, ingested_at)


def read_content(index_dir: str | Path, generation: str, faiss_index) -> IndexContent:
    """The rows with their vectors; `IndexDamaged` when the two disagree on the number of chunks."""
    path = Path(index_dir)
    rows = read_rows(path, generation)
    check_vector_count(path, generation, faiss_index, rows)
    try:
        vectors = (faiss_index.reconstruct_n(0, faiss_index.ntotal) if rows.chunks
                   else np.zeros((0, faiss_index.d), np.float32))
    except RuntimeError as e:  # an index type that cannot give its vectors back: not one we wrote
        raise IndexDamaged(path, f"{generation}/vectors.faiss cannot give back its vectors ({_faiss_reason(e)})") from e
    return IndexContent(rows.documents, rows.paragraphs, rows.chunks, np.asarray(vectors, dtype=np.float32),
                        rows.ingested_at)


def check_vector_count(index_dir: str | Path, generation: str, faiss_index, rows: StoredRows | IndexContent) -> None:
    if faiss_index.ntotal != len(rows.chunks):
        raise IndexDamaged(index_dir, f"{generation}/vectors.faiss holds {faiss_index.ntotal} vectors "
                                      f"for {len(rows.chunks)} chunks in meta.sqlite")


def check_content(index_dir: str | Path, generation: str, manifest: dict, content: StoredRows | IndexContent) -> None:
    """The manifest's counts match the store, and every chunk resolves to paragraphs that exist."""
    check_counts(index_dir, generation, manifest, content)
    check_chunk_paragraphs(index_dir, generation, content)


def check_counts(index_dir: str | Path, generation: str, manifest: dict, content: StoredRows | IndexContent) -> None:
    for key, rows in (("documents", content.documents), ("paragraphs", content.paragraphs), ("chunks", content.chunks)):
        if manifest.get(key) != len(rows):
            raise IndexDamaged(index_dir, f"{generation}/manifest.json counts {manifest.get(key)} {key}, "
                                          f"meta.sqlite holds {len(rows)}")


def check_chunk_paragraphs(index_dir: str | Path, generation: str, content: StoredRows | IndexContent) -> None:
    """Every chunk's paragraphs exist: a hit must resolve to paragraphs a person can read."""
    paras = {(p.doc_id, p.para) for p in content.paragraphs}
    for c in content.chunks:
        missing = [n for n in range(c.para_start, c.para_end + 1) if (c.doc_id, n) not in paras]
        if missing or c.para_end < c.para_start:
            raise IndexDamaged(index_dir, f"{generation}: chunk {c.chunk_id} cites {c.doc_id} paragraph(s) "
                                          f"{missing or [c.para_start, c.para_end]}, which meta.sqlite does not hold")


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


def write_generation(index_dir: str | Path, content: IndexContent, manifest: dict) -> str:
    """Write a complete new generation and make it live. Call under `write_lock`."""
    path = Path(index_dir)
    named = named_by_current(path)
    previous = current_generation(path)
    # Only a generation whose manifest reads is vouched for, and so may later be deleted as replaced.
    replaces = previous if previous and _manifest_or_none(path, previous) is not None else None
    generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{os.getpid()}"
    gen_dir = path / generation
    gen_dir.mkdir(parents=True)
    try:
        vectors = np.ascontiguousarray(content.vectors, dtype=np.float32)
        faiss_index = faiss.IndexFlatIP(int(manifest["dimension"]))
        if len(vectors):
            faiss_index.add(vectors)
        faiss.write_index(faiss_index, str(gen_dir / "vectors.faiss"))
        _write_sqlite(gen_dir / "meta.sqlite", content)
        written = ["vectors.faiss", "meta.sqlite", "manifest.json"]
        if content.sentences is not None:
            written += content.sentences.save(gen_dir)
        manifest = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION,
                    "documents": len(content.documents), "paragraphs": len(content.paragraphs),
                    "chunks": len(content.chunks), "created": time.time(), "replaces": replaces}
        (gen_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for name in written:
            fsync_path(gen_dir / name)
        fsync_path(gen_dir)
        set_current(path, generation)
    except BaseException:
        # Never live, so nobody can be reading it; a failed write leaves no stray behind.
        if named_by_current(path) != generation:
            shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    _remove_stale(path, keep={generation, previous, named} - {None}, previous=replaces)
    return generation


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
