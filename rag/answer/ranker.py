"""Rank the sentences of retrieved paragraphs by how well each answers the question.

Each candidate sentence gets these signals (`FEATURES`), combined by a logistic model whose weights
(`WEIGHTS`) were fitted by `python -m evals.fit_ranker` on one half of the gold set (the other half
is kept for reporting; evals/ranker.md has the figures):
- `similarity`: cosine of the sentence to the question (all-MiniLM-L6-v2);
- `paragraph`: cosine of the sentence's paragraph to the question (its retrieval score), so a
  sentence is read with its context: "The definitive rates are 17.0%…" never says "EU" or "duty";
- `lexical`: the share of the question's content terms in the sentence;
- `context`: the same share over the sentence, the sentence before it, its heading and its title;
- `year`: +1 when the sentence (or the one before it) names a year the question asks about, -1
  when it names years but none of those asked, 0 otherwise;
- `qualifier`: +1 when it says the side of a qualifier the question sets ("definitive"), -1 when
  it says only the other side ("provisional");
- `answer_type`: 1 when it holds a span of the kind asked for (a quantity, a date, a place, …), of
  the unit asked for when the question says (a share wants a percent); 0.5 for another unit;
- `rank`: 1 / the paragraph's retrieval rank.

Not handled: reasoning across sentences (a sum of two figures is shown as the sentences that state them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.answer.question import AnswerType, Frame, spans, unit_of, wanted_unit, words_in, years_in
from rag.documents import Hit
from rag.terms import content_terms

FEATURES = ("similarity", "paragraph", "lexical", "context", "year", "qualifier", "answer_type", "rank")
# Fitted by `python -m evals.fit_ranker` on the gold set's fitting half (evals/ranker.md); the bias comes first.
WEIGHTS = (-5.1, 1.716, 0.08, 1.21, 1.656, 0.494, -0.087, 0.97, 1.426)
# A sentence that says only the other side of a qualifier the question sets ("provisional" when it asks for
# "definitive") answers another question. The fit gives the qualifier signal a small weight (few gold questions
# set one), so this penalty is set by hand, not fitted: larger than KEEP_WITHIN, it keeps such a sentence out of
# an answer unless nothing else is left.
CONTRADICTION_PENALTY = 3.0
# A sentence whose paragraph (with its heading and title) does not name everything the question names (a place,
# a company, a year: `rag.answer.coverage`) is less likely to answer it. Set by hand, not fitted: chosen on the
# fitting half among 0, 0.5, 1, 2, 3 for evidence cited and key facts (evals/ranker.md).
UNCOVERED_PENALTY = 1.0


@dataclass(frozen=True)
class Candidate:
    hit: Hit
    index: int  # the sentence's position in its paragraph
    text: str
    previous: str = ""  # the sentence before it in its paragraph


def features(frame: Frame, candidates: list[Candidate], similarity: np.ndarray, titles: dict[str, str]) -> np.ndarray:
    """One row of `FEATURES` per candidate."""
    unit = wanted_unit(frame.text) if frame.answer_type is AnswerType.QUANTITY else None
    rows = []
    q_terms = frame.terms
    asked_years = frame.years
    for c, sim in zip(candidates, similarity):
        p = c.hit.paragraph
        terms = content_terms(c.text)
        context = terms | content_terms(" ".join((c.previous, p.heading, titles.get(p.doc_id, ""))))
        lexical = len(q_terms & terms) / len(q_terms) if q_terms else 0.0
        context_share = len(q_terms & context) / len(q_terms) if q_terms else 0.0
        year = 0.0
        if asked_years:
            named = years_in(c.text) or years_in(c.previous)
            year = 1.0 if named & asked_years else (-1.0 if named else 0.0)
        qualifier = 0.0
        if frame.qualifiers:
            words = words_in(c.text)
            for asked, opposite in frame.qualifiers:
                if words & asked:
                    qualifier = max(qualifier, 1.0)
                elif words & opposite:
                    qualifier = min(qualifier, -1.0) if qualifier <= 0 else qualifier
        found = spans(c.text, frame.answer_type) if frame.answer_type is not AnswerType.OTHER else []
        typed = 0.0 if not found else (1.0 if unit is None or any(unit_of(f) == unit for f in found) else 0.5)
        dense = c.hit.scores_by_retriever.get("dense")
        rows.append(
            (
                float(sim),
                float(dense) if dense is not None else float(sim),
                lexical,
                context_share,
                year,
                qualifier,
                typed,
                1.0 / c.hit.rank,
            )
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def score(x: np.ndarray, weights: tuple[float, ...] = WEIGHTS, covered: np.ndarray | None = None) -> np.ndarray:
    """The logit of each candidate answering the question, less `CONTRADICTION_PENALTY` for a contradicted qualifier
    and `UNCOVERED_PENALTY` where `covered` (one bool per candidate) says its paragraph misses a name or year asked."""
    w = np.asarray(weights, dtype=np.float64)
    qualifier = x[:, FEATURES.index("qualifier")] if len(x) else np.zeros(0)
    logits = w[0] + x @ w[1:] + CONTRADICTION_PENALTY * np.minimum(qualifier, 0.0)
    return logits if covered is None else logits - UNCOVERED_PENALTY * ~np.asarray(covered, dtype=bool)
