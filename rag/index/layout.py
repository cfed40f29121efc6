"""The index folder's layout, format and manifest, and which generation is live.

Layout of an index folder (default `.rag/index`, or $RAG_INDEX):

    CURRENT            name of the live generation, replaced atomically (os.replace)
    .lock              held by the one writer at a time; holds its pid (`rag.index.lock`)
    gen-<time>-<pid>/  one complete generation:
        manifest.json    format, format_version, model, dimension, chunking, counts, `dense` (the kind and
                         settings of vectors.faiss, `rag.index.ann`), and `replaces`: the generation it replaced
                         (None when there was no readable one)
        meta.sqlite      documents, paragraphs (by position; a table's structure as JSON in table_json), passages
                         (table `chunks`, by row), and the BM25 vocabulary: terms (stem -> term id) and words
                         (each word paragraphs hold -> its term id)
        vectors.f32      every passage's L2-normalised vector, float32; row i is passage row i
        vectors.faiss    the search index over those rows: exact (IndexFlatIP), or IVF-PQ above a size (`rag.index.ann`)
        chunk_paras.npy  int32 (passages, 2): the first and last paragraph position of each passage row
        references.npy   int32: positions of source-list paragraphs (`Paragraph.is_reference`)
        bm25/            BM25 postings over paragraph positions (`rag.index.bm25`)
        sentences.f32, sentence_offsets.npy   every paragraph's sentence vectors, by position
                                              (`rag.embed.sentence_vectors`)

A paragraph's *position* is its row in the paragraphs table. Readers are `rag.index.reader`, writers
`rag.index.writer`, and the checks that tie a generation's files together `rag.index.checks`.

Two states are told apart. *No index* (the folder is absent, or holds no CURRENT and no complete
generation) is `IndexNotFound`, and a first ingest may create one. *A damaged index* (generations
are here but CURRENT is missing or names nothing usable; a manifest, the SQLite store, the vectors or
the postings cannot be read or disagree) is `IndexDamaged`, never an empty index: an ingest that took
it for empty would publish an index without the old documents. `rag doctor` (rag/index/doctor.py)
says what is wrong and can point CURRENT back at a complete generation.

No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.documents import Document, Paragraph, Passage
from rag.errors import IndexDamaged, IndexMismatch

FORMAT = "paracite-index"


FORMAT_VERSION = 2  # 2: vectors.f32, bm25/, chunk_paras.npy, references.npy, positions, terms, `dense`


DEFAULT_INDEX_DIR = ".rag/index"
# Owner-only, as for saved conversations: the index holds every document's text.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


INDEX_ENV = "RAG_INDEX"


# Up to this many paragraphs an open index also holds every record in memory (`Index.content`) and checks
# every row, as before; above it paragraphs are read from meta.sqlite by position (`rag doctor` checks rows).
EAGER_PARAGRAPHS = 20_000


# What CURRENT may name: a folder of this index, never a path out of it ("../x", "/etc").
_GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9._-]+")


FILES = ("manifest.json", "meta.sqlite", "vectors.f32", "vectors.faiss", "chunk_paras.npy", "references.npy")


SCHEMA = """
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
INDEXES = """
CREATE UNIQUE INDEX paragraphs_by_doc ON paragraphs (doc_id, para);
CREATE UNIQUE INDEX chunks_by_id ON chunks (chunk_id);
CREATE INDEX chunks_by_doc ON chunks (doc_id, para_start);
"""


# table_json (a table paragraph's structure, `Table.to_json`, else NULL) came later: an older meta.sqlite has no such
# column, and reads as NULL (`_Store.paragraph_columns`); an append onto one adds it.
PARAGRAPH_COLUMNS = "doc_id, para, page, heading, text, source_paras, table_json"


PARAGRAPH_COLUMNS_BEFORE_TABLES = "doc_id, para, page, heading, text, source_paras, NULL"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


@dataclass(frozen=True)
class IndexContent:
    """Everything one generation holds, as records. Passage i owns row i of `vectors`; paragraph i is position i."""

    documents: list[Document]
    paragraphs: list[Paragraph]
    passages: list[Passage]
    vectors: np.ndarray  # float32, shape (len(chunks), dimension); memory-mapped when read from an index
    ingested_at: dict[str, float]
    # (doc_id, para) -> its sentence vectors, for a generation being written; readers use `Index.sentences`.
    sentences: dict[tuple[str, int], np.ndarray] | None = None


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
        raise IndexDamaged(
            path, f"CURRENT is missing, but {len(complete)} complete generation(s) are here (newest: {complete[-1]})"
        ) from None
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


def named_by_current(path: Path) -> str | None:
    """What CURRENT holds, unchecked; None when it is missing or unreadable."""
    try:
        return (path / "CURRENT").read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def manifest_or_none(path: Path, generation: str) -> dict | None:
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
    manifest = manifest_or_none(path, generation)
    while manifest is not None:
        if "replaces" not in manifest:  # written before the field: the old rule, older ones were superseded
            older = [
                d
                for d in generation_dirs(path)
                if d.name not in seen
                and _age(d) < _age(path / generation)
                and (m := manifest_or_none(path, d.name)) is not None
                and "replaces" not in m
            ]
            chain.extend(d.name for d in reversed(older))
            break
        name = manifest["replaces"]
        if (
            not isinstance(name, str)
            or name in seen
            or not _GENERATION_NAME.fullmatch(name)
            or not (path / name).is_dir()
        ):
            break
        chain.append(name)
        seen.add(name)
        manifest = manifest_or_none(path, name)
    return chain


def private_folder(path: Path) -> None:
    """Create `path` (and any missing parent) readable by its owner only, and make an existing one so: an index
    holds the text of every document, like the conversations folder."""
    missing = [p for p in (path, *path.parents) if not (p.exists() or p.is_symlink())]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
    os.chmod(path, PRIVATE_FOLDER)


def make_private(path: Path) -> None:
    """Owner-only permissions on a folder and everything in it (a generation or the encoder, before it goes live)."""
    os.chmod(path, PRIVATE_FOLDER)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(Path(root) / name, PRIVATE_FOLDER)
        for name in files:
            os.chmod(Path(root) / name, PRIVATE_FILE)


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
