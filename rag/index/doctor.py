"""`rag doctor`: check an index folder, one line per check, and repair what can be repaired safely.

The checks, in order:
    folder       the index folder exists
    lock         whether a writer holds .lock now (its pid), since a running ingest explains an incomplete generation
    CURRENT      names an existing, complete generation
    manifest     readable JSON of our format and version, built by this paracite's embedding model
    vectors      vectors.faiss readable, of the manifest's dimension and kind; vectors.f32 of the right size
    bm25         the postings (bm25/) read back, every posting names a paragraph, every term id is known
    metadata     meta.sqlite passes SQLite's own quick_check and its rows read back
    counts       the manifest's counts match the rows; vectors, postings and chunk_paras.npy match them one to one
    paragraphs   every chunk's paragraphs exist where chunk_paras.npy says, so a hit resolves to text a person can check
    sentences    the stored sentence vectors match the paragraphs (warn when absent: questions embed them)
    encoder      the ONNX query encoder loads and matches its recorded sha256 (warn when absent or altered)
    generations  no incomplete generation folders, no stray complete ones, no leftover CURRENT temp files

`repair` (under the write lock) does two things only. When CURRENT is missing, unreadable, or
names a generation that fails a check, it points CURRENT at the newest complete generation that
passes every check. It removes incomplete generation folders (a killed writer's) and leftover
CURRENT temp files. It never deletes a complete generation, and never "repairs" a model or format
mismatch (that index is whole; it needs `rag ingest corpus/ --rebuild`).

Not handled: patching a broken meta.sqlite or vectors.faiss (CURRENT goes back to a whole
generation instead), or checking that the corpus files still match the index (ingest does that).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from rag.embed import onnx_encoder
from rag.embed.embedder import DIMENSION, MODEL_NAME
from rag.embed.sentence_vectors import load as load_sentence_vectors
from rag.errors import IndexDamaged, IndexMismatch
from rag.index.checks import check_counts, check_manifest_fields, check_passage_paragraphs, check_sizes
from rag.index.layout import (
    FORMAT,
    FORMAT_VERSION,
    check_manifest,
    complete_generations,
    incomplete_generations,
    live_generation,
    named_by_current,
    read_generation_manifest,
    replaced_by,
)
from rag.index.lock import lock_holder_pid, lock_is_held, write_lock
from rag.index.reader import (
    load_generation,
    read_content,
    read_exact_vectors,
    read_layout,
    read_only_store,
    read_postings,
    read_vectors,
)
from rag.index.writer import set_current


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # worth knowing, not damage: the index still answers
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        """One printable line: 'FAIL  manifest     gen-1/manifest.json is missing — fix: ...'."""
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.status.value:<4}  {self.name:<11}  {self.detail}{fix}"


@dataclass(frozen=True)
class DoctorReport:
    index_dir: Path
    checks: tuple[Check, ...]
    repairs: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not any(c.status is Status.FAIL for c in self.checks)

    def lines(self) -> list[str]:
        return [f"repaired  {r}" for r in self.repairs] + [c.line() for c in self.checks]


def diagnose(index_dir: str | Path, model: str = MODEL_NAME, dimension: int = DIMENSION) -> DoctorReport:
    """Run every check on the index at `index_dir`; changes nothing."""
    path = Path(index_dir)
    rebuild = f"rebuild it with `rag ingest corpus/ --rebuild --index {path}`"
    if not path.is_dir():
        return DoctorReport(
            path,
            (
                Check(
                    "folder",
                    Status.FAIL,
                    f"no index folder at {path}",
                    f"build one with `rag ingest corpus/ --index {path}`",
                ),
            ),
        )
    checks = [Check("folder", Status.OK, str(path))]
    busy = lock_is_held(path)
    if busy:
        pid = lock_holder_pid(path)
        checks.append(
            Check(
                "lock",
                Status.WARN,
                f"a writer{f' (pid {pid})' if pid else ''} holds the lock now",
                "run `rag doctor` again when it has finished",
            )
        )
    else:
        checks.append(Check("lock", Status.OK, "free"))

    try:
        live = live_generation(path)
    except IndexDamaged as e:
        candidate = newest_sound_generation(path, model, dimension)
        if candidate:
            fix = (
                f"`rag doctor --repair --index {path}` points CURRENT at {candidate}, the newest complete "
                f"generation that passes every check"
            )
        else:
            fix = f"no complete generation passes every check; {rebuild}"
        checks.append(Check("CURRENT", Status.FAIL, e.problem, fix))
        live = None
    else:
        if live is None:
            checks.append(
                Check(
                    "CURRENT",
                    Status.FAIL,
                    "no CURRENT and no complete generation: no index",
                    f"build it with `rag ingest corpus/ --index {path}`",
                )
            )
        else:
            checks.append(Check("CURRENT", Status.OK, f"names {live}, which is complete"))
    if live is not None:
        checks += _check_generation(path, live, model, dimension)
    checks.append(_check_generations(path, live, busy))
    return DoctorReport(path, tuple(checks))


def _check_generation(path: Path, generation: str, model: str, dimension: int) -> list[Check]:
    """manifest, vectors, metadata, counts, paragraphs: one Check each; later ones skip when they cannot run."""
    repair = (
        f"`rag doctor --repair --index {path}` goes back to the newest complete generation that passes "
        f"every check, or rebuild it with `rag ingest corpus/ --rebuild --index {path}`"
    )
    checks = []
    try:
        manifest = read_generation_manifest(path, generation)
        check_manifest(manifest, model, dimension, path)
        check_manifest_fields(path, generation, manifest)
    except IndexMismatch as e:
        return [
            Check(
                "manifest",
                Status.FAIL,
                str(e).split("; rebuild")[0],
                f"rebuild it with `rag ingest corpus/ --rebuild --index {path}`",
            )
        ]
    except IndexDamaged as e:
        return [Check("manifest", Status.FAIL, e.problem, repair)]
    checks.append(Check("manifest", Status.OK, f"{FORMAT} v{FORMAT_VERSION}, {model}, {dimension} dims"))

    try:
        vectors = read_vectors(path, generation, manifest)
        exact = read_exact_vectors(path, generation, manifest)
        kind = "exact" if manifest["dense"]["kind"] == "exact" else f"approximate ({manifest['dense']['kind']})"
        checks.append(Check("vectors", Status.OK, f"{vectors.ntotal} vectors of {vectors.d} dims, {kind} search"))
    except IndexDamaged as e:
        vectors = exact = None
        checks.append(Check("vectors", Status.FAIL, e.problem, repair))

    try:
        postings = read_postings(path, generation)
        _check_postings(path, generation, postings, manifest)
        checks.append(Check("bm25", Status.OK, f"{len(postings.docs)} postings of {postings.terms} terms"))
    except IndexDamaged as e:
        postings = None
        checks.append(Check("bm25", Status.FAIL, e.problem, repair))

    try:
        with read_only_store(path, generation) as store:
            _quick_check(path, generation, store)
            counts = store.counts()
            documents, ingested_at = store.documents()
            content = read_content(path, generation, store, documents, ingested_at, exact)
        checks.append(
            Check(
                "metadata",
                Status.OK,
                f"meta.sqlite: {counts['documents']} documents, "
                f"{counts['paragraphs']} paragraphs, {counts['chunks']} chunks",
            )
        )
    except IndexDamaged as e:
        checks.append(Check("metadata", Status.FAIL, e.problem, repair))
        return checks

    try:
        span = None
        check_counts(path, generation, manifest, counts)
        if vectors is not None and postings is not None:
            span, _ = read_layout(path, generation)
            check_sizes(path, generation, manifest, vectors, exact, postings, span)
        checks.append(
            Check(
                "counts",
                Status.OK,
                "manifest, rows, vectors and postings agree"
                if span is not None
                else "manifest and rows agree (vectors or postings unreadable)",
            )
        )
    except IndexDamaged as e:
        checks.append(Check("counts", Status.FAIL, e.problem, repair))

    try:
        if span is None:
            span, _ = read_layout(path, generation)
        check_passage_paragraphs(path, generation, content, span)
        checks.append(Check("paragraphs", Status.OK, "every chunk resolves to paragraphs in the store"))
    except IndexDamaged as e:
        checks.append(Check("paragraphs", Status.FAIL, e.problem, repair))

    upgrade = f"`rag ingest corpus/ --index {path}` adds it"
    try:
        sentences = load_sentence_vectors(
            path / generation, int(manifest["paragraphs"]), dimension, path, lambda doc_id, para: None
        )
        checks.append(
            Check("sentences", Status.OK, f"{len(sentences.vectors)} sentence vectors")
            if sentences
            else Check(
                "sentences",
                Status.WARN,
                "no stored sentence vectors: each question embeds its sentences (slower)",
                upgrade,
            )
        )
    except IndexDamaged as e:
        checks.append(Check("sentences", Status.FAIL, e.problem, repair))
    encoder, altered = onnx_encoder.try_load(path, model, dimension)
    checks.append(
        Check("encoder", Status.OK, "ONNX query encoder loads, its sha256 as recorded")
        if encoder
        else Check(
            "encoder",
            Status.WARN,
            f"ONNX query encoder not used: {altered}; questions load torch",
            "rag ingest corpus/ (exports it again)",
        )
        if altered
        else Check("encoder", Status.WARN, "no usable ONNX query encoder: questions load torch (seconds)", upgrade)
    )
    return checks


def _check_postings(path: Path, generation: str, postings, manifest: dict) -> None:
    """Every posting names a paragraph, with a positive count, and the term count is the manifest's (a full scan)."""
    terms = manifest.get("bm25", {}).get("terms")
    if terms != postings.terms:
        raise IndexDamaged(path, f"{generation}/bm25 holds {postings.terms} terms, the manifest says {terms}")
    if len(postings.docs) and (
        int(postings.docs.max()) >= manifest["paragraphs"] or int(postings.docs.min()) < 0 or int(postings.tf.min()) < 1
    ):
        raise IndexDamaged(
            path,
            f"{generation}/bm25/docs.npy or tf.npy holds a posting outside the {manifest['paragraphs']} paragraphs",
        )


