"""The query path without torch: the ONNX query encoder made at ingest, and sentence vectors stored at ingest.

Both change where vectors come from, never what they are: the tests hold them to the torch model's
vectors, and the answers to those of an answerer that embeds every sentence per question.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rag.answer.extractive import ExtractiveAnswerer
from rag.embed import onnx_encoder
from rag.embed.embedder import Embedder
from rag.embed.sentence_vectors import OFFSETS_FILE, VECTORS_FILE, vector_texts
from rag.engine import Engine, titles_of
from rag.errors import BadArgument, IndexDamaged
from rag.index.ingest import ingest
from rag.index.layout import current_generation
from rag.index.reader import Index
from rag.present import to_json
from rag.sentences import split_sentences
from tests.conftest import CORPUS, ROOT

# The export is what this module tests: its ingests export the query encoder themselves (tests/conftest.py).
pytestmark = pytest.mark.onnx_export

QUESTIONS = [
    "How many vehicles did China export in 2023?",
    "What definitive duty did the EU set on BYD?",
    "Which country did Chinese carmakers export the most vehicles to?",
    "Why should carmakers localise?",
    "Who won the 2022 World Cup?",
]


def test_the_onnx_encoder_gives_the_torch_models_vectors(corpus_index, embedder, engine):
    encoder = onnx_encoder.load(corpus_index, embedder.name, embedder.dimension)
    assert encoder is not None, "ingest exports the query encoder"
    info = json.loads((onnx_encoder.encoder_folder(corpus_index) / onnx_encoder.INFO_FILE).read_text())
    assert info["model"] == embedder.name and info["max_error"] < onnx_encoder.MAX_ERROR
    # Real texts of every length, batched together (padding) and one by one, past the 256-token truncation.
    texts = QUESTIONS + [p.text for p in engine.index.content.paragraphs[::7]] + [" ".join(["exports"] * 600)]
    expected = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(encoder.encode(texts) - expected).max() < 1e-4
    assert np.abs(encoder.encode(texts[:1]) - expected[:1]).max() < 1e-4


def test_the_engine_encodes_questions_with_onnx_when_the_index_has_it(corpus_index, monkeypatch):
    assert Embedder.for_index(corpus_index).query_backend == "onnx"
    monkeypatch.setenv("RAG_QUERY_ENCODER", "torch")
    assert Embedder.for_index(corpus_index).query_backend == "torch"


def test_an_index_without_an_encoder_answers_through_torch(corpus_index, tmp_path, embedder):
    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    shutil.rmtree(onnx_encoder.encoder_folder(copy))
    assert Embedder.for_index(copy).query_backend == "torch"
    (onnx_encoder.encoder_folder(copy)).mkdir()
    (onnx_encoder.encoder_folder(copy) / onnx_encoder.INFO_FILE).write_text("{not json")
    assert Embedder.for_index(copy).query_backend == "torch", "a broken export is ignored, not fatal"
    report = ingest([CORPUS], copy, embedder)  # nothing changed, but the missing encoder is made again
    assert not report.changed and onnx_encoder.load(copy, embedder.name, embedder.dimension) is not None


@pytest.mark.parametrize("tamper", ["model", "tokenizer", "no-hashes"])
def test_an_altered_encoder_is_not_used_and_doctor_says_so(corpus_index, tmp_path, embedder, tamper, caplog):
    """A replaced model.onnx would turn retrieval into garbage silently: it must fail its recorded sha256."""
    from rag.index.doctor import diagnose

    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    folder = onnx_encoder.encoder_folder(copy)
    if tamper == "model":
        data = bytearray((folder / onnx_encoder.MODEL_FILE).read_bytes())
        data[-1000] ^= 0xFF  # one flipped byte in the weights: the graph still loads and runs
        (folder / onnx_encoder.MODEL_FILE).write_bytes(bytes(data))
    elif tamper == "tokenizer":
        (folder / onnx_encoder.TOKENIZER_FILE).write_text((folder / onnx_encoder.TOKENIZER_FILE).read_text() + " ")
    else:  # an export from before the hashes were recorded
        info = json.loads((folder / onnx_encoder.INFO_FILE).read_text())
        (folder / onnx_encoder.INFO_FILE).write_text(json.dumps({k: v for k, v in info.items() if k != "sha256"}))
    with caplog.at_level("WARNING"):
        assert onnx_encoder.load(copy, embedder.name, embedder.dimension) is None
    assert "sha256" in caplog.text
    assert Embedder.for_index(copy).query_backend == "torch"
    (check,) = [c for c in diagnose(copy).checks if c.name == "encoder"]
    assert check.status.value == "warn" and "sha256" in check.detail and "rag ingest" in check.fix
    ingest([CORPUS], copy, embedder)  # exports it again
    assert onnx_encoder.load(copy, embedder.name, embedder.dimension) is not None


def test_stored_sentence_vectors_are_the_models_vectors_of_each_sentence(engine, embedder):
    stored = engine.index.sentences
    assert stored is not None
    paragraphs = engine.index.content.paragraphs
    assert stored.offsets[-1] == sum(len(split_sentences(p.text)) for p in paragraphs)
    for p in paragraphs[::11]:
        sentences = split_sentences(p.text)
        expected = embedder.model.encode(vector_texts(p), normalize_embeddings=True, convert_to_numpy=True)
        # Documents may be encoded in bfloat16 (rag.embed.embedder.document_precision): the same vectors to 3 decimals.
        cosines = np.sum(stored.of(p.doc_id, p.para, len(sentences)) * expected, axis=1)
        assert cosines.min() > 0.999, (p.doc_id, p.para, cosines.min())
    assert stored.of(paragraphs[0].doc_id, paragraphs[0].para, count=10**6) is None, "a changed split is not trusted"


def test_answers_from_stored_sentence_vectors_equal_answers_embedding_them_per_question(engine, embedder):
    per_question = engine.with_answerer(ExtractiveAnswerer(embedder, titles_of(engine.index)))
    assert engine.answerer.sentences is not None and per_question.answerer.sentences is None
    for question in QUESTIONS:
        stored, live = engine.ask(question), per_question.ask(question)
        a, b = to_json(stored), to_json(live)
        for key in ("timings_ms",):
            a.pop(key), b.pop(key)
        # Stored vectors may be bfloat16 (rag.embed.embedder.document_precision), those embedded per question float32:
        # scores agree to 3 decimals, and the answer (sentences, order, citations, lead) is the same.
        assert [c["score"] for c in a["claims"]] == pytest.approx([c["score"] for c in b["claims"]], abs=5e-3)
        for claims in (a["claims"], b["claims"]):
            for c in claims:
                c.pop("score")
        a["signals"] = pytest.approx(a["signals"], abs=5e-3)
        assert a == b, question


def test_an_index_written_before_sentence_vectors_answers_and_is_upgraded(corpus_index, tmp_path, embedder):
    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    generation = current_generation(copy)
    for name in (VECTORS_FILE, OFFSETS_FILE):
        (copy / generation / name).unlink()
    old = Engine.load(copy, embedder)
    assert old.index.sentences is None
    assert not old.ask(QUESTIONS[0]).abstained
    report = ingest([CORPUS], copy, embedder)
    assert report.generation and report.sentences_embedded > 0 and "sentence vectors" in report.summary()
    assert Index.open(copy, embedder.name, embedder.dimension).sentences is not None


def test_an_index_of_the_previous_format_is_rebuilt_by_ingest_not_refused(corpus_index, tmp_path, embedder):
    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    manifest_file = copy / current_generation(copy) / "manifest.json"
    manifest_file.write_text(json.dumps({**json.loads(manifest_file.read_text()), "format_version": 1}))
    report = ingest([CORPUS], copy, embedder)
    assert report.generation and any("rebuilding it" in w for w in report.warnings), report.warnings
    assert Engine.load(copy, embedder).ask(QUESTIONS[0]).claims


@pytest.mark.parametrize("damage", ["truncated", "offsets"])
def test_damaged_sentence_vectors_are_a_damaged_index(corpus_index, tmp_path, embedder, damage):
    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    folder = copy / current_generation(copy)
    if damage == "truncated":
        data = (folder / VECTORS_FILE).read_bytes()
        (folder / VECTORS_FILE).write_bytes(data[: len(data) // 2])
    else:
        np.save(folder / OFFSETS_FILE, np.zeros(3, dtype=np.int64))
    with pytest.raises(IndexDamaged, match="sentence"):
        Index.open(copy, embedder.name, embedder.dimension)


def test_a_cold_rag_ask_never_imports_torch_and_prints_its_timings(corpus_index):
    """The whole point of the ONNX encoder: a fresh `rag ask` process loads neither torch nor sentence-transformers."""
    code = (
        "import sys; from click.testing import CliRunner; from app.cli import cli; "
        f"r = CliRunner().invoke(cli, ['ask', '--index', {str(corpus_index)!r}, '--timings', "
        f"{QUESTIONS[0]!r}]); print(r.output, repr(r.exception)); "
        "print('LOADED', sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert "LOADED []" in out, out
    assert "load query encoder (onnx)" in out and "question 1: embed_question" in out and "5.221 million" in out, out


def _fresh_documents(embedder: Embedder) -> Embedder:
    """The session's embedder (its loaded model shared) with no document model chosen yet."""
    twin = copy.copy(embedder)
    twin._document_model = None
    return twin


