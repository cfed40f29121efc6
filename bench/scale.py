"""The scale table: indexes of 100k, 1M and 10M paragraphs, built through paracite's own write path.

For each size it prints: build time, on-disk size, resident memory (RSS) after load, cold load time,
p50 and p95 hybrid query latency (warm), and recall@10 against exact search.

How the library is made, so that the figures can be judged:
- Text: real sentences, resampled. The pool is every sentence of the shipped corpus/, of the seed
  texts in /work/shared/seed, and of the 5,183 SciFact abstracts (/work/shared/datasets/scifact),
  split by `rag.sentences.split_sentences`. A paragraph is 2 to 5 sentences drawn at random from the
  pool (with replacement); a document is 1,000 paragraphs (a 100-page report), chunked by
  `rag.passages.make_passages` as ingest chunks it.
- Vectors: the real model (`rag.embed.embedder.Embedder`, all-MiniLM-L6-v2) embeds a sample of `--sample`
  (4,000) of those paragraphs. Every chunk's vector is then made from that sample:
  v = normalise(r_a + w * r_b + e), with r_a and r_b two sample vectors drawn at random, w uniform in
  [0, 0.6], and e Gaussian noise of standard deviation 0.03 per dimension (|e| about 0.59). So vectors
  have the model's geometry (its clusters and spread), but a chunk's vector does not describe its text:
  BM25 and dense are not correlated as they are in a real library. The figures are about speed, memory
  and the approximate index's recall, not about answer quality.
- Queries: real questions, embedded by the real model: the 218 gold questions (evals/gold/*.jsonl) and
  the 300 SciFact test claims. None is used to build or train anything (the IVF-PQ index is trained
  on passage vectors only), so all are held back.
- Write path: `rag.index.writer.GenerationWriter`, the writer `rag ingest` uses, so meta.sqlite, vectors.f32,
  vectors.faiss (exact up to `rag.index.ann.exact_limit()`, IVF-PQ above), bm25/ and the manifest are the
  real format; `rag doctor --index OUT/index-N` reads them. Vectors are written in blocks of 10,000
  paragraphs, never held all at once.

Measured per size, each in a fresh process:
- build: seconds through `GenerationWriter` (text and vector generation included; embedding the sample
  is reported once, apart), peak RSS of the build process, and on-disk size of the generation.
- load: `Index.open` + `HybridRetriever.from_index` in a fresh process, after imports (the OS page cache
  is as the build left it: warm, not dropped); RSS before and after, split into anonymous memory and
  file pages mapped (memory-mapped index files count in RSS only as pages are touched).
- latency: `HybridRetriever.search(question, top_k=10, query_vector=...)`, hybrid mode, after 20 warm-up
  questions; the query vector is computed beforehand (the model's encode is about 5-10 ms on top, the
  same at every size).
- recall@10: dense, the top-10 chunk rows of the product's dense search (`rag.index.ann.search`, depth 4,000)
  against exact brute force over every vector, for every question; hybrid, the top-10 paragraphs of
  `search` against the same search with an exact dense index, for `--recall-questions` questions.
- append: `GenerationWriter(base=...)` adding one 1,000-paragraph document to the built index: what an
  incremental `rag ingest` of one more report costs (copying the store and vectors, merging postings,
  adding to the trained dense index; nothing re-embedded).

Example usage:

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD .venv/bin/python bench/scale.py --sizes 100000 1000000 --out /work/scale-data
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SEED = Path("/work/shared/seed")
SCIFACT = Path("/work/shared/datasets/scifact")
PARAGRAPHS_PER_DOCUMENT = 1000
BATCH_DOCUMENTS = 10  # paragraphs and vectors go to the writer 10,000 at a time
MIX, NOISE = 0.6, 0.03
WARMUP = 20


def sentence_pool() -> list[str]:
    from rag.sentences import split_sentences

    texts = [
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(CORPUS.rglob("*"))
        if p.suffix in (".md", ".txt")
    ]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(SEED.glob("*.txt"))]
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in f]
    pool = [s for t in texts for block in t.split("\n\n") for s in split_sentences(" ".join(block.split()))]
    return [s for s in pool if len(s) >= 20 and not s.startswith("#")]


def questions() -> list[str]:
    gold = [
        json.loads(line)["question"]
        for path in sorted(glob.glob(str(ROOT / "evals/gold/*.jsonl")))
        for line in open(path, encoding="utf-8")
    ]
    test = {line.split("\t")[0] for line in open(SCIFACT / "qrels/test.tsv", encoding="utf-8")}
    claims = [q["text"] for q in map(json.loads, open(SCIFACT / "queries.jsonl", encoding="utf-8")) if q["_id"] in test]
    return gold + claims


def paragraph_texts(rng: np.random.Generator, pool: list[str], count: int) -> list[str]:
    sizes = rng.integers(2, 6, count)
    picks = rng.integers(0, len(pool), int(sizes.sum()))
    out, at = [], 0
    for n in sizes.tolist():
        out.append(" ".join(pool[i] for i in picks[at : at + n].tolist()))
        at += n
    return out


def synthetic_vectors(rng: np.random.Generator, real: np.ndarray, count: int) -> np.ndarray:
    a = real[rng.integers(0, len(real), count)]
    b = real[rng.integers(0, len(real), count)]
    v = a + rng.uniform(0, MIX, (count, 1)).astype(np.float32) * b
    v += rng.normal(0, NOISE, v.shape).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def rss() -> dict[str, float]:
    """Resident memory of this process in MB: total, anonymous, and file pages mapped."""
    fields = {}
    for line in open("/proc/self/status", encoding="ascii"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss": fields["VmRSS"], "anon": fields["RssAnon"], "file": fields["RssFile"], "peak": fields["VmHWM"]}


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- children: each step runs in a fresh process ----------------------------------------------------------


def child_build(size: int, out: Path, seed: int) -> dict:
    from rag.documents import Document, Paragraph
    from rag.embed.embedder import DIMENSION, MODEL_NAME
    from rag.index.lock import write_lock
    from rag.index.writer import GenerationWriter
    from rag.passages import DEFAULT_MAX_WORDS, make_passages
    from rag.passages import settings as chunking_settings

    pool = json.loads((out / "pool.json").read_text())
    real = np.load(out / "sample-vectors.npy")
    rng = np.random.default_rng(seed)
    index_dir = out / f"index-{size}"
    shutil.rmtree(index_dir, ignore_errors=True)
    manifest = {
        "model": MODEL_NAME,
        "dimension": DIMENSION,
        "normalized": True,
        "chunking": chunking_settings(DEFAULT_MAX_WORDS, 0),
    }
    documents = -(-size // PARAGRAPHS_PER_DOCUMENT)
    started = time.perf_counter()
    with write_lock(index_dir), GenerationWriter(index_dir, manifest) as writer:
        for first in range(0, documents, BATCH_DOCUMENTS):
            docs, paragraphs, passages = [], [], []
            for d in range(first, min(first + BATCH_DOCUMENTS, documents)):
                n = min(PARAGRAPHS_PER_DOCUMENT, size - d * PARAGRAPHS_PER_DOCUMENT)
                doc_id = f"report-{d:05d}"
                docs.append(
                    Document(doc_id, f"Report {d}", "report", f"/synthetic/{doc_id}.pdf", f"{d:064x}", "pdf", n // 10)
                )
                paras = [
                    Paragraph(doc_id, i + 1, t, page=i // 10 + 1) for i, t in enumerate(paragraph_texts(rng, pool, n))
                ]
                paragraphs += paras
                passages += make_passages(paras, DEFAULT_MAX_WORDS, title=f"Report {d}")
            writer.add_documents(docs, {doc.doc_id: time.time() for doc in docs})
            writer.add_paragraphs(paragraphs)
            writer.add_passages(passages, synthetic_vectors(rng, real, len(passages)))
            if (first // BATCH_DOCUMENTS) % 20 == 0:
                print(
                    f"  build {size:,}: {writer.paragraphs:,} paragraphs, {time.perf_counter() - started:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
        generation = writer.commit()
    seconds = time.perf_counter() - started
    manifest = json.loads((index_dir / generation / "manifest.json").read_text())
    return {
        "build_s": seconds,
        "build_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "disk_bytes": disk_bytes(index_dir / generation),
        "chunks": manifest["chunks"],
        "dense": manifest["dense"],
    }


class BlockwiseExact:
    """Exact inner-product search over memory-mapped vectors, block by block (for recall at any size)."""

    def __init__(self, vectors: np.ndarray, block: int = 262_144):
        self.vectors = vectors
        self.ntotal = len(vectors)
        self.d = vectors.shape[1]
        self.block = block

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        best_s, best_r = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        for start in range(0, self.ntotal, self.block):
            s = q @ np.asarray(self.vectors[start : start + self.block]).T
            kk = min(k, s.shape[1])
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
            best_r = np.concatenate([best_r, part + start], axis=1)
            if best_s.shape[1] > k:
                keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                best_s, best_r = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_r, keep, 1)
        order = (
            np.lexsort((best_r, -best_s), axis=1) if best_s.ndim == 1 else np.argsort(-best_s, axis=1, kind="stable")
        )
        return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_r, order, 1)


class _ExactView:
    """The index, but with exact dense search: the reference that recall is measured against."""

    def __init__(self, index):
        self._index = index
        self.faiss = BlockwiseExact(index.vectors)

    def __getattr__(self, name):
        return getattr(self._index, name)


def child_measure(size: int, out: Path, recall_questions: int) -> dict:
    from rag.embed.embedder import DIMENSION, MODEL_NAME, Embedder
    from rag.index import ann
    from rag.index.reader import Index
    from rag.retrieve.hybrid import HybridRetriever

    texts = json.loads((out / "questions.json").read_text())
    vectors = np.load(out / "question-vectors.npy")
    before = rss()
    started = time.perf_counter()
    index = Index.open(out / f"index-{size}", MODEL_NAME, DIMENSION)
    retriever = HybridRetriever.from_index(index, Embedder())
    load_s = time.perf_counter() - started
    loaded = rss()

    for q, v in zip(texts[:WARMUP], vectors[:WARMUP]):
        retriever.search(q, top_k=10, query_vector=v)
    latencies = []
    for q, v in zip(texts, vectors):
        t = time.perf_counter()
        retriever.search(q, top_k=10, query_vector=v)
        latencies.append((time.perf_counter() - t) * 1000)
    after_queries = rss()
    parts = {"bm25": [], "dense": []}  # the two retrievers alone, on the same questions (fusion and SQLite: the rest)
    for q, v in zip(texts, vectors):
        t = time.perf_counter()
        retriever.bm25.top(q)
        parts["bm25"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        retriever.dense.scores(v)
        parts["dense"].append((time.perf_counter() - t) * 1000)

    dense_recall = []
    if recall_questions >= 0:  # -1: latency only (`--child measure SIZE OUT -1`), e.g. again on a quieter machine
        _, truth = BlockwiseExact(index.vectors).search(vectors, 10)
        for v, want in zip(vectors, truth):
            _, rows = ann.search(index.faiss, index.vectors, v, 4000)
            dense_recall.append(len(set(rows[:10].tolist()) & set(want.tolist())) / 10)
    reference = HybridRetriever.from_index(_ExactView(index), Embedder())
    hybrid_recall = []
    for q, v in list(zip(texts, vectors))[: max(recall_questions, 0)]:
        got = {h.paragraph.label for h in retriever.search(q, top_k=10, query_vector=v)}
        want = {h.paragraph.label for h in reference.search(q, top_k=10, query_vector=v)}
        hybrid_recall.append(len(got & want) / max(len(want), 1))
    q = sorted(latencies)
    return {
        "load_s": load_s,
        "rss_before_mb": before,
        "rss_loaded_mb": loaded,
        "rss_after_queries_mb": after_queries,
        "p50_ms": statistics.median(q),
        "p95_ms": q[int(0.95 * (len(q) - 1))],
        "questions": len(q),
        "bm25_p50_ms": statistics.median(parts["bm25"]),
        "dense_p50_ms": statistics.median(parts["dense"]),
        "load_average": os.getloadavg()[0],
        "dense_recall@10": float(np.mean(dense_recall)) if dense_recall else None,
        "hybrid_recall@10": float(np.mean(hybrid_recall)) if hybrid_recall else None,
        "hybrid_recall_questions": len(hybrid_recall),
        "exact": index.is_exact,
    }


def child_append(size: int, out: Path, seed: int) -> dict:
    from rag.documents import Document, Paragraph
    from rag.embed.embedder import DIMENSION, MODEL_NAME
    from rag.index.lock import write_lock
    from rag.index.reader import Index
    from rag.index.writer import GenerationWriter
    from rag.passages import DEFAULT_MAX_WORDS, make_passages

    pool = json.loads((out / "pool.json").read_text())
    real = np.load(out / "sample-vectors.npy")
    rng = np.random.default_rng(seed + 1)
    index_dir = out / f"index-{size}"
    base = Index.open(index_dir, MODEL_NAME, DIMENSION)
    doc_id = "report-appended"
    paras = [Paragraph(doc_id, i + 1, t) for i, t in enumerate(paragraph_texts(rng, pool, PARAGRAPHS_PER_DOCUMENT))]
    passages = make_passages(paras, DEFAULT_MAX_WORDS, title="Appended report")
    started = time.perf_counter()
    manifest = {k: base.manifest[k] for k in ("model", "dimension", "normalized", "chunking")}
    with write_lock(index_dir), GenerationWriter(index_dir, manifest, base=base) as writer:
        writer.add_documents(
            [Document(doc_id, "Appended report", "report", "/synthetic/appended.pdf", "0" * 64, "pdf")],
            {doc_id: time.time()},
        )
        writer.add_paragraphs(paras)
        writer.add_passages(passages, synthetic_vectors(rng, real, len(passages)))
        generation = writer.commit()
    seconds = time.perf_counter() - started
    after = Index.open(index_dir, MODEL_NAME, DIMENSION)
    kept = bool(
        np.array_equal(
            np.asarray(after.vectors[: base.passage_count : 997]), np.asarray(base.vectors[: base.passage_count : 997])
        )
    )
    return {
        "append_s": seconds,
        "append_dense": after.manifest["dense"]["kind"],
        "append_retrained": after.manifest["dense"] != base.manifest["dense"],
        "old_vectors_kept": kept,
        "generation": generation,
    }


def run_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    sys.stderr.write(result.stderr[-4000:] if result.returncode else "")
    if result.returncode:
        raise SystemExit(f"child {args} failed with exit code {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the parent ---------------------------------------------------------------------------------------------


def prepare(out: Path, sample: int, seed: int) -> dict:
    """The sentence pool, the real-model vectors of a sample of paragraphs, and the questions' vectors."""
    from rag.embed.embedder import Embedder

    out.mkdir(parents=True, exist_ok=True)
    pool = sentence_pool()
    (out / "pool.json").write_text(json.dumps(pool))
    embedder = Embedder()
    info = {"pool_sentences": len(pool)}
    if not (out / "sample-vectors.npy").exists() or np.load(out / "sample-vectors.npy").shape[0] != sample:
        texts = paragraph_texts(np.random.default_rng(seed + 7), pool, sample)
        started = time.perf_counter()
        np.save(out / "sample-vectors.npy", embedder.encode_documents(texts, progress=True, desc="sample"))
        info["sample_embed_s"] = time.perf_counter() - started
    texts = questions()
    (out / "questions.json").write_text(json.dumps(texts))
    np.save(out / "question-vectors.npy", embedder.encode_queries(texts))
    info["questions"] = len(texts)
    return info


