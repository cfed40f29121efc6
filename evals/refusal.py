"""Fit the refusal rule (`rag.answer.extractive.Thresholds`) on several corpora at once, and report it on held halves.

    python -m evals.refusal --gold-index .rag/index evals/out/s21-sec.json evals/out/s21-squad.json evals/out/s21-mml.json

Each source is a set of questions with the answerer's signals (what `Thresholds.abstains` reads), whether the
question is answerable, and its half (fit or held, fixed by document: `evals.answers.half`, or by id for the gold
set: `evals.fit_ranker.half`):
- the shipped gold set: signals computed here, from the index given (`--gold-index`);
- the JSON files `evals.answers`, `evals.squad` and `evals.mmlongbench` write (`runs[0].answers[id].signals`).

The rule refuses when the question's year is in no retrieved paragraph (a switch), when the best sentence's
similarity is under `min_similarity`, or when no sentence's paragraph covers what the question names or the best
such sentence's logit is under `min_covered_score` (`OFF`: coverage only). Every combination on the grid is
replayed on the fit halves; the score of a rule is the mean, over the sources that hold both answerable and
unanswerable questions, of its balanced accuracy (answered share of the answerable, refused share of the
unanswerable). A source of answerable questions only (the 10-Qs) cannot weigh a refusal against an answer: it is
reported, not fitted on (counted as its answered share, it pulls `min_similarity` down to 0.46 and costs the gold
set a tenth of its refusals: evals/answers.md). Among rules within `SLACK` of the best, the one that answers most
is taken. The rule is reported on the held halves beside the rule in the code.

Not handled: the signals come from one run of each set, with the code of that run; a change to retrieval or to
coverage changes the signals, and the fit must be run again.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from rag.answer.extractive import Signals, Thresholds

OFF = -99.0
# Balanced accuracy a rule may give up for answering more: refusing an answerable question costs the user a correct
# answer, while the extractive answer to an unanswerable one is true, cited and flagged as low-confidence. On this
# round's signals the surface is flat (0.687 at min_similarity 0.52, 0.693 at 0.60, which refuses 59% of the 10-Qs
# held questions).
SLACK = 0.01
GRID = {
    "min_similarity": tuple(float(x) for x in np.round(np.arange(0.30, 0.66, 0.02), 2)),
    "min_covered_score": (None, OFF, -4.0, -3.5, -3.0, -2.75, -2.5, -2.25, -2.0, -1.75, -1.5, -1.0),
    "year_rule": (True, False),
    "table_rows": (True, False),
}


@dataclass(frozen=True)
class Case:
    source: str
    half: str
    answerable: bool
    signals: dict


def refuses(rule: Thresholds, s: dict) -> bool:
    """Replay `rule` on recorded signals; no signals means the answerer had no sentence at all: a refusal."""
    if not s:
        return True
    return rule.abstains(
        Signals(
            s.get("similarity", 0.0),
            missing_year=bool(s.get("missing_year", 0.0)),
            best_score=s.get("best_score", math.inf),
            covered=bool(s.get("covered", 1.0)),
            covered_score=s.get("covered_score", math.inf),
            table_row=bool(s.get("table_row", 0.0)),
        )
    )


def rates(rule: Thresholds, cases: list[Case]) -> dict:
    answerable = [c for c in cases if c.answerable]
    unanswerable = [c for c in cases if not c.answerable]
    answered = sum(not refuses(rule, c.signals) for c in answerable) / len(answerable) if answerable else math.nan
    refused = sum(refuses(rule, c.signals) for c in unanswerable) / len(unanswerable) if unanswerable else math.nan
    score = answered if math.isnan(refused) else (answered + refused) / 2
    return {"n": len(cases), "answered": answered, "refused": refused, "score": score}


def fit(cases: list[Case], slack: float = SLACK) -> tuple[Thresholds, float]:
    """The grid's best rule on the fit halves: the mean over the two-class sources of each one's balanced accuracy;
    among the rules within `slack` of the best, the one that answers the most answerable questions of every fit
    half (then the lower similarity threshold)."""
    sources = sorted({c.source for c in cases if not c.answerable} & {c.source for c in cases if c.answerable})
    by_source = {s: [c for c in cases if c.source == s and c.half == "fit"] for s in sources}
    answerable = [c for c in cases if c.half == "fit" and c.answerable]
    scored = []
    for ms, tau, year, rows in product(*GRID.values()):
        rule = Thresholds(ms, min_covered_score=tau, year_rule=year, table_rows=rows)
        value = float(np.mean([rates(rule, by_source[s])["score"] for s in sources if by_source[s]]))
        scored.append((value, rule))
    top = max(v for v, _ in scored)
    near = [(v, r) for v, r in scored if v >= top - slack]
    value, best = max(
        near, key=lambda vr: (sum(not refuses(vr[1], c.signals) for c in answerable), -vr[1].min_similarity, vr[0])
    )
    return best, value


def gold_cases(index_dir: str) -> list[Case]:
    from evals.calibrate import signals
    from evals.fit_ranker import half
    from evals.gold import DEFAULT_SET, load_gold
    from rag.engine import Engine

    engine = Engine.load(index_dir)
    items = load_gold(DEFAULT_SET)
    rows = signals(engine, items)
    return [Case("gold", half(i.id), i.answerable, _plain(s)) for i, s in zip(items, rows)]


def _plain(s: dict) -> dict:
    return {k: float(v) for k, v in s.items() if k != "unanswerable"}


def file_cases(path: str | Path) -> list[Case]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    run = next(r for r in data["runs"] if r.get("answers"))
    return [
        Case(data["set"], row["half"], bool(row["answerable"]), run["answers"][row["id"]].get("signals") or {})
        for row in run["rows"]
    ]


def report(cases: list[Case], chosen: Thresholds, now: Thresholds) -> str:
    lines = [
        "| source | half | questions | rule | answered (answerable) | refused (unanswerable) |",
        "|---|---|---|---|---|---|",
    ]
    for source in sorted({c.source for c in cases}):
        for which in ("fit", "held"):
            part = [c for c in cases if c.source == source and c.half == which]
            for label, rule in (("in the code", now), ("fitted", chosen)):
                r = rates(rule, part)
                lines.append(
                    f"| {source} | {which} | {r['n']} | {label} | {_fmt(r['answered'])} | {_fmt(r['refused'])} |"
                )
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="JSON files of evals.answers / squad / mmlongbench")
    parser.add_argument("--gold-index", default=None, help="an index of corpus/, for the gold set's signals")
    args = parser.parse_args(argv)
    cases = [c for path in args.runs for c in file_cases(path)]
    if args.gold_index:
        cases += gold_cases(args.gold_index)
    chosen, value = fit(cases)
    print(
        f"fitted on the fit halves (mean balanced accuracy {value:.3f}): min_similarity={chosen.min_similarity}, "
        f"min_covered_score={chosen.min_covered_score}, year_rule={chosen.year_rule}, table_rows={chosen.table_rows}"
    )
    print(report(cases, chosen, Thresholds()))


if __name__ == "__main__":
    main()
