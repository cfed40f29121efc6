"""`rag serve`: one warm process that answers over HTTP (FastAPI on uvicorn).

Routes (JSON in and out; the OpenAPI schema is served at /openapi.json and drawn at /docs):

    POST /ask            {"question", "history", "top_k", "mode", "answerer", "stream"}: exactly what
                         `rag ask --json` prints (`rag.present.to_json`). As server-sent events when the
                         client asks (`Accept: text/event-stream`, or "stream": true): `event: token` with
                         {"text"} as the answer is produced, then one `event: answer` holding the answer's
                         JSON; an error after the stream has begun is one `event: error` holding the error body.
    GET  /documents      the documents with their paragraph counts (what `rag docs --json` lists).
    GET  /documents/{doc_id}/paragraphs/{para}   one paragraph, to check a citation (what `rag show` prints).
    POST /ingest         {"paths": [...]}, relative to the corpus folder (default: all of it): editors only.
    GET  /health         {"status": "ok"}, with no token, for load balancers and scripts.

Errors are `{"error": {"type": "IndexNotFound", "message": "..."}}`: a library error's type is its
class name and its status comes from `STATUS_CODES`, the one mapping; a request the schema refuses
is `InvalidRequest` (422), a body over `MAX_BODY_BYTES` is `PayloadTooLarge` (413), an unknown
route is `NotFound`, and anything unexpected is `InternalError` (500), its traceback in the
server's log only.

Who may call (`identify`, the one lookup): with an operator's tokens file ($RAG_API_TOKENS, else
`.paracite/api-tokens.toml`), a caller sends `Authorization: Bearer TOKEN`; the file stores the
sha256 of each token with a user name and a role, reader < editor < admin. With no tokens file
only loopback callers that address the server as 127.0.0.1 or localhost are served, each as the
local admin, and `rag serve` refuses to bind any other address. Ingest takes only paths under the
corpus folder, never one outside it; a symlink the operator placed inside a folder being ingested
is followed, as `rag ingest` follows it.

The engine (model and index) loads once and every request shares it, as the UI's sessions share
theirs (`rag.engine.Engine` is safe to read from many threads); when an ingest swaps in a newer
generation, the next request loads it.

Not handled: TLS (put a proxy in front), rate limits, uploads over HTTP (copy files into the
corpus folder, then POST /ingest), or stopping an answer when its client goes away.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import audit
from rag.answer import Answerer, AnswerStream
from app.auth import LOCAL, Forbidden, Principal, Role, require
from app.backends import Backend, load_backends
from rag.passages import DEFAULT_MAX_WORDS
from app.corpus import default_corpus_dir, is_inside
from rag.embed.embedder import Embedder
from rag.engine import Engine
from rag.errors import (ApiTokensConfigError, BackendsConfigError, BackendUnavailable, BadArgument,
                        ConversationConflict, CorpusRestoreFailed, IndexBusy, IndexDamaged, IndexMismatch,
                        IndexNotFound, NotAllowed, NotAuthenticated, RagError, UnknownParagraph)
from rag.index.ingest import IngestReport, ingest
from app.operator_files import operator_file
from rag.present import to_json
from rag.index.layout import read_manifest

log = logging.getLogger("app.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKENS_ENV = "RAG_API_TOKENS"
DEFAULT_TOKENS_PATH = Path(".paracite") / "api-tokens.toml"
# Status by error class, the first match wins; any other RagError is about the request's input: 400.
STATUS_CODES: tuple[tuple[type[RagError], int], ...] = (
    (BadArgument, 400), (NotAuthenticated, 401), (NotAllowed, 403), (Forbidden, 403), (UnknownParagraph, 404),
    (IndexBusy, 409), (ConversationConflict, 409), (BackendUnavailable, 502),
    (IndexNotFound, 503), (IndexMismatch, 503), (IndexDamaged, 503),
    (BackendsConfigError, 500), (ApiTokensConfigError, 500), (CorpusRestoreFailed, 500),
)
# A question with its history is a few kB; 1 MiB leaves room for long histories and stops a body meant to fill memory.
MAX_BODY_BYTES = 1024 * 1024
MAX_QUESTION_CHARS = 2000
MAX_TURNS = 50
MAX_TURN_CHARS = 20_000
MAX_TOP_K = 50
MAX_INGEST_PATHS = 1000


# ---- who is calling ---------------------------------------------------------------------------------------------

# Callers are `app.auth.Principal`s, as the UI's signed-in users are: the same roles, the same `require`.
Tokens = dict[str, Principal]  # sha256 hex of a token -> its caller
_SHA256 = re.compile(r"[0-9a-f]{64}")
TOKENS_EXAMPLE = '[[tokens]]\nuser = "alice"\nrole = "editor"\nsha256 = "<sha256 hex of her token>"'


def tokens_path() -> Path | None:
    """$RAG_API_TOKENS, else .paracite/api-tokens.toml when it exists, else None (no tokens: loopback only)."""
    return operator_file(TOKENS_ENV, DEFAULT_TOKENS_PATH)


def load_tokens(path: str | Path | None = None) -> Tokens | None:
    """The operator's tokens by their sha256, or None when there is no tokens file.

    The file (TOML) lists one table per token, so a user may hold two while one is rotated:

        [[tokens]]
        user = "alice"
        role = "editor"                      # reader, editor or admin
        sha256 = "9f86d081884c7d65..."       # printf %s "$TOKEN" | sha256sum
    """
    path = Path(path) if path is not None else tokens_path()
    if path is None:
        return None
    fix = f"write it as in this example:\n{TOKENS_EXAMPLE}"
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ApiTokensConfigError(path, f"cannot be read ({e.strerror or e})", f"create it, or unset {TOKENS_ENV}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ApiTokensConfigError(path, f"is not valid TOML ({e})", fix) from None
    entries = data.get("tokens")
    if set(data) - {"tokens"} or not isinstance(entries, list):
        raise ApiTokensConfigError(path, "expected only [[tokens]] tables", fix)
    tokens: Tokens = {}
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != {"user", "role", "sha256"}:
            raise ApiTokensConfigError(path, f"token {n} needs exactly the keys user, role and sha256", fix)
        user, role, digest = entry["user"], entry["role"], str(entry["sha256"]).lower()
        if not isinstance(user, str) or not user.strip():
            raise ApiTokensConfigError(path, f"token {n} has no user name", fix)
        try:
            role = Role.parse(role) if isinstance(role, str) else None
        except ValueError:
            role = None
        if role is None:
            raise ApiTokensConfigError(path, f"token {n} ({user}) has role {entry['role']!r}",
                                       f"use one of {', '.join(str(r) for r in Role)}")
        if not _SHA256.fullmatch(digest):
            raise ApiTokensConfigError(path, f"token {n} ({user}): sha256 is not 64 hex digits",
                                       "store the digest, never the token: printf %s \"$TOKEN\" | sha256sum")
        if digest in tokens:
            raise ApiTokensConfigError(path, f"token {n} ({user}) repeats the digest of {tokens[digest].user}'s",
                                       "give each its own token")
        tokens[digest] = Principal(user.strip(), None, role)
    return tokens


def is_loopback(host: str | None) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def identify(token: str | None, client_host: str | None, tokens: Tokens | None, host_header: str | None = None
             ) -> Principal:
    """Who is calling: the holder of a token from the operator's file, or, with no file, the local admin.

    The one lookup of callers, so that another source of users can replace it alone. Without a
    tokens file the request must come from this machine and name it (`host_header`): a web page
    whose own domain was pointed at 127.0.0.1 (DNS rebinding) names that domain, and is refused.
    """
    if tokens is None:
        named = urlsplit(f"//{host_header}").hostname if host_header else "localhost"
        if is_loopback(client_host) and is_loopback(named):
            return LOCAL
        raise NotAllowed("this server has no API tokens file, so it serves only its own machine, by the address "
                         f"127.0.0.1 or localhost; the operator can add one ({TOKENS_ENV} or {DEFAULT_TOKENS_PATH})")
    if not token:
        raise NotAuthenticated("this server needs a token: send the header 'Authorization: Bearer TOKEN'")
    caller = tokens.get(hashlib.sha256(token.encode("utf-8")).hexdigest())
    if caller is None:
        raise NotAuthenticated("the bearer token is not one this server knows; ask its operator for one")
    return caller


_bearer = HTTPBearer(auto_error=False, description="A token from the operator's API tokens file. Not needed when the "
                                                   "server has no tokens file and the caller is on its machine.")


def caller_with(role: Role, action: str):
    """A route dependency: the caller, who must hold `role` or a higher one (`app.auth.require`; refusals are
    written to the audit log when the route changes documents)."""

    def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        who = identify(credentials.credentials if credentials else None,
                       request.client.host if request.client else None, request.app.state.tokens,
                       request.headers.get("host"))
        if role >= Role.EDITOR:
            audit.require(request.app.state.audit_log, who, role, action)
        else:
            require(who, role, action)
        return who

    return caller


# ---- requests and responses -------------------------------------------------------------------------------------

class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_QUESTION_CHARS, examples=["How many vehicles did China export in 2023?"])
    history: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS,
                                description="Earlier turns: the question is rewritten as a standalone one.")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="Paragraphs to retrieve.")
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    answerer: str = Field("extractive", max_length=100,
                          description="extractive, or the name of a backend in the operator's backends file.")
    stream: bool = Field(False, description="Server-sent events, as with 'Accept: text/event-stream'.")


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(default_factory=list, max_length=MAX_INGEST_PATHS,
                             description="Files or folders relative to the corpus folder; none means all of it.")


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 403, 404, 409, 413, 422, 503)
}


class JSON(Response):
    """JSON as `rag ask --json` prints it (`json.dumps`, UTF-8 left as is), so the bytes match the CLI's line."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False).encode("utf-8")


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def status_of(error: RagError) -> int:
    return next((code for cls, code in STATUS_CODES if isinstance(error, cls)), 400)


