"""Indexes that grow: the approximate dense index above a (lowered) limit, BM25 postings on disk, appends.

Real model, real FAISS and SQLite files on disk. The exact limit is lowered through
$PARACITE_EXACT_LIMIT so that the shipped corpus (73 passages of up to 1,000 characters) gets the IVF-PQ index a
million-paragraph library gets; the speed and memory figures are bench/scale.py's, not these tests'.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bm25s
import faiss
import numpy as np
import pytest
import Stemmer

from rag.errors import IndexDamaged
from rag.index import ann
from rag.index.bm25 import Postings, PostingsWriter, Vocabulary, words, write_impacts
from rag.index.ingest import ingest
from rag.index.layout import current_generation
from rag.index.lock import write_lock
from rag.index.reader import Index
from rag.index.writer import write_generation
from rag.retrieve.hybrid import Bm25Retriever, HybridRetriever
from tests.conftest import ROOT

NOTE = "The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


def gold_questions(limit: int | None = None) -> list[str]:
    questions = [
        json.loads(line)["question"]
        for path in sorted((ROOT / "evals/gold").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return questions[:limit]


@pytest.fixture(scope="module")
def questions(embedder) -> tuple[list[str], np.ndarray]:
    texts = gold_questions()
    return texts, embedder.encode_queries(texts)


@pytest.fixture(scope="module")
def exact_index(corpus_index, embedder) -> Index:
    return Index.open(corpus_index, embedder.name, embedder.dimension)


@pytest.fixture(scope="module")
def ivf_dir(tmp_path_factory, corpus_index, exact_index) -> Path:
    """The session's corpus index rewritten with the exact limit lowered to 50 passages: an IVF-PQ index."""
    target = tmp_path_factory.mktemp("ivf") / "index"
    shutil.copytree(corpus_index, target)
    with pytest.MonkeyPatch.context() as mp, write_lock(target):
        mp.setenv(ann.LIMIT_ENV, "50")
        manifest = {k: exact_index.manifest[k] for k in ("model", "dimension", "normalized", "chunking")}
        write_generation(target, exact_index.content, manifest)
    return target


def open_index(path, embedder) -> Index:
    return Index.open(path, embedder.name, embedder.dimension)


def test_small_indexes_stay_exact_and_large_ones_become_ivfpq(exact_index, ivf_dir, embedder):
    assert exact_index.manifest["dense"] == {"kind": "exact"} and isinstance(exact_index.faiss, faiss.IndexFlatIP)
    ivf = open_index(ivf_dir, embedder)
    dense = ivf.manifest["dense"]
    assert dense["kind"] == "ivfpq" and dense["trained_on"] == ivf.passage_count == exact_index.passage_count
    assert isinstance(ivf.faiss, faiss.IndexIVFPQ) and ivf.faiss.ntotal == ivf.passage_count
    assert faiss.extract_index_ivf(ivf.faiss).nprobe == dense["nprobe"]
    assert np.array_equal(np.asarray(ivf.vectors), np.asarray(exact_index.vectors))  # exact vectors kept beside it


def test_the_limit_is_read_from_the_environment_and_checked(monkeypatch):
    assert ann.plan(ann.DEFAULT_EXACT_LIMIT, 384)["kind"] == "exact"
    assert ann.plan(ann.DEFAULT_EXACT_LIMIT + 1, 384)["kind"] == "ivfpq"
    monkeypatch.setenv(ann.LIMIT_ENV, "10")
    assert ann.plan(11, 384)["kind"] == "ivfpq" and ann.plan(10, 384)["kind"] == "exact"
    monkeypatch.setenv(ann.LIMIT_ENV, "many")
    with pytest.raises(ValueError, match="PARACITE_EXACT_LIMIT must be a whole number"):
        ann.exact_limit()


def test_retraining_waits_until_the_index_has_grown_past_the_factor():
    spec = ann.plan(1000, 384, limit=100)
    assert not ann.needs_retraining(spec, 1000 * ann.RETRAIN_GROWTH, limit=100)
    assert ann.needs_retraining(spec, 1000 * ann.RETRAIN_GROWTH + 1, limit=100)
    assert ann.needs_retraining({"kind": "exact"}, 101, limit=100)  # crossing the limit trains one
    assert not ann.needs_retraining({"kind": "exact"}, 100, limit=100)


