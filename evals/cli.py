"""`rag eval`: run the gold set against the current index and write a report; ablations; the regression guard.

Progress and the check's diff go to stderr; the summary table goes to stdout. Registered on
the `rag` group through the `paracite.commands` entry point (pyproject.toml), so rag/ never imports evals/.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from evals.gold import DEFAULT_SET
from evals.scoring import BASELINE, TOLERANCE
from rag.index.layout import DEFAULT_INDEX_DIR, INDEX_ENV

DEFAULT_OUT = Path("evals/out")
COMPARE_TOP_K = (3, 5, 8)
COMPARE_MAX_WORDS = (60, 120, 180)


def load_engine(index_dir: Path):
    """The engine to evaluate; tests replace this to pass their session engine."""
    from rag.engine import Engine

    engine = Engine.load(index_dir)
    _ = engine.embedder.model  # loads it
    return engine


def _progress(desc: str):
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="q", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done == total:
            bar.close()

    return update


@click.group("eval", invoke_without_command=True)
@click.option(
    "--set",
    "set_path",
    type=click.Path(exists=True, path_type=Path),
    default=DEFAULT_SET,
    show_default="evals/gold",
    help="Gold set: a .jsonl file or a folder of them.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where report.md, results.json and the plots go.",
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=INDEX_ENV,
    default=DEFAULT_INDEX_DIR,
    show_default=True,
    show_envvar=True,
    help="Index folder.",
)
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Paragraphs the answerer sees.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
@click.option("--compare", is_flag=True, help="Run the ablations (mode, top-k, chunk size) and write one table.")
@click.option("--check", is_flag=True, help="Fail when a metric drops more than --tolerance below the baseline.")
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=BASELINE,
    show_default="evals/baseline.json",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=TOLERANCE,
    show_default=True,
    help="Largest accepted drop below the baseline, absolute (evidence cited, key facts and hit@5: 0.015 at most).",
)
@click.option("--save-baseline", is_flag=True, help="Write this run's figures to --baseline (accept them).")
@click.option(
    "--fast",
    is_flag=True,
    help="Answer with the eval's embedding cache: same quality figures, "
    "minutes faster, but answer latency is no longer the product's.",
)
@click.option(
    "--llm",
    default=None,
    envvar="RAG_LLM",
    help="Evaluate an LLM answerer instead of the extractive one: local, ollama:MODEL or openai:MODEL.",
)
@click.option("--base-url", default=None, help="Address of the ollama or OpenAI-compatible server.")
@click.pass_context
def eval_command(
    ctx,
    set_path,
    out,
    index_dir,
    top_k,
    mode,
    compare,
    check,
    baseline_path,
    tolerance,
    save_baseline,
    fast,
    llm,
    base_url,
):
    """Score retrieval, citations and answers on a gold set; write report.md, results.json and plots.

    \b
    Example usage:
        rag eval --out evals/out
        rag eval --check            # fail on a regression against evals/baseline.json
        rag eval --compare          # bm25/dense/hybrid, top-k 3/5/8, chunks of 60/120/180 words
        rag eval --llm local        # the generative answerer, its citations verified
    """
    if ctx.invoked_subcommand is not None:
        return
    from evals import report
    from evals.gold import load_gold
    from evals.runner import run_eval

    # RagErrors become messages and exit codes in app.cli.RagGroup, for this command as for the others.
    engine = load_engine(index_dir)
    if llm:
        from app.chat_models import answerer_for

        engine = engine.with_answerer(answerer_for(engine, llm, base_url))
    if compare:
        table = run_compare(engine, load_gold(set_path), out, top_k)
        click.echo(table)
        click.echo(f"wrote {out / 'compare.md'} and {out / 'compare.png'}", err=True)
        return
    baseline = None
    if check:
        if not baseline_path.exists():
            raise click.ClickException(f"no baseline at {baseline_path}; accept a run first with --save-baseline")
        baseline = json.loads(baseline_path.read_text(encoding="utf-8"))
    summary, config, drops, diff = run_eval(
        engine,
        set_path,
        out,
        top_k=top_k,
        mode=mode,
        progress=_progress("questions"),
        cache=fast,
        baseline=baseline,
        tolerance=tolerance,
    )
    click.echo(report.summary_table(summary))
    click.echo(f"wrote {out / 'report.md'}, results.json, metrics.png, latency.png ({config['seconds']}s)", err=True)
    if save_baseline:
        baseline_path.write_text(
            json.dumps(report.clean({"format": report.FORMAT, "config": config, "summary": summary}), indent=1) + "\n",
            encoding="utf-8",
        )
        click.echo(f"saved the baseline to {baseline_path}", err=True)
    if check:
        click.echo(diff, err=True)
        if drops:
            names = ", ".join(f"{d.metric} {d.baseline:.3f} -> {d.now:.3f}" for d in drops)
            raise click.ClickException(f"quality regression beyond {tolerance:.3f}: {names}")
        click.echo("check passed: no metric dropped beyond the tolerance", err=True)


def run_compare(engine, items, out: Path, top_k: int = 5) -> str:
    """Every ablation in one go, sharing one embedding cache; chunk sizes re-ingest into temporary indexes."""
    from evals import report
    from evals.cache import CachedEmbedder
    from evals.runner import evaluate
    from evals.scoring import summarize
    from rag.engine import Engine
    from rag.index.ingest import ingest

    cached = CachedEmbedder(engine.embedder)
    current = engine.index.manifest.get("chunking", {}).get("max_words")
    runs: list[tuple[str, dict]] = []

    def run(name: str, eng, k: int, mode: str) -> None:
        rows = evaluate(eng, items, top_k=k, mode=mode, progress=_progress(name), cached=cached)
        runs.append((name, summarize(rows)))
        click.echo(f"done: {name}", err=True)

    for mode in ("bm25", "dense", "hybrid"):
        run(f"{mode} · k={top_k} · max_words={current}", engine, top_k, mode)
    for k in COMPARE_TOP_K:
        if k != top_k:
            run(f"hybrid · k={k} · max_words={current}", engine, k, "hybrid")
    sources = sorted({d.source_path for d in engine.index.documents})
    for words in COMPARE_MAX_WORDS:
        if words == current:
            continue
        with tempfile.TemporaryDirectory(prefix="rag-eval-chunks-") as tmp:
            ingest(sources, Path(tmp) / "index", cached, max_words=words)
            # The engine's own answerer settings, over the re-chunked index.
            eng = Engine.load(Path(tmp) / "index", cached).with_answerer(engine.answerer.with_embedder(cached))
            run(f"hybrid · k={top_k} · max_words={words}", eng, top_k, "hybrid")
    return report.write_compare(out, runs)


@eval_command.command("beir")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where the table (beir-<name>.md/.json) and the TREC runs go.",
)
def beir_command(folder, out):
    """Retrieval only on a BEIR-layout dataset: nDCG@10, R@100, MRR@10 for BM25, dense and hybrid.

    \b
    Example usage:
        rag eval beir ../shared/datasets/scifact --out evals/out
    """
    from evals.beir import load_beir, report, run_beir

    data = load_beir(folder)
    runs = run_beir(data, load_embedder())
    click.echo(report(data, runs, out))
    click.echo(f"wrote {out / f'beir-{data.name}.md'} and run.{data.name}.<mode>.trec", err=True)


def load_embedder():
    """The encoder for `beir`; tests replace this to pass their session embedder."""
    from rag.embed.embedder import Embedder

    return Embedder()


@eval_command.command("realdocs")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default=".rag/realdocs/<folder name>",
    help="Index of FOLDER; ingested into when out of date.",
)
@click.option(
    "--gold",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    show_default="evals/sec10q/gold.jsonl",
    help="Page-level gold set (JSON lines).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where realdocs.md, realdocs.json and realdocs-misses.md go.",
)
@click.option("--rebuild", is_flag=True, help="Re-ingest from scratch, so the ingest is timed.")
def realdocs_command(folder, index_dir, gold, out, rebuild):
    """Retrieval on real PDFs with a page-level gold set: doc, page and paragraph hit@5, MRR@10, ingest time.

    \b
    Example usage:
        rag eval realdocs /work/data/sec-10-q/v1/docs --out evals/out
    """
    from evals.realdocs import GOLD, report, run_realdocs

    index_dir = index_dir or Path(".rag/realdocs") / folder.resolve().name
    items, run = run_realdocs(folder, index_dir, load_embedder(), gold or GOLD, rebuild=rebuild, show_progress=True)
    click.echo(report([run], items, out))
    click.echo(
        f"wrote {out / 'realdocs.md'}, realdocs.json and realdocs-misses.md "
        f"({run.query_seconds:.1f}s for {len(items)} questions)",
        err=True,
    )
