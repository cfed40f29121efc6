"""The `rag` command line: ingest, ask, docs, show.

Results go to stdout (one JSON object per line with --json); progress and errors go to stderr.
Library errors become one-line messages and non-zero exit codes here, and only here.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from rag.documents import Answer
from rag.errors import RagError
from rag.store import DEFAULT_INDEX_DIR, INDEX_ENV

index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), envvar=INDEX_ENV,
    default=DEFAULT_INDEX_DIR, show_default=True, show_envvar=True, help="Index folder.",
)


class _Fail(click.ClickException):
    def show(self, file=None):
        click.echo(f"Error: {self.message}", err=True)


@click.group()
@click.version_option(package_name="paracite")
def cli():
    """paracite: answers from your documents, every claim cited to a paragraph."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@click.option("--rebuild", is_flag=True, help="Ignore the existing index and embed everything again.")
@click.option("--max-words", type=click.IntRange(min=10), default=None, help="Longest chunk, in words.")
def ingest(paths, index_dir, rebuild, max_words):
    """Ingest files and folders (default: corpus/) into the index.

    Example usage:

        rag ingest corpus/ --index .rag/index
    """
    from rag.chunking import DEFAULT_MAX_WORDS
    from rag.embedding import Embedder
    from rag.ingest import ingest as run_ingest

    paths = list(paths) or [Path("corpus")]
    try:
        report = run_ingest(paths, index_dir, Embedder(), max_words=max_words or DEFAULT_MAX_WORDS,
                            rebuild=rebuild, show_progress=True)
    except RagError as e:
        raise _Fail(str(e)) from e
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for doc_id in report.added:
        click.echo(f"added    {doc_id}", err=True)
    for doc_id in report.updated:
        click.echo(f"updated  {doc_id}", err=True)
    for doc_id in report.removed:
        click.echo(f"removed  {doc_id}", err=True)
    for error in report.failed:
        click.echo(f"failed   {error}", err=True)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


@cli.command()
@click.argument("questions", nargs=-1, required=True)
@index_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question, one per line.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Paragraphs to retrieve.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
@click.option("--llm", "llm_spec", default="extractive", show_default=True, envvar="RAG_LLM", show_envvar=True,
              help="Answerer: extractive, local (SmolLM2, offline), ollama:MODEL or openai:MODEL.")
@click.option("--base-url", default=None, help="Server address for ollama:/openai: (e.g. http://localhost:8000/v1).")
@click.option("--history", "history_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="JSON list of earlier turns [{role, content}]: the question is rewritten as a standalone one.")
def ask(questions, index_dir, as_json, top_k, mode, llm_spec, base_url, history_file):
    """Answer questions from the index, citing paragraphs.

    Example usage:

        rag ask "How many vehicles did China export?" --json

        rag ask "And what about Korea?" --history turns.json --llm local
    """
    history = _read_history(history_file) if history_file else None
    engine = _load_engine(index_dir)
    try:
        answerer = engine.answerer_for(llm_spec, base_url)
    except RagError as e:
        raise _Fail(str(e)) from e
    if hasattr(answerer, "chat_model") and hasattr(answerer.chat_model, "load"):
        click.echo(f"loaded local model in {answerer.chat_model.load():.1f}s", err=True)
    for question in questions:
        if not question.strip():
            raise _Fail("empty question")
        answer = engine.ask(question, top_k=top_k, mode=mode, answerer=answerer, history=history)
        for note in answer.notes:
            if "cannot be reached" in note:
                click.echo(f"warning: {note}", err=True)
        click.echo(json.dumps(answer_json(answer), ensure_ascii=False) if as_json else answer_text(answer))


def _read_history(path: Path) -> list[dict]:
    try:
        turns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _Fail(f"--history {path}: not readable JSON ({e})") from e
    if not isinstance(turns, list) or not all(
            isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
            for t in turns):
        raise _Fail(f'--history {path}: expected a JSON list of {{"role": "user"|"assistant", "content": "..."}}')
    return turns


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True)
def docs(index_dir, as_json):
    """List the documents in the index, with paragraph counts."""
    index = _open_index(index_dir)
    for d in index.documents:
        n = len(index.paragraphs(d.doc_id))
        if as_json:
            click.echo(json.dumps({**asdict(d), "paragraphs": n, "ingested_at": index.ingested_at(d.doc_id)},
                                  ensure_ascii=False))
        else:
            pages = f", {d.pages} pages" if d.pages else ""
            click.echo(f"{d.doc_id}\t{d.kind}\t{n} paragraphs{pages}\t{d.title}")


