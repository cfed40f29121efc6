"""`rag serve`: one warm process that answers over HTTP (FastAPI on uvicorn).

Routes (JSON in and out; the OpenAPI schema is served at /openapi.json; no /docs page, which would load
its scripts from a CDN):

    POST /ask            {"question", "history", "top_k", "mode", "answerer", "stream"}: exactly what
                         `rag ask --json` prints (`rag.present.to_json`). As server-sent events when the
                         client asks (`Accept: text/event-stream`, or "stream": true): `event: token` with
                         {"text"} as the answer is produced, then one `event: answer` holding the answer's
                         JSON; an error after the stream has begun is one `event: error` holding the error body.
    GET  /documents      the documents with their paragraph counts (what `rag docs --json` lists).
    GET  /documents/{doc_id}/paragraphs/{para}   one paragraph, to check a citation (what `rag show` prints).
    POST /ingest         {"paths": [...]}, relative to the corpus folder (default: all of it): editors only.
    GET  /health         {"status": "ok"}, with no token, for load balancers and scripts.

Errors are `{"error": {"type": "IndexNotFound", "message": "..."}}` (`app.serve_http`).

The modules of the server: this one (the engine, the routes, `rag serve`); `app.serve_callers` (who is
calling: tokens, `identify`); `app.serve_schema` (requests and responses); `app.serve_http` (typed
errors, the body limit).

Who may call (`identify`, the one lookup): with an operator's tokens file ($RAG_API_TOKENS, else
`.paracite/api-tokens.toml`), a caller sends `Authorization: Bearer TOKEN`; the file stores the
sha256 of each token with a user name and a role, reader < editor < admin. With no tokens file
only loopback callers that address the server as 127.0.0.1 or localhost are served, each as the
local admin, and `rag serve` refuses to bind any other address. Ingest takes only paths under the
corpus folder, never one outside it; a symlink inside a folder being ingested that leads outside
that folder is refused (`rag.index.files.discover`).

The engine (model and index) loads once and every request shares it, as the UI's sessions share
theirs (`rag.engine.Engine` is safe to read from many threads); when an ingest swaps in a newer
generation, the next request loads it.

Not handled: TLS (put a proxy in front), rate limits other than on failed sign-ins, uploads over HTTP
(copy files into the corpus folder, then POST /ingest), or stopping an answer when its client goes away.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from app import audit
from app.auth import Principal, Role
from app.backends import Backend, load_backends
from app.corpus import default_corpus_dir, is_inside
from app.serve_callers import (
    MAX_FAILED_SIGN_INS,
    TOKENS_ENV,
    SignInThrottle,
    Tokens,
    caller_with,  # noqa: F401 - re-exported: the CLI and the tests import these from app.serve
    identify,  # noqa: F401
    is_loopback,
    load_tokens,
)
from app.serve_http import MAX_BODY_BYTES, STATUS_CODES, BodyLimit, add_error_handlers, status_of  # noqa: F401
from app.serve_schema import (
    ERROR_RESPONSES,
    JSON,
    MAX_TOP_K,  # noqa: F401 - re-exported
    AskRequest,
    IngestRequest,  # noqa: F401
    error_body,
    sse,
    wants_events,
)
from rag.answer import Answerer, AnswerStream
from rag.embed.embedder import Embedder
from rag.engine import Engine
from rag.errors import BadArgument, RagError
from rag.index.ingest import IngestReport, ingest
from rag.index.layout import read_manifest
from rag.passages import DEFAULT_MAX_WORDS
from rag.present import to_json

log = logging.getLogger("app.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_PATH_CHARS = 1024  # an ingest path, relative to the corpus folder (Linux allows 4,096 for the whole path)
MAX_NAME_BYTES = 255  # one file or folder name, as most file systems allow


# ---- the app ------------------------------------------------------------------------------------------------------


class LiveEngine:
    """The engine of the index's live generation, shared by every request, loaded again after an ingest."""

    def __init__(self, index_dir: Path, embedder: Embedder, backends: dict[str, Backend]):
        self.index_dir = index_dir
        self.embedder = embedder
        self.backends = backends
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        # Its own lock: the local model takes half a minute to load, and extractive questions need not wait for it.
        self._answerers_lock = threading.Lock()
        self._answerers: dict[tuple[str, str], Answerer] = {}

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None or self._engine.is_stale():
                t0 = time.perf_counter()
                # As the UI does: questions through this generation's ONNX encoder, ingest through the one torch model.
                self._engine = Engine.load(self.index_dir, Embedder.for_index(self.index_dir, self.embedder))
                log.info(
                    "loaded generation %s of %s in %.1fs",
                    self._engine.index.generation,
                    self.index_dir,
                    time.perf_counter() - t0,
                )
            return self._engine

    def answerer(self, engine: Engine, name: str) -> Answerer:
        """ "extractive", or a configured backend by name (never an address or a model from the request)."""
        if name == "extractive":
            return engine.answerer
        if name not in self.backends:
            raise BadArgument(
                f"answerer {name!r} is not offered here; choose one of: {', '.join(['extractive', *self.backends])}"
            )
        key = (name, engine.index.generation)
        with self._answerers_lock:  # one per backend and generation, as the UI keeps them; the local model loads once
            if key not in self._answerers:
                from app.chat_models import make_answerer

                answerer = make_answerer(self.backends[name], engine.embedder, engine.titles)
                answerer.warm()
                # Those of older generations go: they hold the old titles, and a local model each.
                self._answerers = {k: v for k, v in self._answerers.items() if k[1] == key[1]} | {key: answerer}
            return self._answerers[key]


