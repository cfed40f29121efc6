"""The `rag` command line: ingest, ask, docs, show, serve, and the commands other packages register.

Results go to stdout (one JSON object per line with --json); progress and errors go to stderr.
Library errors become one-line messages and exit codes in one place, `RagGroup.invoke`. Commands
from other packages (`rag eval`, from evals/) are registered under the `paracite.commands`
entry point group and imported only when run, so this module imports nothing outside rag/.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path

import click

from rag.errors import BadArgument, IndexBusy, IndexMismatch, IndexNotFound, RagError, ServerError, ServerUnreachable

# rag.index.layout's, repeated here so that importing the CLI loads no faiss or numpy (`rag ask --server` needs neither;
# tests/test_serve.py checks that they agree).
DEFAULT_INDEX_DIR = ".rag/index"
INDEX_ENV = "RAG_INDEX"
PLUGIN_GROUP = "paracite.commands"
# Exit codes by error class (the first match wins); any other RagError exits 1.
EXIT_CODES: tuple[tuple[type[RagError], int], ...] = (
    (BadArgument, 2),
    (IndexNotFound, 3),
    (IndexMismatch, 3),
    (IndexBusy, 4),
    (ServerUnreachable, 5),
)

index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=INDEX_ENV,
    default=DEFAULT_INDEX_DIR,
    show_default=True,
    show_envvar=True,
    help="Index folder.",
)


class _Fail(click.ClickException):
    def show(self, file=None):
        click.echo(f"Error: {self.message}", err=True)


def exit_code(error: RagError) -> int:
    if isinstance(error, ServerError):  # the server's error, by the name of its class
        return next((code for cls, code in EXIT_CODES if cls.__name__ == error.kind), 1)
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 1)


class RagGroup(click.Group):
    """The `rag` group: built-in commands, plugin commands found by entry point, and the one error mapping."""

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group=PLUGIN_GROUP))})

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            found = [ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name == name]
            command = found[0].load() if found else None
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RagError as e:
            fail = _Fail(str(e))
            fail.exit_code = exit_code(e)
            raise fail from e


@click.group(cls=RagGroup)
@click.version_option(package_name="paracite")
def cli():
    """paracite: answers from your documents, every claim cited to a paragraph."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@click.option("--rebuild", is_flag=True, help="Ignore the existing index and embed everything again.")
