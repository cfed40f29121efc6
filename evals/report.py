"""Write what an eval run found: report.md, results.json and PNG plots, for people and for `--check`.

results.json (format "paracite-eval v1") holds every figure and every per-question row; NaN
(a metric undefined for a question) is written as null. Plots use matplotlib's Agg backend,
so no display is needed. Not handled: HTML reports, plots of per-kind figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evals.scoring import REPORTED_METRICS, Row, question_score, row_dict, worst

FORMAT = "paracite-eval v1"

METRIC_DOCS = """\
| metric | how it is computed |
|---|---|
| hit@1, hit@5 | 1 if a gold paragraph is ranked first / in the first 5 paragraphs, else 0; mean over answerable questions. Gold paragraphs come from the gold quotes, resolved against the current index. |
| recall@k | share of a question's gold paragraphs among the top-k paragraphs the answerer sees (k = `--top-k`). |
| mrr@10 | 1 / rank of the first gold paragraph in the top 10 (0 if none). |
| ndcg@10 | binary-relevance nDCG over the top 10: sum of 1/log2(rank+1) over gold hits, divided by the ideal sum. |
| citation_recall | after ALCE (Gao et al. 2023): share of answer sentences whose cited paragraphs, together, support them; a sentence without a citation fails. Undefined (skipped) for abstentions. |
| citation_precision | after ALCE: share of citations that are not irrelevant. A citation is irrelevant when it does not support its sentence alone and the sentence's other citations support it without it. |
| evidence_cited | share of a question's gold paragraphs among the answer's citations. |
| key_fact_accuracy | 1 if every key fact appears in the answer (case-insensitive, typographic quotes and dashes folded, citation markers dropped, whole-word match, any listed alternative), else 0. |
| token_f1 | SQuAD-style token F1 between the answer (markers dropped) and the reference answer; lowercase, no punctuation or articles. Extractive answers quote whole sentences, so F1 stays low even when right. |
| abstention_precision / recall | over all questions: of those the system declined, the share that were unanswerable; of the unanswerable, the share it declined. |
| latency p50 / p95 | per stage, in ms: `retrieve` and `answer` as timed by `Engine.ask`; `support` is the eval's own support check. With `--fast` (the eval's embedding cache) and in `--compare`, query and sentence vectors are memoised, so these timings are far below the product's. |

Metrics undefined for a question (no gold paragraphs, no sentences, no citations, no key facts) are NaN
for it and left out of the mean, as ragas does; `n` in results.json says how many questions count.

