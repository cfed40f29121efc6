"""Retrieval-only benchmark on any dataset in BEIR layout: BM25, dense, and two hybrids (RRF, z-score).

Layout: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`),
`qrels/test.tsv` (header, then `query-id  corpus-id  score`). Only queries with qrels are run.

Steps:
1. Load; a document is embedded and indexed as `title + " " + text` (truncated by the encoder at
   256 word pieces), as one paragraph, so `rag.retrieve.hybrid`'s retrievers apply unchanged.
2. Corpus vectors are cached under `.rag/cache/beir-<name>-<sha12>.npy` (plain arrays, no pickle),
   keyed by the corpus file's hash and the model, so a second run embeds only the queries.
3. Take each retriever's top 1000 per query (`HybridRetriever.candidates`, the product's own) and fuse
   them two ways with `rag.retrieve.hybrid.fuse`: plain reciprocal rank fusion (k=60), and z-score fusion (each
   list z-normalised over its candidates, dense weight 0.5), the product's default. Runs keep the top 100.
4. Score nDCG@10, recall@100 and MRR@10 with evals.metrics (binary relevance: score > 0), and
   write each run in TREC format (`qid Q0 docid rank score tag`), ties broken by (-score, docid).

Not handled: sentence-level re-scoring (measured once for SciFact, see evals/README.md: +0.005
nDCG@10, not significant, for a 26-minute sentence encode); graded relevance; datasets without a test split.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evals import metrics as m
from rag.errors import RagError

DEPTH = 1000  # candidates per retriever before fusion
RUN_DEPTH = 100  # what a run keeps: recall@100 needs no more
CACHE_DIR = Path(".rag/cache")
# Published figures on BEIR SciFact (test), to print beside ours.
PUBLISHED = {
    "scifact": [
        ("BM25 (Anserini, BEIR paper)", 0.665, 0.908),
        ("all-MiniLM-L6-v2 (dense)", 0.645, 0.925),
        ("BGE-base hybrid (target)", 0.74, None),
    ]
}


class BeirError(RagError):
    """The folder is not in BEIR layout."""


@dataclass
class BeirData:
    name: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, set[str]]
    corpus_sha: str = ""


@dataclass
class BeirRun:
    mode: str
    rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0

    def scores(self, qrels: dict[str, set[str]]) -> dict[str, float]:
        per_query = {"ndcg@10": [], "recall@100": [], "mrr@10": []}
        for qid, relevant in qrels.items():
            ranking = [d for d, _ in self.rankings.get(qid, [])]
            per_query["ndcg@10"].append(m.ndcg_at_k(ranking, relevant, 10))
            per_query["recall@100"].append(m.recall_at_k(ranking, relevant, 100))
            per_query["mrr@10"].append(m.mrr_at_k(ranking, relevant, 10))
        return {k: m.mean(v) for k, v in per_query.items()}


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise BeirError(f"{path} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_beir(folder: str | Path) -> BeirData:
    folder = Path(folder)
    corpus = _read_jsonl(folder / "corpus.jsonl")
    queries = {str(q["_id"]): q["text"] for q in _read_jsonl(folder / "queries.jsonl")}
    qrels_path = folder / "qrels" / "test.tsv"
    if not qrels_path.exists():
        raise BeirError(f"{qrels_path} is missing; a BEIR folder holds qrels/test.tsv")
    qrels: dict[str, set[str]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if n == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) >= 3 and int(parts[2]) > 0:
            qrels.setdefault(parts[0], set()).add(parts[1])
    qrels = {q: r for q, r in qrels.items() if q in queries}
    sha = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:12]
    return BeirData(
        folder.resolve().name,
        [str(d["_id"]) for d in corpus],
        [f"{d.get('title', '')} {d.get('text', '')}".strip() for d in corpus],
        {q: queries[q] for q in sorted(qrels)},
        qrels,
        sha,
    )


def corpus_vectors(data: BeirData, embedder, cache_dir: Path | None = None) -> np.ndarray:
    cache_dir = Path(cache_dir or CACHE_DIR)
    from rag.embed.embedder import document_precision

    # Vectors of another precision (rag.embed.embedder.document_precision) are another run's, not reused.
    precision = document_precision()
    model = embedder.name.replace("/", "_") + ("" if precision == "float32" else f"-{precision}")
    path = cache_dir / f"beir-{data.name}-{data.corpus_sha}-{model}.npy"
    if path.exists():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(data.corpus_texts), embedder.dimension):
            return vectors
    vectors = embedder.encode_documents(data.corpus_texts, progress=True, desc=f"Embedding {data.name}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    return vectors


def run_beir(data: BeirData, embedder, cache_dir: Path | None = None, show_progress: bool = True) -> list[BeirRun]:
    from tqdm import tqdm

    from rag.documents import Paragraph, Passage
    from rag.retrieve.hybrid import Fusion, HybridRetriever, Mode, fuse

    paragraphs = [Paragraph(doc_id, 1, text) for doc_id, text in zip(data.corpus_ids, data.corpus_texts)]
    passages = [
        Passage(f"{doc_id}:1:0", doc_id, 1, 1, text) for doc_id, text in zip(data.corpus_ids, data.corpus_texts)
    ]
    t0 = time.perf_counter()
    vectors = corpus_vectors(data, embedder, cache_dir)
    retriever = HybridRetriever(paragraphs, passages, vectors, embedder)
    setup = time.perf_counter() - t0
    qids = list(data.queries)
    t0 = time.perf_counter()
    query_vectors = embedder.encode_queries([data.queries[q] for q in qids])
    encode = time.perf_counter() - t0
    runs = {mode: BeirRun(mode) for mode in ("bm25", "dense", "hybrid-rrf", "hybrid")}
    timings = {"bm25": 0.0, "dense": encode, "hybrid-rrf": 0.0, "hybrid": 0.0}
    for qid, qv in tqdm(
        list(zip(qids, query_vectors)), desc="queries", file=sys.stderr, disable=not show_progress, dynamic_ncols=True
    ):
        t0 = time.perf_counter()
        b = retriever.bm25.top(data.queries[qid], DEPTH)
        t1 = time.perf_counter()
        _, d = retriever.candidates(data.queries[qid], qv, Mode.DENSE, dense_depth=DEPTH)
        t2 = time.perf_counter()
        rrf = fuse(b, d, Fusion.RRF, paragraphs)
        t3 = time.perf_counter()
        fused = fuse(b, d, Fusion.ZSCORE, paragraphs)
        t4 = time.perf_counter()
        timings["bm25"] += t1 - t0
        timings["dense"] += t2 - t1
        timings["hybrid-rrf"] += t3 - t0 + (encode / max(len(qids), 1))
        timings["hybrid"] += (t2 - t0) + (t4 - t3) + (encode / max(len(qids), 1))
        for mode, scores in (("bm25", b), ("dense", d), ("hybrid-rrf", rrf), ("hybrid", fused)):
            runs[mode].rankings[qid] = [(data.corpus_ids[i], scores[i]) for i in _ranked(scores, data)[:RUN_DEPTH]]
    for mode, run in runs.items():
        run.seconds = timings[mode]
    runs["dense"].seconds += setup  # corpus embedding (or loading it from the cache) is dense's cost
    return list(runs.values())


def _ranked(scores: dict[int, float], data: BeirData) -> list[int]:
    return sorted(scores, key=lambda i: (-scores[i], data.corpus_ids[i]))


def write_trec(run: BeirRun, path: Path, tag: str) -> None:
    """
    >>> import tempfile, pathlib; p = pathlib.Path(tempfile.mkdtemp()) / "r.trec"
    >>> write_trec(BeirRun("bm25", {"1": [("d7", 2.5)]}), p, "paracite-bm25"); p.read_text()
    '1 Q0 d7 1 2.500000 paracite-bm25\\n'
    """
    lines = [
        f"{qid} Q0 {doc} {rank} {score:.6f} {tag}"
        for qid, ranking in run.rankings.items()
        for rank, (doc, score) in enumerate(ranking, start=1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def report(data: BeirData, runs: list[BeirRun], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# BEIR {data.name}: {len(data.queries)} queries, {len(data.corpus_ids)} documents",
        "",
        "| run | nDCG@10 | R@100 | MRR@10 | seconds |",
        "|---|---|---|---|---|",
    ]
    figures = {}
    for run in runs:
        s = run.scores(data.qrels)
        figures[run.mode] = {**s, "seconds": run.seconds}
        lines.append(
            f"| ours: {run.mode} | {s['ndcg@10']:.3f} | {s['recall@100']:.3f} | {s['mrr@10']:.3f} | {run.seconds:.1f} |"
        )
        write_trec(run, out / f"run.{data.name}.{run.mode}.trec", f"paracite-{run.mode}")
    for name, ndcg, recall in PUBLISHED.get(data.name, []):
        lines.append(f"| published: {name} | {ndcg:.3f} | {'–' if recall is None else f'{recall:.3f}'} | – | – |")
    table = "\n".join(lines)
    (out / f"beir-{data.name}.md").write_text(
        table + "\n\nRuns in TREC format: `run.<dataset>.<mode>.trec`. "
        "hybrid-rrf is plain RRF (k=60) of the BM25 and dense top "
        f"{DEPTH}; hybrid (the product's default) is z-score fusion of the "
        "same candidates, dense weight 0.5.\n",
        encoding="utf-8",
    )
    (out / f"beir-{data.name}.json").write_text(
        json.dumps({"format": "paracite-beir v1", "dataset": data.name, "figures": figures}, indent=1) + "\n",
        encoding="utf-8",
    )
    return table