@click.option("--max-words", type=click.IntRange(min=10), default=None, help="Longest chunk, in words.")
@click.option(
    "--passages",
    "passage_chars",
    type=click.IntRange(min=0),
    default=None,
    help="Passage size: short paragraphs of one section are embedded together, up to this many characters, "
    "with the document's title and heading in front. Default: the index's own setting, or 1000 for a new "
    "index. 0 embeds each paragraph alone.",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS|auto",
    help="Parse and embed the changed files on a Ray cluster (pip install -e '.[ray]'): the address "
    "`ray start --head` printed, or auto for the cluster running on this machine. The index is "
    "assembled and swapped here, as without it.",
)
def ingest(paths, index_dir, rebuild, max_words, passage_chars, ray_address):
    """Ingest files and folders (default: corpus/) into the index.

    Example usage:

        rag ingest corpus/ --index .rag/index
        rag ingest filings/ --ray auto
    """
    from rag.embed.embedder import Embedder
    from rag.index.ingest import ingest as run_ingest
    from rag.passages import DEFAULT_MAX_WORDS

    paths = list(paths) or [Path("corpus")]
    from app import audit
    from app.auth import LOCAL

    options = dict(
        max_words=max_words or DEFAULT_MAX_WORDS, passage_chars=passage_chars, rebuild=rebuild, show_progress=True
    )
    if ray_address:
        from app.distributed import RayCluster

        with RayCluster.connect(ray_address) as cluster:
            report = run_ingest(paths, index_dir, cluster.embedder(), parse=cluster.parse_files, **options)
    else:
        report = run_ingest(paths, index_dir, Embedder(), **options)
    audit.record_ingest(audit.default_path(index_dir), LOCAL, report, "rag ingest")  # the Library's "added by"
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
@click.option(
    "--llm",
    "llm_spec",
    default="extractive",
    show_default=True,
    envvar="RAG_LLM",
    show_envvar=True,
    help="Answerer: extractive, local (SmolLM2, offline), ollama:MODEL, openai:MODEL, or the name of a "
    "backend in $RAG_BACKENDS / .paracite/backends.toml (see SECURITY.md).",
)
@click.option(
    "--base-url",
    default=None,
    help="Server address for ollama:/openai: (e.g. http://localhost:8000/v1). A key is sent only to an "
    "address configured for it: $OPENAI_BASE_URL (or api.openai.com) for OPENAI_API_KEY, $OLLAMA_HOST "
    "for OLLAMA_API_KEY, or a backend of the backends file that names the key's env var.",
)
@click.option(
    "--history",
    "history_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="JSON list of earlier turns [{role, content}]: the question is rewritten as a standalone one.",
)
@click.option("--timings", is_flag=True, help="Print where the time went (start-up, loading, each question) to stderr.")
@click.option(
    "--server",
    default=None,
    envvar="RAG_SERVER",
    show_envvar=True,
    help="Ask a running `rag serve` at this address (e.g. http://127.0.0.1:8765) instead of loading the "
    "model and index here; its token, if it needs one, comes from $RAG_API_TOKEN. --index is then "
    "the server's, and --llm names one of its configured backends.",
)
def ask(questions, index_dir, as_json, top_k, mode, llm_spec, base_url, history_file, timings, server):
    """Answer questions from the index, citing paragraphs.

    Example usage:

        rag ask "How many vehicles did China export?" --json

        rag ask "And what about Korea?" --history turns.json --llm local

        rag ask "How many vehicles did China export?" --server http://127.0.0.1:8765
    """
    started = process_seconds()
    t_enter = time.perf_counter()
    from rag.present import fallback_warning, to_json, to_text

    history = _read_history(history_file) if history_file else None
    if not all(q.strip() for q in questions):
        raise BadArgument('empty question; ask something, e.g. rag ask "How many vehicles did China export?"')
    if server:  # before anything heavy is imported: the server holds the model and the index
        report = _ask_server(server, questions, as_json, top_k, mode, llm_spec, base_url, history)
        report.insert(0, ("start-up: interpreter and imports", started * 1000))
        if timings:
            _print_timings(report, started, t_enter)
        return
    import rag.engine  # noqa: F401 - timed apart from loading: numpy, faiss, bm25s

    t_imports = time.perf_counter()
    engine, encoder_s = _load_engine(index_dir)
    from app.chat_models import answerer_for

    answerer = answerer_for(engine, llm_spec, base_url)
    seconds = answerer.warm()
    if seconds > 0.05:
        click.echo(f"loaded {answerer.name} in {seconds:.1f}s", err=True)
    report = [
        ("start-up: interpreter and imports", started * 1000),
        ("import rag.engine and its libraries", (t_imports - t_enter) * 1000),
        *((f"load {k}", v) for k, v in engine.load_ms.items()),
        (f"warm the query encoder ({engine.embedder.query_backend})", encoder_s * 1000),
        (f"warm the {answerer.name} answerer", seconds * 1000),
    ]
    for n, question in enumerate(questions, start=1):
        answer = engine.ask(question, top_k=top_k, mode=mode, answerer=answerer, history=history)
        if fallback_warning(answer):
            click.echo(f"warning: {fallback_warning(answer)}", err=True)
        t0 = time.perf_counter()
        click.echo(json.dumps(to_json(answer), ensure_ascii=False) if as_json else to_text(answer))
        report += [
            (f"question {n}: {k}", answer.timings_ms[k])
            for k in ("rewrite", "embed_question", "search", "answer")
            if k in answer.timings_ms
        ]
        report.append((f"question {n}: print", (time.perf_counter() - t0) * 1000))
    if timings:
        _print_timings(report, started, t_enter)


def _print_timings(report: list[tuple[str, float]], started: float, t_enter: float) -> None:
    report.append(("wall, from process start", (started + time.perf_counter() - t_enter) * 1000))
    width = max(len(label) for label, _ in report)
    click.echo("\n".join(["timings (ms):"] + [f"  {label:<{width}}  {ms:8.1f}" for label, ms in report]), err=True)


