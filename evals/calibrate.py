"""Calibrate the two sets of thresholds that decide without an LLM: support, and abstention.

    python -m evals.calibrate --index .rag/index            # both; prints the tables of evals/*.md

Support (`rag.support.SUPPORTED_AT`, `PARTIAL_AT`), documented in evals/support.md:
1. Pairs: each sentence of a gold reference answer (written by a person, in other words than the
   corpus) against its single gold paragraph (should support) and against a random other paragraph
   of the same document (should not; same topic, so the hard case).
2. Score each pair with `check_support`'s similarity (best cosine to the paragraph or any of its sentences).
3. SUPPORTED_AT: the highest threshold whose balanced accuracy is within `SUPPORT_SLACK` of the
   best; PARTIAL_AT: the highest threshold that still keeps 95% of the supporting pairs at or above it.

Abstention (`rag.answer.extractive.Thresholds`), documented in evals/abstention.md:
1. Run each question of evals/calibration.jsonl (written apart from the gold set) through retrieval
   and the answerer once, keeping its signals (best sentence similarity, names the passages miss).
2. Replay the abstention rule over a grid of (min_similarity, entity_similarity).
3. Pick the pair with the best balanced accuracy on the calibration set among those refusing at
   most `MAX_FALSE_ABSTENTION` of its answerable questions (ties: the pair nearest the previous
   defaults), then report precision/recall on calibration and gold.

Not handled: cross-validation (the sets are small; the gold set is the held-out check).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from evals.cache import CachedEmbedder, warm_cache
from evals.gold import DEFAULT_SET, load_gold, resolve_evidence
from evals.metrics import abstention_scores
from rag.answer.extractive import Thresholds
from rag.sentences import split_sentences

CALIBRATION_SET = Path(__file__).resolve().parent / "calibration.jsonl"
SUPPORT_SLACK = 0.01  # balanced accuracy given up, at most, for a stricter SUPPORTED_AT


def balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Mean of the true-positive and true-negative rates when `score >= threshold` predicts the label.

    >>> balanced_accuracy(np.array([0.9, 0.8, 0.3, 0.6]), np.array([1, 1, 0, 0]), 0.7)
    1.0
    """
    pred = scores >= threshold
    pos, neg = labels == 1, labels == 0
    return float((pred[pos].mean() + (~pred[neg]).mean()) / 2)


