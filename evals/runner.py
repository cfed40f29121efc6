"""Run a gold set through `Engine.ask` and score it: per-question rows, then aggregates.

Steps:
1. `load_gold`: read every `*.jsonl` of a folder (or one file), checking each item's fields.
2. `resolve_evidence`: turn each gold quote into `(doc_id, para)` against the current index;
   a quote that matches no paragraph, or several, is an error that says which item to fix.
3. `evaluate`: per question, rank paragraphs (depth 10, for MRR@10 and nDCG@10), answer with
   `Engine.ask`, judge each cited sentence with `rag.support.check_support`, and score.
4. `summarize`: the mean of each metric over the questions where it is defined, abstention
   precision/recall, and latency p50/p95 per stage.
5. `check_against_baseline`: the regression guard behind `rag eval --check`.

Reports and plots are written by `evals.report`. Not handled: follow-up questions with history
rewritten by an LLM (the extractive engine uses `rag.rewrite`'s rules), LLM answerers' cost in tokens.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evals import metrics as m
from rag.errors import RagError
from rag.sentences import split_sentences

DEFAULT_SET = Path(__file__).resolve().parent / "gold"
BASELINE = Path(__file__).resolve().parent / "baseline.json"
# A metric may fall this much (absolute) below the baseline before --check fails. Repeated runs on one
# machine give identical quality figures; 0.03 is about four of 124 questions changing their verdict.
TOLERANCE = 0.03
RANK_DEPTH = 10  # MRR@10 and nDCG@10 need a ranking this deep, whatever top_k the answerer sees

# Quality metrics, higher is better; `--check` guards these (latency varies by machine, so it is not guarded).
QUALITY_METRICS = ("hit@1", "hit@5", "recall@k", "mrr@10", "ndcg@10", "citation_recall", "citation_precision",
                   "evidence_cited", "key_fact_accuracy", "token_f1", "abstention_precision", "abstention_recall")
KINDS = ("fact", "paraphrase", "multi", "numeric", "disagreement", "unanswerable", "followup")


class GoldError(RagError):
    """A gold item is malformed or its evidence does not resolve against the index."""


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    kind: str
    answerable: bool
    reference_answer: str = ""
    key_facts: tuple = ()
    evidence: tuple[dict, ...] = ()
    history: tuple[dict, ...] = ()  # earlier turns of a follow-up
    source: str = ""


def load_gold(path: str | Path, require_evidence: bool = True) -> list[GoldItem]:
    """Items of one JSONL file, or of every `*.jsonl` in a folder (sorted by name).

    `require_evidence=False` reads question-only sets such as evals/calibration.jsonl."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise GoldError(f"no gold set at {path}: pass a .jsonl file or a folder of them (default {DEFAULT_SET})")
    items: list[GoldItem] = []
    seen: set[str] = set()
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{f.name} line {n}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise GoldError(f"{where}: not JSON ({e.msg}); each line must be one object") from None
            missing = [k for k in ("id", "question", "answerable") if k not in raw]
            if missing:
                raise GoldError(f"{where}: missing {', '.join(missing)}; see evals/gold/README.md for the fields")
            if raw["id"] in seen:
                raise GoldError(f"{where}: duplicate id {raw['id']!r}; ids must be unique across files")
            seen.add(raw["id"])
            if require_evidence and raw["answerable"] and not raw.get("evidence"):
                raise GoldError(f"{where} ({raw['id']}): an answerable item needs evidence [{{doc_id, quote}}]")
            items.append(GoldItem(raw["id"], raw["question"], raw.get("kind", "fact"), bool(raw["answerable"]),
                                  raw.get("reference_answer", ""), tuple(raw.get("key_facts", ())),
                                  tuple(raw.get("evidence", ())),
                                  tuple(raw.get("history", ())), f.name))
    return items


