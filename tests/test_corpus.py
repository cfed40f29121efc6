"""rag.corpus: upload checks, saving into the corpus folder, ingest with rollback, deletion."""

from __future__ import annotations

import shutil

import pytest

from rag.corpus import (MAX_UPLOAD_BYTES, UploadRejected, add_uploads, check_upload, delete_document, is_inside,
                        sanitize_filename)
from rag.store import Index, current_generation

NOTE = b"The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


@pytest.mark.parametrize("name, safe", [
    ("../../x.pdf", "x.pdf"),
    ("..\\..\\evil.md", "evil.md"),
    ("/etc/passwd.txt", "passwd.txt"),
    ("Q3 Report (final).PDF", "Q3-Report-final.pdf"),
    ("Café – notes.md", "Cafe-notes.md"),
    (".hidden.txt", "hidden.txt"),
    ("...pdf", "upload-" + __import__("hashlib").sha256(b"...pdf").hexdigest()[:10] + ".pdf"),
    ("a" * 300 + ".html", "a" * 95 + ".html"),
])
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


def test_upload_goes_in_and_same_name_replaces(tmp_path, index_copy, embedder):
    corpus = tmp_path / "corpus"
    result = add_uploads([("../../Zephyrine Memo.txt", NOTE)], corpus, index_copy, embedder)
    assert result.errors == []
    assert result.saved["../../Zephyrine Memo.txt"] == (corpus / "Zephyrine-Memo.txt").absolute()
    assert result.report.added == ["zephyrine-memo"]
    assert list(tmp_path.glob("*.txt")) == []  # nothing escaped the corpus folder

    again = add_uploads([("Zephyrine Memo.txt", NOTE + b"\nA second paragraph about hiring.\n")], corpus,
                        index_copy, embedder)
    assert again.report.updated == ["zephyrine-memo"]
    index = Index.open(index_copy, embedder.name, embedder.dimension)
    assert [d.doc_id for d in index.documents].count("zephyrine-memo") == 1
    assert len(index.paragraphs("zephyrine-memo")) == 2


def test_bad_files_are_reported_and_the_rest_go_in(tmp_path, index_copy, embedder):
    corpus = tmp_path / "corpus"
    result = add_uploads([("broken.pdf", b"%PDF-1.4 not really a pdf"), ("tool.exe", b"MZ"),
                          ("good.md", NOTE)], corpus, index_copy, embedder)
    assert result.report.added == ["good"]
    assert len(result.errors) == 2
    assert any(line.startswith("broken.pdf: ") for line in result.errors)
    assert any(line.startswith("tool.exe: ") and "not allowed" in line for line in result.errors)
    assert sorted(p.name for p in corpus.iterdir()) == ["good.md"]  # the failed PDF was rolled back


def test_failed_replacement_keeps_the_old_file_and_index(tmp_path, index_copy, embedder):
    corpus = tmp_path / "corpus"
    add_uploads([("memo.md", NOTE)], corpus, index_copy, embedder)
    generation = current_generation(index_copy)
    result = add_uploads([("memo.md", b"\x00\x01\x02\x03" * 10 + b"\n")], corpus, index_copy, embedder)
    index = Index.open(index_copy, embedder.name, embedder.dimension)
    if result.report.failed:  # the bytes did not parse: everything stays as it was
        assert (corpus / "memo.md").read_bytes() == NOTE
        assert current_generation(index_copy) == generation
        assert "Zephyrine" in index.paragraph("memo", 1).text
    else:  # the loader accepted them as text; then the index holds the new version
        assert index.document("memo").sha256 != ""


def test_failed_ingest_of_everything_writes_no_generation(tmp_path, index_copy, embedder):
    generation = current_generation(index_copy)
    result = add_uploads([("broken.pdf", b"%PDF-1.4 garbage")], tmp_path / "corpus", index_copy, embedder)
    assert result.saved == {}
    assert current_generation(index_copy) == generation


def test_delete_removes_from_index_and_deletes_only_files_inside_the_corpus(tmp_path, index_copy, embedder):
    corpus = tmp_path / "corpus"
    add_uploads([("memo.md", NOTE)], corpus, index_copy, embedder)
    report, removed = delete_document(index_copy, embedder, "memo", corpus)
    assert report.removed == ["memo"] and removed == (corpus / "memo.md").absolute()
    assert not (corpus / "memo.md").exists()
    # A document ingested from elsewhere (the shipped corpus) leaves its file alone.
    _, removed = delete_document(index_copy, embedder, "caixin-commentary", corpus)
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
