"""`rag eval` end to end, the gold set's integrity, and the regression guard (on the shipped corpus too).

All tests share the session `engine` (tests/conftest.py), wrapped once in the eval's embedding cache.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from app.cli import cli
from evals import cli as eval_cli
from evals.cache import CachedEmbedder
from evals.gold import DEFAULT_SET, GoldError, load_gold, resolve_evidence
from evals.runner import evaluate
from evals.scoring import BASELINE, TOLERANCE, check_against_baseline, summarize
from rag.documents import Paragraph

SMALL_SET = [
    {
        "id": "t1",
        "question": "What figure do Chinese customs data give for the country's vehicle exports?",
        "kind": "fact",
        "answerable": True,
        "reference_answer": "Over 6.4 million.",
        "key_facts": [["6.4 million"]],
        "evidence": [{"doc_id": "caixin-commentary", "quote": "places the figure at over 6.4 million"}],
    },
    {
        "id": "t2",
        "question": "How many electric cars were on the road worldwide at the end of 2024?",
        "kind": "fact",
        "answerable": True,
        "reference_answer": "Almost 58 million.",
        "key_facts": [["58 million"]],
        "evidence": [
            {
                "doc_id": "briefing-global-ev-market",
                "quote": "At the end of 2024 almost 58 million electric cars were on the road",
            }
        ],
    },
    {
        "id": "t3",
        "question": "What was the price of a cup of coffee in Paris in 1990?",
        "kind": "unanswerable",
        "answerable": False,
        "reference_answer": "Not found in the documents.",
        "key_facts": [],
        "evidence": [],
    },
]


@pytest.fixture(scope="module")
def eval_engine(engine):
    """The session engine with the eval's embedding cache, warmed once for every test here."""
    return engine.with_embedder(CachedEmbedder(engine.embedder))


@pytest.fixture
def small_set(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in SMALL_SET) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def run_eval(monkeypatch, eval_engine, corpus_index):
    monkeypatch.setattr(eval_cli, "load_engine", lambda index_dir: eval_engine)

    def run(*args):
        return CliRunner().invoke(cli, ["eval", "--index", str(corpus_index), *map(str, args)])

    return run


def test_every_gold_quote_resolves_to_one_paragraph(engine):
    items = load_gold(DEFAULT_SET)
    assert len(items) >= 80 and sum(not i.answerable for i in items) >= 15
    resolved = resolve_evidence(items, engine.index.content.paragraphs)
    assert all(resolved[i.id] for i in items if i.answerable)


def test_a_quote_that_matches_no_or_two_paragraphs_names_the_item():
    paras = [Paragraph("d", 1, "Exports rose to 6 million in 2023."), Paragraph("d", 2, "Exports rose again.")]
    items = load_gold_lines(
        [{"id": "x1", "question": "q", "answerable": True, "evidence": [{"doc_id": "d", "quote": "Exports rose"}]}]
    )
    with pytest.raises(GoldError, match=r"x1: quote matches 2 paragraphs"):
        resolve_evidence(items, paras)
    items = load_gold_lines(
        [{"id": "x2", "question": "q", "answerable": True, "evidence": [{"doc_id": "zz", "quote": "Exports rose"}]}]
    )
    with pytest.raises(GoldError, match=r"x2: document 'zz' is not in the index"):
        resolve_evidence(items, paras)


def load_gold_lines(items, tmp=None):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "g.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in items), encoding="utf-8")
    return load_gold(path)


def test_malformed_gold_items_are_refused_with_the_fix():
    with pytest.raises(GoldError, match="missing answerable"):
        load_gold_lines([{"id": "a", "question": "q"}])
    with pytest.raises(GoldError, match="duplicate id 'a'"):
        load_gold_lines([{"id": "a", "question": "q", "answerable": False}] * 2)
    with pytest.raises(GoldError, match="needs evidence"):
        load_gold_lines([{"id": "a", "question": "q", "answerable": True}])