def sse(event: str, data: Any) -> str:
    """One server-sent event; JSON data never holds a raw newline, so it is always one `data:` line.

    >>> sse("token", {"text": "a\\nb"})
    'event: token\\ndata: {"text": "a\\\\nb"}\\n\\n'
    """
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def wants_events(accept: str | None) -> bool:
    """
    >>> wants_events("text/event-stream"), wants_events("application/json, */*"), wants_events(None)
    (True, False, False)
    """
    return "text/event-stream" in (accept or "").lower()


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
                log.info("loaded generation %s of %s in %.1fs", self._engine.index.generation, self.index_dir,
                         time.perf_counter() - t0)
            return self._engine

    def answerer(self, engine: Engine, name: str) -> Answerer:
        """"extractive", or a configured backend by name (never an address or a model from the request)."""
        if name == "extractive":
            return engine.answerer
        if name not in self.backends:
            raise BadArgument(f"answerer {name!r} is not offered here; choose one of: "
                              f"{', '.join(['extractive', *self.backends])}")
        key = (name, engine.index.generation)
        with self._answerers_lock:  # one per backend and generation, as the UI keeps them; the local model loads once
            if key not in self._answerers:
                from app.chat_models import make_answerer

                answerer = make_answerer(self.backends[name], engine.embedder, engine.titles)
                answerer.warm()
                # Those of older generations go: they hold the old titles, and a local model each.
                self._answerers = {k: v for k, v in self._answerers.items() if k[1] == key[1]} | {key: answerer}
            return self._answerers[key]


