"""The parse budget: limits from the environment, worker processes that stop a slow or greedy file
alone, parallel results identical to a serial parse, and a folder of hostile files through the
real `rag.index.ingest.ingest`."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from rag.errors import BadArgument, IngestError, OverBudget
from rag.index.ingest import ingest
from rag.index.reader import Index
from rag.load import LoadedFile, load_file
from rag.load.limits import Limits
from rag.load.worker import parse_files, worker_modules
from tests.conftest import CORPUS
from tests.pathological.hostile_files import good_pdf, shared_stream_pdf
from tests.pdfs import report_pdf

PATHOLOGICAL = Path(__file__).resolve().parent / "pathological"
GIANT_SENTENCE = "Exports of electric cars rose again in the third quarter, the association said. "


def test_limits_come_from_the_environment_and_bad_values_name_their_variable():
    limits = Limits.from_env(
        {"PARACITE_SECONDS_PER_FILE": "2.5", "PARACITE_MAX_PARAGRAPH_CHARS": "900", "PARACITE_PARSE_WORKERS": "0"}
    )
    assert (limits.seconds_per_file, limits.max_paragraph_chars, limits.workers) == (2.5, 900, 0)
    assert Limits.from_env({}) == Limits()
    with pytest.raises(BadArgument, match="PARACITE_MEMORY_MB='lots' is not a number"):
        Limits.from_env({"PARACITE_MEMORY_MB": "lots"})
    with pytest.raises(BadArgument, match="max_pages must be greater than 0.*PARACITE_MAX_PAGES"):
        Limits(max_pages=0)


def test_size_page_and_character_budgets_refuse_with_the_variable_to_raise(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("A paragraph of notes about exports. " * 100, "utf-8")
    with pytest.raises(OverBudget, match=r"notes.txt: file is .* MB, over the limit .*PARACITE_MAX_FILE_MB") as e:
        load_file(text, limits=Limits(max_file_mb=0.001))
    assert e.value.limit == "max_file_mb"
    with pytest.raises(OverBudget, match="over the limit of 1,000; raise PARACITE_MAX_DOC_CHARS"):
        load_file(text, limits=Limits(max_doc_chars=1000))
    with pytest.raises(OverBudget, match="PDF has 3 pages, over the limit of 2; raise PARACITE_MAX_PAGES"):
        load_file(report_pdf(tmp_path / "report.pdf"), limits=Limits(max_pages=2))


def test_a_slow_file_is_stopped_at_its_deadline_and_the_others_still_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "pypdf")  # the file is slow for pypdf; PDFium reads it at once
    slow, good = tmp_path / "slow.pdf", tmp_path / "good.md"
    slow.write_bytes(shared_stream_pdf(1, 600_000))  # about 5 s of pypdf parsing, more on a busy machine
    good.write_text("A short, well-formed paragraph.\n", "utf-8")
    started = time.perf_counter()
    results = parse_files([(slow, "slow"), (good, "good")], Limits(seconds_per_file=0.5, workers=2))
    assert time.perf_counter() - started < 4
    assert isinstance(results[0], OverBudget) and results[0].limit == "seconds_per_file"
    assert "slow.pdf: parsing took longer than the limit of 0.5 s; raise PARACITE_SECONDS_PER_FILE" in str(results[0])
    assert isinstance(results[1], LoadedFile) and results[1].paragraphs[0].text == "A short, well-formed paragraph."


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux only")
def test_a_file_over_the_memory_budget_fails_alone_and_the_worker_is_replaced(tmp_path):
    hog, good = tmp_path / "hog.txt", tmp_path / "good.md"
    hog.write_text("Exports rose. " * 600_000, "utf-8")  # 8 MB: well over 150 MB once split into words
    good.write_text("A short, well-formed paragraph.\n", "utf-8")
    results = parse_files([(hog, "hog"), (good, "good")], Limits(memory_mb=150, workers=1))
    assert isinstance(results[0], OverBudget) and results[0].limit == "memory_mb"
    assert "raise PARACITE_MEMORY_MB" in str(results[0])
    assert isinstance(results[1], LoadedFile)  # parsed by a fresh worker after the first one gave up


def test_workers_hold_the_loaders_and_not_the_model(embedder):
    assert "torch" in sys.modules  # the caller has the model loaded...
    modules = worker_modules()
    assert "rag.load.pdf" in modules
    heavy = [
        m
        for m in modules
        if m.split(".")[0] in {"torch", "sentence_transformers", "transformers", "faiss", "numpy", "rag.embed.embedder"}
    ]
    assert heavy == []  # ...and the worker does not


def test_parallel_parse_gives_exactly_the_serial_results_in_order():
    files = sorted(CORPUS.iterdir())
    jobs = [(path, path.stem) for path in files]
    serial = [load_file(path, doc_id) for path, doc_id in jobs]
    assert parse_files(jobs, Limits(workers=2)) == serial
    assert parse_files(jobs, Limits(workers=0)) == serial


def test_ingest_gives_ids_in_file_order_and_reports_parse_progress(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("")  # fails, so a.txt takes the plain id, as a serial ingest gave it
    (corpus / "a.txt").write_text("Text of the plain file.\n")
    (corpus / "b.md").write_text("Text of b.\n")
    (corpus / "b.txt").write_text("Text of the other b.\n")
    calls = []
    report = ingest(
        [corpus], tmp_path / "index", embedder, progress=lambda *a: calls.append(a), limits=Limits(workers=2)
    )
    assert report.added == ["a", "b", "b-txt"]
    assert [Path(e.path).name for e in report.failed] == ["a.md"]
    assert [c for c in calls if c[0] == "parse"] == [("parse", i, 4) for i in range(1, 5)]


def test_pathological_folder_goes_through_ingest_within_budget(tmp_path, embedder, monkeypatch):
    # The hostile PDFs here were built against pypdf's limits, so this reads them with pypdf, the fallback reader
    # (the workers inherit the variable); PDFium, the default, is checked on them in tests/test_loaders.py.
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "pypdf")
    corpus = tmp_path / "corpus"
    shutil.copytree(PATHOLOGICAL, corpus, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (corpus / "giant-one-line.txt").write_text(GIANT_SENTENCE * 1800, "utf-8")  # 146 KB, one line
    limits = Limits(seconds_per_file=10, memory_mb=600)
    started = time.perf_counter()
    parsed_at = []
    report = ingest(
        [corpus],
        tmp_path / "index",
        embedder,
        limits=limits,
        progress=lambda stage, done, total: (
            parsed_at.append(time.perf_counter() - started) if stage == "parse" else None
        ),
    )

    names = sorted(p.name for p in corpus.iterdir())
    failed = {Path(e.path).name: str(e) for e in report.failed}
    added = sorted(report.added)
    assert len(added) + len(failed) == len(names)
    assert set(failed) == {"flate-bomb.pdf", "limit-reached.pdf", "shared-stream.pdf"}
    assert "pypdf's safety limits" in failed["flate-bomb.pdf"] and "safety limits" in failed["limit-reached.pdf"]
    for message in failed.values():
        assert "\n" not in message and "Traceback" not in message
    assert {"good", "good-pdf", "giant-one-line", "marker-range", "deep-nesting", "unclosed-comments"} <= set(added)
    # Every file had 10 s and most need milliseconds; embedding (not timed here) is the bulk of an ingest.
    assert len(parsed_at) == len(names) and parsed_at[-1] < 30

    index = Index.open(tmp_path / "index", embedder.name, embedder.dimension)
    for doc_id in added:
        paragraphs = index.paragraphs(doc_id)
        assert [p.para for p in paragraphs] == list(range(1, len(paragraphs) + 1))
        assert max(len(p.text) for p in paragraphs) <= limits.max_paragraph_chars
    assert len(index.paragraphs("giant-one-line")) >= 25
    assert index.paragraphs("marker-range")[0].source_paras == (1, 100000000)


def test_a_file_that_turns_hostile_keeps_its_last_good_version(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv("PARACITE_PDF_LIBRARY", "pypdf")  # the file is slow for pypdf; PDFium reads it at once
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "filing.pdf").write_bytes(good_pdf())
    ingest([corpus], tmp_path / "index", embedder)
    (corpus / "filing.pdf").write_bytes(shared_stream_pdf(1, 400_000))
    report = ingest([corpus], tmp_path / "index", embedder, limits=Limits(seconds_per_file=0.5))
    assert [type(e) for e in report.failed] == [OverBudget] and not report.changed
    index = Index.open(tmp_path / "index", embedder.name, embedder.dimension)
    assert index.paragraphs("filing")[0].text.startswith("A good PDF paragraph")


def test_ingest_of_a_missing_file_still_reports_one_line(tmp_path, embedder):
    report = ingest([tmp_path / "nope.md"], tmp_path / "index", embedder)
    assert [type(e) for e in report.failed] == [IngestError] and "no such file" in str(report.failed[0])