def process_seconds() -> float:
    """Seconds since this process started (Linux /proc; 0 where it cannot be read): the interpreter and imports."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _ask_server(server, questions, as_json, top_k, mode, llm_spec, base_url, history) -> list[tuple[str, float]]:
    """`rag ask` through a running server: the standard library's HTTP only, no model, index or engine here.

    Returns the timings: each question's round trip, and the server's own figures for it."""
    from app import client
    from rag.present import fallback_warning, from_json, to_text

    if base_url:
        raise BadArgument(
            "--base-url is for an answerer in this process; with --server, --llm names one of the "
            "server's configured backends"
        )
    report = []
    for n, question in enumerate(questions, start=1):
        t0 = time.perf_counter()
        data = client.ask(
            server,
            question,
            history=history,
            top_k=top_k,
            mode=mode,
            answerer=llm_spec,
            token=os.environ.get(client.TOKEN_ENV),
        )
        report.append((f"question {n}: the server's round trip", (time.perf_counter() - t0) * 1000))
        report += [(f"question {n}: (on the server) {k}", v) for k, v in data.get("timings_ms", {}).items()]
        answer = from_json(data)
        if fallback_warning(answer):
            click.echo(f"warning: {fallback_warning(answer)}", err=True)
        click.echo(json.dumps(data, ensure_ascii=False) if as_json else to_text(answer))
    return report


def _read_history(path: Path) -> list[dict]:
    try:
        turns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _Fail(f"--history {path}: not readable JSON ({e})") from e
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
        for t in turns
    ):
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
            click.echo(
                json.dumps(
                    {**asdict(d), "paragraphs": n, "ingested_at": index.ingested_at(d.doc_id)}, ensure_ascii=False
                )
            )
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
    p = index.paragraph(doc_id, para)
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
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any other than this machine's needs an API tokens file.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder POST /ingest reads from (default: $RAG_CORPUS, else corpus/).",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="API tokens file (default: $RAG_API_TOKENS, else .paracite/api-tokens.toml when it exists; "
    "without one, only this machine is served).",
)
def serve(index_dir, host, port, corpus_dir, tokens_file):
    """Serve questions, documents and ingest over HTTP from one warm process (OpenAPI schema at /docs).

    Example usage:

        rag serve --port 8765

        curl -s localhost:8765/ask -H 'Content-Type: application/json' -d '{"question": "How many vehicles did China export in 2023?"}'
    """
    from app.serve import serve as run_server

    run_server(index_dir, host, port, corpus_dir, tokens_file)


@cli.command()
@index_option
@click.option(
    "--repair",
    is_flag=True,
    help="Point a broken CURRENT at the newest complete generation that passes "
    "every check, and remove incomplete ones. Never deletes a complete one.",
)
def doctor(index_dir, repair):
    """Check an index folder: one line per check, exit code 0 when healthy, 1 otherwise.

    Example usage:

        rag doctor --index .rag/index

        rag doctor --repair
    """
    from rag.index.doctor import diagnose
    from rag.index.doctor import repair as run_repair

    try:
        report = run_repair(index_dir) if repair else diagnose(index_dir)
    except RagError as e:  # IndexBusy: an ingest holds the lock
        raise _Fail(str(e)) from e
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.healthy else 1)


def _open_index(index_dir: Path):
    from rag.embed.embedder import DIMENSION, MODEL_NAME
    from rag.index.reader import Index

    return Index.open(index_dir, MODEL_NAME, DIMENSION)


def _load_engine(index_dir: Path):
    """The engine, and the seconds its query encoder took to warm (the torch model, where the index has no ONNX one)."""
    from rag.engine import Engine

    t0 = time.perf_counter()
    engine = Engine.load(index_dir)
    warm = engine.embedder.warm()  # load now, so the first question's timing is its own
    click.echo(f"loaded index and model in {time.perf_counter() - t0:.1f}s", err=True)
    return engine, warm


if __name__ == "__main__":
    cli()
