"""Fit the document prior's weight (`rag.retrieve.hybrid.DOCUMENT_WEIGHT`) on one half of the 10-Q questions and
report it on the other (issue 21, item 6).

    python -m evals.document_weight --index /work/data/idx/sec10q-run/p1000

The halves are those of `evals.answers.half` (by filing: the fit half's filings are never in the held half).
For each weight on the grid it retrieves the top 5 for every question (hybrid, the index's passages) and scores
page hit@5 and document hit@5 with `evals.answers`' own functions. The weight chosen is the best mean of the two
on the fit half (ties: the smaller weight); the table shows both halves, so the held figures are the report.

Not handled: questions of other sets seldom name a document by issuer or report, where the prior applies
(`rag.retrieve.document_match`), so only the 10-Qs can fit it.
"""

from __future__ import annotations

import argparse
import os

from evals.answers import K, doc_hit_at, half, hit_at, mean, open_engine, sec10q_questions
from evals.answers import Passage as Retrieved
from rag.retrieve.hybrid import DOCUMENT_WEIGHT, HybridRetriever

GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0)
GOLD = "evals/sec10q/gold.jsonl"


def sweep(index_dir: str, gold: str = GOLD, grid=GRID) -> list[dict]:
    engine, file_of = open_engine(index_dir)
    questions = sec10q_questions(gold)
    rows = []
    for weight in grid:
        retriever = HybridRetriever.from_index(engine.index, engine.embedder, document_weight=weight)
        scored = {"fit": [], "held": []}
        for q in questions:
            hits = retriever.search(q.question, top_k=K)
            ranking = [
                Retrieved(file_of(h.paragraph.doc_id), h.paragraph.page, h.paragraph.text, h.paragraph.label)
                for h in hits
            ]
            scored[half(q.doc)].append((hit_at(q, ranking), doc_hit_at(q, ranking)))
        row = {"weight": weight}
        for which, pairs in scored.items():
            row[f"{which} page hit@5"] = mean(p for p, _ in pairs)
            row[f"{which} doc hit@5"] = mean(d for _, d in pairs)
        rows.append(row)
    return rows


def choose(rows: list[dict]) -> float:
    return max(rows, key=lambda r: (r["fit page hit@5"] + r["fit doc hit@5"], -r["weight"]))["weight"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="an index of the 20 10-Q filings")
    parser.add_argument("--gold", default=GOLD)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = sweep(args.index, args.gold)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if k != "weight" else f"{r[k]:g}" for k in keys) + " |")
    print(f"chosen on the fit half: {choose(rows):g} (in the code: {DOCUMENT_WEIGHT:g})")


if __name__ == "__main__":
    main()