def appended(a: dict | None) -> str:
    if a is None:
        return "not run (--no-append)"
    return (
        f"{a['append_s']:.1f} s{' (retrained)' if a['append_retrained'] else ''}"
        f"{'' if a['old_vectors_kept'] else ' OLD VECTORS CHANGED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument(
        "--out", type=Path, default=Path("/work/scale-data"), help="where the indexes go (never inside the repository)"
    )
    parser.add_argument("--sample", type=int, default=4000, help="paragraphs embedded by the real model")
    parser.add_argument(
        "--recall-questions",
        type=int,
        default=100,
        help="questions for hybrid recall (each scans every vector for the exact reference)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep each index after measuring it")
    parser.add_argument(
        "--no-append",
        dest="append",
        action="store_false",
        help="skip the append step (it copies the store and vectors: twice the disk of the index)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, size, out, extra = args.child[0], int(args.child[1]), Path(args.child[2]), int(args.child[3])
        fn = {"build": child_build, "measure": child_measure, "append": child_append}[step]
        print(json.dumps(fn(size, out, extra)))
        return
    if ROOT in args.out.resolve().parents or args.out.resolve() == ROOT:
        raise SystemExit(f"--out {args.out} is inside the repository; use /tmp or /work/scale-data")

    info = prepare(args.out, args.sample, args.seed)
    print(
        f"# scale: sentence pool {info['pool_sentences']:,} real sentences; {args.sample:,} paragraphs embedded by "
        f"the real model"
        + (f" in {info['sample_embed_s']:.0f}s" if "sample_embed_s" in info else " (cached)")
        + f"; other vectors = normalise(r_a + U(0,{MIX}) r_b + N(0,{NOISE}^2)); {info['questions']} real questions "
        f"(gold + SciFact test claims), all held back",
        flush=True,
    )
    print(
        "| paragraphs | chunks | dense index | build | on disk | RSS after load (anon + file) | cold load | "
        "p50 hybrid | p95 hybrid | recall@10 dense | recall@10 hybrid | append 1,000 |",
        flush=True,
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for size in args.sizes:
        b = run_child("build", str(size), str(args.out), str(args.seed))
        m = run_child("measure", str(size), str(args.out), str(args.recall_questions))
        a = run_child("append", str(size), str(args.out), str(args.seed)) if args.append else None
        dense = b["dense"]["kind"] + (
            f" {b['dense']['cells']} cells, nprobe {b['dense']['nprobe']}, PQ{b['dense']['pq']}"
            if b["dense"]["kind"] != "exact"
            else ""
        )
        loaded = m["rss_loaded_mb"]
        print(
            f"| {size:,} | {b['chunks']:,} | {dense} | {b['build_s']:.0f} s (peak RSS {b['build_peak_mb']:.0f} MB) | "
            f"{b['disk_bytes'] / 2**30:.2f} GiB | {loaded['rss']:.0f} MB ({loaded['anon']:.0f} + {loaded['file']:.0f}; "
            f"{m['rss_after_queries_mb']['rss']:.0f} MB after {m['questions']} questions) | {m['load_s'] * 1000:.0f} ms | "
            f"{m['p50_ms']:.1f} ms | {m['p95_ms']:.1f} ms | {m['dense_recall@10']:.3f} | "
            f"{m['hybrid_recall@10']:.3f} ({m['hybrid_recall_questions']} q) | {appended(a)} |",
            flush=True,
        )
        print(f"<!-- {size}: " + json.dumps({"build": b, "measure": m, "append": a}) + " -->", flush=True)
        if not args.keep:
            shutil.rmtree(args.out / f"index-{size}", ignore_errors=True)


if __name__ == "__main__":
    main()