def test_an_approximate_corpus_index_answers_as_the_exact_one(exact_index, ivf_dir, embedder, questions):
    """Below the dense depth every passage is a candidate and scores are re-ranked exactly: same hits, same scores."""
    ivf = open_index(ivf_dir, embedder)
    exact_retriever, ivf_retriever = (HybridRetriever.from_index(i, embedder) for i in (exact_index, ivf))
    for text, vector in zip(*questions):
        want = exact_retriever.search(text, top_k=5, query_vector=vector)
        got = ivf_retriever.search(text, top_k=5, query_vector=vector)
        assert [h.paragraph for h in got] == [h.paragraph for h in want], text
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)


def test_ivfpq_recall_at_10_against_exact_on_real_questions(exact_index, questions):
    """20,000 vectors of the model's geometry (corpus passages, mixed and perturbed as bench/scale.py makes them),
    128 cells of which 16 are probed: the product's dense search keeps >= 0.95 of the exact top 10."""
    rng = np.random.default_rng(0)
    real = np.asarray(exact_index.vectors)
    n = 20_000
    vectors = (
        real[rng.integers(0, len(real), n)]
        + rng.uniform(0, 0.6, (n, 1)).astype(np.float32) * real[rng.integers(0, len(real), n)]
        + rng.normal(0, 0.03, (n, real.shape[1])).astype(np.float32)
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    spec = ann.plan(n, real.shape[1], limit=1000)
    assert spec["kind"] == "ivfpq" and spec["nprobe"] < spec["cells"]
    approximate = ann.build(vectors, spec)
    ann.configure(approximate, spec)
    exact = ann.build(vectors, {"kind": "exact"})
    recalls = []
    for q in questions[1]:
        _, want = exact.search(q.reshape(1, -1), 10)
        _, got = ann.search(approximate, vectors, q, 4000)
        recalls.append(len(set(got[:10].tolist()) & set(want[0].tolist())) / 10)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


def test_bm25_from_disk_scores_as_bm25s_built_in_memory(exact_index, questions):
    """The postings are scored at query time; bm25s precomputes its scores: the same scores, the same order."""
    paragraphs = exact_index.content.paragraphs
    tokenizer = bm25s.tokenization.Tokenizer(stemmer=Stemmer.Stemmer("english"), stopwords="en")
    ids = tokenizer.tokenize([p.text for p in paragraphs], update_vocab=True, return_as="ids", show_progress=False)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index((ids, tokenizer.get_vocab_dict()), show_progress=False)
    on_disk = Bm25Retriever(exact_index)
    compared = 0
    for text in questions[0]:
        query = tokenizer.tokenize([text], update_vocab="never", return_as="ids", show_progress=False)[0]
        query = list(dict.fromkeys(t for t in query if t != tokenizer.word_to_id.get("")))
        if not query:
            continue
        scores = reference.get_scores(query)
        order = np.argsort(-scores, kind="stable")
        want = {int(i): float(scores[i]) for i in order[:1000] if scores[i] > 0}
        got = on_disk.top(text, 1000)
        assert list(got) == list(want), text
        assert list(got.values()) == pytest.approx(list(want.values()), rel=1e-6)
        compared += 1
    assert compared > 200


def test_postings_appended_equal_postings_built_at_once(tmp_path, exact_index):
    texts = [p.text for p in exact_index.content.paragraphs]
    half = len(texts) // 2

    def write(folder: Path, parts: list[list[str]], base: Postings | None, vocabulary: Vocabulary) -> Postings:
        writer = PostingsWriter(folder, vocabulary, base)
        for part in parts:
            writer.add(part)
        return writer.finish()

    whole = write(tmp_path / "whole", [texts[:half], texts[half:]], None, Vocabulary())
    vocabulary = Vocabulary()
    first = write(tmp_path / "first", [texts[:half]], None, vocabulary)
    grown = write(tmp_path / "grown", [texts[half:]], first, Vocabulary(vocabulary.ids, vocabulary.words))
    for name in ("indptr", "docs", "tf", "lengths", "impacts"):  # impacts: with the grown average length
        assert np.array_equal(getattr(grown, name), getattr(whole, name)), name
    assert not (tmp_path / "grown" / "blocks").exists()


def test_postings_without_stored_impacts_rank_the_same(tmp_path, exact_index, questions):
    """A folder written before impacts.npy existed is scored from tf and lengths: the same paragraphs, the same
    order; and write_impacts adds the file to such a folder."""
    vocabulary = Vocabulary()
    writer = PostingsWriter(tmp_path / "bm25", vocabulary)
    writer.add([p.text for p in exact_index.content.paragraphs])
    stored = writer.finish()
    assert stored.impacts is not None and stored.impacts.dtype == np.float32
    (tmp_path / "bm25" / "impacts.npy").unlink()
    computed = Postings.load(tmp_path / "bm25")
    assert computed.impacts is None
    compared = 0
    for text in questions[0]:
        ids = [i for i in vocabulary.word_ids(words(text)) if i is not None]
        if ids:
            assert stored.top(ids, 1000) == computed.top(ids, 1000), text
            compared += 1
    assert compared > 200
    write_impacts(tmp_path / "bm25")
    assert np.array_equal(Postings.load(tmp_path / "bm25").impacts, stored.impacts)
    np.save(tmp_path / "bm25" / "impacts.npy", np.zeros(3, np.float32))
    assert "impacts.npy holds 3 values" in Postings.load(tmp_path / "bm25").check()


def test_top_with_a_floor_is_the_top_of_every_paragraph_scored(exact_index, questions):
    """`top` keeps only the paragraphs scoring at least the depth-th best of one term's paragraphs: the same
    paragraphs, scores and order as sorting every paragraph that holds a query term, at every depth."""
    vocabulary = Vocabulary()
    postings = Postings.build([p.text for p in exact_index.content.paragraphs], vocabulary)
    floored = compared = 0
    for text in questions[0]:
        ids = [i for i in vocabulary.word_ids(words(text)) if i is not None]
        every, scores = postings.scores(ids)
        for depth in (1, 3, 10, 50, 1000):
            order = np.argsort(-scores, kind="stable")[:depth]
            assert postings.top(ids, depth) == dict(zip(every[order].tolist(), scores[order].tolist())), (text, depth)
            floored += len(postings.scores(ids, depth)[0]) < len(every)
            compared += 1
    assert floored > compared / 3, (floored, compared)  # the floor did drop paragraphs, or this proves nothing


def test_an_ingest_that_adds_documents_to_a_large_index_appends(ivf_dir, embedder, tmp_path, monkeypatch):
    monkeypatch.setenv(ann.LIMIT_ENV, "50")  # as the library it was built for is configured
    index_dir = tmp_path / "index"
    shutil.copytree(ivf_dir, index_dir)
    before = open_index(index_dir, embedder)
    old_vectors = np.array(before.vectors)
    old_paragraphs = before.paragraphs_at(range(before.paragraph_count))
    corpus = tmp_path / "more"
    corpus.mkdir()
    (corpus / "zephyrine.md").write_text(NOTE)

    report = ingest([corpus], index_dir, embedder)
    assert report.added == ["zephyrine"] and report.passages_embedded == 1  # only the new document is embedded
    after = open_index(index_dir, embedder)
    assert after.manifest["dense"] == before.manifest["dense"]  # not retrained: the new vector was added
    assert after.faiss.ntotal == before.faiss.ntotal + 1
    assert np.array_equal(np.asarray(after.vectors[: len(old_vectors)]), old_vectors)
    assert after.paragraphs_at(range(before.paragraph_count)) == old_paragraphs  # old positions unchanged
    assert after.paragraphs_at([before.paragraph_count])[0].doc_id == "zephyrine"
    assert after.postings.paragraphs == before.paragraph_count + 1
    hits = HybridRetriever.from_index(after, embedder).search("When will the Zephyrine plant near Lodz open?", top_k=3)
    assert hits[0].paragraph.doc_id == "zephyrine" and hits[0].scores_by_retriever["bm25"] > 0

    # A removal is not an append: the generation is rewritten from its stored rows and vectors.
    (corpus / "zephyrine.md").unlink()
    assert ingest([corpus], index_dir, embedder).removed == ["zephyrine"]
    again = open_index(index_dir, embedder)
    assert again.paragraphs_at(range(again.paragraph_count)) == old_paragraphs
    assert np.array_equal(np.asarray(again.vectors), old_vectors)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda g: (g / "vectors.faiss").write_bytes(b"garbage" * 100), "vectors.faiss cannot be read"),
        (
            lambda g: faiss.write_index(faiss.IndexFlatIP(384), str(g / "vectors.faiss")),
            "vectors.faiss (cannot be read|is not the ivfpq index)",
        ),
        (lambda g: (g / "bm25" / "indptr.npy").unlink(), "bm25/indptr.npy is missing"),
    ],
)
def test_a_damaged_approximate_index_is_index_damaged(ivf_dir, embedder, tmp_path, damage, message):
    index_dir = tmp_path / "index"
    shutil.copytree(ivf_dir, index_dir)
    damage(index_dir / current_generation(index_dir))
    with pytest.raises(IndexDamaged, match=message):
        open_index(index_dir, embedder)