def create_app(
    index_dir: str | Path,
    *,
    embedder: Embedder | None = None,
    corpus_dir: str | Path | None = None,
    tokens: Tokens | None = None,
    backends: dict[str, Backend] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_failed_logins: int = MAX_FAILED_SIGN_INS,
) -> FastAPI:
    """The ASGI app over the index at `index_dir`, its model and index loaded now.

    `tokens` is `load_tokens()`'s result (None: loopback callers only, each the local admin);
    `backends` the LLM backends a request may name (default: the operator's file).
    """
    embedder = embedder or Embedder()
    _ = embedder.model  # the torch model, for ingest (and for questions to an index without an ONNX encoder)
    live = LiveEngine(Path(index_dir), embedder, load_backends() if backends is None else backends)
    try:
        live.get()
    except RagError as e:  # no index yet: questions get IndexNotFound until an ingest makes one
        log.warning("%s", e)
    corpus = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()

    # No /docs or /redoc: FastAPI draws them with scripts from a CDN (no subresource integrity), and a server that
    # may have no internet should not hand its callers pages that need it. The schema stays at /openapi.json.
    app = FastAPI(
        title="paracite",
        version="1",
        default_response_class=JSON,
        docs_url=None,
        redoc_url=None,
        description="Answers from your documents, every claim cited to a paragraph.",
    )
    app.state.tokens = tokens
    app.state.sign_in_throttle = SignInThrottle(max_failures=max_failed_logins)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    add_error_handlers(app)
    app.state.audit_log = audit.default_path(index_dir)
    reader, editor = Depends(caller_with(Role.READER, "ask")), Depends(caller_with(Role.EDITOR, "ingest"))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/ask",
        responses={
            **ERROR_RESPONSES,
            200: {
                "description": "The answer, as `rag ask --json` prints it (format paracite-answer v2); or, when asked, "
                'server-sent events: `token` events ({"text"}), then one `answer` event with that JSON.',
                "content": {"application/json": {}, "text/event-stream": {}},
            },
        },
    )
    def ask(body: AskRequest, request: Request, caller: Principal = reader):
        if not body.question.strip():
            raise BadArgument('empty question; ask something, e.g. "How many vehicles did China export?"')
        engine = live.get()
        answerer = live.answerer(engine, body.answerer)
        history = [turn.model_dump() for turn in body.history] or None
        if body.stream or wants_events(request.headers.get("accept")):
            stream = engine.stream(body.question, history, body.top_k, body.mode, answerer)
            return StreamingResponse(
                _events(stream),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return JSON(to_json(engine.ask(body.question, history, body.top_k, body.mode, answerer)))

    @app.get("/documents", responses=ERROR_RESPONSES)
    def documents(caller: Principal = reader) -> dict[str, Any]:
        index = live.get().index
        counts = Counter(p.doc_id for p in index.content.paragraphs)
        return {
            "generation": index.generation,
            "documents": [
                {**_document_json(d), "paragraphs": counts[d.doc_id], "ingested_at": index.ingested_at(d.doc_id)}
                for d in index.documents
            ],
        }

    @app.get("/documents/{doc_id}/paragraphs/{para}", responses=ERROR_RESPONSES)
    def paragraph(doc_id: str, para: int, caller: Principal = reader) -> dict[str, Any]:
        index = live.get().index
        p, d = index.paragraph(doc_id, para), index.document(doc_id)
        return {
            "doc_id": p.doc_id,
            "para": p.para,
            "label": p.label,
            "title": d.title,
            "page": p.page,
            "heading": p.heading,
            "source_paras": list(p.source_paras),
            "text": p.text,
            "sha256": d.sha256,
        }

    @app.post("/ingest", responses=ERROR_RESPONSES)
    def ingest_files(body: IngestRequest, request: Request, caller: Principal = editor) -> dict[str, Any]:
        paths = corpus_paths(corpus, body.paths)
        log.info("ingest by %s: %s", caller.label, ", ".join(map(str, paths)))
        report = ingest(paths, live.index_dir, embedder, max_words=recorded_max_words(live.index_dir))
        audit.record_ingest(request.app.state.audit_log, caller, report, "POST /ingest")
        if report.generation:
            try:
                live.get()  # load the new generation now, so the next question does not wait for it
            except RagError as e:
                log.warning("%s", e)
        return report_json(report, corpus)

    return app


def _events(stream: AnswerStream) -> Iterator[str]:
    """Token events as the answer is produced, then the answer; an error after the first byte is an event too."""
    try:
        for token in stream:
            yield sse("token", {"text": token})
        yield sse("answer", to_json(stream.result()))
    except RagError as e:
        yield sse("error", error_body(type(e).__name__, str(e)))
    except Exception:
        log.exception("a streamed answer failed")
        yield sse("error", error_body("InternalError", "the answer failed; the server's log has the details"))


def _document_json(doc) -> dict[str, Any]:
    """A document as `rag docs --json` lists it, with the file's name instead of the server's path to it."""
    record = asdict(doc)
    record["file"] = Path(record.pop("source_path")).name
    return record


def corpus_paths(corpus_dir: str | Path, requested: list[str]) -> list[Path]:
    """The files or folders to ingest, each under the corpus folder; `BadArgument` for any that is not.

    A path is read relative to the corpus folder, and refused when it leads outside it, by `..`, by
    being absolute, or through a symlink, or when it is too long for a file system. No paths means the whole folder.
    """
    root = Path(corpus_dir).absolute()
    if not requested:
        return [root]
    paths = []
    for raw in requested:
        # Checked before the path is touched: the file system refuses a long one with an OSError (a 500 otherwise).
        if len(raw) > MAX_PATH_CHARS or any(
            len(part.encode("utf-8", "replace")) > MAX_NAME_BYTES for part in raw.split("/")
        ):
            raise BadArgument(
                f"the path {raw[:40]!r}... is too long: a path may have at most {MAX_PATH_CHARS:,} "
                f"characters, and each name in it at most {MAX_NAME_BYTES} bytes"
            )
        # Lexically normalised but not resolved: the index knows its files by the path they were ingested under.
        path = Path(os.path.normpath(root / raw))
        if "\x00" in raw or not is_inside(path, root):
            raise BadArgument(
                f"{raw!r} is not under the corpus folder; POST /ingest reads only files in it "
                f'(give paths relative to it, e.g. "report.pdf")'
            )
        paths.append(path)
    return paths


def recorded_max_words(index_dir: Path) -> int:
    """The index's own max_words, so that an ingest over HTTP does not re-cut every document (`ingest` keeps its
    passage size by itself)."""
    chunking = (read_manifest(index_dir) or {}).get("chunking") or {}
    return int(chunking.get("max_words", DEFAULT_MAX_WORDS))


def report_json(report: IngestReport, corpus_dir: Path) -> dict[str, Any]:
    def shown(path: str) -> str:
        try:
            return str(Path(path).relative_to(corpus_dir.absolute()))
        except ValueError:
            return Path(path).name

    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "failed": [{"path": shown(e.path), "reason": e.reason} for e in report.failed],
        "warnings": report.warnings,
        "passages_embedded": report.passages_embedded,
        "seconds": round(report.seconds, 3),
        "generation": report.generation,
        "summary": report.summary(),
    }


def serve(
    index_dir: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    corpus_dir: str | Path | None = None,
    tokens_file: str | Path | None = None,
) -> None:
    """Load the model and the index, then serve until interrupted (`rag serve`)."""
    import uvicorn

    tokens = load_tokens(tokens_file)
    if tokens is None and not is_loopback(host):
        raise BadArgument(
            f"--host {host} would serve other machines, but there is no API tokens file: give one with "
            f"--tokens or {TOKENS_ENV} (see README, 'HTTP API'), or keep the default {DEFAULT_HOST}"
        )
    handler = logging.StreamHandler()  # ours at INFO beside uvicorn's lines; other libraries keep their WARNING
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    t0 = time.perf_counter()
    app = create_app(index_dir, corpus_dir=corpus_dir, tokens=tokens)
    who = f"{len(tokens)} API tokens" if tokens is not None else "no API tokens file: this machine only, as admin"
    print(f"loaded index and model in {time.perf_counter() - t0:.1f}s; {who}", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="info")