def resolve_evidence(items: list[GoldItem], paragraphs) -> dict[str, tuple[tuple[str, int], ...]]:
    """Gold quotes -> `(doc_id, para)` keys; each quote must be a substring of exactly one paragraph of its document."""
    by_doc: dict[str, list] = {}
    for p in paragraphs:
        by_doc.setdefault(p.doc_id, []).append(p)
    resolved: dict[str, tuple[tuple[str, int], ...]] = {}
    problems: list[str] = []
    for item in items:
        keys: list[tuple[str, int]] = []
        for ev in item.evidence:
            doc_id, quote = ev.get("doc_id", ""), ev.get("quote", "")
            if doc_id not in by_doc:
                problems.append(f"{item.id}: document {doc_id!r} is not in the index (known: {', '.join(sorted(by_doc))})")
                continue
            matches = [p.para for p in by_doc[doc_id] if quote and quote in p.text]
            if len(matches) != 1:
                what = "no paragraph" if not matches else f"{len(matches)} paragraphs ({matches})"
                problems.append(f"{item.id}: quote matches {what} of {doc_id}: {quote[:60]!r}; "
                                f"quote a longer exact substring of one paragraph (see `rag show {doc_id} N`)")
                continue
            keys.append((doc_id, matches[0]))
        resolved[item.id] = tuple(dict.fromkeys(keys))
    if problems:
        raise GoldError("gold evidence does not resolve:\n  " + "\n  ".join(problems))
    return resolved


@dataclass
class Row:
    id: str
    kind: str
    answerable: bool
    question: str
    searched_as: str
    answer: str
    abstained: bool
    gold: list[str]
    retrieved: list[str]
    cited: list[str]
    metrics: dict[str, float]
    timings_ms: dict[str, float]
    problems: list[str] = field(default_factory=list)


def _label(key: tuple[str, int]) -> str:
    return f"{key[0]} para. {key[1]}"


def evaluate_item(engine, item: GoldItem, gold: tuple[tuple[str, int], ...], top_k: int = 5, mode=None,
                  judge=None) -> Row:
    # A follow-up is rewritten once, then ranked and answered as that standalone question.
    query = engine.rewrite(item.question, list(item.history)).standalone if item.history else item.question
    ranking_hits = engine.retriever.search(query, top_k=max(RANK_DEPTH, top_k), mode=mode)
    ranking = [(h.paragraph.doc_id, h.paragraph.para) for h in ranking_hits]
    answer = engine.ask(item.question, top_k=top_k, mode=mode, standalone_question=query)
    relevant = set(gold)
    t0 = time.perf_counter()
    judgements = [] if answer.abstained else [
        m.judge_claim(judge or engine.embedder, claim.text, [c.text for c in claim.citations]) for claim in answer.claims
    ]
    support_ms = (time.perf_counter() - t0) * 1000
    cited = {(c.doc_id, c.para) for c in answer.citations}
    text = "" if answer.abstained else answer.text
    row_metrics = {
        "hit@1": m.hit_at_k(ranking, relevant, 1),
        "hit@5": m.hit_at_k(ranking, relevant, 5),
        "recall@k": m.recall_at_k(ranking, relevant, top_k),
        "mrr@10": m.mrr_at_k(ranking, relevant, 10),
        "ndcg@10": m.ndcg_at_k(ranking, relevant, 10),
        "citation_recall": m.citation_recall(judgements),
        "citation_precision": m.citation_precision(judgements),
        "evidence_cited": m.evidence_cited(cited, relevant) if item.answerable else m.NAN,
        "key_fact_accuracy": m.key_fact_accuracy(text, item.key_facts) if item.answerable else m.NAN,
        "token_f1": m.token_f1(text, item.reference_answer) if item.answerable else m.NAN,
    }
    problems = _problems(item, answer, ranking, relevant, cited, judgements, text, top_k)
    timings = {"retrieve": answer.timings_ms.get("retrieve", m.NAN), "answer": answer.timings_ms.get("answer", m.NAN),
               "support": support_ms}
    return Row(item.id, item.kind, item.answerable, item.question, query, answer.text, answer.abstained,
               [_label(k) for k in gold], [_label(k) for k in ranking[:top_k]], [_label(k) for k in sorted(cited)],
               row_metrics, timings, problems)