def create_app(index_dir: str | Path, *, embedder: Embedder | None = None, corpus_dir: str | Path | None = None,
               tokens: Tokens | None = None, backends: dict[str, Backend] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The ASGI app over the index at `index_dir`, its model and index loaded now.

    `tokens` is `load_tokens()`'s result (None: loopback callers only, each the local admin);
    `backends` the LLM backends a request may name (default: the operator's file).
    """
    embedder = embedder or Embedder()
    embedder.model  # the torch model, for ingest (and for questions to an index without an ONNX encoder)
    live = LiveEngine(Path(index_dir), embedder, load_backends() if backends is None else backends)
    try:
        live.get()
    except RagError as e:  # no index yet: questions get IndexNotFound until an ingest makes one
        log.warning("%s", e)
    corpus = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()

    app = FastAPI(title="paracite", version="1", default_response_class=JSON,
                  description="Answers from your documents, every claim cited to a paragraph.")
    app.state.tokens = tokens
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _add_error_handlers(app)
    app.state.audit_log = audit.default_path(index_dir)
    reader, editor = Depends(caller_with(Role.READER, "ask")), Depends(caller_with(Role.EDITOR, "ingest"))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/ask", responses={**ERROR_RESPONSES, 200: {
        "description": "The answer, as `rag ask --json` prints it (format paracite-answer v2); or, when asked, "
                       "server-sent events: `token` events ({\"text\"}), then one `answer` event with that JSON.",
        "content": {"application/json": {}, "text/event-stream": {}}}})
    def ask(body: AskRequest, request: Request, caller: Principal = reader):
        if not body.question.strip():
            raise BadArgument('empty question; ask something, e.g. "How many vehicles did China export?"')
        engine = live.get()
        answerer = live.answerer(engine, body.answerer)
        history = [turn.model_dump() for turn in body.history] or None
        if body.stream or wants_events(request.headers.get("accept")):
            stream = engine.stream(body.question, history, body.top_k, body.mode, answerer)
            return StreamingResponse(_events(stream), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSON(to_json(engine.ask(body.question, history, body.top_k, body.mode, answerer)))

    @app.get("/documents", responses=ERROR_RESPONSES)
    def documents(caller: Principal = reader) -> dict[str, Any]:
        index = live.get().index
        counts = Counter(p.doc_id for p in index.content.paragraphs)
        return {"generation": index.generation,
                "documents": [{**_document_json(d), "paragraphs": counts[d.doc_id],
                               "ingested_at": index.ingested_at(d.doc_id)} for d in index.documents]}

    @app.get("/documents/{doc_id}/paragraphs/{para}", responses=ERROR_RESPONSES)
    def paragraph(doc_id: str, para: int, caller: Principal = reader) -> dict[str, Any]:
        index = live.get().index
        p, d = index.paragraph(doc_id, para), index.document(doc_id)
        return {"doc_id": p.doc_id, "para": p.para, "label": p.label, "title": d.title, "page": p.page,
                "heading": p.heading, "source_paras": list(p.source_paras), "text": p.text, "sha256": d.sha256}

    @app.post("/ingest", responses=ERROR_RESPONSES)
    def ingest_files(body: IngestRequest, request: Request, caller: Principal = editor) -> dict[str, Any]:
        paths = corpus_paths(corpus, body.paths)
        max_words, passage_chars = recorded_chunking(live.index_dir)
        log.info("ingest by %s: %s", caller.label, ", ".join(map(str, paths)))
        report = ingest(paths, live.index_dir, embedder, max_words=max_words, passage_chars=passage_chars)
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
    being absolute, or through a symlink. No paths means the whole folder.
    """
    root = Path(corpus_dir).absolute()
    if not requested:
        return [root]
    paths = []
    for raw in requested:
        # Lexically normalised but not resolved: the index knows its files by the path they were ingested under.
        path = Path(os.path.normpath(root / raw))
        if "\x00" in raw or not is_inside(path, root):
            raise BadArgument(f"{raw!r} is not under the corpus folder; POST /ingest reads only files in it "
                              f"(give paths relative to it, e.g. \"report.pdf\")")
        paths.append(path)
    return paths


def recorded_chunking(index_dir: Path) -> tuple[int, int]:
    """The index's own (max_words, passage_chars), so that an ingest over HTTP does not re-cut every document."""
    chunking = (read_manifest(index_dir) or {}).get("chunking") or {}
    return int(chunking.get("max_words", DEFAULT_MAX_WORDS)), int(chunking.get("max_chars", 0))


def report_json(report: IngestReport, corpus_dir: Path) -> dict[str, Any]:
    def shown(path: str) -> str:
        try:
            return str(Path(path).relative_to(corpus_dir.absolute()))
        except ValueError:
            return Path(path).name

    return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "removed": report.removed, "failed": [{"path": shown(e.path), "reason": e.reason} for e in report.failed],
            "warnings": report.warnings, "passages_embedded": report.passages_embedded,
            "seconds": round(report.seconds, 3), "generation": report.generation, "summary": report.summary()}


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as typed JSON: library errors by `STATUS_CODES`, the schema's refusals, routes, the unexpected."""

    @app.exception_handler(RagError)
    def rag_error(request: Request, error: RagError) -> JSON:
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSON(error_body(type(error).__name__, str(error)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError) -> JSON:
        problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSON(error_body("InvalidRequest", "; ".join(problems)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> JSON:
        phrase = HTTPStatus(error.status_code).phrase  # "Method Not Allowed" -> MethodNotAllowed
        kind = getattr(error, "error_type", None) or phrase.title().replace(" ", "").replace("-", "")
        return JSON(error_body(kind, str(error.detail)),
                    status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSON:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSON(error_body("InternalError", "the request failed; the server's log has the details"),
                    status_code=500)


class _TooLarge(StarletteHTTPException):
    """Raised while a body is read, so that FastAPI passes it on (to `http_error`) rather than calling it bad JSON."""

    error_type = "PayloadTooLarge"

    def __init__(self, max_bytes: int):
        super().__init__(413, f"the request body is over {max_bytes} bytes")


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413, whether it declares its length or not."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        error = _TooLarge(self.max_bytes)
        body = json.dumps(error_body(error.error_type, error.detail)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve(index_dir: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          corpus_dir: str | Path | None = None, tokens_file: str | Path | None = None) -> None:
    """Load the model and the index, then serve until interrupted (`rag serve`)."""
    import uvicorn

    tokens = load_tokens(tokens_file)
    if tokens is None and not is_loopback(host):
        raise BadArgument(f"--host {host} would serve other machines, but there is no API tokens file: give one with "
                          f"--tokens or {TOKENS_ENV} (see README, 'HTTP API'), or keep the default {DEFAULT_HOST}")
    handler = logging.StreamHandler()  # ours at INFO beside uvicorn's lines; other libraries keep their WARNING
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    t0 = time.perf_counter()
    app = create_app(index_dir, corpus_dir=corpus_dir, tokens=tokens)
    who = f"{len(tokens)} API tokens" if tokens is not None else "no API tokens file: this machine only, as admin"
    print(f"loaded index and model in {time.perf_counter() - t0:.1f}s; {who}", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="info")
