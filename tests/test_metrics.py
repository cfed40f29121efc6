"""Each eval metric on hand-computed cases, including degenerate input (no gold, no citations, empty answer)."""

from __future__ import annotations

import math

import pytest

from evals import metrics as m
from evals.metrics import ClaimJudgement as J

RANKING = [("d", 3), ("d", 1), ("e", 2), ("d", 7)]


def nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)


def test_hit_at_k():
    assert m.hit_at_k(RANKING, {("d", 1)}, 1) == 0.0
    assert m.hit_at_k(RANKING, {("d", 1)}, 2) == 1.0
    assert m.hit_at_k(RANKING, {("z", 9)}, 5) == 0.0
    assert m.hit_at_k([], {("d", 1)}, 5) == 0.0
    assert nan(m.hit_at_k(RANKING, set(), 5))


def test_recall_at_k():
    assert m.recall_at_k(RANKING, {("d", 1), ("d", 7)}, 2) == 0.5
    assert m.recall_at_k(RANKING, {("d", 1), ("d", 7)}, 4) == 1.0
    assert nan(m.recall_at_k(RANKING, set(), 3))


def test_mrr_at_10():
    assert m.mrr_at_k(RANKING, {("e", 2)}) == pytest.approx(1 / 3)
    assert m.mrr_at_k(RANKING, {("e", 2), ("d", 3)}) == 1.0
    assert m.mrr_at_k(RANKING, {("d", 7)}, k=3) == 0.0  # rank 4 lies beyond k
    assert nan(m.mrr_at_k(RANKING, set()))


def test_ndcg_at_10():
    # gold at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068; ideal = 1 + 0.63093
    assert m.ndcg_at_k(RANKING, {("d", 1), ("d", 7)}) == pytest.approx((0.630930 + 0.430677) / 1.630930, abs=1e-5)
    assert m.ndcg_at_k(RANKING, {("d", 3)}) == 1.0
    assert m.ndcg_at_k(RANKING, {("x", 1)}) == 0.0
    assert nan(m.ndcg_at_k(RANKING, set()))
    # more gold paragraphs than k: the ideal ranking is capped at k
    assert m.ndcg_at_k([1, 2], {1, 2, 3}, k=2) == 1.0


def test_citation_recall():
    claims = [J(True, (True,), (False,)), J(False, (False,), (False,)), J(False)]  # the last cites nothing
    assert m.citation_recall(claims) == pytest.approx(1 / 3)
    assert nan(m.citation_recall([]))  # an empty answer, or an abstention


def test_citation_precision_after_alce():
    # Two citations, each needed (neither alone, both together): both precise.
    assert m.citation_precision([J(True, (False, False), (False, False))]) == 1.0
    # One supports alone, the other is redundant (the rest supports without it, it does not alone): 1 of 2.
    assert m.citation_precision([J(True, (True, False), (False, True))]) == 0.5
    # Both support alone: both precise.
    assert m.citation_precision([J(True, (True, True), (True, True))]) == 1.0
    # Unsupported sentence with one citation: imprecise; plus a supported one: 1 of 2 overall.
    assert m.citation_precision([J(False, (False,), (False,)), J(True, (True,), (False,))]) == 0.5
    assert nan(m.citation_precision([J(False)]))  # no citations at all
    assert nan(m.citation_precision([]))


def test_evidence_cited():
    assert m.evidence_cited({("d", 1)}, {("d", 1)}) == 1.0
    assert m.evidence_cited({("d", 2)}, {("d", 1), ("e", 4)}) == 0.0
    assert m.evidence_cited({("d", 1), ("e", 4), ("x", 1)}, {("d", 1), ("e", 4)}) == 1.0
    assert m.evidence_cited(set(), {("d", 1)}) == 0.0  # nothing cited
    assert nan(m.evidence_cited({("d", 1)}, set()))  # no gold


def test_key_fact_accuracy_normalised_matching_and_alternatives():
    answer = "China’s exports reached 6.4 million [caixin-commentary para. 4], led by Russia and the UAE."
    assert m.key_fact_accuracy(answer, [["6.4 million", "6.4m"], "russia", ["United Arab Emirates", "UAE"]]) == 1.0
    assert m.key_fact_accuracy(answer, ["China's exports"]) == 1.0  # typographic apostrophe folded
    assert m.key_fact_accuracy(answer, ["6.4 million", "Mexico"]) == 0.0  # all facts must be present
    assert m.key_fact_accuracy("16 million units", ["6 million"]) == 0.0  # whole words: 16 is not 6
    assert m.key_fact_accuracy("up 6.45%", ["6.4"]) == 0.0
    assert m.key_fact_accuracy("Sales rose [briefing-x para. 2019].", ["2019"]) == 0.0  # markers are not answer text
    assert m.key_fact_accuracy("", ["Russia"]) == 0.0  # empty answer
    assert nan(m.key_fact_accuracy("anything", []))  # no key facts
    assert m.missing_facts(answer, ["Russia", ["Mexico", "MX"]]) == ["Mexico"]


def test_token_f1():
    # pred tokens: exports reached 6.4 million; ref: exports were 6.4 million ("the" dropped)
    # common 3, precision 3/4, recall 3/4 -> 0.75
    assert m.token_f1("Exports reached 6.4 million.", "The exports were 6.4 million") == pytest.approx(0.75)
    assert m.token_f1("same words", "Same words.") == 1.0
    assert m.token_f1("", "exports rose") == 0.0  # empty answer
    assert m.token_f1("nothing shared", "exports rose") == 0.0
    assert nan(m.token_f1("exports rose", ""))  # no reference


def test_abstention_scores():
    assert m.abstention_scores([True, True, False, False], [True, False, True, False]) == (0.5, 0.5)
    assert m.abstention_scores([True, False], [True, False]) == (1.0, 1.0)
    p, r = m.abstention_scores([False, False], [True, False])
    assert nan(p) and r == 0.0  # never abstained: precision undefined
    p, r = m.abstention_scores([True, False], [False, False])
    assert p == 0.0 and nan(r)  # nothing unanswerable: recall undefined
    assert all(nan(x) for x in m.abstention_scores([], []))
    with pytest.raises(ValueError, match="one of each"):
        m.abstention_scores([True], [])


def test_percentiles_and_mean():
    assert m.percentiles([10, 20, 30, 40]) == {"p50": 25.0, "p95": pytest.approx(38.5)}
    assert m.percentiles([7.0]) == {"p50": 7.0, "p95": 7.0}
    assert all(nan(v) for v in m.percentiles([]).values())
    assert m.mean([1.0, float("nan"), 0.0]) == 0.5
    assert nan(m.mean([float("nan")])) and nan(m.mean([]))


class _FakeEmbedder:
    """Bag-of-letters vectors: sentences sharing their words come out similar. For unit tests of the judge only."""

    name, dimension = "fake", 26

    def encode_queries(self, texts):
        import numpy as np

        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_judge_claim_runs_the_support_check_per_citation():
    e = _FakeEmbedder()
    sentence = "Exports reached 6.4 million vehicles."
    good = "Exports reached 6.4 million vehicles last year."
    wrong_number = "Exports reached 5.2 million vehicles last year."
    j = m.judge_claim(e, sentence, [good])
    assert j == J(True, (True,), (False,))
    assert m.judge_claim(e, sentence, [wrong_number]).joint is False  # 6.4 is missing from the cited text
    j2 = m.judge_claim(e, sentence, [good, wrong_number])
    assert j2.joint and j2.alone == (True, False) and j2.without == (False, True)
    assert m.citation_precision([j2]) == 0.5
    assert m.judge_claim(e, sentence, []) == J(False)
