"""Shared fixtures: the real embedding model and a real index of the shipped corpus, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def embedder():
    from rag.embed.embedder import Embedder

    e = Embedder()
    _ = e.model  # load once for the whole session (about 9 s)
    return e


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder) -> Path:
    """An index of the shipped corpus/, built once. Read-only for tests: copy it before changing it."""
    from rag.index.ingest import ingest

    index_dir = tmp_path_factory.mktemp("corpus-index") / "index"
    report = ingest([CORPUS], index_dir, embedder)
    assert not report.failed, report.failed
    return index_dir


@pytest.fixture(scope="session")
def engine(corpus_index, embedder):
    from rag.engine import Engine

    return Engine.load(corpus_index, embedder)


@pytest.fixture(scope="session")
def local_model():
    """The real offline LLM (SmolLM2-135M through transformers), loaded once per session (about 30 s)."""
    from app.chat_models import make_chat_model

    model = make_chat_model("local", max_tokens=48)
    model.load()
    return model