def test_documents_in_bfloat16_are_the_float32_vectors_to_three_decimals(engine, embedder, monkeypatch):
    texts = [p.text for p in engine.index.content.paragraphs[::5]] + QUESTIONS
    expected = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    monkeypatch.setenv("RAG_DOCUMENT_PRECISION", "bfloat16")
    half = _fresh_documents(embedder)
    assert str(next(half.document_model.parameters()).dtype) == "torch.bfloat16"
    assert next(half.model.parameters()).dtype != next(half.document_model.parameters()).dtype, "queries stay float32"
    vectors = half.encode_documents(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * expected, axis=1)
    assert cosines.min() > 0.999 and np.abs(vectors - expected).max() > 1e-5, "a different precision, same vectors"
    monkeypatch.setenv("RAG_DOCUMENT_PRECISION", "float32")
    full = _fresh_documents(embedder)
    assert full.document_model is full.model
    assert np.abs(full.encode_documents(texts) - expected).max() < 1e-5


def test_a_bad_document_precision_is_a_clear_error(embedder, monkeypatch):
    monkeypatch.setenv("RAG_DOCUMENT_PRECISION", "int4")
    with pytest.raises(BadArgument, match="RAG_DOCUMENT_PRECISION must be one of float32, bfloat16"):
        _ = _fresh_documents(embedder).document_model
