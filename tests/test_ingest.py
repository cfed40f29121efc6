"""Incremental ingest, the on-disk format, and the atomic swap, with the real model and a real FAISS index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.errors import IndexMismatch, IndexNotFound
from rag.index.ingest import ingest, remove_documents
from rag.index.layout import current_generation
from rag.index.reader import Index
from rag.passages import DEFAULT_MAX_CHARS
from tests.conftest import CORPUS, ROOT

PARA = (
    "Chinese carmakers build {n} plants abroad to serve local buyers, according to this test document. "
    "Each sentence here is distinct so that its embedding differs from the others ({n})."
)


def write_doc(folder: Path, name: str, paragraphs: int, tag: str = "") -> Path:
    path = folder / name
    path.write_text("\n\n".join(PARA.format(n=f"{tag}{i}") for i in range(paragraphs)) + "\n", "utf-8")
    return path


def seeded(tmp_path: Path, embedder, paragraphs: int) -> tuple[Path, Path]:
    """A corpus folder holding alpha.md, ingested into a fresh index: (corpus, index_dir)."""
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    write_doc(corpus, "alpha.md", paragraphs)
    ingest([corpus], index_dir, embedder)
    return corpus, index_dir


def open_index(path, embedder) -> Index:
    return Index.open(path, embedder.name, embedder.dimension)


def test_reingest_is_incremental(tmp_path, embedder):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    write_doc(corpus, "alpha.md", 3)
    write_doc(corpus, "beta.txt", 2)
    first = ingest([corpus], index_dir, embedder, passage_chars=0)  # one passage per paragraph, to count them
    assert sorted(first.added) == ["alpha", "beta"] and first.passages_embedded == 5

    again = ingest([corpus], index_dir, embedder)
    assert not again.changed and again.passages_embedded == 0 and sorted(again.unchanged) == ["alpha", "beta"]
    assert again.generation is None and "Nothing changed" in again.summary()

    write_doc(corpus, "alpha.md", 4, tag="v2-")
    (corpus / "beta.txt").unlink()
    third = ingest([corpus], index_dir, embedder)
    assert third.updated == ["alpha"] and third.removed == ["beta"] and third.passages_embedded == 4
    index = open_index(index_dir, embedder)
    assert [d.doc_id for d in index.documents] == ["alpha"]
    assert [p.text for p in index.paragraphs("alpha")][0] == PARA.format(n="v2-0")
    assert index.faiss.ntotal == len(index.content.passages) == 4


def test_passages_are_on_for_a_new_index_and_an_index_keeps_its_own_size(tmp_path, embedder):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    write_doc(corpus, "alpha.md", 3)
    first = ingest([corpus], index_dir, embedder)
    assert open_index(index_dir, embedder).manifest["chunking"]["max_chars"] == DEFAULT_MAX_CHARS
    assert first.passages_embedded == 1  # three short paragraphs of one section, read together
    whole = tmp_path / "whole"
    ingest([corpus], whole, embedder, passage_chars=0)
    write_doc(corpus, "beta.md", 2)
    later = ingest([corpus], whole, embedder)  # no size given: the index's own, so alpha is not re-cut
    assert later.unchanged == ["alpha"] and later.passages_embedded == 2
    assert "max_chars" not in open_index(whole, embedder).manifest["chunking"]


def test_unchanged_documents_keep_their_vectors(tmp_path, embedder):
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    before = open_index(index_dir, embedder).content.vectors.copy()
    write_doc(corpus, "gamma.md", 1)
    report = ingest([corpus], index_dir, embedder)
    assert report.added == ["gamma"] and report.unchanged == ["alpha"] and report.passages_embedded == 1
    after = open_index(index_dir, embedder)
    rows = [i for i, c in enumerate(after.content.passages) if c.doc_id == "alpha"]
    assert (after.content.vectors[rows] == before).all()


def test_a_failing_file_keeps_its_last_good_version(tmp_path, embedder):
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    (corpus / "alpha.md").write_bytes(b"\x00\x01binary now")
    report = ingest([corpus], index_dir, embedder)
    assert [e.path for e in report.failed] == [str((corpus / "alpha.md").absolute())]
    assert len(open_index(index_dir, embedder).paragraphs("alpha")) == 2


def test_bad_files_fail_alone_and_documents_can_be_removed(tmp_path, embedder):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    write_doc(corpus, "good.md", 1)
    (corpus / "empty.txt").write_text("")
    (corpus / "deck.pptx").write_bytes(b"PK")
    report = ingest([corpus], index_dir, embedder)
    assert report.added == ["good"]
    assert sorted(Path(e.path).name for e in report.failed) == ["deck.pptx", "empty.txt"]
    removed = remove_documents(index_dir, embedder, ["good"])
    assert removed.removed == ["good"]
    with pytest.raises(IndexNotFound, match="empty"):
        open_index(index_dir, embedder)


def test_index_folder_format_is_versioned_and_pickle_free(corpus_index, embedder, tmp_path):
    generation = current_generation(corpus_index)
    files = sorted(p.name for p in (corpus_index / generation).iterdir())
    assert files == [
        "bm25",
        "chunk_paras.npy",
        "manifest.json",
        "meta.sqlite",
        "references.npy",
        "sentence_offsets.npy",
        "sentences.f32",
        "vectors.f32",
        "vectors.faiss",
    ]
    manifest = json.loads((corpus_index / generation / "manifest.json").read_text())
    assert manifest["model"] == embedder.name and manifest["dimension"] == 384 and manifest["format_version"] == 2
    for f in (corpus_index / generation).rglob("*"):
        assert f.is_dir() or b"\x80\x04\x95" not in f.read_bytes()[:64]  # no pickle protocol-4 header

    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    manifest["model"] = "another-model"
    (copy / generation / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="another-model.*rebuild"):
        open_index(copy, embedder)
    with pytest.raises(IndexMismatch):
        ingest([CORPUS], copy, embedder)


def test_a_failed_swap_leaves_the_previous_index(tmp_path, embedder, monkeypatch):
    corpus, index_dir = seeded(tmp_path, embedder, 1)
    live = current_generation(index_dir)
    write_doc(corpus, "beta.md", 1)

    def crash(*args, **kwargs):
        raise OSError("simulated crash at the swap")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        ingest([corpus], index_dir, embedder)
    monkeypatch.undo()
    assert current_generation(index_dir) == live
    assert [d.doc_id for d in open_index(index_dir, embedder).documents] == ["alpha"]
    assert ingest([corpus], index_dir, embedder).added == ["beta"]  # and the next ingest recovers


def _start_ingest(corpus: Path, index_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", str(corpus), "--index", str(index_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kill_when", ["embedding", "writing"])
def test_killed_ingest_leaves_the_previous_index_usable(tmp_path, embedder, kill_when):
    """SIGKILL a real `rag ingest` mid-way: while it embeds, or as soon as its new generation folder appears."""
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    live = current_generation(index_dir)
    for i in range(6):
        write_doc(corpus, f"bulk-{i}.md", 40, tag=f"b{i}-")

    proc = _start_ingest(corpus, index_dir)
    os.set_blocking(proc.stderr.fileno(), False)
    seen, deadline = b"", time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when == "embedding":
                seen += proc.stderr.read() or b""
                if b"Embedding:" in seen:
                    break
            elif [g for g in index_dir.glob("gen-*") if g.name != live]:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    assert current_generation(index_dir) == live
    index = open_index(index_dir, embedder)
    assert [d.doc_id for d in index.documents] == ["alpha"]
    from rag.engine import Engine

    answer = Engine.load(index_dir, embedder).ask("Where do Chinese carmakers build plants?")
    assert all(c.doc_id == "alpha" for c in answer.citations)


def test_a_missing_path_removes_nothing(tmp_path, embedder):
    corpus, index_dir = seeded(tmp_path, embedder, 1)
    moved = tmp_path / "elsewhere"
    corpus.rename(moved)  # an unmounted drive, or a typo
    report = ingest([corpus], index_dir, embedder)
    assert report.removed == [] and [Path(e.path).name for e in report.failed] == ["corpus"]
    assert [d.doc_id for d in open_index(index_dir, embedder).documents] == ["alpha"]


def test_ingest_runs_under_a_write_lock_its_caller_already_holds(tmp_path, embedder):
    """corpus.add_uploads holds the lock around its moves and the ingest; another thread still gets IndexBusy."""
    import threading

    from rag.errors import IndexBusy
    from rag.index.lock import write_lock

    corpus, index_dir = seeded(tmp_path, embedder, 1)
    write_doc(corpus, "beta.md", 1)
    busy = []

    def other_thread():
        try:
            ingest([corpus], index_dir, embedder)
        except IndexBusy as e:
            busy.append(e)

    with write_lock(index_dir):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert ingest([corpus], index_dir, embedder).added == ["beta"]
    assert len(busy) == 1


def _sources(index_dir, embedder) -> dict[str, str]:
    return {d.doc_id: d.source_path for d in open_index(index_dir, embedder).documents}


def test_a_renamed_corpus_folder_is_the_same_corpus(tmp_path, embedder):
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    write_doc(corpus, "beta.md", 1)
    ingest([corpus], index_dir, embedder)
    renamed = corpus.rename(tmp_path / "library")
    report = ingest([renamed], index_dir, embedder)
    assert report.added == [] and report.removed == [] and report.passages_embedded == 0
    assert sorted(report.unchanged) == sorted(report.moved) == ["alpha", "beta"]
    assert "0 added" in report.summary() and "2 unchanged (2 moved)" in report.summary()
    assert _sources(index_dir, embedder) == {"alpha": str(renamed / "alpha.md"), "beta": str(renamed / "beta.md")}
    assert not ingest([renamed], index_dir, embedder).changed  # and it stays put


def test_a_copied_checkout_reuses_its_index_while_the_original_is_still_there(tmp_path, embedder):
    """The copy's index names the original's files, which still exist: the copy's files are the same documents."""
    original = tmp_path / "checkout"
    original.mkdir()
    (original / "corpus").mkdir()
    write_doc(original / "corpus", "alpha.md", 2)
    ingest([original / "corpus"], original / "index", embedder)
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    report = ingest([copy / "corpus"], copy / "index", embedder)
    assert report.added == [] and report.moved == ["alpha"] and report.passages_embedded == 0
    assert _sources(copy / "index", embedder) == {"alpha": str(copy / "corpus" / "alpha.md")}
    assert _sources(original / "index", embedder) == {"alpha": str(original / "corpus" / "alpha.md")}