@cli.command()
@click.argument("doc_id")
@click.argument("para", type=int)
@index_option
def show(doc_id, para, index_dir):
    """Print one paragraph, to check a citation.

    Example usage:

        rag show caixin-commentary 8
    """
    index = _open_index(index_dir)
    try:
        p = index.paragraph(doc_id, para)
    except RagError as e:
        raise _Fail(str(e)) from e
    d = index.document(doc_id)
    where = f", page {p.page}" if p.page else ""
    click.echo(f"{d.title} — {p.label}{where}")
    if p.heading:
        click.echo(f"Section: {p.heading}")
    if p.source_paras:
        click.echo(f"Original article: para. {', '.join(map(str, p.source_paras))}")
    click.echo("")
    click.echo(p.text)


@cli.command()
@index_option
@click.option("--repair", is_flag=True, help="Point a broken CURRENT at the newest complete generation that passes "
                                               "every check, and remove incomplete ones. Never deletes a complete one.")
def doctor(index_dir, repair):
    """Check an index folder: one line per check, exit code 0 when healthy, 1 otherwise.

    Example usage:

        rag doctor --index .rag/index

        rag doctor --repair
    """
    from rag.doctor import diagnose, repair as run_repair

    try:
        report = run_repair(index_dir) if repair else diagnose(index_dir)
    except RagError as e:  # IndexBusy: an ingest holds the lock
        raise _Fail(str(e)) from e
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.healthy else 1)


def _open_index(index_dir: Path):
    from rag.embedding import DIMENSION, MODEL_NAME
    from rag.store import Index

    try:
        return Index.open(index_dir, MODEL_NAME, DIMENSION)
    except RagError as e:
        raise _Fail(str(e)) from e


def _load_engine(index_dir: Path):
    from rag.engine import Engine

    t0 = time.perf_counter()
    try:
        engine = Engine.load(index_dir)
    except RagError as e:
        raise _Fail(str(e)) from e
    engine.embedder.model  # load now, so the first question's timing is its own
    click.echo(f"loaded index and model in {time.perf_counter() - t0:.1f}s", err=True)
    return engine


def answer_json(answer: Answer) -> dict:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "answerer": answer.answerer,
        "citations": [
            {"doc_id": c.doc_id, "title": c.title, "para": c.para, "page": c.page, "text": c.text, "quote": c.quote,
             "source_paras": list(c.source_paras)}
            for c in answer.citations
        ],
        "claims": [{"text": cl.text, "support": cl.support.value, "score": cl.score,
                    "citations": [{"doc_id": c.doc_id, "para": c.para} for c in cl.citations]} for cl in answer.claims],
        "retrieved": [{"doc_id": h.paragraph.doc_id, "para": h.paragraph.para, "page": h.paragraph.page,
                       "score": round(h.score, 6)} for h in answer.retrieved],
        "timings_ms": {k: round(v, 1) for k, v in answer.timings_ms.items()},
        "notes": list(answer.notes),
        "support": _support_counts(answer),
    }


def _support_counts(answer: Answer) -> dict:
    from rag.verify import count_support

    c = count_support([] if answer.abstained else answer.claims)
    return {"supported": c.supported, "partial": c.partial, "unsupported": c.unsupported, "sentences": c.sentences}


def answer_text(answer: Answer) -> str:
    lines = [f"Q: {answer.question}"]
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"   (searched as: {answer.standalone_question})")
    if answer.answerer != "extractive" and not answer.abstained:
        lines += ["", f"{answer.text}", "", "Sentences:"]
        lines += [f"  [{c.support.value}{f' {c.score:.2f}' if c.score is not None else ''}] {c.text}"
                  for c in answer.claims]
        lines.append(f"  ({answer.answerer})")
        lines.append("")
    else:
        lines += ["", answer.text, ""]
    if answer.abstained:
        lines.append("Closest paragraphs:")
        for h in answer.retrieved[:3]:
            lines.append(f"  [{h.paragraph.label}] {h.paragraph.text[:160]}…")
    else:
        lines.append("Sources:")
        for c in answer.citations:
            where = f", p. {c.page}" if c.page else ""
            refs = f" (original article para. {', '.join(map(str, c.source_paras))})" if c.source_paras else ""
            lines.append(f"  [{c.doc_id} para. {c.para}{where}] {c.title}{refs}")
    for note in answer.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"



# `rag eval` lives in evals/cli.py; importing it loads only click and constants (the model,
# index and matplotlib load when the command runs).
from evals.cli import eval_command  # noqa: E402

cli.add_command(eval_command)


if __name__ == "__main__":
    cli()