def _problems(item, answer, ranking, relevant, cited, judgements, text, top_k) -> list[str]:
    out: list[str] = []
    if not item.answerable:
        if not answer.abstained:
            out.append("answered a question the corpus cannot answer")
        return out
    ranks = [i for i, k in enumerate(ranking, start=1) if k in relevant]
    if not ranks:
        out.append(f"no gold paragraph in the top {len(ranking)}")
    elif ranks[0] > top_k:
        out.append(f"gold paragraph first at rank {ranks[0]}, below top-{top_k}")
    elif len(ranks) < len(relevant) and len([r for r in ranks if r <= top_k]) < len(relevant):
        out.append(f"only {len([r for r in ranks if r <= top_k])} of {len(relevant)} gold paragraphs in the top-{top_k}")
    if answer.abstained:
        out.append("abstained on an answerable question")
        return out
    if not cited & relevant:
        out.append("gold paragraph not cited")
    absent = m.missing_facts(text, item.key_facts)
    if absent:
        out.append("missing key facts: " + ", ".join(absent))
    unsupported = sum(not j.joint for j in judgements)
    if unsupported:
        out.append(f"{unsupported} of {len(judgements)} sentences not supported by their citations")
    return out


class CachedEmbedder:
    """An `Embedder` that memoises `encode_queries` by text, so corpus sentences are embedded once per eval.

    The extractive answerer and the support check embed the same corpus sentences for question
    after question; caching them makes a 124-question run take seconds instead of minutes. It
    changes no figure except latency, which it lowers (see `evaluate(cache=...)`).
    """

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._cache: dict[str, np.ndarray] = {}

    @property
    def model(self):
        return self.inner.model

    def seed(self, texts, vectors) -> None:
        for t, v in zip(texts, vectors):
            self._cache.setdefault(t, np.asarray(v, dtype=np.float32))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self.seed(missing, self.inner.encode_queries(missing))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def encode_documents(self, texts: list[str], progress=False, desc: str = "Embedding") -> np.ndarray:
        return self.encode_queries(texts)  # same encoder for both; re-ingests for the ablations hit the cache


def warm_cache(embedder: CachedEmbedder, content) -> None:
    """Seed with the index's chunk vectors (free) and embed every paragraph sentence in one batched call."""
    embedder.seed([c.text for c in content.chunks], content.vectors)
    embedder.encode_queries([s for p in content.paragraphs for s in split_sentences(p.text)] +
                            [p.text for p in content.paragraphs])


def with_embedder(engine, embedder):
    """A shallow copy of `engine` whose retriever and answerer use `embedder` (same index, same settings)."""
    from rag.engine import Engine
    from rag.retrieval import HybridRetriever

    answerer = copy.copy(engine.answerer)
    if hasattr(answerer, "embedder"):
        answerer.embedder = embedder
    return Engine(embedder, engine.index, HybridRetriever.from_index(engine.index, embedder, engine.retriever.mode),
                  answerer)


def evaluate(engine, items: list[GoldItem], top_k: int = 5, mode=None, progress=None, cache: bool = True,
             cached: CachedEmbedder | None = None) -> list[Row]:
    """Score every item. With `cache`, answers reuse memoised sentence vectors: same figures, much faster,
    but answer latency is then not the product's (pass `cache=False` for honest per-stage timings).
    The support judge always uses the cache: it is the eval's cost, not the product's. Pass `cached`
    to share one cache across runs (the ablations)."""
    gold = resolve_evidence(items, engine.index.content.paragraphs)
    if cached is None:
        cached = engine.embedder if isinstance(engine.embedder, CachedEmbedder) else CachedEmbedder(engine.embedder)
    warm_cache(cached, engine.index.content)
    fast = with_embedder(engine, cached)
    rows = []
    for n, item in enumerate(items, start=1):
        rows.append(evaluate_item(fast if cache else engine, item, gold[item.id], top_k, mode, judge=cached))
        if progress:
            progress(n, len(items))
    return rows


