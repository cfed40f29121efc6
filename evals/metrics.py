"""Eval metrics, each a small pure function over plain values (ids, booleans, strings, floats).

Retrieval metrics work at paragraph level: an item is any hashable key, in practice
`(doc_id, para)`. Binary relevance: a paragraph is relevant when it is gold evidence.

Degenerate input gives NaN where the metric is undefined (as ragas does), never a silent 0:
retrieval metrics with no gold paragraphs, citation metrics with no sentences or no
citations, key facts when there are none, abstention precision when nothing abstained.
Aggregates skip NaN (`mean`), so an unanswerable question does not drag hit@5 down.

The one non-pure helper, `judge_claim`, runs `rag.cite.support.check_support` (embedding
similarity plus a number check) to give the pure citation metrics their booleans.

Not handled: graded relevance, partial credit for a key fact, LLM-judged support.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

NAN = float("nan")


# ---------------------------------------------------------------- retrieval


def hit_at_k(ranking: Sequence[Hashable], relevant: set, k: int) -> float:
    """1.0 when any relevant item is among the first k, else 0.0; NaN without relevant items.

    >>> hit_at_k(["a", "b", "c"], {"c"}, 2), hit_at_k(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    if not relevant:
        return NAN
    return 1.0 if any(item in relevant for item in ranking[:k]) else 0.0


def recall_at_k(ranking: Sequence[Hashable], relevant: set, k: int) -> float:
    """Share of the relevant items found among the first k.

    >>> recall_at_k(["a", "b", "c"], {"a", "z"}, 3)
    0.5
    """
    if not relevant:
        return NAN
    return len(set(ranking[:k]) & relevant) / len(relevant)


def mrr_at_k(ranking: Sequence[Hashable], relevant: set, k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the first k (0.0 if none).

    >>> mrr_at_k(["a", "b", "c"], {"b", "c"})
    0.5
    """
    if not relevant:
        return NAN
    for rank, item in enumerate(ranking[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[Hashable], relevant: set, k: int = 10) -> float:
    """Binary-relevance nDCG: sum of 1/log2(rank+1) over relevant hits, over the ideal sum.

    >>> round(ndcg_at_k(["x", "a"], {"a"}), 4)  # 1/log2(3)
    0.6309
    """
    if not relevant:
        return NAN
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranking[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# ---------------------------------------------------------------- citations (ALCE, Gao et al. 2023)


@dataclass(frozen=True)
class ClaimJudgement:
    """Support verdicts for one answer sentence and its citations.

    - `joint`: all its cited paragraphs together support it (False when it cites nothing);
    - `alone[i]`: citation i on its own supports it;
    - `without[i]`: the other citations, without i, still support it.
    """

    joint: bool
    alone: tuple[bool, ...] = ()
    without: tuple[bool, ...] = ()


def citation_recall(claims: Sequence[ClaimJudgement]) -> float:
    """Share of sentences whose citations, together, support them (a sentence without citations fails).

    >>> citation_recall([ClaimJudgement(True, (True,), (False,)), ClaimJudgement(False)])
    0.5
    """
    if not claims:
        return NAN
    return sum(c.joint for c in claims) / len(claims)


def citation_precision(claims: Sequence[ClaimJudgement]) -> float:
    """Share of citations that are not irrelevant, after ALCE.

    A citation is irrelevant when it does not support the sentence alone AND the remaining
    citations support it without it. ALCE applies this only to sentences whose citations
    jointly support them; a citation of an unsupported sentence counts as imprecise unless it
    alone supports the sentence. NaN when the answer cites nothing.

    >>> citation_precision([ClaimJudgement(True, (True, False), (False, True))])
    0.5
    """
    total, precise = 0, 0
    for c in claims:
        for alone, without in zip(c.alone, c.without):
            total += 1
            precise += bool(alone or (c.joint and not without))
    return precise / total if total else NAN


def evidence_cited(cited: set, gold: set) -> float:
    """Share of the gold paragraphs among the answer's citations (1.0 or 0.0 with one gold paragraph).

    >>> evidence_cited({("d", 1), ("d", 2)}, {("d", 2), ("e", 5)})
    0.5
    """
    if not gold:
        return NAN
    return len(cited & gold) / len(gold)


def judge_claim(
    embedder, sentence: str, cited_paragraphs: Sequence[str], supported_only: bool = True
) -> ClaimJudgement:
    """Run `rag.cite.support.check_support` for the sentence against all, each, and all-but-each citation.

    A verdict counts as support when it is `supported` (or also `partial` with `supported_only=False`).
    """
    from rag.cite.support import check_support
    from rag.documents import Support

    ok = {Support.SUPPORTED} if supported_only else {Support.SUPPORTED, Support.PARTIAL}

    def supports(paragraphs: Sequence[str]) -> bool:
        return bool(paragraphs) and check_support(embedder, sentence, list(paragraphs)).support in ok

    if not cited_paragraphs:
        return ClaimJudgement(False)
    joint = supports(cited_paragraphs)
    if len(cited_paragraphs) == 1:
        return ClaimJudgement(joint, (joint,), (False,))
    alone = tuple(supports([p]) for p in cited_paragraphs)
    without = tuple(
        supports([q for j, q in enumerate(cited_paragraphs) if j != i]) for i in range(len(cited_paragraphs))
    )
    return ClaimJudgement(joint, alone, without)


# ---------------------------------------------------------------- answers

_MARKER = re.compile(r"\[[^\]]*\bparas?\.[^\]]*\]", re.IGNORECASE)
_FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


def normalize(text: str) -> str:
    """Lowercase, typographic quotes and dashes folded, citation markers dropped, whitespace collapsed.

    >>> normalize("China’s  exports [caixin-commentary para. 4] rose — fast")
    "china's exports rose - fast"
    """
    text = _MARKER.sub(" ", text.translate(_FOLD)).lower()
    return " ".join(text.split())


def fact_present(answer: str, fact: str | Sequence[str]) -> bool:
    """A key fact (a string, or a list of acceptable alternatives) appears in the answer as whole words.

    >>> fact_present("Exports reached 6.4 million units.", ["6.4 million", "6.4m"]), fact_present("16 million", "6 million")
    (True, False)
    """
    alternatives = [fact] if isinstance(fact, str) else list(fact)
    text = normalize(answer)
    return any(re.search(rf"(?<![\w.]){re.escape(normalize(a))}(?![\w]|\.\d)", text) for a in alternatives if a.strip())


def key_fact_accuracy(answer: str, key_facts: Sequence[str | Sequence[str]]) -> float:
    """1.0 when every key fact is present, else 0.0; NaN when there are no key facts.

    >>> key_fact_accuracy("Russia and Mexico led.", ["Russia", ["UAE", "United Arab Emirates"]])
    0.0
    """
    if not key_facts:
        return NAN
    return 1.0 if all(fact_present(answer, f) for f in key_facts) else 0.0


def lead_exact(lead: str, gold: Sequence[str]) -> float:
    """1.0 when the lead span is one of the gold spans (normalised); NaN when the question has no gold lead.

    >>> lead_exact("4.91 million", ["4.91 million", "4,910,000"]), lead_exact("", ["4.91 million"])
    (1.0, 0.0)
    """
    if not gold:
        return NAN
    return 1.0 if normalize(lead) in {normalize(g) for g in gold} and lead.strip() else 0.0


def lead_contains(lead: str, gold: Sequence[str]) -> float:
    """1.0 when the lead span contains a gold span as whole words ("4.91 million vehicles" holds "4.91 million").

    >>> lead_contains("4.91 million vehicles", ["4.91 million"]), lead_contains("14.91 million", ["4.91 million"])
    (1.0, 0.0)
    """
    if not gold:
        return NAN
    return 1.0 if any(fact_present(lead, g) for g in gold) else 0.0


def lead_precision(lead: str, gold: Sequence[str], key_facts: Sequence[str | Sequence[str]], answerable: bool) -> float:
    """Whether a lead, when there is one, is right: no lead is NaN (it does not count), a wrong lead 0.0.

    Right means: it contains a gold lead span; for a question without gold lead spans, a key fact (any of its
    alternatives), since a lead states one fact of the answer. Any lead on an unanswerable question is wrong.
    NaN also when the question has neither gold leads nor key facts to judge by.

    >>> lead_precision("", ["4.91 million"], [], True), lead_precision("over 6.4 million", ["4.91 million"], [], True)
    (nan, 0.0)
    >>> lead_precision("nearly 1.3 million NEVs", [], [["1.3 million", "1.3m"]], True)
    1.0
    >>> lead_precision("80,000 vehicles", [], [], False)
    0.0
    """
    if not lead.strip():
        return NAN
    if not answerable:
        return 0.0
    if gold:
        return lead_contains(lead, gold)
    if not key_facts:
        return NAN
    return 1.0 if any(fact_present(lead, f) for f in key_facts) else 0.0


def disagreement_scores(flagged: Sequence[bool], expected: Sequence[bool]) -> tuple[float, float]:
    """(precision, recall) of the "Sources disagree" note over questions that carry a disagreement label.

    >>> disagreement_scores([True, True, False], [True, False, True])
    (0.5, 0.5)
    """
    tp = sum(f and e for f, e in zip(flagged, expected))
    precision = tp / sum(flagged) if any(flagged) else NAN
    recall = tp / sum(expected) if any(expected) else NAN
    return precision, recall


def missing_facts(answer: str, key_facts: Sequence[str | Sequence[str]]) -> list[str]:
    """The key facts absent from the answer, each shown by its first alternative."""
    return [f if isinstance(f, str) else f[0] for f in key_facts if not fact_present(answer, f)]


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation if c not in "%$."})


def _tokens(text: str) -> list[str]:
    text = _ARTICLES.sub(" ", normalize(text)).translate(_PUNCT)
    # A full stop is punctuation unless it sits inside a number ("6.4").
    return [t.strip(".") for t in text.split() if t.strip(".")]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 (lowercase, no punctuation or articles); NaN without a reference, 0.0 for an empty answer.

    >>> round(token_f1("exports reached 6.4 million", "the exports were 6.4 million"), 4)
    0.75
    """
    ref = _tokens(reference)
    if not ref:
        return NAN
    pred = _tokens(prediction)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def abstention_scores(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> tuple[float, float]:
    """(precision, recall) of abstaining as a detector of unanswerable questions.

    Precision: of the questions it declined, the share that were unanswerable (NaN if none declined).
    Recall: of the unanswerable questions, the share it declined (NaN if there were none).

    >>> abstention_scores([True, True, False, False], [True, False, True, False])
    (0.5, 0.5)
    """
    if len(abstained) != len(unanswerable):
        raise ValueError(
            f"{len(abstained)} abstention flags but {len(unanswerable)} labels; pass one of each per question"
        )
    declined = sum(abstained)
    truly = sum(unanswerable)
    both = sum(a and u for a, u in zip(abstained, unanswerable))
    return (both / declined if declined else NAN, both / truly if truly else NAN)


# ---------------------------------------------------------------- cost and aggregation


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """Latency percentiles (linear interpolation), keyed `p50`, `p95`; NaN for no values.

    >>> percentiles([10, 20, 30, 40])
    {'p50': 25.0, 'p95': 38.5}
    """
    if len(values) == 0:
        return {f"p{q:g}": NAN for q in qs}
    arr = np.asarray(values, dtype=float)
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}


def mean(values: Sequence[float]) -> float:
    """Mean of the defined values (NaN skipped); NaN when none is defined.

    >>> mean([1.0, float("nan"), 0.0])
    0.5
    """
    defined = [v for v in values if v is not None and not math.isnan(v)]
    return sum(defined) / len(defined) if defined else NAN