def test_check_flags_a_drop_beyond_the_tolerance_and_shows_a_diff():
    baseline = {"summary": {"hit@5": 0.90, "mrr@10": 0.70, "token_f1": 0.30, "abstention_precision": float("nan")}}
    now = {"hit@5": 0.80, "mrr@10": 0.68, "token_f1": 0.35, "abstention_precision": 0.5}
    drops, diff = check_against_baseline(now, baseline, tolerance=0.03)
    assert [d.metric for d in drops] == ["hit@5"]
    assert drops[0].change == pytest.approx(-0.10)
    assert "hit@5" in diff and "DROP" in diff and "mrr@10" in diff and "up" in diff
    assert check_against_baseline(now, baseline, tolerance=0.2, tight={})[0] == []
    # evidence, key facts and hit@5 may fall 0.015 at most, whatever the tolerance of the rest
    assert [d.metric for d in check_against_baseline({**now, "hit@5": 0.88}, baseline, tolerance=0.2)[0]] == ["hit@5"]
    assert check_against_baseline({**now, "hit@5": 0.89}, baseline, tolerance=0.2)[0] == []
    assert [d.metric for d in check_against_baseline({**now, "mrr@10": math.nan}, baseline)[0]] == ["hit@5", "mrr@10"]


def test_rag_eval_end_to_end_on_a_small_set(run_eval, small_set, tmp_path):
    out = tmp_path / "out"
    result = run_eval("--set", small_set, "--out", out)
    assert result.exit_code == 0, result.output
    assert "| hit@5 |" in result.output
    for name in ("report.md", "results.json", "metrics.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "paracite-eval v1"
    assert [r["id"] for r in results["rows"]] == ["t1", "t2", "t3"]
    rows = {r["id"]: r for r in results["rows"]}
    assert rows["t1"]["gold"] == ["caixin-commentary para. 4"] or rows["t1"]["gold"][0].startswith("caixin-commentary")
    assert rows["t3"]["metrics"]["hit@5"] is None  # undefined without gold: null, not 0
    assert results["summary"]["questions"] == 3
    report = (out / "report.md").read_text()
    assert "## Worst 10 questions" in report and "## How each metric is computed" in report
    assert "cannot detect" in report


def test_rag_eval_check_fails_when_a_metric_drops(run_eval, small_set, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"summary": {"hit@5": 1.5, "mrr@10": 0.0}}))  # 1.5 cannot be reached
    result = run_eval("--set", small_set, "--out", tmp_path / "out", "--check", "--baseline", baseline)
    assert result.exit_code == 1
    assert "quality regression beyond 0.030: hit@5 1.500 ->" in result.output
    assert "DROP" in (tmp_path / "out" / "report.md").read_text()


def test_shipped_corpus_meets_the_baseline(eval_engine):
    """The CI guard: the full gold set against evals/baseline.json."""
    baseline = json.loads(BASELINE.read_text())
    rows = evaluate(
        eval_engine, load_gold(DEFAULT_SET), top_k=baseline["config"]["top_k"], mode=baseline["config"]["mode"]
    )
    drops, diff = check_against_baseline(summarize(rows), baseline, TOLERANCE)
    assert not drops, "quality regression against evals/baseline.json:\n" + diff


def test_rag_eval_beir_on_a_tiny_beir_folder(monkeypatch, embedder, tmp_path):
    import evals.beir

    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Battery prices", "Lithium-ion battery pack prices fell 20% to 115 dollars per kWh in 2024."),
        ("d2", "Car exports", "China exported more than six million vehicles in 2023, leading the world."),
        ("d3", "Tariffs", "The European Union imposed countervailing duties on electric cars made in China."),
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs))
    (folder / "queries.jsonl").write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"_id": "q1", "text": "How cheap did battery packs get?"},
                {"_id": "q2", "text": "EU duties on Chinese EVs"},
                {"_id": "q3", "text": "a query without qrels is skipped"},
            ]
        )
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    monkeypatch.setattr(eval_cli, "load_embedder", lambda: embedder)
    monkeypatch.setattr(evals.beir, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["eval", "beir", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| ours: hybrid | 1.000 | 1.000 | 1.000 |" in result.output
    assert "| ours: hybrid-rrf | 1.000 | 1.000 | 1.000 |" in result.output
    assert list((tmp_path / "cache").glob("beir-tiny-*.npy"))  # corpus vectors cached
    trec = (out / "run.tiny.dense.trec").read_text().splitlines()
    assert trec[0].split()[:4] == ["q1", "Q0", "d1", "1"] and {line.split()[0] for line in trec} == {"q1", "q2"}
    figures = json.loads((out / "beir-tiny.json").read_text())["figures"]
    assert set(figures) == {"bm25", "dense", "hybrid-rrf", "hybrid"}