def summarize(rows: list[Row]) -> dict[str, Any]:
    """Every aggregate figure: metric means (NaN skipped), counts, abstention, latency, and per-kind means."""
    names = list(rows[0].metrics) if rows else []
    summary: dict[str, Any] = {name: m.mean([r.metrics[name] for r in rows]) for name in names}
    precision, recall = m.abstention_scores([r.abstained for r in rows], [not r.answerable for r in rows])
    summary["abstention_precision"], summary["abstention_recall"] = precision, recall
    summary["questions"] = len(rows)
    summary["answerable"] = sum(r.answerable for r in rows)
    summary["abstained"] = sum(r.abstained for r in rows)
    latency = {}
    for stage in ("retrieve", "answer", "support"):
        latency[stage] = m.percentiles([r.timings_ms[stage] for r in rows if not math.isnan(r.timings_ms[stage])])
    summary["latency_ms"] = latency
    by_kind = {}
    for kind in KINDS:
        sub = [r for r in rows if r.kind == kind]
        if sub:
            by_kind[kind] = {"n": len(sub), **{name: m.mean([r.metrics[name] for r in sub]) for name in names},
                             "abstained": sum(r.abstained for r in sub) / len(sub)}
    summary["by_kind"] = by_kind
    return summary


def question_score(row: Row) -> float:
    """How well one question went, 0..1, for picking the worst ones: abstention errors score 0."""
    if not row.answerable:
        return 1.0 if row.abstained else 0.0
    if row.abstained:
        return 0.0
    parts = [row.metrics[k] for k in ("key_fact_accuracy", "evidence_cited", "hit@5", "citation_recall", "token_f1")]
    return m.mean(parts)


def worst(rows: list[Row], n: int = 10) -> list[Row]:
    return sorted(rows, key=lambda r: (question_score(r), r.id))[:n]


@dataclass(frozen=True)
class Drop:
    metric: str
    baseline: float
    now: float

    @property
    def change(self) -> float:
        return self.now - self.baseline


def check_against_baseline(summary: dict, baseline: dict, tolerance: float = TOLERANCE) -> tuple[list[Drop], str]:
    """Metrics that fell more than `tolerance` below the baseline, and a readable table of every guarded metric.

    A metric missing from either side, or NaN in the baseline, is not guarded; NaN now where the
    baseline has a figure counts as a drop.
    """
    base = baseline.get("summary", baseline)
    drops: list[Drop] = []
    lines = [f"{'metric':<22}{'baseline':>10}{'now':>10}{'change':>10}  status (tolerance {tolerance:.3f})"]
    for name in QUALITY_METRICS:
        if name not in base or name not in summary or base[name] is None or math.isnan(base[name]):
            continue
        b, now = float(base[name]), float(summary[name])
        dropped = math.isnan(now) or now < b - tolerance
        # Baseline figures are stored rounded to 6 places, so "up" needs more than rounding noise.
        status = "DROP" if dropped else ("up" if now > b + 1e-4 else "ok")
        lines.append(f"{name:<22}{b:>10.3f}{now:>10.3f}{now - b:>+10.3f}  {status}")
        if dropped:
            drops.append(Drop(name, b, now))
    return drops, "\n".join(lines)


def row_dict(row: Row) -> dict:
    return asdict(row)


def run_eval(engine, set_path: str | Path, out: Path, top_k: int = 5, mode: str = "hybrid", progress=None,
             cache: bool = False, baseline: dict | None = None, tolerance: float = TOLERANCE):
    """One whole eval: load the gold set, answer it, write report.md, results.json and the plots into `out`.

    Returns (summary, config, drops, diff); `drops` and `diff` are empty unless a `baseline` is given.
    The CLI and the UI's Evals page both call this.
    """
    from evals import report

    items = load_gold(set_path)
    t0 = time.perf_counter()
    rows = evaluate(engine, items, top_k=top_k, mode=mode, progress=progress, cache=cache)
    summary = summarize(rows)
    config = {"set": _shown(set_path), "index": _shown(engine.index.path), "mode": mode, "top_k": top_k,
              "answerer": engine.answerer.name,
              "max_words": engine.index.manifest.get("chunking", {}).get("max_words"),
              "cache": cache, "seconds": round(time.perf_counter() - t0, 1)}
    drops, diff = check_against_baseline(summary, baseline, tolerance) if baseline is not None else ([], None)
    report.write_results(out, rows, summary, config)
    report.write_report(out, rows, summary, config, diff)
    return summary, config, drops, diff


def _shown(path) -> str:
    """A path as the user would type it: relative to the working folder when it lies under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
