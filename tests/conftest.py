"""Shared fixtures: the real embedding model and a real index of the shipped corpus, built once per run.

`make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadscope`): most tests are single-threaded
Python, and two processes keep both cores busy where one left the second idle. What that needs, here:

- Work goes out a module at a time (`loadscope`), so a module's fixtures (servers, browsers, index copies) are set
  up once, not once per worker; the longest modules go out first (`LONG_MODULES`).
- The corpus index is built once for the whole run, by whichever worker asks first, in the folder the workers
  share; the others wait for it (a file lock) and read the same folder. It was already read-only for tests.
- The ONNX query encoder is exported once per run, not once per new index folder (`_one_onnx_export`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One OpenMP thread per worker (torch, faiss), set before either is imported: two workers of two threads each
    # on two cores wait on each other's threads. Training this suite's IVF-PQ index took 8-21 s on two threads
    # beside other work, 7-8 s on one; two processes embedding at once were no faster with two threads each.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
# The longest modules (`--durations`), in this order, go to the xdist workers before all the others
# (`pytest_collection_modifyitems`): a long module left for the end would run alone while the other worker idles.
LONG_MODULES = (
    "tests/test_metamorphic.py",
    "tests/test_query_path.py",
    "tests/test_eval_runner.py",
    "tests/test_ingest.py",
    "tests/test_ray.py",
    "tests/test_local_llm.py",
    "tests/test_scale.py",
    "tests/test_team_browser.py",
    "tests/test_budgets.py",
    "tests/test_ui_browser.py",
    "tests/test_ui_citations_browser.py",
    "tests/test_answer_shape.py",
)


def _shared_tmp(tmp_path_factory) -> Path:
    """The run's temporary folder that every xdist worker shares (each worker's own is a folder inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def embedder():
    from rag.embed.embedder import Embedder

    e = Embedder()
    _ = e.model  # load once for the whole session (about 9 s)
    return e


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder) -> Iterator[Path]:
    """An index of the shipped corpus/, built once for the whole run (by one worker, under a lock, when the suite
    runs on several). Read-only for tests: copy it before changing it."""
    from filelock import FileLock

    from rag.index.ingest import ingest

    shared = _shared_tmp(tmp_path_factory)
    index_dir = shared / "corpus-index" / "index"
    built = shared / "corpus-index" / "built"
    with FileLock(str(shared / "corpus-index.lock")):
        if not built.exists():
            report = ingest([CORPUS], index_dir, embedder)
            assert not report.failed, report.failed
            built.touch()
        before = _files_of(index_dir)
    yield index_dir
    # Shared by the workers: a test that wrote into it would change what tests on the other worker read.
    assert _files_of(index_dir) == before, "a test changed the session's corpus index: copy it before changing it"


def _files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of everything under `folder`, by relative path."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="session")
def engine(corpus_index, embedder):
    from rag.engine import Engine

    return Engine.load(corpus_index, embedder)


@pytest.fixture(scope="session")
def local_model():
    """The real offline LLM (SmolLM2-135M through transformers), loaded once per session (about 30 s). Only
    tests/test_local_llm.py uses it: one module goes to one xdist worker, so it loads once per run."""
    from app.chat_models import make_chat_model

    model = make_chat_model("local", max_tokens=48)
    model.load()
    return model


@pytest.fixture(autouse=True)
def _one_onnx_export(request, monkeypatch, tmp_path_factory):
    """The first ingest into a new index folder exports the ONNX query encoder (3-5 s). Tests whose subject is not
    that export get a copy of one real export instead, made once per run (`Embedder.export_query_encoder` copies
    it, atomically, as the exporter publishes its own). The corpus index's export (a session fixture, set up before
    this) and the tests marked `onnx_export` (tests/test_query_path.py) export for real."""
    if request.node.get_closest_marker("onnx_export"):
        return
    import json
    import shutil

    from filelock import FileLock

    from rag.embed import onnx_encoder
    from rag.embed.embedder import Embedder

    export = Embedder.export_query_encoder
    cache = _shared_tmp(tmp_path_factory) / "onnx-export"

    def copy_of_one_export(self, index_dir) -> float:
        exported = onnx_encoder.encoder_folder(cache / f"{self.name.replace('/', '--')}-{self.dimension}")
        with FileLock(str(cache) + ".lock"):
            if not exported.exists():
                export(self, exported.parent)
        final = onnx_encoder.encoder_folder(index_dir)
        staging = final.with_name(f".{final.name}-copy-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(exported, staging)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return json.loads((final / onnx_encoder.INFO_FILE).read_text(encoding="utf-8"))["max_error"]

    monkeypatch.setattr(Embedder, "export_query_encoder", copy_of_one_export)


def pytest_collection_modifyitems(config, items):
    """On xdist workers, `LONG_MODULES` first, in that order; each module's tests keep their order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        first = {name: i for i, name in enumerate(LONG_MODULES)}
        items.sort(key=lambda item: first.get(item.nodeid.split("::", 1)[0], len(first)))
