"""`rag serve`'s HTTP plumbing: every error as typed JSON (`STATUS_CODES`, the one mapping), and the body limit.

A library error's type is its class name and its status comes from `STATUS_CODES`; a request the
schema refuses is `InvalidRequest` (422), a body over `MAX_BODY_BYTES` is `PayloadTooLarge` (413), an
unknown route is `NotFound`, and anything unexpected is `InternalError` (500), its traceback in the
server's log only.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth import Forbidden
from app.serve_callers import TooManyFailedSignIns
from app.serve_schema import JSON, error_body
from rag.errors import (
    ApiTokensConfigError,
    BackendsConfigError,
    BackendUnavailable,
    BadArgument,
    ConversationConflict,
    CorpusRestoreFailed,
    IndexBusy,
    IndexDamaged,
    IndexMismatch,
    IndexNotFound,
    NotAllowed,
    NotAuthenticated,
    RagError,
    UnknownParagraph,
)

log = logging.getLogger("app.serve")

# Status by error class, the first match wins; any other RagError is about the request's input: 400.
STATUS_CODES: tuple[tuple[type[RagError], int], ...] = (
    (BadArgument, 400),
    (NotAuthenticated, 401),
    (NotAllowed, 403),
    (Forbidden, 403),
    (UnknownParagraph, 404),
    (IndexBusy, 409),
    (ConversationConflict, 409),
    (TooManyFailedSignIns, 429),
    (BackendUnavailable, 502),
    (IndexNotFound, 503),
    (IndexMismatch, 503),
    (IndexDamaged, 503),
    (BackendsConfigError, 500),
    (ApiTokensConfigError, 500),
    (CorpusRestoreFailed, 500),
)
# A question with its history is a few kB; 1 MiB leaves room for long histories and stops a body meant to fill memory.
MAX_BODY_BYTES = 1024 * 1024


def status_of(error: RagError) -> int:
    return next((code for cls, code in STATUS_CODES if isinstance(error, cls)), 400)


def add_error_handlers(app: FastAPI) -> None:
    """Every error as typed JSON: library errors by `STATUS_CODES`, the schema's refusals, routes, the unexpected."""

    @app.exception_handler(RagError)
    def rag_error(request: Request, error: RagError) -> JSON:
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(error, TooManyFailedSignIns):
            headers = {"Retry-After": str(error.retry_after)}
        return JSON(error_body(type(error).__name__, str(error)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError) -> JSON:
        problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSON(error_body("InvalidRequest", "; ".join(problems)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> JSON:
        phrase = HTTPStatus(error.status_code).phrase  # "Method Not Allowed" -> MethodNotAllowed
        kind = getattr(error, "error_type", None) or phrase.title().replace(" ", "").replace("-", "")
        return JSON(error_body(kind, str(error.detail)), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSON:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSON(
            error_body("InternalError", "the request failed; the server's log has the details"), status_code=500
        )


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
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