def _quick_check(path: Path, generation: str, store) -> None:
    result = store.quick_check()
    if result != ["ok"]:
        raise IndexDamaged(path, f"{generation}/meta.sqlite fails SQLite's quick_check ({'; '.join(result[:3])})")


def _check_generations(path: Path, live: str | None, busy: bool) -> Check:
    incomplete = incomplete_generations(path)
    complete = complete_generations(path)
    spare = replaced_by(path, live)[:1] if live else []
    # With no usable CURRENT, which generations are strays is unknown; the CURRENT line already fails.
    strays = [g for g in complete if g != live and g not in spare] if live else []
    temps = sorted(p.name for p in path.glob(".CURRENT.*"))
    problems, fixes = [], []
    if incomplete:
        why = "being written now, or left by a killed writer" if busy else "left by a killed writer"
        problems.append(f"incomplete ({why}): {', '.join(incomplete)}")
        fixes.append(f"`rag doctor --repair --index {path}` removes them")
    if temps:
        problems.append(f"leftover CURRENT temp files: {', '.join(temps)}")
        if not incomplete:
            fixes.append(f"`rag doctor --repair --index {path}` removes them")
    if strays:
        problems.append(f"complete but neither live nor the spare: {', '.join(strays)}")
        fixes.append(
            "paracite never deletes a generation it did not replace: look inside, then delete them by hand "
            "once you no longer need them"
        )
    if problems:
        return Check("generations", Status.WARN, "; ".join(problems), "; ".join(fixes))
    if live:
        detail = f"live {live}" + (f", spare {spare[0]}" if spare else ", no spare")
    else:
        detail = f"{len(complete)} complete: {', '.join(complete)}" if complete else "no complete generation"
    return Check("generations", Status.OK, detail)