def support_pairs(engine, items, seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, label) for reference-answer sentences against gold (1) and random same-document (0) paragraphs."""
    from rag.support import check_support

    rng = random.Random(seed)
    gold = resolve_evidence(items, engine.index.content.paragraphs)
    scores, labels = [], []
    for item in items:
        keys = gold[item.id]
        if not item.answerable or len(keys) != 1:
            continue
        doc_id, para = keys[0]
        paragraphs = engine.index.paragraphs(doc_id)
        positive = engine.index.paragraph(doc_id, para).text
        others = [p.text for p in paragraphs if p.para != para and len(p.text.split()) >= 8]
        negative = rng.choice(others)
        for sentence in split_sentences(item.reference_answer):
            for text, label in ((positive, 1), (negative, 0)):
                scores.append(check_support(engine.embedder, sentence, [text]).score)
                labels.append(label)
    return np.array(scores), np.array(labels)


def calibrate_support(engine, items) -> dict:
    scores, labels = support_pairs(engine, items)
    grid = np.round(np.arange(0.30, 0.91, 0.01), 2)
    accuracy = {float(t): balanced_accuracy(scores, labels, t) for t in grid}
    # The curve is flat near its top (one pair moves it by ~0.006), so take the highest threshold within
    # SUPPORT_SLACK of the best: a wrong "supported" badge misleads a reader more than a wrong "partial".
    best = max(accuracy.values())
    supported_at = max(t for t in grid if accuracy[float(t)] >= best - SUPPORT_SLACK)
    pos = np.sort(scores[labels == 1])
    partial_at = float(np.floor(pos[int(0.05 * len(pos))] * 100) / 100)
    return {"pairs": int(len(scores)), "positives": int(labels.sum()), "supported_at": float(supported_at),
            "balanced_accuracy": accuracy[float(supported_at)], "best_balanced_accuracy": best,
            "best_at": float(max(grid, key=lambda t: accuracy[float(t)])), "partial_at": partial_at,
            "tpr_at_supported": float((pos >= supported_at).mean()),
            "fpr_at_supported": float((scores[labels == 0] >= supported_at).mean()),
            "fpr_at_partial": float((scores[labels == 0] >= partial_at).mean()),
            "accuracy_at_old": {"0.70": accuracy.get(0.7), "0.50": accuracy.get(0.5)},
            "positive_quartiles": [float(np.percentile(pos, q)) for q in (25, 50, 75)],
            "negative_quartiles": [float(np.percentile(scores[labels == 0], q)) for q in (25, 50, 75)]}


def signals(engine, items, top_k: int = 5) -> list[tuple[float, float, bool]]:
    """(best similarity, missing names, unanswerable, missing year, missing measure) per question, from one answer."""
    out = []
    for item in items:
        answer = engine.ask(item.question, history=list(item.history) or None, top_k=top_k)
        s = answer.signals
        out.append((s.get("similarity", 0.0), s.get("missing_entities", 0.0), not item.answerable,
                    s.get("missing_year", 0.0), s.get("missing_measure", 0.0)))
    return out


def replay(sig, min_similarity: float, entity_similarity: float) -> tuple[float, float, float]:
    """(precision, recall, balanced accuracy) of abstention under the given thresholds."""
    rule = Thresholds(min_similarity, entity_similarity)
    abstain = [rule.abstains(s, miss, year, measure) for s, miss, _, year, measure in sig]
    truth = [u for _, _, u, _, _ in sig]
    p, r = abstention_scores(abstain, truth)
    answered_ok = [not a for a, u in zip(abstain, truth) if not u]
    tnr = sum(answered_ok) / len(answered_ok) if answered_ok else float("nan")
    return p, r, (r + tnr) / 2


# Refusing an answerable question costs the user a correct answer, while answering an unanswerable one
# with the extractive answerer shows true, cited, if off-target sentences: so at most this share of
# answerable calibration questions may be refused.
MAX_FALSE_ABSTENTION = 0.10


def false_abstention(sig, min_similarity: float, entity_similarity: float) -> float:
    """Share of the answerable questions the rule would refuse."""
    rule = Thresholds(min_similarity, entity_similarity)
    refused = [rule.abstains(s, miss, year, measure) for s, miss, u, year, measure in sig if not u]
    return sum(refused) / len(refused) if refused else 0.0


def calibrate_abstention(engine, calibration, gold, old=(0.45, 0.75),
                         max_false_abstention: float = MAX_FALSE_ABSTENTION) -> dict:
    cal, gld = signals(engine, calibration), signals(engine, gold)
    best, best_key = None, None
    for ms in np.round(np.arange(0.30, 0.71, 0.01), 2):
        for es in np.round(np.arange(0.40, 0.91, 0.01), 2):
            if es < ms:
                continue
            _, _, bacc = replay(cal, ms, es)
            if false_abstention(cal, ms, es) > max_false_abstention:
                continue
            key = (bacc, -abs(ms - old[0]) - abs(es - old[1]))
            if best_key is None or key > best_key:
                best, best_key = (float(ms), float(es)), key
    result = {"chosen": best, "old": old}
    for name, sig in (("calibration", cal), ("gold", gld)):
        for label, t in (("old", old), ("chosen", best)):
            p, r, bacc = replay(sig, *t)
            result[f"{name}_{label}"] = {"precision": p, "recall": r, "balanced_accuracy": bacc,
                                         "answerable_refused": false_abstention(sig, *t),
                                         "n": len(sig), "unanswerable": sum(u for _, _, u, _, _ in sig)}
    result["calibration_signals"] = cal
    return result


def main(index_dir: str, skip_support: bool = False) -> None:
    import json

    from rag.engine import Engine

    engine = Engine.load(index_dir)
    cached = CachedEmbedder(engine.embedder)
    warm_cache(cached, engine.index.content)
    engine = engine.with_embedder(cached)
    gold = load_gold(DEFAULT_SET)
    if not skip_support:
        print(json.dumps({"support": calibrate_support(engine, gold)}, indent=1))
    result = calibrate_abstention(engine, load_gold(CALIBRATION_SET, require_evidence=False), gold)
    sig = result.pop("calibration_signals")
    print(json.dumps({"abstention": result}, indent=1))
    items = load_gold(CALIBRATION_SET, require_evidence=False)
    for item, (s, miss, u, _, _) in zip(items, sig):
        print(f"{item.id}\t{'unans' if u else 'ans'}\tsim={s:.3f}\tmissing={int(miss)}\t{item.question}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=".rag/index")
    parser.add_argument("--skip-support", action="store_true", help="Only the abstention sweep.")
    args = parser.parse_args()
    main(args.index, args.skip_support)
