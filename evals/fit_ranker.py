"""Fit the sentence ranker's weights on one half of the gold set, and report on both halves.

    python -m evals.fit_ranker --index .rag/index          # prints weights, the margin, and the table

Steps:
1. Split the gold set in two by a hash of each id (`half`): "fit" and "held". Only "fit" is used
   to choose anything; "held" is reported.
2. For each answerable "fit" question, retrieve (top 5, the product's setting), rank its
   candidate sentences (`ExtractiveAnswerer.rank`), and label each sentence 1 when it states one
   of the question's key facts.
3. Fit a logistic model on `rag.answer.ranker.FEATURES` (L2-regularised, Newton's method).
4. Choose `keep_within` (how far below the best logit a sentence may join the answer) by key-fact
   accuracy on "fit", ties to the smaller margin (shorter answers).
5. Run the whole eval with the fitted ranker and print each half's figures.

The chosen values are pasted into rag/answer/ranker.py (`WEIGHTS`) and rag/answer/extractive.py
(`KEEP_WITHIN`); evals/ranker.md records the run. Not handled: cross-validation.
"""

from __future__ import annotations

import hashlib

import numpy as np

from evals import metrics as m
from evals.cache import CachedEmbedder, warm_cache
from evals.gold import DEFAULT_SET, GoldItem, load_gold
from evals.runner import evaluate
from evals.scoring import summarize
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.ranker import FEATURES
from rag.query import Query

MARGINS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
SHOWN = (
    "hit@5",
    "evidence_cited",
    "key_fact_accuracy",
    "lead_exact",
    "lead_contains",
    "abstention_recall",
    "answerable_refused",
    "disagreement_precision",
    "disagreement_recall",
)


def half(item_id: str) -> str:
    """'fit' or 'held', fixed by the id alone, so adding questions never moves the old ones.

    >>> half("c001"), half("c002")
    ('held', 'fit')
    """
    return "fit" if int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % 2 == 0 else "held"


def training_rows(engine, items: list[GoldItem], top_k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for item in items:
        if not item.answerable or not item.key_facts:
            continue
        query = engine.rewrite(item.question, list(item.history)) if item.history else Query.plain(item.question)
        ranking = engine.answerer.rank(query, engine.retriever.search(query.standalone, top_k=top_k))
        for c, row in zip(ranking.candidates, ranking.features):
            xs.append(row)
            ys.append(float(any(m.fact_present(c.text, f) for f in item.key_facts)))
    return np.asarray(xs), np.asarray(ys)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights (bias first) maximising the L2-penalised log-likelihood, by Newton's method.

    >>> w = fit_logistic(np.array([[0.0], [0.2], [0.8], [1.0]]), np.array([0.0, 0.0, 1.0, 1.0]), l2=0.1)
    >>> bool(w[1] > 0)
    True
    """
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    penalty = np.eye(a.shape[1]) * l2
    penalty[0, 0] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + penalty @ w
        hess = a.T @ (a * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def run(index_dir: str) -> None:
    from rag.engine import Engine

    engine = Engine.load(index_dir)
    cached = CachedEmbedder(engine.embedder)
    warm_cache(cached, engine.index.content)
    engine = engine.with_embedder(cached)
    items = load_gold(DEFAULT_SET)
    fit_items = [i for i in items if half(i.id) == "fit"]
    held_items = [i for i in items if half(i.id) == "held"]
    x, y = training_rows(engine, fit_items)
    weights = tuple(round(float(v), 3) for v in fit_logistic(x, y))
    print(f"fit half: {len(fit_items)} questions, {len(y)} sentences ({int(y.sum())} state a key fact)")
    print("WEIGHTS =", weights, " # bias, " + ", ".join(FEATURES))
    base = engine.answerer

    def answerer(margin: float) -> ExtractiveAnswerer:
        # the product's answerer but for the weights and margin: its stored sentence vectors (the ones it answers
        # with, contextual or not), its selection and its near-copy rule
        return ExtractiveAnswerer(
            cached,
            base.titles,
            base.max_sentences,
            base.thresholds,
            base.redundancy,
            margin,
            weights,
            sentences=base.sentences,
            extra_paragraphs=base.extra_paragraphs,
        )

    by_margin = {}
    for margin in MARGINS:
        s = summarize(evaluate(engine.with_answerer(answerer(margin)), fit_items, cached=cached))
        by_margin[margin] = s["key_fact_accuracy"]
        print(f"keep_within {margin}: fit key facts {s['key_fact_accuracy']:.3f}, evidence {s['evidence_cited']:.3f}")
    best = max(MARGINS, key=lambda k: (round(by_margin[k], 6), -k))
    print(f"KEEP_WITHIN = {best}")
    final = engine.with_answerer(answerer(best))
    print("| half | n | " + " | ".join(SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for name, subset in (("fit", fit_items), ("held", held_items), ("all", items)):
        s = summarize(evaluate(final, subset, cached=cached))
        print(f"| {name} | {len(subset)} | " + " | ".join(_fmt(s.get(k)) for k in SHOWN) + " |")


def _fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=".rag/index")
    run(parser.parse_args().index)
