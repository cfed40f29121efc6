"""app.corpus: upload checks, saving into the corpus folder, ingest with rollback, deletion."""

from __future__ import annotations

import shutil

import pytest

from app.auth import LOCAL
from app.corpus import (
    MAX_UPLOAD_BYTES,
    UploadRejected,
    add_uploads,
    check_upload,
    delete_document,
    is_inside,
    sanitize_filename,
)
from rag.index.layout import current_generation
from rag.index.reader import Index

NOTE = b"The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


@pytest.mark.parametrize(
    "name, safe",
    [
        ("../../x.pdf", "x.pdf"),
        ("..\\..\\evil.md", "evil.md"),
        ("/etc/passwd.txt", "passwd.txt"),
        ("Q3 Report (final).PDF", "Q3-Report-final.pdf"),
        ("Café – notes.md", "Cafe-notes.md"),
        (".hidden.txt", "hidden.txt"),
        ("...pdf", "upload-" + __import__("hashlib").sha256(b"...pdf").hexdigest()[:10] + ".pdf"),
        ("a" * 300 + ".html", "a" * 95 + ".html"),
    ],
)
def test_sanitize_filename_keeps_uploads_inside_the_folder(name, safe):
    assert sanitize_filename(name) == safe


@pytest.mark.parametrize("name", ["payload.exe", "archive.tar.gz", "noextension", "", "../../"])
def test_sanitize_filename_refuses_types_off_the_allowlist(name):
    with pytest.raises(UploadRejected, match="not allowed; upload one of"):
        sanitize_filename(name)


def test_check_upload_refuses_oversized_and_empty_files():
    with pytest.raises(UploadRejected, match="over the"):
        check_upload("big.txt", b"x" * 11, max_bytes=10)
    with pytest.raises(UploadRejected, match="empty file"):
        check_upload("blank.txt", b"  \n")
    assert check_upload("ok.txt", b"text", max_bytes=MAX_UPLOAD_BYTES) == "ok.txt"


@pytest.fixture()
def index_copy(tmp_path, corpus_index):
    target = tmp_path / "index"
    shutil.copytree(corpus_index, target)
    return target