def test_a_renamed_file_with_the_same_bytes_is_a_rename(tmp_path, embedder):
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    (corpus / "alpha.md").rename(corpus / "alpha-final.md")
    report = ingest([corpus], index_dir, embedder)
    assert report.added == [] and report.removed == [] and report.moved == ["alpha"]
    assert _sources(index_dir, embedder) == {"alpha": str(corpus / "alpha-final.md")}


def test_a_copy_beside_its_original_is_a_new_document(tmp_path, embedder):
    """Same bytes under a second name, the first still in place: both are documents (no rename to steal)."""
    corpus, index_dir = seeded(tmp_path, embedder, 2)
    shutil.copy(corpus / "alpha.md", corpus / "alpha-copy.md")
    report = ingest([corpus], index_dir, embedder)
    assert report.added == ["alpha-copy"] and report.moved == [] and report.unchanged == ["alpha"]


def test_the_index_is_readable_by_its_owner_only(tmp_path, embedder):
    """Like saved conversations: the index holds the text of every document."""
    index_dir = tmp_path / ".rag" / "index"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_doc(corpus, "alpha.md", 1)
    ingest([corpus], index_dir, embedder)
    written = [tmp_path / ".rag", *(tmp_path / ".rag").rglob("*")]
    assert len(written) > 10 and (index_dir / "encoder" / "model.onnx") in written
    loose = {
        str(p): oct(p.stat().st_mode & 0o777)
        for p in written
        if p.stat().st_mode & 0o777 != (0o700 if p.is_dir() else 0o600)
    }
    assert loose == {}
