"""A folder ingest never follows a symlink out of the folder (issue 22, finding 8).

`rag.index.files.discover` is the one walk over a folder: `rag ingest DIR`, `POST /ingest` (the corpus
folder, through `app.serve.corpus_paths`) and the UI's uploads all reach files through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.serve import corpus_paths
from rag.index.files import discover
from rag.index.ingest import ingest
from rag.index.reader import Index

NOTE = "# Note\n\nBYD opened a plant in Thailand in 2024, the note says.\n"
SECRET = "# Secret\n\nThe launch codes of the Zorblat project are 0000 and 1234.\n"


@pytest.fixture()
def corpus(tmp_path) -> Path:
    """corpus/ with a note, a link to a file outside it, a link to a folder outside it, and a link inside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(SECRET)
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "note.md").write_text(NOTE)
    (corpus / "sub" / "inner.md").write_text(NOTE.replace("Thailand", "Hungary"))
    (corpus / "secret-link.md").symlink_to(outside / "secret.md")
    (corpus / "sub" / "up.md").symlink_to(Path("..") / ".." / "outside" / "secret.md")  # relative, by ..
    (corpus / "outside-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "inner-link.md").symlink_to(corpus / "sub" / "inner.md")
    return corpus


def test_discover_refuses_each_symlink_that_leaves_the_folder_and_names_it(corpus):
    files, errors = discover([corpus])
    assert files == [
        (corpus / "inner-link.md").absolute(),
        (corpus / "note.md").absolute(),
        (corpus / "sub" / "inner.md").absolute(),
    ]
    refused = {Path(e.path): e.reason for e in errors}
    assert set(refused) == {
        (corpus / "secret-link.md").absolute(),
        (corpus / "sub" / "up.md").absolute(),
        (corpus / "outside-folder").absolute(),
    }
    assert all("symlink" in reason and "outside the folder" in reason for reason in refused.values())
    assert all("secret.md" not in reason for reason in refused.values())  # the target is not disclosed


def test_a_symlink_loop_is_refused_not_fatal(corpus):
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    files, errors = discover([corpus])
    assert (corpus / "loop.md").absolute() in {Path(e.path) for e in errors}
    assert (corpus / "note.md").absolute() in files


def _all_text(index: Path, embedder) -> str:
    opened = Index.open(index, embedder.name, embedder.dimension)
    return " ".join(p.text for d in opened.documents for p in opened.paragraphs(d.doc_id))


def test_cli_folder_ingest_leaves_the_linked_file_out(corpus, tmp_path, embedder):
    index = tmp_path / "index"
    result = CliRunner().invoke(cli, ["ingest", str(corpus), "--index", str(index)])
    assert result.exit_code == 1, result.output
    assert f"failed   {(corpus / 'secret-link.md').absolute()}: symlink" in result.output
    assert "3 added, 0 updated, 0 unchanged, 0 removed, 3 failed" in result.output
    assert "Zorblat" not in _all_text(index, embedder)


def test_corpus_folder_ingest_over_http_leaves_the_linked_file_out(corpus, tmp_path, embedder):
    """What `POST /ingest` with no paths runs: the corpus folder, through `discover`."""
    index = tmp_path / "index"
    report = ingest(corpus_paths(corpus, []), index, embedder)
    assert {Path(e.path).name for e in report.failed} == {"secret-link.md", "up.md", "outside-folder"}
    assert sorted(report.added) == ["inner", "inner-link", "note"]
    assert "Zorblat" not in _all_text(index, embedder)


def test_an_upload_over_a_symlink_replaces_the_link_not_its_target(corpus, tmp_path, embedder):
    """The UI's path: an upload is moved in by name (a rename over the link) and ingested as the file it now is."""
    from app.auth import LOCAL
    from app.corpus import add_uploads

    index = tmp_path / "index"
    result = add_uploads(
        [("secret-link.md", b"# Mine\n\nAn upload that lands where a link was.\n")],
        corpus,
        index,
        embedder,
        principal=LOCAL,
    )
    assert result.errors == [] and result.report.added == ["secret-link"]
    assert not (corpus / "secret-link.md").is_symlink()
    assert (tmp_path / "outside" / "secret.md").read_text() == SECRET
    assert "Zorblat" not in _all_text(index, embedder)


def test_a_file_replaced_by_a_symlink_out_keeps_its_previous_version(tmp_path, embedder):
    """A refused path is a failure, and a file that fails keeps its last good version: it is not 'gone'."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "note.md").write_text(NOTE)
    (tmp_path / "elsewhere.md").write_text(NOTE)
    ingest([corpus], index, embedder)
    (corpus / "note.md").unlink()
    (corpus / "note.md").symlink_to(tmp_path / "elsewhere.md")
    report = ingest([corpus], index, embedder)
    assert len(report.failed) == 1 and "symlink" in report.failed[0].reason
    assert report.removed == [] and report.generation is None
    assert [d.doc_id for d in Index.open(index, embedder.name, embedder.dimension).documents] == ["note"]