**Support** (used by citation recall and precision) is decided without an LLM, by `rag.cite.support.check_support`:
the highest cosine (all-MiniLM-L6-v2) between the sentence and the cited paragraph or any of its sentences
must reach `SUPPORTED_AT`, and every number in the sentence must occur in the cited text (thresholds
calibrated in evals/support.md). *It can detect* citations to an off-topic paragraph, and figures the cited
text does not contain. *It cannot detect* negation or a reversed relation ("exports fell" against "exports
rose" scores high), a number attached to the wrong thing, a claim that merely shares its topic with the
paragraph, or a claim true but supported only by an uncited paragraph. The extractive answerer copies its
sentences from the paragraphs it cites, so its citation metrics are 1.0 by construction; they measure
LLM answerers.
"""


def clean(value: Any) -> Any:
    """NaN -> None, recursively, so results.json is strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_table(summary: dict) -> str:
    lines = ["| metric | value |", "|---|---|"]
    for name in REPORTED_METRICS:
        lines.append(f"| {name} | {fmt(summary.get(name))} |")
    for stage, q in summary.get("latency_ms", {}).items():
        lines.append(f"| latency {stage} p50 / p95 (ms) | {fmt(q['p50'], 1)} / {fmt(q['p95'], 1)} |")
    lines.append(
        f"| questions (answerable / abstained) | {summary['questions']} ({summary['answerable']} / "
        f"{summary['abstained']}) |"
    )
    lines.append(f"| answerable questions refused | {fmt(summary.get('answerable_refused'))} |")
    return "\n".join(lines)


def kind_table(summary: dict) -> str:
    cols = ["hit@5", "mrr@10", "evidence_cited", "key_fact_accuracy", "token_f1", "abstained"]
    lines = ["| kind | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for kind, figures in summary.get("by_kind", {}).items():
        lines.append(f"| {kind} | {figures['n']} | " + " | ".join(fmt(figures.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def wrong_leads(rows: list[Row]) -> list[str]:
    """One line per lead that `lead_precision` judged wrong, or a line saying there is none.

    >>> wrong_leads([])
    ['No lead was wrong (lead_precision counts only questions that got a lead).']
    """
    wrong = [r for r in rows if r.metrics.get("lead_precision") == 0.0]
    if not wrong:
        return ["No lead was wrong (lead_precision counts only questions that got a lead)."]
    return [f"- **{r.id}** {r.question} → {r.lead}" for r in wrong]


def write_results(out: Path, rows: list[Row], summary: dict, config: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    payload = {
        "format": FORMAT,
        "config": config,
        "summary": summary,
        "rows": [row_dict(r) for r in rows],
        "worst": [r.id for r in worst(rows, 10)],
    }
    path.write_text(json.dumps(clean(payload), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_report(out: Path, rows: list[Row], summary: dict, config: dict, check: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "# paracite eval report",
        "",
        f"Set: `{config.get('set')}` · index: `{config.get('index')}` · mode: {config.get('mode')} · "
        f"top-k: {config.get('top_k')} · answerer: {config.get('answerer')} · chunking: max_words "
        f"{config.get('max_words')}",
        "",
        "## Summary",
        "",
        summary_table(summary),
        "",
        "![metrics](metrics.png) ![latency](latency.png)",
        "",
        "## By kind of question",
        "",
        kind_table(summary),
        "",
        "## Worst 10 questions",
        "",
        "| id | kind | score | question | what went wrong |",
        "|---|---|---|---|---|",
    ]
    for r in worst(rows, 10):
        what = "; ".join(r.problems) or "partly right (low token F1)"
        parts.append(f"| {r.id} | {r.kind} | {question_score(r):.2f} | {r.question} | {what} |")
    parts += ["", "Answers of the worst questions:", ""]
    for r in worst(rows, 10):
        parts.append(
            f"- **{r.id}** ({'answerable' if r.answerable else 'unanswerable'}; gold: "
            f"{', '.join(r.gold) or 'none'}; retrieved: {', '.join(r.retrieved)}): "
            f"{'**' + r.lead + '** ' if r.lead else ''}{r.answer[:400]}"
        )
    parts += ["", "## Wrong leads", "", *wrong_leads(rows)]
    if check:
        parts += ["", "## Against the baseline", "", "```", check, "```"]
    parts += ["", "## How each metric is computed", "", METRIC_DOCS]
    path = out / "report.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    plot_metrics(summary, out / "metrics.png")
    plot_latency(rows, out / "latency.png")
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(summary: dict, path: Path) -> None:
    plt = _plt()
    names = [n for n in REPORTED_METRICS if summary.get(n) is not None and not math.isnan(summary[n])]
    values = [summary[n] for n in names]
    fig, ax = plt.subplots(figsize=(9, 4))
    bars = ax.barh(names[::-1], values[::-1], color="#4c72b0")
    ax.bar_label(bars, fmt="%.2f", padding=2)
    ax.set_xlim(0, 1.1)
    ax.set_title(f"paracite eval: {summary['questions']} questions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(rows: list[Row], path: Path) -> None:
    plt = _plt()
    stages = ["retrieve", "answer", "support"]
    data = [[r.timings_ms[s] for r in rows if not math.isnan(r.timings_ms[s])] or [0.0] for s in stages]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(stages) + 1), stages)
    ax.set_ylabel("ms per question")
    ax.set_title("Latency per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COMPARE_COLUMNS = (
    "hit@1",
    "hit@5",
    "recall@k",
    "mrr@10",
    "ndcg@10",
    "evidence_cited",
    "key_fact_accuracy",
    "token_f1",
    "abstention_precision",
    "abstention_recall",
)


def write_compare(out: Path, runs: list[tuple[str, dict]]) -> str:
    """One table (markdown, also compare.md) and one plot (compare.png) over the ablation runs."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "| setting | " + " | ".join(COMPARE_COLUMNS) + " | search p50 ms (cached query vector) |",
        "|---|" + "---|" * (len(COMPARE_COLUMNS) + 1),
    ]
    for name, s in runs:
        lines.append(
            f"| {name} | "
            + " | ".join(fmt(s.get(c)) for c in COMPARE_COLUMNS)
            + f" | {fmt(s['latency_ms']['retrieve']['p50'], 1)} |"
        )
    table = "\n".join(lines)
    (out / "compare.md").write_text("# Ablations\n\n" + table + "\n", encoding="utf-8")
    (out / "compare.json").write_text(
        json.dumps(clean({"format": FORMAT, "runs": dict(runs)}), indent=1) + "\n", encoding="utf-8"
    )
    plt = _plt()
    shown = ("hit@5", "mrr@10", "ndcg@10", "key_fact_accuracy", "abstention_recall")
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(runs)
    for i, (name, s) in enumerate(runs):
        ax.bar([j + i * width for j in range(len(shown))], [s.get(c) or 0 for c in shown], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shown))], shown)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("Ablations: retrieval mode, top-k, chunk size")
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110)
    plt.close(fig)
    return table