def test_upload_goes_in_and_same_name_replaces(tmp_path, index_copy, embedder, principal=LOCAL):
    corpus = tmp_path / "corpus"
    result = add_uploads([("../../Zephyrine Memo.txt", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    assert result.errors == []
    assert result.saved["../../Zephyrine Memo.txt"] == (corpus / "Zephyrine-Memo.txt").absolute()
    assert result.report.added == ["zephyrine-memo"]
    assert list(tmp_path.glob("*.txt")) == []  # nothing escaped the corpus folder

    again = add_uploads(
        [("Zephyrine Memo.txt", NOTE + b"\nA second paragraph about hiring.\n")],
        corpus,
        index_copy,
        embedder,
        principal=LOCAL,
    )
    assert again.report.updated == ["zephyrine-memo"]
    index = Index.open(index_copy, embedder.name, embedder.dimension)
    assert [d.doc_id for d in index.documents].count("zephyrine-memo") == 1
    assert len(index.paragraphs("zephyrine-memo")) == 2


def test_bad_files_are_reported_and_the_rest_go_in(tmp_path, index_copy, embedder, principal=LOCAL):
    corpus = tmp_path / "corpus"
    result = add_uploads(
        [("broken.pdf", b"%PDF-1.4 not really a pdf"), ("tool.exe", b"MZ"), ("good.md", NOTE)],
        corpus,
        index_copy,
        embedder,
        principal=LOCAL,
    )
    assert result.report.added == ["good"]
    assert len(result.errors) == 2
    assert any(line.startswith("broken.pdf: ") for line in result.errors)
    assert any(line.startswith("tool.exe: ") and "not allowed" in line for line in result.errors)
    assert sorted(p.name for p in corpus.iterdir()) == ["good.md"]  # the failed PDF was rolled back


def test_failed_replacement_keeps_the_old_file_and_index(tmp_path, index_copy, embedder, principal=LOCAL):
    corpus = tmp_path / "corpus"
    add_uploads([("memo.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    generation = current_generation(index_copy)
    result = add_uploads([("memo.md", b"\x00\x01\x02\x03" * 10 + b"\n")], corpus, index_copy, embedder, principal=LOCAL)
    index = Index.open(index_copy, embedder.name, embedder.dimension)
    if result.report.failed:  # the bytes did not parse: everything stays as it was
        assert (corpus / "memo.md").read_bytes() == NOTE
        assert current_generation(index_copy) == generation
        assert "Zephyrine" in index.paragraph("memo", 1).text
    else:  # the loader accepted them as text; then the index holds the new version
        assert index.document("memo").sha256 != ""


def test_failed_ingest_of_everything_writes_no_generation(tmp_path, index_copy, embedder, principal=LOCAL):
    generation = current_generation(index_copy)
    result = add_uploads(
        [("broken.pdf", b"%PDF-1.4 garbage")], tmp_path / "corpus", index_copy, embedder, principal=LOCAL
    )
    assert result.saved == {}
    assert current_generation(index_copy) == generation


def test_delete_removes_from_index_and_deletes_only_files_inside_the_corpus(
    tmp_path, index_copy, embedder, principal=LOCAL
):
    corpus = tmp_path / "corpus"
    add_uploads([("memo.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    report, removed = delete_document(index_copy, embedder, "memo", corpus, principal=LOCAL)
    assert report.removed == ["memo"] and removed == (corpus / "memo.md").absolute()
    assert not (corpus / "memo.md").exists()
    # A document ingested from elsewhere (the shipped corpus) leaves its file alone.
    _, removed = delete_document(index_copy, embedder, "caixin-commentary", corpus, principal=LOCAL)
    assert removed is None
    index = Index.open(index_copy, embedder.name, embedder.dimension)
    assert "caixin-commentary" not in {d.doc_id for d in index.documents}


def test_is_inside_follows_dotdot(tmp_path):
    assert is_inside(tmp_path / "a" / "b.txt", tmp_path)
    assert not is_inside(tmp_path / ".." / "b.txt", tmp_path)


def test_names_without_ascii_get_distinct_stable_names():
    a, b = sanitize_filename("中文.md"), sanitize_filename("报告.md")
    assert a != b and a.startswith("upload-") and a.endswith(".md")
    assert sanitize_filename("中文.md") == a  # the same name replaces its earlier upload


# --- the server's own upload limit (issue 12, finding 7) ------------------------------------------------


def test_streamlit_max_upload_size_equals_our_limit():
    """Streamlit's server.maxUploadSize (MiB), as `make run` / `streamlit run` from the project folder reads it."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    script = (
        "from streamlit import config; config.get_config_options(force_reparse=True); "
        "print(config.get_option('server.maxUploadSize'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert MAX_UPLOAD_BYTES % 2**20 == 0 and int(out.strip()) == MAX_UPLOAD_BYTES // 2**20
    make = subprocess.run(
        ["make", "-n", "run", f"VENV={ROOT / '.venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "maxUploadSize" not in make  # the config file is the one place it is set


# --- staged uploads, moved in under the lock, with a real rollback (issue 12, finding 10) ------------------

OLD = {
    "a.md": b"Old a: the Lodz plant opens in 2026.\n",
    "b.md": b"Old b: 1,200 workers.\n",
    "c.md": b"Old c: batteries for Europe.\n",
}


def _corpus_with_old_files(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in OLD.items():
        (corpus / name).write_bytes(data)
    return corpus


def _nothing_left_behind(tmp_path, corpus):
    assert list(tmp_path.rglob(".paracite-staging-*")) == []
    assert sorted(p.name for p in corpus.iterdir()) == sorted(OLD)  # no new file, no temp file
    for name, data in OLD.items():
        assert (corpus / name).read_bytes() == data, name


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_move_failing_on_file_k_puts_back_every_earlier_file(tmp_path, index_copy, embedder, monkeypatch, k):
    import errno
    import os

    corpus = _corpus_with_old_files(tmp_path)
    generation = current_generation(index_copy)
    real_replace, moves = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(corpus.absolute()):
            moves.append(dst)
            if len(moves) == k:
                raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    uploads = [("a.md", NOTE), ("new-1.md", NOTE), ("b.md", NOTE), ("new-2.md", NOTE), ("c.md", NOTE)]
    with pytest.raises(OSError, match="simulated"):
        add_uploads(uploads, corpus, index_copy, embedder, principal=LOCAL)
    monkeypatch.undo()
    _nothing_left_behind(tmp_path, corpus)
    assert current_generation(index_copy) == generation


def test_an_ingest_that_raises_puts_back_every_file(tmp_path, index_copy, embedder, monkeypatch):
    import app.corpus

    corpus = _corpus_with_old_files(tmp_path)

    def broken_ingest(*args, **kwargs):
        raise RuntimeError("the embedder died")

    monkeypatch.setattr(app.corpus, "ingest", broken_ingest)
    with pytest.raises(RuntimeError, match="embedder died"):
        add_uploads([("a.md", NOTE), ("new.md", NOTE), ("c.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    _nothing_left_behind(tmp_path, corpus)


def test_uploads_are_staged_outside_the_corpus_and_moved_in_only_under_the_lock(
    tmp_path, index_copy, embedder, monkeypatch
):
    import fcntl
    import os

    corpus = _corpus_with_old_files(tmp_path)
    real_replace, seen = os.replace, []

    def lock_held() -> bool:
        fd = os.open(index_copy / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(corpus.absolute()):
            seen.append((os.path.basename(dst), lock_held(), is_inside(src, corpus)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    result = add_uploads([("b.md", NOTE), ("memo.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    monkeypatch.undo()
    assert result.errors == [] and sorted(result.report.added + result.report.updated) == ["b", "memo"]
    assert seen == [("b.md", True, False), ("memo.md", True, False)]
    assert (corpus / "b.md").read_bytes() == NOTE and list(tmp_path.rglob(".paracite-staging-*")) == []


def test_a_busy_index_leaves_the_corpus_untouched(tmp_path, index_copy, embedder, principal=LOCAL):
    import fcntl
    import os

    from rag.errors import IndexBusy

    corpus = _corpus_with_old_files(tmp_path)
    fd = os.open(index_copy / ".lock", os.O_RDWR | os.O_CREAT)  # another writer, as another process holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(IndexBusy):
            add_uploads([("a.md", NOTE), ("new.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    finally:
        os.close(fd)
    _nothing_left_behind(tmp_path, corpus)


def test_a_rollback_that_cannot_finish_says_where_the_old_bytes_are(tmp_path, index_copy, embedder, monkeypatch):
    import errno
    import os

    from rag.errors import CorpusRestoreFailed

    corpus = _corpus_with_old_files(tmp_path)
    real_replace, moves = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(corpus.absolute()):
            moves.append(dst)
            # the third move fails, and so does putting a.md back
            if len(moves) == 3 or (len(moves) > 3 and os.path.basename(dst) == "a.md"):
                raise OSError(errno.EIO, "I/O error (simulated)")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CorpusRestoreFailed, match=r"could not put back a\.md .*move them back by hand") as caught:
        add_uploads([("a.md", NOTE), ("b.md", NOTE), ("c.md", NOTE)], corpus, index_copy, embedder, principal=LOCAL)
    monkeypatch.undo()
    staging = caught.value.staging_dir
    kept = [p for p in tmp_path.rglob("old-*-a.md")]
    assert len(kept) == 1 and str(kept[0].parent) == staging and kept[0].read_bytes() == OLD["a.md"]
    assert (corpus / "b.md").read_bytes() == OLD["b.md"] and (corpus / "c.md").read_bytes() == OLD["c.md"]