def newest_sound_generation(
    index_dir: str | Path, model: str = MODEL_NAME, dimension: int = DIMENSION, exclude: frozenset[str] = frozenset()
) -> str | None:
    """The newest complete generation that passes every check, or None."""
    path = Path(index_dir)
    for name in reversed(complete_generations(path)):
        if name in exclude:
            continue
        try:
            load_generation(path, name, model, dimension).close()
        except (IndexDamaged, IndexMismatch):
            continue
        return name
    return None


def repair(index_dir: str | Path, model: str = MODEL_NAME, dimension: int = DIMENSION) -> DoctorReport:
    """Point a broken CURRENT at the newest sound generation and remove incomplete ones; then diagnose.

    Takes the write lock, so it raises `IndexBusy` while an ingest runs. Never deletes a complete generation.
    """
    path = Path(index_dir)
    if not path.is_dir():
        return diagnose(path, model, dimension)
    done: list[str] = []
    with write_lock(path):
        named = named_by_current(path)
        try:
            live = live_generation(path)
            if live is not None:
                load_generation(path, live, model, dimension).close()
            broken = False
        except IndexDamaged:
            broken = True
        except IndexMismatch:
            broken = False  # whole, but another model's: a rebuild, not a repair
        if broken:
            candidate = newest_sound_generation(path, model, dimension, exclude=frozenset({named or ""}))
            if candidate:
                set_current(path, candidate)
                was = f"it named {named}, which is kept" if named else "it was missing or unreadable"
                done.append(
                    f"CURRENT now names {candidate} ({was}); documents ingested after it are back with "
                    f"`rag ingest corpus/ --index {path}`"
                )
        # The generation CURRENT named was live once: if its manifest is gone, that is damage, not a killed writer.
        keep = {named, named_by_current(path)}
        for name in incomplete_generations(path):
            if name not in keep:
                shutil.rmtree(path / name, ignore_errors=True)
                done.append(f"removed incomplete generation {name}")
        for tmp in sorted(path.glob(".CURRENT.*")):
            tmp.unlink(missing_ok=True)
            done.append(f"removed leftover {tmp.name}")
    return replace(diagnose(path, model, dimension), repairs=tuple(done))
