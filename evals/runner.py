"""Run a gold set through `Engine.ask` and score it: the orchestration behind `rag eval` and the UI's Evals page.

Steps: load the gold set (`evals.gold`), resolve its evidence against the index, answer each
question once through the engine with a retrieval trace deep enough for MRR@10 and nDCG@10,
score it (`evals.scoring`), summarise, and write report.md, results.json and the plots
(`evals.report`). Not handled: LLM answerers' cost in tokens.
"""

from __future__ import annotations

import time
from pathlib import Path

from evals.cache import CachedEmbedder, warm_cache
from evals.gold import GoldItem, load_gold, resolve_evidence
from evals.scoring import RANK_DEPTH, TOLERANCE, Row, check_against_baseline, score_answer, summarize


def evaluate(
    engine,
    items: list[GoldItem],
    top_k: int = 5,
    mode=None,
    progress=None,
    cache: bool = True,
    cached: CachedEmbedder | None = None,
) -> list[Row]:
    """Score every item. With `cache`, answers reuse memoised sentence vectors: same figures, much faster,
    but answer latency is then not the product's (pass `cache=False` for honest per-stage timings).
    The support judge always uses the cache: it is the eval's cost, not the product's. Pass `cached`
    to share one cache across runs (the ablations)."""
    gold = resolve_evidence(items, engine.index.content.paragraphs)
    if cached is None:
        cached = engine.embedder if isinstance(engine.embedder, CachedEmbedder) else CachedEmbedder(engine.embedder)
    warm_cache(cached, engine.index.content)
    answering = engine.with_embedder(cached) if cache and engine.embedder is not cached else engine
    rows = []
    for n, item in enumerate(items, start=1):
        answer = answering.ask(
            item.question, history=list(item.history) or None, top_k=top_k, mode=mode, depth=RANK_DEPTH
        )
        rows.append(score_answer(item, answer, gold[item.id], cached, top_k))
        if progress:
            progress(n, len(items))
    return rows


def run_eval(
    engine,
    set_path: str | Path,
    out: Path,
    top_k: int = 5,
    mode: str = "hybrid",
    progress=None,
    cache: bool = False,
    baseline: dict | None = None,
    tolerance: float = TOLERANCE,
):
    """One whole eval: load the gold set, answer it, write report.md, results.json and the plots into `out`.

    Returns (summary, config, drops, diff); `drops` and `diff` are empty unless a `baseline` is given.
    The CLI and the UI's Evals page both call this.
    """
    from evals import report  # matplotlib loads only when a report is written

    items = load_gold(set_path)
    t0 = time.perf_counter()
    rows = evaluate(engine, items, top_k=top_k, mode=mode, progress=progress, cache=cache)
    summary = summarize(rows)
    config = {
        "set": _shown(set_path),
        "index": _shown(engine.index.path),
        "mode": mode,
        "top_k": top_k,
        "answerer": engine.answerer.name,
        "max_words": engine.index.manifest.get("chunking", {}).get("max_words"),
        "cache": cache,
        "seconds": round(time.perf_counter() - t0, 1),
    }
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
